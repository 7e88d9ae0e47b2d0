"""zstd layers (``application/vnd.oci.image.layer.v1.tar+zstd``) against Debian's CNCF
distribution registry: images skopeo recompressed with zstd are pulled, run and saved;
``push --compression zstd|gzip`` writes what skopeo reads; Docker 20.10 is the reference
where it runs (it cannot unpack zstd layers; Docker 23 can)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLI, _cleanup_containers
from tests.helpers import reference_docker
from tests.registry_client.conftest import Distribution, store_leftovers

ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )


def raw_manifest(ref: str) -> dict[str, Any]:
    return json.loads(skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{ref}").stdout)


def to_zstd(source: str, dest: str) -> None:
    """What a user does to get a zstd image today: skopeo recompresses every layer."""
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "oci",
        "--dest-compress",
        "--dest-compress-format",
        "zstd",
        f"docker://{source}",
        f"docker://{dest}",
    )


def docker(*args: str) -> subprocess.CompletedProcess[str] | None:
    """The reference Docker (20.10) when it runs here, else None."""
    if not reference_docker():
        return None
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)


def _layers(cli: CLI, ref: str) -> str:
    return cli("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref).stdout


def test_pull_and_run_an_image_skopeo_compressed_with_zstd(
    bb: CLI, dy: CLI, registry: Distribution, tmp_path: Path
) -> None:
    gz, zs = f"{registry.addr}/z1/busybox:gzip", f"{registry.addr}/z1/busybox-zstd:1"
    bb("tag", "busybox", gz)
    bb("push", gz)
    to_zstd(gz, zs)
    manifest = raw_manifest(zs)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert [la["mediaType"] for la in manifest["layers"]] == [ZSTD_LAYER]

    out = dy("pull", zs).stdout
    assert f"Status: Downloaded newer image for {zs}" in out
    assert _layers(dy, zs) == _layers(bb, "busybox")  # diff_ids of the unpacked tar
    try:
        assert dy("run", "--rm", zs, "echo", "zstd layers").stdout == "zstd layers\n"
    finally:
        _cleanup_containers(dy)

    # docker save writes plain layer.tar members, whatever the pulled compression ...
    archive = tmp_path / "zstd.tar"
    dy("save", "-o", str(archive), zs)
    with tarfile.open(archive) as tf:
        layer_members = [m for m in tf.getmembers() if m.name.endswith("/layer.tar")]
        assert len(layer_members) == 1
        layer = tf.extractfile(layer_members[0])
        assert layer is not None
        with tarfile.open(fileobj=layer) as inner:
            assert "bin/busybox" in [m.name.lstrip("./") for m in inner.getmembers()]
    # ... that skopeo and Docker 20.10 (which cannot read zstd) load.
    inspect = json.loads(skopeo("inspect", f"docker-archive:{archive}").stdout)
    assert len(inspect["Layers"]) == 1
    if docker("version") is not None:
        loaded = docker("load", "-i", str(archive))
        assert loaded is not None and loaded.returncode == 0, loaded.stderr
        try:
            ran = docker("run", "--rm", zs, "echo", "docker ran it")
            assert ran is not None and ran.stdout == "docker ran it\n", ran.stderr
        finally:
            docker("rmi", zs)

    # An OCI archive keeps the blob as pulled.
    oci = tmp_path / "zstd-oci.tar"
    dy("save", "--format", "oci", "-o", str(oci), zs)
    with tarfile.open(oci) as tf:
        index = json.load(tf.extractfile("index.json"))  # type: ignore[arg-type]
        mdigest = index["manifests"][0]["digest"].split(":")[1]
        saved = json.load(tf.extractfile(f"blobs/sha256/{mdigest}"))  # type: ignore[arg-type]
    assert saved["layers"][0]["mediaType"] == ZSTD_LAYER
    assert saved["layers"][0]["digest"] == manifest["layers"][0]["digest"]
    # And loads back into an empty store.
    third = CLI(tmp_path / "third", dy.run_root)
    third("load", "-i", str(oci))
    assert _layers(third, zs) == _layers(bb, "busybox")


def unique_image(cli: CLI, tmp_path: Path, ref: str, mb: int = 1) -> None:
    """A one-layer image no engine here has seen (Docker skips a layer it holds)."""
    tar = tmp_path / "unique.tar"
    with tarfile.open(tar, "w") as tf:
        data = os.urandom(mb << 19).hex().encode()  # compressible: hex digits
        info = tarfile.TarInfo("payload.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    cli("import", str(tar), ref)


def test_docker_20_10_cannot_pull_zstd(dy: CLI, registry: Distribution, tmp_path: Path) -> None:
    """Where dockyard goes past Docker 20.10 (and matches 23): the reference fails to unpack
    a zstd layer. Pinned so the note stays true."""
    if docker("version") is None:
        pytest.skip("the reference Docker is not running")
    gz, zs = f"{registry.addr}/z2/unique:gzip", f"{registry.addr}/z2/unique-zstd:1"
    unique_image(dy, tmp_path, gz)
    dy("push", gz)
    to_zstd(gz, zs)
    pulled = docker("pull", zs)
    try:
        assert pulled is not None and pulled.returncode == 1
        assert "failed to register layer" in pulled.stderr
    finally:
        docker("rmi", zs)


def test_push_compression_zstd_round_trip(bb: CLI, registry: Distribution, tmp_path: Path):
    ref = f"{registry.addr}/z3/busybox:zstd"
    bb("tag", "busybox", ref)
    out = bb("push", "--compression", "zstd", ref).stdout
    assert ": Pushed" in out
    digest = out.strip().splitlines()[-1].split()[2]
    manifest = raw_manifest(ref)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert [la["mediaType"] for la in manifest["layers"]] == [ZSTD_LAYER]

    # skopeo reads it: the blob is a zstd stream of the layer's tar.
    dest = tmp_path / "dir"
    skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"dir:{dest}")
    blob = dest / manifest["layers"][0]["digest"].split(":")[1]
    listing = subprocess.run(
        ["tar", "--zstd", "-tf", str(blob)], check=True, capture_output=True, text=True
    ).stdout
    assert "bin/busybox" in listing

    # Pushed again: the same digest, nothing uploaded.
    mark = registry.mark()
    again = bb("push", "--compression", "zstd", ref).stdout
    assert ": Layer already exists" in again
    assert again.strip().splitlines()[-1].split()[2] == digest
    assert registry.uploads(mark) == []

    # rmi, then pull and run: the image comes back from the zstd blobs.
    layers = _layers(bb, "busybox")
    bb("rmi", ref, "busybox")
    pulled = bb("pull", ref).stdout
    assert "Pull complete" in pulled and f"Digest: {digest}" in pulled
    assert _layers(bb, ref) == layers
    try:
        assert bb("run", "--rm", ref, "echo", "round trip").stdout == "round trip\n"
    finally:
        _cleanup_containers(bb)


def test_push_compression_gzip_of_a_zstd_image(
    bb: CLI, dy: CLI, registry: Distribution, tmp_path: Path
) -> None:
    """A pulled zstd image pushed as gzip: Docker 20.10 can pull and run that one."""
    gz, zs = f"{registry.addr}/z4/unique:gzip", f"{registry.addr}/z4/unique-zstd:1"
    unique_image(bb, tmp_path, gz)
    bb("push", gz)
    to_zstd(gz, zs)
    dy("pull", zs)
    # Without --compression the pulled blobs go up as they are (the digest stays) ...
    same = f"{registry.addr}/z4/copy:zstd"
    dy("tag", zs, same)
    dy("push", same)
    assert raw_manifest(same) == raw_manifest(zs)
    # ... with --compression gzip they are recompressed, in a Docker schema2 manifest.
    back = f"{registry.addr}/z4/back:gzip"
    dy("tag", zs, back)
    assert ": Pushed" in dy("push", "--compression", "gzip", back).stdout
    manifest = raw_manifest(back)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert [la["mediaType"] for la in manifest["layers"]] == [
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    ]
    third = CLI(tmp_path / "third", dy.run_root)
    third("pull", back)
    assert _layers(third, back) == _layers(bb, gz)
    if docker("version") is not None:
        pulled = docker("pull", back)
        try:
            assert pulled is not None and pulled.returncode == 0, pulled.stderr
            shown = docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", back)
            assert shown is not None and shown.stdout == _layers(bb, gz)
        finally:
            docker("rmi", back)


def test_push_unknown_compression_is_refused(bb: CLI, registry: Distribution) -> None:
    ref = f"{registry.addr}/z5/busybox:1"
    bb("tag", "busybox", ref)
    mark = registry.mark()
    proc = bb("push", "--compression", "lz4", ref, check=False)
    assert proc.returncode == 125
    assert proc.stderr == 'Error: invalid compression "lz4": must be one of "gzip", "zstd"\n'
    assert proc.stdout == ""
    assert registry.requests(mark) == []  # nothing asked, nothing pushed


def _upload(registry: Distribution, repo: str, data: bytes) -> str:
    """A blob put on the registry as any client would (POST, then a monolithic PUT)."""
    import hashlib
    import urllib.request

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    base = f"http://{registry.addr}"
    post = urllib.request.Request(f"{base}/v2/{repo}/blobs/uploads/", method="POST")
    with urllib.request.urlopen(post, timeout=30) as resp:
        location = resp.headers["Location"]
    sep = "&" if "?" in location else "?"
    url = location if location.startswith("http") else base + location
    # (urllib's default form type would make the registry read the body as a form)
    headers = {"Content-Type": "application/octet-stream"}
    put = urllib.request.Request(f"{url}{sep}digest={digest}", data, headers, method="PUT")
    urllib.request.urlopen(put, timeout=30).close()
    return digest


def test_corrupt_zstd_layer_is_refused_and_nothing_stored(dy: CLI, registry: Distribution) -> None:
    """A blob whose digest is right but whose zstd stream is broken (a bad compressor)."""
    import hashlib
    import urllib.request

    import zstandard

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = os.urandom(200_000)
        info = tarfile.TarInfo("payload.bin")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    plain = buf.getvalue()
    blob = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(plain))
    blob[len(blob) // 2] ^= 0xFF
    repo = "z6/corrupt"
    layer = _upload(registry, repo, bytes(blob))
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(plain).hexdigest()],
            },
        }
    ).encode()
    config_digest = _upload(registry, repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [{"mediaType": ZSTD_LAYER, "digest": layer, "size": len(blob)}],
        }
    ).encode()
    put = urllib.request.Request(
        f"http://{registry.addr}/v2/{repo}/manifests/1",
        data=manifest,
        method="PUT",
        headers={"Content-Type": OCI_MANIFEST},
    )
    urllib.request.urlopen(put, timeout=30).close()

    ref = f"{registry.addr}/{repo}:1"
    proc = dy("pull", ref, check=False)
    assert proc.returncode == 125
    assert proc.stderr.startswith("Error: ") and "zstd stream is truncated or corrupt" in (
        proc.stderr
    ), proc.stderr
    assert "Traceback" not in proc.stderr
    assert dy("images", "-q").stdout == ""
    blobs = dy.root / "content" / "blobs"
    assert not any(blobs.rglob(layer.split(":")[1])) if blobs.exists() else True
    assert store_leftovers(dy) == []


def test_load_a_docker_archive_with_zstd_layers(bb: CLI, dy: CLI, tmp_path: Path) -> None:
    """``docker save`` output whose layer.tar members a tool recompressed with zstd: Docker 23
    loads it (20.10 fails to unpack it); so does dockyard, with the same diff_ids."""
    import zstandard

    plain = tmp_path / "plain.tar"
    bb("save", "-o", str(plain), "busybox")
    archive = tmp_path / "zstd-layers.tar"
    with tarfile.open(plain) as src, tarfile.open(archive, "w") as out:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if data is not None and member.name.endswith("/layer.tar"):
                packed = zstandard.ZstdCompressor().compress(data.read())
                member.size = len(packed)
                out.addfile(member, io.BytesIO(packed))
            else:
                out.addfile(member, data)
    out = dy("load", "-i", str(archive)).stdout
    assert out == "Loaded image: busybox:latest\n"
    assert _layers(dy, "busybox") == _layers(bb, "busybox")
    try:
        assert dy("run", "--rm", "busybox", "echo", "loaded").stdout == "loaded\n"
    finally:
        _cleanup_containers(dy)
    # Docker 20.10 refuses it; pinned so the note in docs/architecture.md stays true.
    tagged = tmp_path / "tagged.tar"
    with tarfile.open(archive) as src, tarfile.open(tagged, "w") as out_tf:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name in ("manifest.json", "repositories") and data is not None:
                text = data.read().replace(b"busybox", b"dockyard-zstd-load-test")
                member.size = len(text)
                out_tf.addfile(member, io.BytesIO(text))
            else:
                out_tf.addfile(member, data)
    loaded = docker("load", "-i", str(tagged))
    if loaded is not None:
        try:
            assert loaded.returncode == 1
            assert "archive/tar: invalid tar header" in loaded.stderr
        finally:
            docker("rmi", "dockyard-zstd-load-test:latest")
