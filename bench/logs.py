"""Log benchmarks, side by side with Docker (``./dev.sh bench logs``).

``logs --tail 10`` of a container whose json-file log is 10 MB, 100 MB and 1 GB: the same
container output on both engines (lines of 66 bytes, ~137 bytes a record), then interleaved
runs of ``logs --tail 10``. The issue asks for at most Docker's time, flat as the log grows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from run import Bench  # bench/run.py (sys.path[0])

LINE = "0123456789 the quick brown fox jumps over the lazy dog 0123456789"
RECORD = 137  # bytes of a json-file record of LINE (both engines, give or take a byte)
# BENCH_LOG_MB=10,100 leaves out the 1 GB log (minutes of writing on each engine).
SIZES_MB = tuple(int(x) for x in os.environ.get("BENCH_LOG_MB", "10,100,1000").split(","))


def bench_logs(b: Bench, docker: bool) -> None:
    from run import interleaved, run

    b.dy("image", "bootstrap", "busybox")
    for mb in SIZES_MB:
        name = f"bench-log{mb}"
        lines = mb * 1_000_000 // RECORD
        cmd = ["busybox", "sh", "-c", f'yes "{LINE}" | head -n {lines}']
        b.dy("run", "--name", name, *cmd)
        ours_size = _log_size(b, name)
        theirs_size = 0
        if docker:
            run("docker", "rm", "-f", name, check=False)
            run("docker", "run", "--name", name, *cmd)
            path = run("docker", "inspect", "-f", "{{.LogPath}}", name).stdout.decode().strip()
            theirs_size = os.path.getsize(path)
        ours, theirs = interleaved(
            lambda name=name: b.dy("logs", "--tail", "10", name),
            (lambda name=name: run("docker", "logs", "--tail", "10", name)) if docker else None,
            b.repeat * 4,
        )
        sizes = f"{ours_size / 1e6:.0f} MB" + (f" / {theirs_size / 1e6:.0f} MB" if docker else "")
        b.report(f"logs --tail 10, log of {sizes}", ours, theirs)
        b.dy("rm", "-f", name)
        if docker:
            run("docker", "rm", "-f", name, check=False)


def _log_size(b: Bench, name: str) -> int:
    cid = b.dy("inspect", "-f", "{{.Id}}", name).stdout.decode().strip()
    return os.path.getsize(Path(b.root, "containers", cid, f"{cid}-json.log"))
