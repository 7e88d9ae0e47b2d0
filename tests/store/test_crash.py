"""A process killed with SIGKILL mid-ingest, mid-load or mid-rmi leaves a consistent store."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BIN, CLI


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
