"""docker-archive and OCI archive reading and writing, against real files and skopeo."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import pytest

from dockyard.errors import CorruptData, InvalidArgument, UnsafeContent
from dockyard.image.archive import (
    ArchiveReader,
    ExportImage,
    ExportLayer,
    write_docker_archive,
    write_oci_archive,
)
from dockyard.image.config import new_config
from dockyard.image.digest import digest_bytes, hex_of
from dockyard.image.manifest import (
    DOCKER_LAYER_GZIP,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Index,
    Platform,
)
from tests.helpers import tar_of

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")

Writer = Callable[[BinaryIO, list[ExportImage], Callable[[str], BinaryIO]], None]


def layer_tar(files: dict[str, bytes]) -> bytes:
    return tar_of(files, parents=False)


@dataclass
class Blobs:
    """A stand-in for the content store: stored blobs by digest."""

    data: dict[str, bytes] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)

    def add_layer(self, tar: bytes, media_type: str) -> ExportLayer:
        stored = (
            gzip.compress(tar, mtime=0)
            if media_type in (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP)
            else tar
        )
        digest = digest_bytes(stored)
        self.data[digest] = stored
        return ExportLayer(Descriptor(media_type, digest, len(stored)), digest_bytes(tar), len(tar))

    def open(self, digest: str) -> BinaryIO:
        self.opened.append(digest)
        return io.BytesIO(self.data[digest])


def make_image(layers: list[ExportLayer], tags: tuple[str, ...], cmd: str = "sh") -> ExportImage:
    cfg = new_config(
        [la.diff_id for la in layers],
        {"Cmd": [cmd], "Env": ["PATH=/bin"]},
        [{"created_by": f"layer {i}"} for i in range(len(layers))],
        created="2024-01-02T03:04:05.123456789Z",
    )
    return ExportImage(cfg.raw, tuple(layers), tags)


@dataclass
class Sample:
    blobs: Blobs
    image: ExportImage
    tars: list[bytes]


@pytest.fixture
def sample() -> Sample:
    """busybox:latest with a plain and a gzip layer."""
    blobs = Blobs()
    tars = [
        layer_tar({"bin/busybox": b"\x7fELF" + os.urandom(3000), "etc/passwd": b"root:x:0:0\n"}),
        layer_tar({"etc/hostname": b"dockyard\n", "tmp/big": os.urandom(70_000)}),
    ]
    layers = [blobs.add_layer(tars[0], OCI_LAYER), blobs.add_layer(tars[1], OCI_LAYER_GZIP)]
    return Sample(blobs, make_image(layers, ("busybox:latest",)), tars)


def write(path: Path, writer: Writer, images: list[ExportImage], blobs: Blobs) -> Path:
    with open(path, "wb") as f:
        writer(f, images, blobs.open)
    return path


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tf:
        return {m.name: m for m in tf.getmembers()}


def member_bytes(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tf:
        f = tf.extractfile(name)
        assert f is not None
        return f.read()


def read_all(reader: ArchiveReader, name: str) -> bytes:
    with reader.open_member(name) as f:
        return f.read()


def make_tar(path: Path, entries: list[tuple[str, bytes | str | None]]) -> Path:
    """A tar from (name, bytes) files, (name, "->target") symlinks and (name, None) dirs."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name, content in entries:
            ti = tarfile.TarInfo(name)
            if content is None:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif isinstance(content, str):
                ti.type = tarfile.SYMTYPE
                ti.linkname = content.removeprefix("->")
                tf.addfile(ti)
            else:
                ti.size = len(content)
                tf.addfile(ti, io.BytesIO(content))
    return path


# --------------------------------------------------------------------------------------------
# Round trips


