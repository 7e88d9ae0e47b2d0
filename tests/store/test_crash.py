"""A process killed with SIGKILL mid-ingest, mid-load or mid-rmi leaves a consistent store;
one killed mid-build, mid-run, mid-rm, mid-exec or mid-commit, or a killed daemon, leaves
nothing on the host that the next command or ``system check --repair`` does not clean."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, CLI, terminate
from tests.runtime.leftovers import (
    cgroup_ids,
    cgroup_parent,
    mounts_under,
    own_lines,
    processes_of,
    settle,
)


def start(cli: CLI, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN), "--root", str(cli.root), "--run-root", str(cli.run_root), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_when(proc: subprocess.Popen[bytes], ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if ready():
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return
            if proc.poll() is not None:
                pytest.fail("the process finished before it could be killed mid-way")
            time.sleep(0.002)
        pytest.fail("the process never reached the point to kill it at")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def check(cli: CLI, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("system", "check", *extra)


def big_rootfs_tar(tmp_path: Path, *, big_mb: int = 0, small_files: int = 0) -> Path:
    root = tmp_path / "rootfs"
    root.mkdir()
    if big_mb:
        with open(root / "big.bin", "wb") as f:
            f.write(os.urandom(1 << 20) * big_mb)
    if small_files:
        for i in range(small_files):
            d = root / f"d{i // 1000}"
            d.mkdir(exist_ok=True)
            (d / f"f{i}").write_bytes(b"x")
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
    return tar


def assert_recovers(cli: CLI, expect_leftover: bool = True) -> None:
    r = check(cli)
    assert "store consistent" in r.stdout, r.stdout
    if expect_leftover:
        assert "leftover" in r.stdout
    r = check(cli, "--repair")
    assert "store consistent" in r.stdout
    r = check(cli)
    assert r.stdout.strip().splitlines()[-1] == "store consistent"
    assert os.listdir(cli.root / "content" / "ingest") == []
    assert os.listdir(cli.root / "snapshots" / "tmp") == []


def test_kill_during_ingest(bb: CLI, tmp_path: Path) -> None:
    tar = big_rootfs_tar(tmp_path, big_mb=400)
    ingest = bb.root / "content" / "ingest"
    proc = start(bb, "import", str(tar), "big:1")
    kill_when(proc, lambda: any(os.path.getsize(ingest / n) > 0 for n in os.listdir(ingest)))
    assert_recovers(bb)
    assert "big" not in bb("images").stdout
    bb("inspect", "busybox")  # what was there is intact


def test_kill_during_load_while_unpacking(bb: CLI, dy: CLI, tmp_path: Path) -> None:
    tar = big_rootfs_tar(tmp_path, small_files=30000)
    bb("import", str(tar), "many:1")
    archive = tmp_path / "many.tar"
    bb("save", "-o", str(archive), "many:1")
    dy("image", "bootstrap", "busybox")
    snap_tmp = dy.root / "snapshots" / "tmp"
    proc = start(dy, "load", "-i", str(archive))
    kill_when(proc, lambda: any(True for _ in os.scandir(snap_tmp)))
    assert_recovers(dy)
    assert "many" not in dy("images").stdout
    # And the load works afterwards.
    dy("load", "-i", str(archive))
    assert "many" in dy("images").stdout


def test_kill_during_rmi(bb: CLI, tmp_path: Path) -> None:
    tar = big_rootfs_tar(tmp_path, small_files=30000)
    bb("import", str(tar), "many:1")
    snap_tmp = bb.root / "snapshots" / "tmp"
    proc = start(bb, "rmi", "many:1")
    kill_when(proc, lambda: any(n.startswith("rm-") for n in os.listdir(snap_tmp)))
    # The rows went in one transaction before any file: the image is gone, files are leftovers.
    assert "many" not in bb("images", "-a").stdout
    assert_recovers(bb)
    bb("inspect", "busybox")


def test_check_reports_a_missing_blob_as_a_problem(bb: CLI) -> None:
    layer_blob = bb("inspect", "--format", "{{json .RootFS.Layers}}", "busybox").stdout
    blob = layer_blob.strip().strip('[]"').split(":")[1]
    os.unlink(bb.root / "content" / "blobs" / "sha256" / blob)
    r = bb("system", "check", check=False)
    assert r.returncode == 1
    assert f"blob sha256:{blob} is recorded but missing" in r.stdout


# ------------------------------------------------------------------ containers, builds, daemon
#
# A command killed with SIGKILL at a random point (the seed picks it) must leave nothing on the
# host that the next command or `system check --repair` does not clean: afterwards only running
# containers hold mounts, runtime state, cgroups and processes, and the next check is clean.

__all__ = ["cgroup_parent"]  # a fixture of the tests below
SEEDS = [1, 2, 3, 4, 5]


def kill_after(proc: subprocess.Popen[bytes], seconds: float) -> None:
    """SIGKILL ``proc`` once ``seconds`` have passed (if it is still running)."""
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def running_ids(cli: CLI) -> set[str]:
    return set(cli("ps", "-q", "--no-trunc").stdout.split())


def assert_nothing_left(cli: CLI, parent: str) -> None:
    """After ``check --repair`` the next check is clean, and only running containers hold
    mounts, runtime state, cgroups and processes."""
    settle(cli)
    repaired = check(cli, "--repair").stdout
    after = check(cli).stdout
    assert own_lines(cli, after) == [], (repaired, after)
    running = running_ids(cli)
    for m in mounts_under(cli.root, cli.run_root):
        rel = Path(m).relative_to(cli.root).parts
        assert rel[:1] == ("containers",) and rel[1] in running, m
    runc = cli.run_root / "runc"
    assert set(os.listdir(runc) if runc.is_dir() else []) <= running
    assert cgroup_ids(parent) <= running
    assert os.listdir(cli.root / "snapshots" / "tmp") == []
    assert os.listdir(cli.root / "content" / "ingest") == []
    monitors = [p for p in processes_of(cli) if b"monitor.py" in _cmdline(p)]
    assert len(monitors) == len(running)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


BUILD = """FROM busybox
COPY data /data
RUN echo one > /one && sleep 0.3
RUN for i in $(seq 1 300); do echo line $i; done
RUN sleep 1 && touch /two
COPY data /data2
"""


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_kill_build_at_a_random_point(
    ctr: CLI, cgroup_parent: str, tmp_path: Path, seed: int
) -> None:
    context = tmp_path / "context"
    (context / "data").mkdir(parents=True)
    for i in range(50):
        (context / "data" / f"f{i}").write_bytes(os.urandom(2048))
    (context / "Dockerfile").write_text(BUILD)
    delay = random.Random(seed).uniform(0.05, 3.0)
    kill_after(start(ctr, "build", "-t", "crash", str(context)), delay)
    assert_nothing_left(ctr, cgroup_parent)
    ctr("build", "-t", "crash", str(context))  # the build works afterwards
    ctr("run", "--rm", "crash", "ls", "/one", "/two", "/data2/f49")


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_kill_run_at_a_random_point(ctr: CLI, cgroup_parent: str, seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(4):
        proc = start(ctr, "run", "--rm", "-p", "127.0.0.1::80", "busybox", "sh", "-c", "sleep 0.5")
        kill_after(proc, rnd.uniform(0.0, 0.6))
    # A container that got started runs on without its CLI, and its monitor removes it.
    settle(ctr)
    for cid in running_ids(ctr):
        ctr("wait", cid, check=False)
    assert_nothing_left(ctr, cgroup_parent)
    ctr("rm", "-f", *ctr("ps", "-aq").stdout.split(), check=False)
    assert_nothing_left(ctr, cgroup_parent)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_kill_rm_at_a_random_point(ctr: CLI, cgroup_parent: str, seed: int) -> None:
    rnd = random.Random(seed)
    ids = [ctr("run", "-d", "busybox", "sleep", "100").stdout.strip() for _ in range(3)]
    kill_after(start(ctr, "rm", "-f", *ids), rnd.uniform(0.0, 0.8))
    ctr("rm", "-f", *ids, check=False)  # the next command finishes the job
    assert ctr("ps", "-aq").stdout.split() == []
    assert_nothing_left(ctr, cgroup_parent)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_kill_exec_and_commit_at_a_random_point(ctr: CLI, cgroup_parent: str, seed: int) -> None:
    rnd = random.Random(seed)
    ctr(
        "run",
        "-d",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "head -c 20000000 /dev/urandom > /big; sleep 100",
    )
    kill_after(start(ctr, "exec", "box", "sh", "-c", "sleep 0.5"), rnd.uniform(0.0, 0.4))
    kill_after(start(ctr, "exec", "-d", "box", "sh", "-c", "sleep 0.5"), rnd.uniform(0.0, 0.2))
    kill_after(start(ctr, "commit", "box", "snap:1"), rnd.uniform(0.0, 1.0))
    assert_nothing_left(ctr, cgroup_parent)
    ctr("commit", "box", "snap:2")
    ctr("rm", "-f", "box")
    assert_nothing_left(ctr, cgroup_parent)


def _daemon_docker(cli: CLI, *args: str) -> subprocess.Popen[bytes]:
    docker_bin = shutil.which("docker")
    assert docker_bin is not None
    env = {**os.environ, "DOCKER_HOST": f"unix://{cli.run_root / 'dockyard.sock'}"}
    env["DOCKER_CONFIG"] = str(cli.root.parent)
    env.pop("DOCKER_CONTEXT", None)
    return subprocess.Popen(
        [docker_bin, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )


SCRIPT = "echo start; sleep 1.5; echo end; exit 7"


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_the_container_survives_the_daemon(ctr: CLI, cgroup_parent: str) -> None:
    """`docker run` through `dockyard daemon`, the daemon SIGKILLed once the container has
    written its first line: the container runs to its end, its exit is recorded, its log is
    complete and nothing is left behind."""
    from tests.api.conftest import start_daemon

    daemon = start_daemon(ctr)
    try:
        client = _daemon_docker(ctr, "run", "--name", "victim", "busybox", "sh", "-c", SCRIPT)
        assert client.stdout is not None
        assert client.stdout.readline() == b"start\n"
        daemon.kill()
        daemon.wait()
        client.wait(30)
    finally:
        terminate(daemon)
    assert ctr("wait", "victim").stdout.strip() == "7"
    assert ctr("logs", "victim").stdout == "start\nend\n"
    assert_nothing_left(ctr, cgroup_parent)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
@pytest.mark.parametrize("seed", SEEDS)
def test_kill_daemon_at_a_random_point(ctr: CLI, cgroup_parent: str, seed: int) -> None:
    """The daemon SIGKILLed anywhere in `docker run`: a container that was started runs to
    its end (exit 7 recorded), one that was not stays created, nothing is left behind."""
    from tests.api.conftest import start_daemon

    daemon = start_daemon(ctr)
    try:
        client = _daemon_docker(ctr, "run", "--name", "victim", "busybox", "sh", "-c", SCRIPT)
        kill_after(daemon, random.Random(seed).uniform(0.0, 1.0))
        client.wait(30)
    finally:
        terminate(daemon)
    settle(ctr)
    if "victim" in ctr("ps", "-a", "--format", "{{.Names}}").stdout.split():
        code = ctr("wait", "victim").stdout.strip()
        status = ctr("inspect", "--format", "{{.State.Status}}", "victim").stdout.strip()
        assert (status, code) in (("exited", "7"), ("created", "0"), ("exited", "137")), (
            status,
            code,
        )
    assert_nothing_left(ctr, cgroup_parent)
