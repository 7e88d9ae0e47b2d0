"""``system check`` sees what the engine can leave on the host, ``--repair`` removes it, and the
next check is clean. Each leftover is made for real: a monitor killed with SIGKILL, a build
killed at a RUN step, a runtime container the store does not know, a cgroup left by a failed
release, a root left mounted by a killed ``cp``, a network helper killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dockyard.runtime.cgroups import container_path, host_dirs
from tests.conftest import BIN, CLI
from tests.runtime import test_oci
from tests.runtime.leftovers import (
    cgroup_dirs,
    cgroup_hierarchies,
    cgroup_parent,
    mounts_under,
    own_lines,
    processes_of,
    settle,
)

busybox_rootfs = test_oci.busybox_rootfs
__all__ = ["busybox_rootfs", "cgroup_parent"]  # fixtures of this module's tests


def check(cli: CLI, *args: str) -> list[str]:
    """The check's lines about this store (see ``own_lines``), then its verdict; a store
    with nothing to say gives ``["store consistent"]``."""
    r = cli("system", "check", *args)
    lines = own_lines(cli, r.stdout)
    return [*lines, "store consistent" if not lines else r.stdout.splitlines()[-1]]


def assert_found_and_repaired(cli: CLI, *expected: str) -> list[str]:
    """``check`` lists each expected leftover (a substring), ``--repair`` removes it, and the
    next check has nothing to say. Returns the leftover lines."""
    lines = check(cli)
    leftovers = [ln for ln in lines if ln.startswith("leftover: ")]
    for text in expected:
        assert any(text in ln for ln in leftovers), (text, lines)
    assert "leftovers (run with --repair" in lines[-1]
    repaired = check(cli, "--repair")
    removed = [ln.removeprefix("removed: ") for ln in repaired if ln.startswith("removed: ")]
    for text in expected:
        assert any(text in ln for ln in removed), (text, repaired)
    # Repair goes in order, so what goes with an earlier item (a build container's veth
    # dies with its network namespace) is not listed again.
    assert set(removed) <= {ln.removeprefix("leftover: ") for ln in leftovers}, repaired
    assert repaired[-1] == "store consistent"
    assert check(cli) == ["store consistent"]
    return leftovers


def wait_for(cond: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def start(cli: CLI, *args: str, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN), "--root", str(cli.root), "--run-root", str(cli.run_root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=cwd,
    )


def test_a_busy_store_has_no_leftovers(ctr: CLI, cgroup_parent: str) -> None:
    """Running containers, a created one and a stopped one are not leftovers."""
    ctr("run", "-d", "--name", "up", "-p", "127.0.0.1::80", "busybox", "sleep", "100")
    ctr("create", "--name", "created", "busybox", "true")
    ctr("run", "--name", "stopped", "busybox", "true")
    assert check(ctr) == ["store consistent"]
    assert check(ctr, "--repair") == ["store consistent"]
    assert ctr("inspect", "--format", "{{.State.Running}}", "up").stdout.strip() == "true"


def test_killed_monitor(ctr: CLI, cgroup_parent: str) -> None:
    cid = ctr("run", "-d", "busybox", "sleep", "100").stdout.strip()
    monitor = int((ctr.run_root / "containers" / cid / "monitor.pid").read_text())
    os.kill(monitor, signal.SIGKILL)
    assert_found_and_repaired(ctr, f"container {cid[:12]} is recorded as running")
    assert ctr("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip() == "255"
    assert not (ctr.run_root / "runc" / cid).exists()
    assert [d for d in cgroup_dirs(cgroup_parent) if cid in str(d)] == []
    assert mounts_under(ctr.root / "containers" / cid) == []


def test_build_killed_at_a_run_step(ctr: CLI, cgroup_parent: str, tmp_path: Path) -> None:
    """The issue: "removed: unfinished snapshot" was printed, but the step's overlay stayed
    mounted (and its container ran on), so the next check listed it again."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM busybox\nRUN touch /started && sleep 300\n")
    build = start(ctr, "build", "-t", "killed", str(context))
    tmp = ctr.root / "snapshots" / "tmp"
    try:
        wait_for(
            lambda: any(
                Path(m, "started").exists() for m in mounts_under(tmp) if m.endswith("/merged")
            ),
            "the RUN step to run",
        )
    finally:
        build.kill()
        build.wait()
    leftovers = assert_found_and_repaired(
        ctr,
        "of a build step whose build is gone",
        "mount in unfinished snapshot",
        "unfinished snapshot",
        "IP lease",
    )
    assert len(leftovers) >= 4
    assert mounts_under(ctr.root) == []
    assert os.listdir(tmp) == []
    assert os.listdir(ctr.run_root / "runc") == []
    assert cgroup_dirs(cgroup_parent) == []
    settle(ctr)
    # The next build of the same Dockerfile works.
    (context / "Dockerfile").write_text("FROM busybox\nRUN touch /done\n")
    ctr("build", "-t", "after", str(context))


