"""Attached output under load: every byte and the container's exit code reach the client.

The issue: an attached ``run`` whose container wrote 100 MB failed twice with "lost the
connection to the container monitor" on a loaded machine, although the container exited 0;
the test runs the issue's load: two pulls from a local registry, over and over, plus two busy
containers.
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
from tests.registry_client.conftest import Distribution, registry  # noqa: F401 - a fixture

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


def start_pulls(cli: CLI, ref: str, n: int = 2) -> list[subprocess.Popen[bytes]]:
    """The issue's load: ``n`` pulls of ``ref`` into stores of their own, over and over."""
    script = (
        f"i=0; while [ ! -e {cli.root.parent}/stop-pulls ]; do i=$((i+1)); "
        f'r={cli.root.parent}/pull-$$-$i; "{BIN}" --root "$r" --run-root "$r.run" pull -q {ref} '
        '>/dev/null || exit 1; rm -rf "$r" "$r.run"; '
        f"echo pulled >> {cli.root.parent}/pulls.log; done"
    )
    return [subprocess.Popen(["sh", "-c", script]) for _ in range(n)]


@pytest.mark.slow
def test_attached_output_survives_load_and_a_stalling_reader(
    ctr: CLI,
    registry: Distribution,  # noqa: F811 - the fixture
) -> None:
    # A 64 MB image on a local registry, pulled twice over and over meanwhile.
    big = ctr.root.parent / "big"
    big.mkdir()
    (big / "blob").write_bytes(os.urandom(64 << 20))
    subprocess.run(["tar", "-C", str(big), "-cf", str(big) + ".tar", "."], check=True)
    ref = f"{registry.addr}/load/big:1"
    ctr("import", str(big) + ".tar", ref)
    ctr("push", ref)
    pulls = start_pulls(ctr, ref)
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
    (ctr.root.parent / "stop-pulls").touch()
    assert all(p.wait(timeout=300) == 0 for p in pulls)  # the pulls kept working too
    assert len((ctr.root.parent / "pulls.log").read_text().split()) >= 2
    assert (code, err) == (3, "")
    assert received == TOTAL
    assert h.hexdigest() == expected_digest(TOTAL)
    for cid in jobs:
        assert ctr("wait", cid).stdout.strip() == "0"