def test_docker_archive_round_trip(tmp_path: Path, sample: Sample) -> None:
    path = write(tmp_path / "a.tar", write_docker_archive, [sample.image], sample.blobs)
    with ArchiveReader(str(path)) as r:
        assert len(r.images) == 1
        img = r.images[0]
        assert img.config.raw == sample.image.config_raw
        assert [la.diff_id for la in img.layers] == [la.diff_id for la in sample.image.layers]
        assert img.repo_tags == ("busybox:latest",)
        assert img.manifest_raw is None
        # docker-archive layers are uncompressed, the gzip one included.
        assert [read_all(r, la.member) for la in img.layers] == sample.tars
        assert all(la.descriptor is None for la in img.layers)

    ms = members(path)
    manifest = json.loads(member_bytes(path, "manifest.json"))
    config_hex = hex_of(digest_bytes(sample.image.config_raw))
    assert manifest[0]["Config"] == f"{config_hex}.json"
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    v1ids = [p.split("/")[0] for p in manifest[0]["Layers"]]
    assert manifest[0]["Layers"] == [f"{v}/layer.tar" for v in v1ids]
    assert json.loads(member_bytes(path, "repositories")) == {"busybox": {"latest": v1ids[-1]}}
    for i, v1id in enumerate(v1ids):
        assert ms[v1id].isdir()
        assert member_bytes(path, f"{v1id}/VERSION") == b"1.0"
        v1 = json.loads(member_bytes(path, f"{v1id}/json"))
        assert v1["id"] == v1id and v1["os"] == "linux" and "container_config" in v1
        assert v1.get("parent") == (v1ids[i - 1] if i else None)
        assert ms[f"{v1id}/layer.tar"].size == len(sample.tars[i])
    assert json.loads(member_bytes(path, f"{v1ids[-1]}/json"))["config"]["Cmd"] == ["sh"]


def test_docker_archive_is_deterministic(tmp_path: Path, sample: Sample) -> None:
    a = write(tmp_path / "a.tar", write_docker_archive, [sample.image], sample.blobs)
    b = write(tmp_path / "b.tar", write_docker_archive, [sample.image], sample.blobs)
    assert a.read_bytes() == b.read_bytes()


