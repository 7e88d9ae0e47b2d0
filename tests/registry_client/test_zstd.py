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
from tests.registry_client.conftest import Distribution

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
    if not shutil.which("docker") or not os.path.exists("/var/run/docker.sock"):
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
