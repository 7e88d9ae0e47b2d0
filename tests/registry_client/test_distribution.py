"""Push and pull against Debian's CNCF distribution registry, and interop with skopeo."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI, _cleanup_containers
from tests.registry_client.conftest import Distribution


def _image_id(cli: CLI, ref: str) -> str:
    return cli("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


def _random_image(cli: CLI, tmp_path: Path, tag: str, mb: int = 3) -> str:
    src = tmp_path / "rootfs"
    src.mkdir()
    (src / "random.bin").write_bytes(os.urandom(mb << 20))
    (src / "text.txt").write_bytes(b"dockyard registry test\n" * 50000)
    tar = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(src), "-cf", str(tar), "."], check=True)
    cli("import", str(tar), tag)
    return _image_id(cli, tag)


def test_push_then_pull_into_an_empty_store(bb: CLI, dy: CLI, registry: Distribution) -> None:
    ref = f"{registry.addr}/t1/busybox:1"
    bb("tag", "busybox", ref)
    out = bb("push", ref).stdout
    assert f"The push refers to repository [{registry.addr}/t1/busybox]" in out
    assert ": Pushed" in out
    line = out.strip().splitlines()[-1]
    assert line.startswith("1: digest: sha256:") and " size: " in line
    digest = line.split()[2]

    pulled = dy("pull", ref).stdout
    assert "1: Pulling from t1/busybox" in pulled
    assert ": Pull complete" in pulled
    assert f"Digest: {digest}" in pulled
    assert f"Status: Downloaded newer image for {ref}" in pulled
    assert pulled.strip().splitlines()[-1] == ref
    assert _image_id(dy, ref) == _image_id(bb, "busybox")
    digests = dy("images", "--digests", "--format", "{{.Digest}}").stdout.split()
    assert digest in digests

    again = dy("pull", ref).stdout
    assert "Already exists" in again
    assert f"Status: Image is up to date for {ref}" in again

    # By digest, into a third store.
    third = CLI(dy.root.parent / "third", dy.run_root)
    by_digest = f"{registry.addr}/t1/busybox@{digest}"
    out = third("pull", by_digest).stdout
    assert out.strip().splitlines()[-1] == by_digest
    assert _image_id(third, by_digest) == _image_id(bb, "busybox")


def test_repeated_push_uploads_no_blob(bb: CLI, registry: Distribution, tmp_path: Path) -> None:
    ref = f"{registry.addr}/t2/big:1"
    _random_image(bb, tmp_path, ref)
    mark = registry.mark()
    first = bb("push", ref).stdout
    assert ": Pushed" in first
    assert any(m == "PATCH" for m, _, _ in registry.uploads(mark))
    mark = registry.mark()
    second = bb("push", ref).stdout
    assert ": Layer already exists" in second
    assert ": Pushed" not in second
    assert registry.uploads(mark) == []  # no POST, PATCH or PUT of any blob
    heads = [r for r in registry.requests(mark) if r[0] == "HEAD"]
    assert heads, "the second push asked the registry (HEAD) instead of assuming"
    assert first.splitlines()[-1] == second.splitlines()[-1]  # same manifest digest


def test_cross_repository_mount(bb: CLI, registry: Distribution) -> None:
    a, b = f"{registry.addr}/t3/src:1", f"{registry.addr}/t3/dst:1"
    bb("tag", "busybox", a)
    bb("tag", "busybox", b)
    bb("push", a)
    mark = registry.mark()
    out = bb("push", b).stdout
    assert ": Mounted from t3/src" in out
    uploads = registry.uploads(mark)
    # Layer and config mounted, nothing uploaded.
    assert [(m, "mount=" in u, c) for m, u, c in uploads] == [("POST", True, 201)] * 2


def test_chunked_upload_and_round_trip(
    bb: CLI, dy: CLI, registry: Distribution, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"{registry.addr}/t4/chunked:1"
    image_id = _random_image(bb, tmp_path, ref, mb=2)
    monkeypatch.setenv("DOCKYARD_UPLOAD_CHUNK_SIZE", str(256 << 10))
    mark = registry.mark()
    bb("push", ref)
    patches = [r for r in registry.uploads(mark) if r[0] == "PATCH"]
    assert len(patches) >= 8  # 2+ MB in 256 KiB chunks
    monkeypatch.delenv("DOCKYARD_UPLOAD_CHUNK_SIZE")
    dy("pull", "-q", ref)
    assert _image_id(dy, ref) == image_id
    # The pulled (gzip) blobs go up again as they are: same manifest digest.
    pushed = bb("push", ref).stdout.splitlines()[-1].split()[2]
    dy("tag", ref, f"{registry.addr}/t4/copy:1")
    copy = dy("push", f"{registry.addr}/t4/copy:1").stdout
    assert ": Mounted from t4/chunked" in copy
    assert copy.splitlines()[-1].split()[2] == pushed


def test_pull_all_tags(bb: CLI, dy: CLI, registry: Distribution) -> None:
    repo = f"{registry.addr}/t5/multi"
    for tag in ("a", "b", "c"):
        bb("tag", "busybox", f"{repo}:{tag}")
        bb("push", "-q", f"{repo}:{tag}")
    out = dy("pull", "--all-tags", repo).stdout
    for tag in ("a", "b", "c"):
        assert f"{tag}: Pulling from t5/multi" in out
    tags = dy("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(tags) == [f"{repo}:a", f"{repo}:b", f"{repo}:c"]
    bad = dy("pull", "--all-tags", f"{repo}:a", check=False)
    assert bad.returncode == 125 and "tag can't be used with --all-tags" in bad.stderr


def test_push_all_tags_and_missing_image(bb: CLI, registry: Distribution) -> None:
    repo = f"{registry.addr}/t6/app"
    bb("tag", "busybox", f"{repo}:x")
    bb("tag", "busybox", f"{repo}:y")
    out = bb("push", "--all-tags", repo).stdout
    assert "x: digest: sha256:" in out and "y: digest: sha256:" in out
    missing = bb("push", f"{registry.addr}/t6/none:1", check=False)
    assert missing.returncode == 125
    assert "An image does not exist locally with the tag" in missing.stderr


def test_run_pulls_a_missing_image(bb: CLI, dy: CLI, registry: Distribution) -> None:
    ref = f"{registry.addr}/t7/busybox:1"
    bb("tag", "busybox", ref)
    bb("push", ref)
    try:
        proc = dy("run", "--rm", ref, "echo", "pulled and ran")
        assert proc.stdout == "pulled and ran\n"
        assert f"Unable to find image '{ref}' locally" in proc.stderr
        assert "Pull complete" in proc.stderr
        created = dy("create", ref, "true")  # present now: no pull
        assert "Unable to find image" not in created.stderr
        missing = dy("run", "--rm", f"{registry.addr}/t7/nothing:1", check=False)
        assert missing.returncode == 125
        assert "not found" in missing.stderr
    finally:
        _cleanup_containers(dy)


def test_skopeo_pushes_what_we_pull(bb: CLI, dy: CLI, registry: Distribution, tmp_path: Path):
    archive = tmp_path / "bb.tar"
    bb("save", "-o", str(archive), "busybox")
    ref = f"{registry.addr}/t8/from-skopeo:1"
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            f"docker-archive:{archive}",
            f"docker://{ref}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dy("pull", ref)
    assert _image_id(dy, ref) == _image_id(bb, "busybox")
    # The same as an OCI manifest with OCI media types.
    oci_ref = f"{registry.addr}/t8/from-skopeo:oci"
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "oci",
            f"docker-archive:{archive}",
            f"docker://{oci_ref}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = dy("pull", oci_ref).stdout
    assert f"Status: Downloaded newer image for {oci_ref}" in out
    assert (
        dy("image", "inspect", "--format", "{{.RootFS.Layers}}", oci_ref).stdout
        == dy("image", "inspect", "--format", "{{.RootFS.Layers}}", ref).stdout
    )
    # And the pulled image is whole: it saves back to an archive skopeo can read.
    out = tmp_path / "again.tar"
    dy("save", "-o", str(out), ref)
    inspect = subprocess.run(
        ["skopeo", "inspect", f"docker-archive:{out}"], check=True, capture_output=True
    )
    assert json.loads(inspect.stdout)["Layers"]


def test_skopeo_pulls_what_we_push(bb: CLI, registry: Distribution, tmp_path: Path) -> None:
    ref = f"{registry.addr}/t9/to-skopeo:1"
    image_id = _random_image(bb, tmp_path, ref, mb=1)
    digest = bb("push", ref).stdout.splitlines()[-1].split()[2]
    dest = tmp_path / "dir"
    subprocess.run(
        [
            "skopeo",
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            f"docker://{ref}",
            f"dir:{dest}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    manifest = json.loads((dest / "manifest.json").read_bytes())
    assert manifest["config"]["digest"] == image_id
    layer = dest / manifest["layers"][0]["digest"].split(":")[1]
    listing = subprocess.run(["tar", "-tzf", str(layer)], check=True, capture_output=True)
    assert b"random.bin" in listing.stdout
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
        check=True,
        capture_output=True,
    )
    assert json.loads(inspect.stdout)["Digest"] == digest


def test_pull_picks_linux_amd64_from_an_index(
    bb: CLI, dy: CLI, registry: Distribution, tmp_path: Path
) -> None:
    amd = f"{registry.addr}/t10/multi:amd64"
    other = f"{registry.addr}/t10/multi:arm64"
    bb("tag", "busybox", amd)
    _random_image(bb, tmp_path, other, mb=1)
    d_amd = bb("push", amd).stdout.splitlines()[-1].split()
    d_other = bb("push", other).stdout.splitlines()[-1].split()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": d_other[2],
                "size": int(d_other[4]),
                "platform": {"architecture": "arm64", "os": "linux"},
            },
            {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": d_amd[2],
                "size": int(d_amd[4]),
                "platform": {"architecture": "amd64", "os": "linux"},
            },
        ],
    }
    path = tmp_path / "index.json"
    path.write_text(json.dumps(index))
    subprocess.run(
        [
            "curl",
            "-fsS",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.index.v1+json",
            "--data-binary",
            f"@{path}",
            f"http://{registry.addr}/v2/t10/multi/manifests/latest",
        ],
        check=True,
        capture_output=True,
    )
    dy("pull", f"{registry.addr}/t10/multi")
    assert _image_id(dy, f"{registry.addr}/t10/multi:latest") == _image_id(bb, "busybox")


def test_multi_layer_image_round_trip(bb: CLI, dy: CLI, registry: Distribution) -> None:
    from tests.conftest import add_child_image

    ref = f"{registry.addr}/t12/layers:1"
    bb("tag", "busybox", f"{registry.addr}/t12/base:1")
    bb("push", f"{registry.addr}/t12/base:1")
    child = add_child_image(bb.root, "busybox", {"etc/app.conf": b"x=1\n"}, "app:1")
    add_child_image(bb.root, "app:1", {"srv/data.txt": b"data\n" * 1000}, ref)
    out = bb("push", ref).stdout
    assert out.count(": Pushed") == 2  # the two new layers
    assert ": Mounted from t12/base" in out  # busybox's layer
    pulled = dy("pull", ref).stdout
    assert pulled.count("Pull complete") == 3
    assert _image_id(dy, ref) == _image_id(bb, ref) != child
    proc = dy("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref)
    assert len(json.loads(proc.stdout)) == 3