def test_oci_archive_round_trip(tmp_path: Path, sample: Sample) -> None:
    path = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)
    with ArchiveReader(str(path)) as r:
        assert len(r.images) == 1
        img = r.images[0]
        assert img.config.raw == sample.image.config_raw
        assert [la.diff_id for la in img.layers] == [la.diff_id for la in sample.image.layers]
        assert img.repo_tags == ("busybox:latest",)
        assert img.manifest_raw is not None
        for la, exp in zip(img.layers, sample.image.layers, strict=True):
            assert la.descriptor is not None
            assert (la.descriptor.digest, la.descriptor.size) == (
                exp.descriptor.digest,
                exp.descriptor.size,
            )
            assert read_all(r, la.member) == sample.blobs.data[exp.descriptor.digest]
        assert [la.descriptor.media_type for la in img.layers if la.descriptor] == [
            OCI_LAYER,
            OCI_LAYER_GZIP,
        ]
        manifest = json.loads(img.manifest_raw)

    assert json.loads(member_bytes(path, "oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(member_bytes(path, "index.json"))
    assert index["mediaType"] == OCI_INDEX
    (entry,) = index["manifests"]
    assert entry["mediaType"] == OCI_MANIFEST
    assert entry["annotations"] == {
        "org.opencontainers.image.ref.name": "latest",
        "io.containerd.image.name": "busybox:latest",
    }
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert manifest["config"]["digest"] == digest_bytes(sample.image.config_raw)
    assert entry["digest"] == digest_bytes(
        member_bytes(path, f"blobs/sha256/{hex_of(entry['digest'])}")
    )


def test_oci_maps_docker_media_types(tmp_path: Path) -> None:
    blobs = Blobs()
    layer = blobs.add_layer(layer_tar({"a": b"a"}), DOCKER_LAYER_GZIP)
    path = write(tmp_path / "o.tar", write_oci_archive, [make_image([layer], ())], blobs)
    with ArchiveReader(str(path)) as r:
        (img,) = r.images
        assert img.repo_tags == ()
        desc = img.layers[0].descriptor
        assert desc is not None and desc.media_type == OCI_LAYER_GZIP
        assert desc.digest == layer.descriptor.digest
    assert "annotations" not in json.loads(member_bytes(path, "index.json"))["manifests"][0]


@pytest.mark.parametrize("writer", [write_docker_archive, write_oci_archive])
def test_untagged_and_multi_tag_images(tmp_path: Path, sample: Sample, writer: Writer) -> None:
    img = ExportImage(sample.image.config_raw, sample.image.layers, ("a:1", "localhost:5000/b/c:2"))
    untagged = make_image(list(sample.image.layers), (), cmd="other")
    path = write(tmp_path / "x.tar", writer, [img, untagged], sample.blobs)
    with ArchiveReader(str(path)) as r:
        assert [i.repo_tags for i in r.images] == [("a:1", "localhost:5000/b/c:2"), ()]
    if writer is write_docker_archive:
        repos = json.loads(member_bytes(path, "repositories"))
        assert set(repos) == {"a", "localhost:5000/b/c"}
        assert json.loads(member_bytes(path, "manifest.json"))[1]["RepoTags"] is None


def test_shared_layers_are_written_once(tmp_path: Path, sample: Sample) -> None:
    blobs = sample.blobs
    base = sample.image
    extra = blobs.add_layer(layer_tar({"app": b"app"}), OCI_LAYER_GZIP)
    child = make_image([*base.layers, extra], ("child:1",))
    # The same top layer in another chain: Docker links its layer.tar to the first copy.
    other = make_image([extra], ("other:1",))
    images = [base, child, other]

    path = write(tmp_path / "d.tar", write_docker_archive, images, blobs)
    ms = members(path)
    regular = [m for n, m in ms.items() if n.endswith("/layer.tar") and m.isreg()]
    links = [m for n, m in ms.items() if n.endswith("/layer.tar") and m.issym()]
    # base's two layers, the extra layer once; base's top is a different v1 directory in
    # child (the top layer carries the image config), so it is linked, as is other's layer.
    assert len(regular) == 3
    assert len(links) == 2
    assert all(m.linkname.startswith("../") for m in links)
    with ArchiveReader(str(path)) as r:
        assert [i.repo_tags for i in r.images] == [("busybox:latest",), ("child:1",), ("other:1",)]
        for img, exp in zip(r.images, images, strict=True):
            assert [la.diff_id for la in img.layers] == [la.diff_id for la in exp.layers]
            for la in img.layers:
                assert hashlib.sha256(read_all(r, la.member)).hexdigest() == hex_of(la.diff_id)

    blobs.opened.clear()
    path = write(tmp_path / "o.tar", write_oci_archive, images, blobs)
    assert sorted(blobs.opened) == sorted({la.descriptor.digest for i in images for la in i.layers})
    with ArchiveReader(str(path)) as r:
        assert [i.repo_tags for i in r.images] == [("busybox:latest",), ("child:1",), ("other:1",)]


def test_writes_to_a_pipe(tmp_path: Path, sample: Sample) -> None:
    class WriteOnly:
        def __init__(self) -> None:
            self.buf = bytearray()

        def write(self, b: bytes) -> int:
            self.buf += b
            return len(b)

    for writer in (write_docker_archive, write_oci_archive):
        out = WriteOnly()
        writer(cast(BinaryIO, out), [sample.image], sample.blobs.open)
        path = tmp_path / "p.tar"
        path.write_bytes(bytes(out.buf))
        with ArchiveReader(str(path)) as r:
            assert r.images[0].config.raw == sample.image.config_raw


def test_write_rejects_bad_blobs(tmp_path: Path, sample: Sample) -> None:
    plain, gz = sample.image.layers
    cases = {
        # tar_size disagrees with what the gzip blob decompresses to.
        "short": ExportLayer(gz.descriptor, gz.diff_id, gz.tar_size + 1),
        "long": ExportLayer(gz.descriptor, gz.diff_id, gz.tar_size - 512),
        "plain-long": ExportLayer(plain.descriptor, plain.diff_id, plain.tar_size - 1),
    }
    for name, bad in cases.items():
        img = ExportImage(
            sample.image.config_raw, (plain, bad) if name != "plain-long" else (bad, gz), ()
        )
        with pytest.raises(CorruptData, match="shorter|longer"), open(tmp_path / name, "wb") as f:
            write_docker_archive(f, [img], sample.blobs.open)

    # A corrupt gzip stream (bad CRC) fails as CorruptData, not as an OSError.
    stored = bytearray(sample.blobs.data[gz.descriptor.digest])
    stored[-8] ^= 0xFF
    blobs = Blobs({**sample.blobs.data, gz.descriptor.digest: bytes(stored)})
    with pytest.raises(CorruptData), open(tmp_path / "crc", "wb") as f:
        write_docker_archive(f, [sample.image], blobs.open)

    # A store blob shorter than its descriptor.
    short = Blobs({**sample.blobs.data, plain.descriptor.digest: sample.tars[0][:-100]})
    with pytest.raises(CorruptData, match="shorter"), open(tmp_path / "oci", "wb") as f:
        write_oci_archive(f, [sample.image], short.open)


def test_write_rejects_bad_input(tmp_path: Path, sample: Sample) -> None:
    img = sample.image
    with pytest.raises(CorruptData, match="diff_ids"):
        write_docker_archive(
            io.BytesIO(), [ExportImage(img.config_raw, img.layers[:1], ())], sample.blobs.open
        )
    for tag in ("busybox", "busybox@sha256:" + "a" * 64, "localhost:5000/x"):
        for writer in (write_docker_archive, write_oci_archive):
            with pytest.raises(InvalidArgument):
                writer(
                    io.BytesIO(),
                    [ExportImage(img.config_raw, img.layers, (tag,))],
                    sample.blobs.open,
                )


# --------------------------------------------------------------------------------------------
# Archives as other tools write them


def test_docker25_layout_with_dot_slash_and_links(tmp_path: Path, sample: Sample) -> None:
    """Docker 25+: both manifest.json and index.json, blobs under blobs/sha256, the legacy
    layer.tar a symlink into blobs; skopeo-style "./" prefixes."""
    cfg = sample.image.config_raw
    cfg_hex = hex_of(digest_bytes(cfg))
    hexes = [hex_of(digest_bytes(t)) for t in sample.tars]
    manifest = [
        {
            "Config": f"blobs/sha256/{cfg_hex}",
            "RepoTags": ["busybox:latest"],
            "Layers": [f"blobs/sha256/{hexes[0]}", f"./{'a' * 64}/layer.tar"],
            "LayerSources": {},
        }
    ]
    entries: list[tuple[str, bytes | str | None]] = [
        ("./", None),
        ("./blobs/", None),
        ("./blobs/sha256/", None),
        (f"./blobs/sha256/{cfg_hex}", cfg),
        (f"./blobs/sha256/{hexes[0]}", sample.tars[0]),
        (f"./blobs/sha256/{hexes[1]}", sample.tars[1]),
        (f"./{'a' * 64}/", None),
        (f"./{'a' * 64}/layer.tar", f"->../blobs/sha256/{hexes[1]}"),
        ("./index.json", b'{"schemaVersion":2,"manifests":[]}'),
        ("./oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
        ("./manifest.json", json.dumps(manifest).encode()),
    ]
    path = make_tar(tmp_path / "d25.tar", entries)
    with ArchiveReader(str(path)) as r:
        (img,) = r.images
        assert img.repo_tags == ("busybox:latest",)
        assert img.config.raw == cfg
        assert [la.member for la in img.layers] == [f"blobs/sha256/{h}" for h in hexes]
        assert [read_all(r, la.member) for la in img.layers] == sample.tars
        assert read_all(r, f"./{'a' * 64}/layer.tar") == sample.tars[1]


def test_oci_index_pointing_at_an_index(tmp_path: Path, sample: Sample) -> None:
    """index.json -> a multi-platform index -> the linux/amd64 manifest."""
    src = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)
    with ArchiveReader(str(src)) as r:
        manifest_raw = r.images[0].manifest_raw
    assert manifest_raw is not None
    mdesc = Descriptor(OCI_MANIFEST, digest_bytes(manifest_raw), len(manifest_raw))
    arm = Descriptor(OCI_MANIFEST, "sha256:" + "b" * 64, 10, platform=Platform("linux", "arm64"))
    amd = Descriptor(OCI_MANIFEST, mdesc.digest, mdesc.size, platform=Platform("linux", "amd64"))
    nested = Index((arm, amd)).to_bytes()
    top = Index(
        (
            Descriptor(
                OCI_INDEX,
                digest_bytes(nested),
                len(nested),
                {"io.containerd.image.name": "docker.io/library/busybox:1.36"},
            ),
        )
    ).to_bytes()
    entries: list[tuple[str, bytes | str | None]] = [
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    ]
    with tarfile.open(src) as tf:
        for m in tf.getmembers():
            if m.name.startswith("blobs/sha256/"):
                f = tf.extractfile(m)
                assert f is not None
                entries.append((m.name, f.read()))
    entries += [(f"blobs/sha256/{hex_of(digest_bytes(nested))}", nested), ("index.json", top)]
    path = make_tar(tmp_path / "nested.tar", entries)
    with ArchiveReader(str(path)) as r:
        (img,) = r.images
        assert img.repo_tags == ("docker.io/library/busybox:1.36",)
        assert img.manifest_raw == manifest_raw
        assert img.config.raw == sample.image.config_raw


def test_oci_ref_name_only(tmp_path: Path, sample: Sample) -> None:
    """A bare OCI ref name ("latest") names no repository; a full one is a tag."""
    src = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)
    for ref, tags in (("latest", ()), ("quay.io/x/y:2", ("quay.io/x/y:2",))):
        index = json.loads(member_bytes(src, "index.json"))
        index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": ref}
        path = rewrite(src, tmp_path / "r.tar", {"index.json": json.dumps(index).encode()})
        with ArchiveReader(str(path)) as r:
            assert r.images[0].repo_tags == tags


def rewrite(
    src: Path,
    dst: Path,
    replace: dict[str, bytes | None],
    extra: Sequence[tuple[str, bytes | str | None]] = (),
) -> Path:
    """A copy of the tar at ``src`` with some members replaced (None: dropped)."""
    entries: list[tuple[str, bytes | str | None]] = []
    with tarfile.open(src) as tf:
        for m in tf.getmembers():
            if m.name in replace:
                data = replace[m.name]
                if data is not None:
                    entries.append((m.name, data))
            elif m.isdir():
                entries.append((m.name, None))
            elif m.issym():
                entries.append((m.name, "->" + m.linkname))
            else:
                f = tf.extractfile(m)
                assert f is not None
                entries.append((m.name, f.read()))
    return make_tar(dst, entries + list(extra))


# --------------------------------------------------------------------------------------------
# Bad input


def corrupt(path: Path, message: str) -> CorruptData:
    with pytest.raises(CorruptData) as exc:
        ArchiveReader(str(path))
    assert message in str(exc.value), str(exc.value)
    assert "\n" not in str(exc.value)
    return exc.value


def test_random_bytes_and_empty(tmp_path: Path) -> None:
    (tmp_path / "r").write_bytes(os.urandom(100_000))
    corrupt(tmp_path / "r", "archive is not a tar file")
    (tmp_path / "short").write_bytes(b"hello")
    corrupt(tmp_path / "short", "archive is not a tar file")
    (tmp_path / "e").write_bytes(b"")
    corrupt(tmp_path / "e", "archive is not a tar file (it is empty)")
    (tmp_path / "gz").write_bytes(gzip.compress(b"x" * 1000))
    corrupt(tmp_path / "gz", "gzip-compressed")


@pytest.mark.parametrize("writer", [write_docker_archive, write_oci_archive])
def test_truncated(tmp_path: Path, sample: Sample, writer: Writer) -> None:
    src = write(tmp_path / "a.tar", writer, [sample.image], sample.blobs)
    data = src.read_bytes()
    ms = list(members(src).values())
    last = ms[-1]
    end = last.offset_data + (last.size + 511) // 512 * 512  # where the end-of-archive starts
    offsets = {300, 511, 512, 513, len(data) // 2, end - 1, end, end + 100}
    offsets |= {m.offset for m in ms[1:]} | {m.offset_data + m.size // 2 for m in ms}
    for off in sorted(offsets):
        path = tmp_path / f"t{off}.tar"
        path.write_bytes(data[:off])
        corrupt(path, "archive is truncated")


def test_no_manifest(tmp_path: Path) -> None:
    path = make_tar(tmp_path / "n.tar", [("hello", b"hi"), ("repositories", b"{}")])
    corrupt(path, "archive has neither manifest.json nor index.json")
    path = make_tar(tmp_path / "o.tar", [("index.json", b'{"manifests":[]}')])
    corrupt(path, "no oci-layout")


def test_malformed_json(tmp_path: Path, sample: Sample) -> None:
    path = make_tar(tmp_path / "m.tar", [("manifest.json", b"[{")])
    corrupt(path, "manifest.json is not valid JSON")
    path = make_tar(tmp_path / "m.tar", [("manifest.json", b'{"Config": "x"}')])
    corrupt(path, "manifest.json is not a JSON list")
    path = make_tar(tmp_path / "m.tar", [("manifest.json", b'[{"Layers": []}]')])
    corrupt(path, "has no Config")
    src = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)
    path = rewrite(src, tmp_path / "i.tar", {"index.json": b"{nope"})
    corrupt(path, "index.json: index is not valid JSON")


def test_missing_member(tmp_path: Path, sample: Sample) -> None:
    src = write(tmp_path / "a.tar", write_docker_archive, [sample.image], sample.blobs)
    manifest = json.loads(member_bytes(src, "manifest.json"))
    layer = manifest[0]["Layers"][1]
    err = corrupt(rewrite(src, tmp_path / "b.tar", {layer: None}), "is missing")
    assert layer in str(err)
    config = manifest[0]["Config"]
    corrupt(
        rewrite(src, tmp_path / "c.tar", {config: None}),
        f"archive member {config!r} named by manifest.json is missing",
    )

    src = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)
    gz = sample.image.layers[1].descriptor.digest
    corrupt(rewrite(src, tmp_path / "p.tar", {f"blobs/sha256/{hex_of(gz)}": None}), "is missing")


def test_config_digest_mismatch(tmp_path: Path, sample: Sample) -> None:
    bad = sample.image.config_raw.replace(b'"sh"', b'"sx"')
    src = write(tmp_path / "a.tar", write_docker_archive, [sample.image], sample.blobs)
    config = json.loads(member_bytes(src, "manifest.json"))[0]["Config"]
    corrupt(rewrite(src, tmp_path / "b.tar", {config: bad}), "config digest mismatch")

    src = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)
    name = f"blobs/sha256/{hex_of(digest_bytes(sample.image.config_raw))}"
    corrupt(rewrite(src, tmp_path / "p.tar", {name: bad}), "config digest mismatch")