def test_runtime_container_the_store_does_not_know(
    ctr: CLI, cgroup_parent: str, busybox_rootfs: Path, tmp_path: Path
) -> None:
    """A runtime container in the store's state dir with no container behind it (what a
    monitor killed after an attached ``run --rm`` recorded the exit used to leave)."""
    cid = "f" * 64
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = test_oci.oci_config(busybox_rootfs, ["sleep", "300"], cid)
    config["linux"]["cgroupsPath"] = container_path(cid)
    (bundle / "config.json").write_text(json.dumps(config))
    subprocess.run(
        ["runc", "--root", str(ctr.run_root / "runc"), "run", "-d", "--bundle", str(bundle), cid],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    assert len(host_dirs(container_path(cid))) == len(cgroup_hierarchies())
    assert_found_and_repaired(ctr, f"runtime state of container {cid[:12]}, which no longer exists")
    assert os.listdir(ctr.run_root / "runc") == []
    assert cgroup_dirs(cgroup_parent) == []


def test_cgroups_left_by_a_failed_release(ctr: CLI, cgroup_parent: str) -> None:
    """A stopped container's cgroups that runc could not remove (a task was still there):
    what was left in them is killed and the dirs go."""
    cid = ctr("run", "-d", "busybox", "true").stdout.strip()
    ctr("wait", cid)
    settle(ctr)
    dirs = host_dirs(container_path(cid), existing=False)
    for d in dirs:
        os.makedirs(d)
    straggler = subprocess.Popen(["sleep", "300"])
    try:
        with open(Path(dirs[0]) / "cgroup.procs", "w") as f:
            f.write(str(straggler.pid))
        assert_found_and_repaired(ctr, f"cgroups of a container that is not running: {cid[:32]}")
        assert straggler.wait(10) == -signal.SIGKILL
    finally:
        straggler.kill()
        straggler.wait()
    assert cgroup_dirs(cgroup_parent) == []


def test_root_left_mounted_by_a_killed_cp(ctr: CLI, cgroup_parent: str, tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(0)
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    cid = ctr("create", "--name", "target", "busybox", "true").stdout.strip()
    rootfs = ctr.root / "containers" / cid / "rootfs"
    cp = start(ctr, "cp", str(big), "target:/big")
    try:
        wait_for(lambda: str(rootfs) in mounts_under(rootfs), "cp to mount the root")
    finally:
        cp.kill()
        cp.wait()
    assert_found_and_repaired(ctr, f"mounted root of container {cid[:12]}, which is not running")
    assert mounts_under(ctr.root) == []
    ctr("start", "-a", "target")  # starts on a clean mount point, and rm leaves none
    ctr("rm", "target")
    assert mounts_under(ctr.root) == []


def test_a_copy_in_progress_is_not_a_leftover(ctr: CLI, cgroup_parent: str) -> None:
    cid = ctr("create", "--name", "target", "busybox", "true").stdout.strip()
    reader = subprocess.Popen(
        [str(BIN), "--root", str(ctr.root), "--run-root", str(ctr.run_root)]
        + ["cp", "-", "target:/tmp"],
        stdin=subprocess.PIPE,
    )
    assert reader.stdin is not None
    rootfs = ctr.root / "containers" / cid / "rootfs"
    try:
        wait_for(lambda: str(rootfs) in mounts_under(rootfs), "cp to mount the root")
        assert check(ctr, "--repair") == ["store consistent"]
        assert str(rootfs) in mounts_under(rootfs)
    finally:
        reader.stdin.close()  # an empty tar stream: cp reports it, unmounts and exits
        reader.wait(30)
    assert mounts_under(ctr.root) == []


def test_killed_network_helper(ctr: CLI, cgroup_parent: str) -> None:
    ctr("run", "--rm", "busybox", "true")
    pid_file = ctr.run_root / "netd.pid"
    wait_for(pid_file.exists, "the network helper")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    wait_for(lambda: not [p for p in processes_of(ctr) if _netd(p)], "netd to die")
    assert_found_and_repaired(ctr, "files of a network helper that is gone")
    assert ctr("run", "--rm", "busybox", "true").returncode == 0


def _netd(pid: int) -> bool:
    try:
        return b"dockyard.network.netd" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.slow
def test_monitor_without_a_container(ctr: CLI, cgroup_parent: str) -> None:
    """A monitor that outlived its container's record: stopped (SIGSTOP) while ``rm -f``
    removed the container, it would wait forever. Monitors are judged only once older than
    the grace period (30 s), so this test waits that long."""
    cid = ctr("run", "-d", "busybox", "sleep", "300").stdout.strip()
    monitor = int((ctr.run_root / "containers" / cid / "monitor.pid").read_text())
    os.kill(monitor, signal.SIGSTOP)
    try:
        ctr("rm", "-f", cid)  # waits for the (stopped) monitor for 30 s, then removes
        assert check(ctr) != ["store consistent"]
        assert_found_and_repaired(ctr, f"monitor process {monitor} of container {cid[:12]}")
        wait_for(lambda: not Path(f"/proc/{monitor}").exists(), "the monitor to go")
    finally:
        try:
            os.kill(monitor, signal.SIGKILL)
        except ProcessLookupError:
            pass
