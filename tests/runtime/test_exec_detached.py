"""``docker exec -d``: the CLI returns as soon as the process has started, with the runtime's
error when it could not start."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import CLI
from tests.helpers import needs_docker


def _processes(top_output: str) -> list[str]:
    return [line.split(None, 7)[-1] for line in top_output.splitlines()[1:]]


def test_exec_d_returns_while_the_process_runs(ctr: CLI) -> None:
    """The CLI's output is read to its end (pipes, as in a script's ``$(...)``): with the
    process holding the CLI's stderr, this waited for ``sleep`` to finish."""
    ctr("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    r = ctr("exec", "-d", "box", "sleep", "300")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    # Returned while the process runs: it is there, started by the exec.
    assert "sleep 300" in _processes(ctr("top", "box").stdout)
    # Its output goes nowhere (as in Docker), and nothing of ours is held open by it.
    ctr("exec", "-d", "box", "sh", "-c", "echo lost; echo lost >&2; sleep 300")
    assert "lost" not in ctr("logs", "box").stdout


@pytest.mark.parametrize(
    ("command", "code", "reason"),
    [
        ("nonexistent", 127, 'exec: "nonexistent": executable file not found in $PATH'),
        ("/etc/passwd", 126, 'exec: "/etc/passwd": permission denied'),
    ],
)
def test_exec_d_of_a_bad_command(ctr: CLI, command: str, code: int, reason: str) -> None:
    """Docker's 127/126 and runc's reason, as for an exec in the foreground (Docker 20.10's
    CLI exits 1 for a detached exec that failed; the reason is the same)."""
    ctr("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    r = ctr("exec", "-d", "box", command, check=False)
    assert r.returncode == code
    assert r.stderr == f"Error: {reason}\n"
    assert _processes(ctr("top", "box").stdout) == ["sleep 1000"]


@needs_docker
def test_docker_exec_d_behaves_the_same() -> None:
    """The reference: Docker's ``exec -d`` returns while its process runs, and a bad command
    fails with runc's reason."""
    name = "dockyard-test-exec-d"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["docker", "run", "-d", "--name", name, "busybox", "sleep", "1000"], check=True)
    try:
        r = subprocess.run(
            ["docker", "exec", "-d", name, "sleep", "300"], capture_output=True, text=True
        )
        assert (r.returncode, r.stdout) == (0, "")
        top = subprocess.run(["docker", "top", name], capture_output=True, text=True).stdout
        assert "sleep 300" in _processes(top)
        r = subprocess.run(
            ["docker", "exec", "-d", name, "nonexistent"], capture_output=True, text=True
        )
        assert r.returncode != 0
        assert 'exec: "nonexistent": executable file not found in $PATH' in r.stderr
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
