"""Nothing left behind: ``run --rm``, ``rm``, a failed start and a killed monitor release the
runtime's state, the cgroups, the mounts and the processes of a container."""

from __future__ import annotations

import os
import pty
import subprocess
import threading

import pytest

from tests.conftest import BIN, CLI
from tests.runtime.leftovers import census, cgroup_dirs, cgroup_parent, mounts_under, settle

__all__ = ["cgroup_parent"]  # a fixture of this module's tests

RUNS_PER_MODE = 8


def run_with_output(cli: CLI, mode: str, *args: str) -> int:
    """``dockyard run ...`` with its stdout and stderr on a terminal, a pipe or /dev/null."""
    argv = [str(BIN), "--root", str(cli.root), "--run-root", str(cli.run_root), "run", *args]
    if mode == "null":
        return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    if mode == "pipe":
        return subprocess.run(argv, capture_output=True).returncode
    master, slave = pty.openpty()
    out = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: no slave left
                return
            if not data:
                return
            out.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.run(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    return proc.returncode


@pytest.mark.parametrize("mode", ["tty", "pipe", "null"])
def test_run_rm_leaves_nothing(ctr: CLI, cgroup_parent: str, mode: str) -> None:
    """The issue's loop: ``run --rm busybox true`` with output to a terminal, a pipe and
    /dev/null left a runc state dir and ten cgroup dirs behind in about a third of the runs
    (the monitor's ``runc delete`` logged into the run dir the CLI was removing)."""
    for _ in range(RUNS_PER_MODE):
        assert run_with_output(ctr, mode, "--rm", "busybox", "true") == 0
    settle(ctr)
    assert os.listdir(ctr.run_root / "runc") == []
    assert cgroup_dirs(cgroup_parent) == []
    assert mounts_under(ctr.root, ctr.run_root) == []
    assert [n for n in os.listdir(ctr.root / "containers")] == []
    assert [n for n in os.listdir(ctr.run_root / "containers")] == []


def test_detached_rm_f_leaves_nothing(ctr: CLI, cgroup_parent: str) -> None:
    """``run -d`` then ``rm -f`` while it runs, and ``rm`` after it exited."""
    ctr("run", "--rm", "busybox", "true")  # the bridge network and netd exist from here on
    settle(ctr)
    before = census(ctr, cgroup_parent)
    for _ in range(4):
        cid = ctr("run", "-d", "busybox", "sleep", "100").stdout.strip()
        ctr("rm", "-f", cid)
        cid = ctr("run", "-d", "busybox", "true").stdout.strip()
        ctr("wait", cid)
        ctr("rm", cid)
    settle(ctr)
    assert census(ctr, cgroup_parent) == before


def test_failed_start_leaves_nothing(ctr: CLI, cgroup_parent: str) -> None:
    """A command that does not exist fails ``runc create``/``start``: with ``--rm`` nothing of
    the container stays; without, only the created container (as Docker keeps it)."""
    ctr("run", "--rm", "busybox", "true")
    settle(ctr)
    before = census(ctr, cgroup_parent)
    r = ctr("run", "--rm", "busybox", "nonexistent-command", check=False)
    assert r.returncode == 127, r.stderr
    r = ctr("run", "--name", "kept", "busybox", "nonexistent-command", check=False)
    assert r.returncode == 127, r.stderr
    ctr("rm", "kept")
    settle(ctr)
    assert census(ctr, cgroup_parent) == before


def test_killed_monitor_is_released_by_the_next_command(ctr: CLI, cgroup_parent: str) -> None:
    """SIGKILL of a running container's monitor: the next command that looks at the container
    records its end (255) and releases its processes, runc state, cgroups and mount."""
    import signal

    ctr("run", "--rm", "busybox", "true")
    settle(ctr)
    before = census(ctr, cgroup_parent)
    cid = ctr("run", "-d", "busybox", "sleep", "100").stdout.strip()
    monitor = int((ctr.run_root / "containers" / cid / "monitor.pid").read_text())
    os.kill(monitor, signal.SIGKILL)
    status = ctr("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cid).stdout
    assert status.split() == ["exited", "255"]
    assert not (ctr.run_root / "runc" / cid).exists()
    assert [p for p in cgroup_dirs(cgroup_parent) if cid in str(p)] == []
    assert mounts_under(ctr.root / "containers" / cid) == []
    ctr("rm", cid)
    settle(ctr)
    assert census(ctr, cgroup_parent) == before


CHURN_RUNS = int(os.environ.get("DOCKYARD_CHURN_RUNS", "300"))  # the issue: 500
CHURN_PUBLISHED = int(os.environ.get("DOCKYARD_CHURN_PUBLISHED", "100"))  # the issue: 200


@pytest.mark.slow
def test_churn_leaves_the_host_as_it_was(ctr: CLI, cgroup_parent: str) -> None:
    """The issue's churn test: ``run --rm`` with output to a terminal, a pipe and /dev/null in
    turn, then ``run -d -p`` + ``rm -f``; mounts, cgroup dirs, runtime state dirs, bridge
    ports, iptables rules, fds, processes and store files are counted before and after and
    must be equal. The table is printed (``pytest -s``)."""
    modes = ["tty", "pipe", "null"]
    # Warm up: the bridge network, netd and the seccomp cache exist from here on.
    assert run_with_output(ctr, "null", "--rm", "busybox", "true") == 0
    ctr(
        "rm", "-f", ctr("run", "-d", "-p", "127.0.0.1::80", "busybox", "sleep", "60").stdout.strip()
    )
    settle(ctr)
    before = census(ctr, cgroup_parent)
    for i in range(CHURN_RUNS):
        assert run_with_output(ctr, modes[i % 3], "--rm", "busybox", "true") == 0
    for _ in range(CHURN_PUBLISHED):
        cid = ctr("run", "-d", "-p", "127.0.0.1::80", "busybox", "sleep", "60").stdout.strip()
        ctr("rm", "-f", cid)
    settle(ctr)
    after = census(ctr, cgroup_parent)
    print(f"\nchurn: {CHURN_RUNS} run --rm (tty/pipe/null), {CHURN_PUBLISHED} run -d -p + rm -f")
    print(f"{'':18}{'before':>8}{'after':>8}")
    for key in before:
        print(f"{key:18}{before[key]:>8}{after[key]:>8}")
    assert after == before
