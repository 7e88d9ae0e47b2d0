"""A failed ``start`` exits 1, as Docker's CLI ends every failed start (``Error: failed to start
containers: ...``): an unknown container, a command that does not exist, with ``-a`` or not.
``run`` keeps 125/126/127 (tests/runtime/test_containers.py)."""

from __future__ import annotations

import subprocess

from tests.conftest import CLI
from tests.helpers import needs_docker

CASES = (("start", "dy-nosuch"), ("start", "dy-badcmd"), ("start", "-a", "dy-badcmd"))


def test_a_failed_start_exits_1(ctr: CLI) -> None:
    ctr("create", "--name", "dy-badcmd", "busybox", "nosuchcmd")
    for args in CASES:
        r = ctr(*args, check=False)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.startswith("Error: ") and "Traceback" not in r.stderr, (args, r.stderr)
    status = ctr("inspect", "-f", "{{.State.Status}}", "dy-badcmd").stdout
    assert status == "created\n"  # nothing half-started is left


@needs_docker
def test_docker_exits_1_too() -> None:
    subprocess.run(["docker", "rm", "-f", "dy-badcmd"], capture_output=True)
    try:
        subprocess.run(
            ["docker", "create", "--name", "dy-badcmd", "busybox", "nosuchcmd"],
            check=True,
            capture_output=True,
        )
        for args in CASES:
            r = subprocess.run(["docker", *args], capture_output=True, text=True)
            assert r.returncode == 1, (args, r.stderr)
    finally:
        subprocess.run(["docker", "rm", "-f", "dy-badcmd"], capture_output=True)