def test_oci_manifest_digest_mismatch(tmp_path: Path, sample: Sample) -> None:
    src = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)
    digest = json.loads(member_bytes(src, "index.json"))["manifests"][0]["digest"]
    name = f"blobs/sha256/{hex_of(digest)}"
    raw = member_bytes(src, name)
    altered = raw.replace(b'"schemaVersion": 2', b'"schemaVersion":  2')
    assert altered != raw
    corrupt(rewrite(src, tmp_path / "p.tar", {name: altered}), "manifest digest mismatch")


def test_layer_count_mismatch(tmp_path: Path, sample: Sample) -> None:
    src = write(tmp_path / "a.tar", write_docker_archive, [sample.image], sample.blobs)
    manifest = json.loads(member_bytes(src, "manifest.json"))
    manifest[0]["Layers"] = manifest[0]["Layers"][:1]
    path = rewrite(src, tmp_path / "b.tar", {"manifest.json": json.dumps(manifest).encode()})
    corrupt(path, "lists 1 layers but its config has 2 diff_ids")


def test_unsafe_member_names(tmp_path: Path, sample: Sample) -> None:
    src = write(tmp_path / "a.tar", write_docker_archive, [sample.image], sample.blobs)
    for i, name in enumerate(("../evil", "a/../../evil", "/etc/evil")):
        path = rewrite(src, tmp_path / f"e{i}.tar", {}, [(name, b"boom")])
        with pytest.raises(UnsafeContent):
            ArchiveReader(str(path))
    # Referenced names are checked too, and links may not leave the archive.
    manifest = json.loads(member_bytes(src, "manifest.json"))
    manifest[0]["Layers"][0] = "../evil"
    path = rewrite(src, tmp_path / "m.tar", {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(UnsafeContent, match=r"'\.\./evil' contains '\.\.'"):
        ArchiveReader(str(path))
    manifest[0]["Layers"][0] = "x/layer.tar"
    new = {"manifest.json": json.dumps(manifest).encode()}
    path = rewrite(src, tmp_path / "l.tar", new, [("x/layer.tar", "->../../etc/passwd")])
    with pytest.raises(UnsafeContent, match="outside"):
        ArchiveReader(str(path))


# --------------------------------------------------------------------------------------------
# skopeo interop


def skopeo(*args: str) -> str:
    assert SKOPEO is not None
    proc = subprocess.run(
        [SKOPEO, "--insecure-policy", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def skopeo_json(*args: str) -> Any:
    return json.loads(skopeo(*args))


@needs_skopeo
def test_skopeo_reads_our_docker_archive(tmp_path: Path, sample: Sample) -> None:
    path = write(tmp_path / "a.tar", write_docker_archive, [sample.image], sample.blobs)
    diff_ids = [la.diff_id for la in sample.image.layers]
    raw = skopeo_json("inspect", "--raw", f"docker-archive:{path}")
    assert [la["digest"] for la in raw["layers"]] == diff_ids
    assert [la["size"] for la in raw["layers"]] == [len(t) for t in sample.tars]
    assert raw["config"]["digest"] == digest_bytes(sample.image.config_raw)
    info = skopeo_json("inspect", f"docker-archive:{path}")
    assert info["Layers"] == diff_ids
    assert (info["Os"], info["Architecture"]) == ("linux", "amd64")
    assert (
        skopeo("inspect", "--config", "--raw", f"docker-archive:{path}").encode()
        == sample.image.config_raw
    )


@needs_skopeo
def test_skopeo_reads_our_multi_image_docker_archive(tmp_path: Path, sample: Sample) -> None:
    blobs = sample.blobs
    extra = blobs.add_layer(layer_tar({"app": b"app"}), OCI_LAYER_GZIP)
    child = make_image([*sample.image.layers, extra], ("child:1",))
    other = make_image([extra], ("other:1",))  # its layer.tar is a symlink
    path = write(tmp_path / "a.tar", write_docker_archive, [sample.image, child, other], blobs)
    for ref, img in (("busybox:latest", sample.image), ("child:1", child), ("@2", other)):
        raw = skopeo_json("inspect", "--raw", f"docker-archive:{path}:{ref}")
        assert [la["digest"] for la in raw["layers"]] == [la.diff_id for la in img.layers]


@needs_skopeo
def test_skopeo_reads_our_oci_archive(tmp_path: Path, sample: Sample) -> None:
    path = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)
    with ArchiveReader(str(path)) as r:
        manifest_raw = r.images[0].manifest_raw
    assert manifest_raw is not None
    for ref in (f"oci-archive:{path}", f"oci-archive:{path}:latest"):
        assert skopeo("inspect", "--raw", ref).encode() == manifest_raw
        info = skopeo_json("inspect", ref)
        assert info["Layers"] == [la.descriptor.digest for la in sample.image.layers]
        assert info["Digest"] == digest_bytes(manifest_raw)
        assert skopeo("inspect", "--config", "--raw", ref).encode() == sample.image.config_raw


def check_copied(path: Path, sample: Sample) -> tuple[str, ...]:
    """The archive skopeo wrote holds our image: same diff_ids, layers that decompress to
    them. Returns its tags."""
    with ArchiveReader(str(path)) as r:
        (img,) = r.images
        # skopeo may re-serialise the config when it converts formats; the content stays.
        assert img.config.data == json.loads(sample.image.config_raw)
        assert [la.diff_id for la in img.layers] == [la.diff_id for la in sample.image.layers]
        for la, tar in zip(img.layers, sample.tars, strict=True):
            data = read_all(r, la.member)
            assert (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data) == tar
        return img.repo_tags


@needs_skopeo
def test_skopeo_copies_our_archives(tmp_path: Path, sample: Sample) -> None:
    docker = write(tmp_path / "a.tar", write_docker_archive, [sample.image], sample.blobs)
    oci = write(tmp_path / "o.tar", write_oci_archive, [sample.image], sample.blobs)

    skopeo("copy", "-q", f"docker-archive:{docker}", f"oci-archive:{tmp_path / 'd2o.tar'}:latest")
    assert check_copied(tmp_path / "d2o.tar", sample) == ()  # "latest" alone names no repo

    skopeo(
        "copy",
        "-q",
        f"docker-archive:{docker}",
        f"docker-archive:{tmp_path / 'd2d.tar'}:busybox:latest",
    )
    (tag,) = check_copied(tmp_path / "d2d.tar", sample)
    assert tag.endswith("busybox:latest")

    skopeo(
        "copy",
        "-q",
        f"oci-archive:{oci}:latest",
        f"docker-archive:{tmp_path / 'o2d.tar'}:busybox:latest",
    )
    (tag,) = check_copied(tmp_path / "o2d.tar", sample)
    assert tag.endswith("busybox:latest")

    skopeo(
        "copy", "-q", f"oci-archive:{oci}:latest", f"oci-archive:{tmp_path / 'o2o.tar'}:busybox:1"
    )
    assert check_copied(tmp_path / "o2o.tar", sample) == ("busybox:1",)
