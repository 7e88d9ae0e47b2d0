"""Stats benchmark, side by side with Docker (``./dev.sh bench stats``).

``stats --no-stream`` of 20 running containers (``sleep``), the same on both engines, runs
interleaved. Both engines take two readings of each container a collection interval (1 s)
apart, so the figure is that interval plus the cost of reading 20 containers: the issue asks
for at most Docker's time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from run import Bench  # bench/run.py (sys.path[0])

COUNT = 20


def bench_stats(b: Bench, docker: bool) -> None:
    from run import interleaved, run

    b.dy("image", "bootstrap", "busybox")
    names = [f"bench-stats{i}" for i in range(COUNT)]
    try:
        for name in names:
            b.dy("run", "-d", "--name", name, "busybox", "sleep", "3600")
            if docker:
                run("docker", "rm", "-f", name, check=False)
                run("docker", "run", "-d", "--name", name, "busybox", "sleep", "3600")
        # Only these 20: the reference Docker may run other engineers' containers.
        ours, theirs = interleaved(
            lambda: b.dy("stats", "--no-stream", *names),
            (lambda: run("docker", "stats", "--no-stream", *names)) if docker else None,
            b.repeat * 2,
        )
        b.report(f"stats --no-stream, {COUNT} running", ours, theirs)
    finally:
        b.dy("rm", "-f", *names)
        if docker:
            run("docker", "rm", "-f", *names, check=False)
