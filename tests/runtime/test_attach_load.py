"""Attached output under load: every byte and the container's exit code reach the client.

The issue: an attached ``run`` whose container wrote 100 MB failed twice with "lost the
connection to the container monitor" on a loaded machine, although the container exited 0.
The monitor dropped a client that fell 4 MiB behind. It now stops reading the container's
output until the client catches up (Docker's behaviour: the container's writes wait for its
attached readers), so a reader that stalls for a while loses nothing.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time

import pytest

from tests.conftest import BIN, CLI

LINE = "".join(f"{i:04d}" for i in range(25))  # 100 characters, then "\n"
TOTAL = int(os.environ.get("DOCKYARD_TEST_ATTACH_BYTES", str(1 << 30)))
STALL_EVERY = 48 << 20  # the reader stops for a moment after this many bytes
STALL_SECONDS = 1.0


def expected_digest(size: int) -> str:
    unit = (LINE + "\n").encode()
    block = unit * (1 << 20 // len(unit) + 1)
    h = hashlib.sha256()
    left = size
    while left:
        piece = block[: min(left, len(block))]
        h.update(piece)
        left -= len(piece)
    return h.hexdigest()


def start_heavy_jobs(cli: CLI) -> list[str]:
    """Two other containers keeping the machine busy: one floods its log through its
    monitor, one burns CPU compressing random data."""
    flood = cli("run", "-d", "busybox", "sh", "-c", f"yes {LINE} | head -c 400000000").stdout
    burn = cli(
        "run", "-d", "busybox", "sh", "-c", "head -c 300000000 /dev/urandom | gzip -1 >/dev/null"
    )
    return [flood.strip(), burn.stdout.strip()]


@pytest.mark.slow
def test_attached_output_survives_load_and_a_stalling_reader(ctr: CLI) -> None:
    jobs = start_heavy_jobs(ctr)
    script = f"yes {LINE} | head -c {TOTAL}; exit 3"
    proc = subprocess.Popen(
        [str(BIN), "--root", str(ctr.root), "--run-root", str(ctr.run_root)]
        + ["run", "--rm", "busybox", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    h = hashlib.sha256()
    received = 0
    next_stall = STALL_EVERY
    fd = proc.stdout.fileno()
    while chunk := os.read(fd, 65536):
        h.update(chunk)
        received += len(chunk)
        if received >= next_stall:  # a reader that falls behind now and then
            time.sleep(STALL_SECONDS)
            next_stall += STALL_EVERY
    err = proc.stderr.read().decode(errors="replace")
    code = proc.wait()
    assert (code, err) == (3, "")
    assert received == TOTAL
    assert h.hexdigest() == expected_digest(TOTAL)
    for cid in jobs:
        assert ctr("wait", cid).stdout.strip() == "0"
