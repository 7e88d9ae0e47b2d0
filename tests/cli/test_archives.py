"""save, load and import through the CLI, and skopeo reading what we write."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import CLI, add_child_image, db_snapshot, tree_snapshot

needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")


def inspect(cli: CLI, ref: str) -> dict:
    return json.loads(cli("inspect", ref).stdout)[0]


def test_save_load_round_trip_into_a_fresh_store(bb: CLI, dy: CLI, tmp_path: Path) -> None:
    add_child_image(bb.root, "busybox", {"app/x": b"x" * 100}, "app:1")
    archive = tmp_path / "app.tar"
    bb("save", "-o", str(archive), "app:1", "busybox")
    names = tarfile.open(archive).getnames()
    assert "manifest.json" in names and "repositories" in names
    out = dy("load", "-i", str(archive)).stdout.splitlines()
    assert sorted(out) == ["Loaded image: app:1", "Loaded image: busybox:latest"]
    for ref in ("app:1", "busybox"):
        a, b = inspect(bb, ref), inspect(dy, ref)
        assert a["Id"] == b["Id"] and a["RootFS"] == b["RootFS"] and a["Size"] == b["Size"]
    # Loading again changes nothing and stores nothing twice (but for the journal's
    # second "load" event: Docker reports every load).
    before = tree_snapshot(dy.root)
    dy("load", "-i", str(archive))
    after = tree_snapshot(dy.root)
    assert _without_events(after) == _without_events(before)
    assert after != before  # the journal did grow


def _without_events(snapshot: dict[str, tuple[int, int, str]]) -> dict[str, tuple[int, int, str]]:
    return {k: v for k, v in snapshot.items() if not k.startswith("events/")}


def test_save_oci_and_load_it_back(bb: CLI, dy: CLI, tmp_path: Path) -> None:
    archive = tmp_path / "bb-oci.tar"
    bb("save", "--format", "oci", "-o", str(archive), "busybox")
    names = tarfile.open(archive).getnames()
    assert "index.json" in names and "oci-layout" in names
    assert dy("load", "-i", str(archive)).stdout.strip() == "Loaded image: busybox:latest"
    assert inspect(dy, "busybox")["Id"] == inspect(bb, "busybox")["Id"]


def test_load_from_stdin(bb: CLI, dy: CLI) -> None:
    data = bb.raw("save", "busybox").stdout
    r = dy.raw("load", stdin=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == "Loaded image: busybox:latest"


def test_save_refuses_a_terminal_only(bb: CLI) -> None:
    r = bb.raw("save", "busybox")
    assert r.returncode == 0 and r.stdout[:512]  # stdout is a pipe here: allowed


@needs_skopeo
def test_skopeo_reads_our_archives(bb: CLI, tmp_path: Path) -> None:
    layers = inspect(bb, "busybox")["RootFS"]["Layers"]
    d = tmp_path / "bb.tar"
    o = tmp_path / "bb-oci.tar"
    bb("save", "-o", str(d), "busybox")
    bb("save", "--format", "oci", "-o", str(o), "busybox")
    for src in (f"docker-archive:{d}", f"oci-archive:{o}"):
        info = json.loads(
            subprocess.run(
                ["skopeo", "inspect", src], check=True, capture_output=True, text=True
            ).stdout
        )
        assert info["Os"] == "linux" and len(info["Layers"]) == 1
        cfg = json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--config", src], check=True, capture_output=True, text=True
            ).stdout
        )
        assert cfg["rootfs"]["diff_ids"] == layers


@needs_skopeo
@pytest.mark.parametrize("dest", ["docker-archive", "oci-archive"])
def test_we_load_what_skopeo_copy_wrote(bb: CLI, dy: CLI, tmp_path: Path, dest: str) -> None:
    ours = tmp_path / "ours.tar"
    bb("save", "-o", str(ours), "busybox")
    theirs = tmp_path / "theirs.tar"
    target = f"{dest}:{theirs}:" + ("busybox:latest" if dest == "docker-archive" else "latest")
    subprocess.run(["skopeo", "copy", "-q", f"docker-archive:{ours}", target], check=True)
    dy("load", "-i", str(theirs))
    # skopeo may re-serialise the config (a new image ID); the layers must be the same.
    [iid] = dy("images", "-q", "--no-trunc").stdout.split()
    assert inspect(dy, iid)["RootFS"] == inspect(bb, "busybox")["RootFS"]


def test_import_with_changes(dy: CLI, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "hello").write_text("#!/bin/sh\necho hi\n")
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-czf", str(tar), "."], check=True)
    iid = dy(
        "import",
        str(tar),
        "myimg:1",
        "--change",
        'CMD ["sh"]',
        "-c",
        "ENV A=1 B=2",
        "-c",
        "EXPOSE 8080",
        "-c",
        "WORKDIR /app",
        "-m",
        "first",
    ).stdout.strip()
    obj = inspect(dy, "myimg:1")
    assert obj["Id"] == iid
    assert obj["Config"]["Cmd"] == ["sh"]
    assert obj["Config"]["Env"] == ["A=1", "B=2"]
    assert obj["Config"]["ExposedPorts"] == {"8080/tcp": {}}
    assert obj["Config"]["WorkingDir"] == "/app"
    assert obj["Comment"] == "first"
    r = dy("import", str(tar), "bad:1", "-c", "RUN echo no", check=False)
    assert r.returncode == 125 and "run is not a valid change command" in r.stderr


def _store_state(cli: CLI) -> tuple[object, object]:
    return tree_snapshot(cli.root), db_snapshot(cli.root)


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _not_tar(data: bytes) -> bytes:
    return b"this is not a tar archive at all\n" * 100


def _bad_config_digest(data: bytes) -> bytes:
    """Rewrite the config member so its bytes no longer match its name."""
    src = tarfile.open(fileobj=io.BytesIO(data))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as dst:
        for m in src.getmembers():
            f = src.extractfile(m)
            body = f.read() if f else None
            if m.name.endswith(".json") and m.name != "manifest.json" and "/" not in m.name:
                body = body.replace(b'"sh"', b'"xx"') if body else body
                m.size = len(body or b"")
            dst.addfile(m, io.BytesIO(body) if body is not None else None)
    return out.getvalue()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (_truncated, "truncated"),
        (_not_tar, "not a tar"),
        (_bad_config_digest, "digest mismatch"),
    ],
)
def test_bad_archives_change_nothing(bb: CLI, tmp_path: Path, mangle, message: str) -> None:
    good = bb.raw("save", "busybox").stdout
    add_child_image(bb.root, "busybox", {"keep": b"k"}, "keep:1")
    bad = tmp_path / "bad.tar"
    bad.write_bytes(mangle(good))
    bb("rmi", "busybox")  # so a load would have to add it back
    before = _store_state(bb)
    r = bb("load", "-i", str(bad), check=False)
    assert r.returncode == 125
    assert r.stderr.startswith("Error: ") and message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _store_state(bb) == before
