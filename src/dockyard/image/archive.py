"""Image archives: docker-archive (what ``docker save`` writes) and OCI archives (a tar of
an OCI image layout).

Reading works on a seekable file with random access to members; nothing is extracted.
Writing streams through ``tarfile`` so that layers are copied once, straight from the blob
store to the output, which may be a pipe.

Tags are strings exactly as found in or written to the archive ("busybox:latest"); the
caller normalises them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, BinaryIO, cast

from dockyard.errors import CorruptData, InvalidArgument, NotFound, UnsafeContent
from dockyard.image.compression import LAYER_COMPRESSIONS, compression_of, open_decompressed
from dockyard.image.config import ImageConfig, docker_container_config
from dockyard.image.digest import chain_ids, digest_bytes, hex_of
from dockyard.image.manifest import (
    DOCKER_FOREIGN_GZIP,
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    GZIP_LAYER_TYPES,
    INDEX_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    PLAIN_LAYER_TYPES,
    Descriptor,
    Index,
    Manifest,
    Platform,
    media_type_of,
)

MANIFEST_JSON = "manifest.json"
REPOSITORIES = "repositories"
OCI_LAYOUT = "oci-layout"
INDEX_JSON = "index.json"
OCI_LAYOUT_VERSION = "1.0.0"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"

# Metadata members (manifest.json, configs, index.json) are read into memory; cap them.
MAX_METADATA_SIZE = 32 * 1024 * 1024
COPY_BUFSIZE = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE

_LEGACY_CONFIG_RE = re.compile(r"^([a-f0-9]{64})\.json$")
_BLOB_RE = re.compile(r"^blobs/sha256/([a-f0-9]{64})$")
_MAX_LINK_HOPS = 8
_EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class ArchiveLayer:
    member: str
    diff_id: str
    descriptor: Descriptor | None


@dataclass(frozen=True, slots=True)
class ArchiveImage:
    config: ImageConfig
    layers: tuple[ArchiveLayer, ...]
    repo_tags: tuple[str, ...]
    manifest_raw: bytes | None


@dataclass(frozen=True, slots=True)
class ExportLayer:
    descriptor: Descriptor
    diff_id: str
    tar_size: int


@dataclass(frozen=True, slots=True)
class ExportImage:
    config_raw: bytes
    layers: tuple[ExportLayer, ...]
    repo_tags: tuple[str, ...]


# --------------------------------------------------------------------------------------------
# Reading


def _member_name(name: str) -> str:
    """A member name without "./" and empty components; refuses anything that could escape."""
    if name.startswith("/"):
        raise UnsafeContent(f"archive member {name[:200]!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeContent(f"archive member {name[:200]!r} contains '..'")
    return "/".join(parts)


def _link_target(member: str, info: tarfile.TarInfo) -> str:
    """Where a link member points, as a member name. Symlinks are relative to the member's
    directory (Docker writes ``layer.tar -> ../<id>/layer.tar``), hard links to the root."""
    target = info.linkname
    if target.startswith("/"):
        raise UnsafeContent(f"archive member {member!r} links to an absolute path")
    base = member.split("/")[:-1] if info.issym() else []
    parts = list(base)
    for p in target.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if not parts:
                raise UnsafeContent(f"archive member {member!r} links outside the archive")
            parts.pop()
        else:
            parts.append(p)
    return "/".join(parts)


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptData(f"{what} is not valid JSON: {e}") from None


def _not_tar_message(head: bytes) -> str:
    kind = compression_of(head)
    if kind is not None:
        return f"archive is not a tar file (it is {kind}-compressed)"
    # A valid first header cut short: say truncated rather than "not a tar".
    if len(head) < BLOCK and head[257:262] == b"ustar":
        return "archive is truncated"
    return "archive is not a tar file"


def _oci_tags(annotations: dict[str, str]) -> list[str]:
    """Tags of an index.json entry. containerd's annotation holds a full name; the OCI ref
    name is often just a tag ("latest"), which names no repository, so it counts only when it
    looks like a reference."""
    name = annotations.get(ANNOTATION_CONTAINERD_NAME, "")
    if name:
        return [name]
    ref = annotations.get(ANNOTATION_REF_NAME, "")
    if ref and any(c in ref for c in ":/@"):
        return [ref]
    return []


class ArchiveReader:
    """An image archive opened for reading; ``images`` are parsed and verified on open."""

    images: tuple[ArchiveImage, ...]

    def __init__(self, path: str) -> None:
        self._file: BinaryIO | None = None
        self._tar: tarfile.TarFile | None = None
        self._members: dict[str, tarfile.TarInfo] = {}
        self._file = open(path, "rb")  # closed by close(), also on failure below
        try:
            self._open_tar(self._file)
            if MANIFEST_JSON in self._members:
                # Docker 25+ writes both layouts; manifest.json carries RepoTags as Docker
                # loads them.
                self.images = self._read_docker()
            elif INDEX_JSON in self._members:
                self.images = self._read_oci()
            else:
                raise CorruptData("archive has neither manifest.json nor index.json")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def open_member(self, name: str) -> BinaryIO:
        """A readable stream of a member's bytes (links followed)."""
        _, info = self._resolve(_member_name(name), "the caller")
        return self._extract(info)

    # -- tar level ----------------------------------------------------------------------------

    def _open_tar(self, f: BinaryIO) -> None:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise CorruptData("archive is not a tar file (it is empty)")
        head = f.read(BLOCK)
        f.seek(0)
        try:
            self._tar = tarfile.open(fileobj=f, mode="r:")
        except (tarfile.TarError, EOFError, UnicodeError, ValueError):
            raise CorruptData(_not_tar_message(head)) from None
        try:
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, UnicodeError, ValueError) as e:
            if "unexpected end of data" in str(e):
                raise CorruptData("archive is truncated") from None
            raise CorruptData(f"archive is malformed: {e}") from None
        for info in members:
            if info.offset_data + info.size > size and info.isreg():
                raise CorruptData("archive is truncated")
            name = _member_name(info.name)
            if name:
                self._members[name] = info
        # tarfile stops quietly at a short or garbled header after the first one; an intact
        # archive ends in a zero block exactly where the next header would be.
        end = self._tar.offset
        f.seek(end)
        tail = f.read(BLOCK)
        if len(tail) < BLOCK:
            raise CorruptData("archive is truncated")
        if tail.count(0) != BLOCK:
            raise CorruptData(f"archive is malformed: invalid tar header at offset {end}")

    def _resolve(self, name: str, referrer: str) -> tuple[str, tarfile.TarInfo]:
        current = name
        for _ in range(_MAX_LINK_HOPS):
            info = self._members.get(current)
            if info is None:
                if current == name:
                    raise CorruptData(f"archive member {name!r} named by {referrer} is missing")
                raise CorruptData(f"archive member {name!r} links to missing {current!r}")
            if info.isreg():
                return current, info
            if not (info.issym() or info.islnk()):
                raise CorruptData(f"archive member {name!r} is not a regular file")
            current = _link_target(current, info)
        raise CorruptData(f"archive member {name!r}: too many levels of links")

    def _extract(self, info: tarfile.TarInfo) -> BinaryIO:
        assert self._tar is not None, "archive is closed"
        f = self._tar.extractfile(info)
        assert f is not None  # a regular file always has a stream
        return cast(BinaryIO, f)

    def _read_small(self, name: str, what: str, referrer: str) -> bytes:
        _, info = self._resolve(name, referrer)
        if info.size > MAX_METADATA_SIZE:
            raise CorruptData(f"{what} is too large ({info.size} bytes)")
        try:
            with self._extract(info) as f:
                return f.read()
        except (tarfile.TarError, EOFError) as e:
            raise CorruptData(f"archive is truncated: {e}") from None

    def _read_blob(self, desc: Descriptor, what: str, referrer: str) -> bytes:
        """A blob of an OCI layout, checked against its descriptor."""
        if desc.size > MAX_METADATA_SIZE:
            raise CorruptData(f"{what} {desc.digest} is too large ({desc.size} bytes)")
        data = self._read_small(f"blobs/sha256/{hex_of(desc.digest)}", what, referrer)
        actual = digest_bytes(data)
        if actual != desc.digest or len(data) != desc.size:
            raise CorruptData(
                f"{what} digest mismatch: expected {desc.digest} ({desc.size} bytes), "
                f"got {actual} ({len(data)} bytes)"
            )
        return data

    # -- docker-archive -----------------------------------------------------------------------

    def _read_docker(self) -> tuple[ArchiveImage, ...]:
        entries = _load_json(
            self._read_small(MANIFEST_JSON, MANIFEST_JSON, "the archive"), MANIFEST_JSON
        )
        if not isinstance(entries, list):
            raise CorruptData("manifest.json is not a JSON list")
        images: list[ArchiveImage] = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise CorruptData(f"manifest.json entry {i} is not a JSON object")
            config_name = entry.get("Config")
            layers = entry.get("Layers")
            tags = entry.get("RepoTags") or []
            if not isinstance(config_name, str) or not config_name:
                raise CorruptData(f"manifest.json entry {i} has no Config")
            if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
                raise CorruptData(f"manifest.json entry {i} has no Layers list of names")
            if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
                raise CorruptData(f"manifest.json entry {i} has a malformed RepoTags")
            name = _member_name(config_name)
            m = _LEGACY_CONFIG_RE.match(name.rsplit("/", 1)[-1]) or _BLOB_RE.match(name)
            if m is None:
                raise CorruptData(
                    f"manifest.json names config {config_name!r}, which is not named by its digest"
                )
            raw = self._read_small(name, f"config {config_name}", MANIFEST_JSON)
            actual = hashlib.sha256(raw).hexdigest()
            if actual != m.group(1):
                raise CorruptData(
                    f"config digest mismatch: {config_name} has digest sha256:{actual}"
                )
            config = ImageConfig.parse(raw)
            diff_ids = config.diff_ids
            if len(layers) != len(diff_ids):
                raise CorruptData(
                    f"image {config_name} lists {len(layers)} layers but its config has "
                    f"{len(diff_ids)} diff_ids"
                )
            out = tuple(
                ArchiveLayer(self._resolve(_member_name(la), MANIFEST_JSON)[0], diff_id, None)
                for la, diff_id in zip(layers, diff_ids, strict=True)
            )
            images.append(ArchiveImage(config, out, tuple(tags), None))
        return tuple(images)

    # -- OCI ----------------------------------------------------------------------------------

    def _read_oci(self) -> tuple[ArchiveImage, ...]:
        if OCI_LAYOUT not in self._members:
            raise CorruptData("archive has index.json but no oci-layout file")
        layout = _load_json(self._read_small(OCI_LAYOUT, OCI_LAYOUT, "the archive"), OCI_LAYOUT)
        if not isinstance(layout, dict) or not isinstance(layout.get("imageLayoutVersion"), str):
            raise CorruptData("oci-layout has no imageLayoutVersion")
        try:
            index = Index.from_bytes(self._read_small(INDEX_JSON, INDEX_JSON, "the archive"))
        except CorruptData as e:
            raise CorruptData(f"index.json: {e}") from None
        # Several index.json entries (one per tag) may name one manifest: one image.
        found: dict[str, tuple[ArchiveImage, list[str]]] = {}
        for desc in index.manifests:
            mdesc, raw = self._oci_manifest(desc)
            tags = _oci_tags(desc.annotations)
            if mdesc.digest in found:
                known = found[mdesc.digest][1]
                known += [t for t in tags if t not in known]
                continue
            found[mdesc.digest] = (self._oci_image(mdesc, raw), tags)
        return tuple(
            ArchiveImage(img.config, img.layers, tuple(tags), img.manifest_raw)
            for img, tags in found.values()
        )

    def _oci_manifest(self, desc: Descriptor) -> tuple[Descriptor, bytes]:
        """The image manifest an index.json entry stands for: itself, or the linux/amd64
        entry of the index it names (one level, as Docker follows)."""
        what = "index" if desc.media_type in INDEX_TYPES else "manifest"
        raw = self._read_blob(desc, what, INDEX_JSON)
        media = desc.media_type or media_type_of(raw)
        if media not in INDEX_TYPES:
            return desc, raw
        nested = Index.from_bytes(raw, media)
        try:
            child = nested.select(Platform())
        except NotFound:
            if len(nested.manifests) == 1 and nested.manifests[0].platform is None:
                child = nested.manifests[0]
            else:
                raise
        if child.media_type in INDEX_TYPES:
            raise CorruptData(f"index {desc.digest} names another index: nested too deep")
        raw = self._read_blob(child, "manifest", f"index {desc.digest}")
        if media_type_of(raw) in INDEX_TYPES:
            raise CorruptData(f"index {desc.digest} names another index: nested too deep")
        return child, raw

    def _oci_image(self, mdesc: Descriptor, raw: bytes) -> ArchiveImage:
        manifest = Manifest.from_bytes(raw, mdesc.media_type)
        config = ImageConfig.parse(
            self._read_blob(manifest.config, "config", f"manifest {mdesc.digest}")
        )
        diff_ids = config.diff_ids
        if len(manifest.layers) != len(diff_ids):
            raise CorruptData(
                f"manifest {mdesc.digest} lists {len(manifest.layers)} layers but its config "
                f"has {len(diff_ids)} diff_ids"
            )
        layers: list[ArchiveLayer] = []
        for ldesc, diff_id in zip(manifest.layers, diff_ids, strict=True):
            name, info = self._resolve(
                f"blobs/sha256/{hex_of(ldesc.digest)}", f"manifest {mdesc.digest}"
            )
            if info.size != ldesc.size:
                raise CorruptData(
                    f"layer {ldesc.digest} is {info.size} bytes, its descriptor says {ldesc.size}"
                )
            layers.append(ArchiveLayer(name, diff_id, ldesc))
        return ArchiveImage(config, tuple(layers), (), raw)


# --------------------------------------------------------------------------------------------
# Writing


class _Sink:
    """What tarfile writes to. It asks tell() once; counting here lets ``out`` be a pipe."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._pos = 0

    def write(self, b: bytes, /) -> int:
        self._out.write(b)
        self._pos += len(b)
        return len(b)

    def tell(self) -> int:
        return self._pos

    def read(self, size: int, /) -> bytes:
        raise io.UnsupportedOperation("write-only")

    def seek(self, offset: int, whence: int = 0, /) -> int:
        raise io.UnsupportedOperation("not seekable")

    def close(self) -> None:
        pass  # ``out`` belongs to the caller


class _Source:
    """A blob stream of a known size: tarfile needs full reads, and any short, long or
    undecodable stream must fail as CorruptData, not as an OSError from the output."""

    def __init__(self, f: BinaryIO, size: int, what: str) -> None:
        self._f = f
        self._left = size
        self._size = size
        self._what = what

    def read(self, n: int = -1, /) -> bytes:
        want = self._left if n < 0 else min(n, self._left)
        chunks: list[bytes] = []
        got = 0
        while got < want:
            chunk = self._raw_read(want - got)
            if not chunk:
                raise CorruptData(
                    f"{self._what} is shorter than {self._size} bytes "
                    f"({self._size - self._left + got})"
                )
            chunks.append(chunk)
            got += len(chunk)
        self._left -= got
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def finish(self) -> None:
        """Check the stream ends exactly here (and, for gzip, its checksum)."""
        if self._raw_read(1):
            raise CorruptData(f"{self._what} is longer than {self._size} bytes")

    def _raw_read(self, n: int) -> bytes:
        try:
            return self._f.read(n)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise CorruptData(f"{self._what}: {e or 'compressed data ends early'}") from None


def _open_writer(out: BinaryIO) -> tarfile.TarFile:
    return tarfile.TarFile(
        fileobj=_Sink(out), mode="w", format=tarfile.PAX_FORMAT, copybufsize=COPY_BUFSIZE
    )


def _tarinfo(name: str, kind: bytes, size: int = 0, mtime: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mtime = mtime
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _add_dir(tf: tarfile.TarFile, name: str, mtime: int = 0) -> None:
    tf.addfile(_tarinfo(name.rstrip("/") + "/", tarfile.DIRTYPE, mtime=mtime))


def _add_bytes(tf: tarfile.TarFile, name: str, data: bytes, mtime: int = 0) -> None:
    tf.addfile(_tarinfo(name, tarfile.REGTYPE, len(data), mtime), io.BytesIO(data))


def _add_stream(
    tf: tarfile.TarFile, name: str, f: BinaryIO, size: int, what: str, mtime: int = 0
) -> None:
    src = _Source(f, size, what)
    tf.addfile(_tarinfo(name, tarfile.REGTYPE, size, mtime), src)
    src.finish()


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _split_tag(tag: str) -> tuple[str, str]:
    """("busybox", "latest") from "busybox:latest"; archives carry tags, never digests."""
    colon = tag.rfind(":")
    if "@" in tag or colon <= tag.rfind("/") or colon in (0, len(tag) - 1):
        raise InvalidArgument(f"cannot write {tag!r} to an archive: expected NAME:TAG")
    return tag[:colon], tag[colon + 1 :]


def _parse_export(img: ExportImage) -> ImageConfig:
    config = ImageConfig.parse(img.config_raw)
    if config.diff_ids != [la.diff_id for la in img.layers]:
        raise CorruptData(
            f"image {digest_bytes(img.config_raw)}: layers do not match the config's diff_ids"
        )
    for tag in img.repo_tags:
        _split_tag(tag)
    return config


def _mtime(created: str) -> int:
    try:
        t = datetime.fromisoformat(created)
    except ValueError:
        return 0
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return max(0, int(t.timestamp()))


def _v1_layers(config: ImageConfig) -> list[tuple[str, bytes]]:
    """(v1 id, legacy ``json``) per layer, as Docker derives them: the id hashes the layer's
    chain ID, its parent's id and the v1 image body, whose top layer carries the image's
    config; so equal chains give equal ids and the same layer written for two images is one
    directory."""
    out: list[tuple[str, bytes]] = []
    parent = ""
    chains = chain_ids(config.diff_ids)
    os_name = config.os or "linux"
    for i, chain in enumerate(chains):
        body: dict[str, Any]
        if i == len(chains) - 1:
            cc = config.data.get("container_config")
            body = {
                "created": config.created or _EPOCH,
                "container_config": docker_container_config(cc if isinstance(cc, dict) else {}),
                "config": docker_container_config(config.config),
                "architecture": config.architecture or "amd64",
                "os": os_name,
            }
            for key in ("author", "comment", "docker_version", "variant"):
                if isinstance(config.data.get(key), str) and config.data[key]:
                    body[key] = config.data[key]
        else:
            body = {
                "created": _EPOCH,
                "container_config": docker_container_config({}),
                "os": os_name,
            }
        seed = json.dumps({**body, "layer_id": chain, "parent": parent}, sort_keys=True)
        v1id = hashlib.sha256(seed.encode()).hexdigest()
        head: dict[str, Any] = {"id": v1id}
        if parent:
            head["parent"] = parent
        out.append((v1id, _json({**head, **body})))
        parent = v1id
    return out


def _uncompressed(layer: ExportLayer, blob: BinaryIO) -> BinaryIO:
    """The layer's tar. docker-archive holds plain tars: Docker (20.10 and 23, whose store
    keeps layers unpacked) writes a pulled zstd layer uncompressed too."""
    media = layer.descriptor.media_type
    if media in PLAIN_LAYER_TYPES:
        return blob
    if media in GZIP_LAYER_TYPES:
        return cast(BinaryIO, gzip.GzipFile(fileobj=blob, mode="rb"))
    # zstd, or an unknown or empty media type: go by the magic number.
    return open_decompressed(blob, what="layer", allowed=LAYER_COMPRESSIONS)


def write_docker_archive(
    out: BinaryIO, images: Sequence[ExportImage], open_blob: Callable[[str], BinaryIO]
) -> None:
    """The legacy layout of ``docker save`` (20.10), which docker load, skopeo and podman read:
    ``<v1id>/{VERSION,json,layer.tar}``, ``<config hex>.json``, ``manifest.json``,
    ``repositories``. Layers are written uncompressed."""
    configs = [_parse_export(img) for img in images]
    tf = _open_writer(out)
    dirs: set[str] = set()
    layer_paths: dict[str, str] = {}  # diff_id -> first layer.tar written for it
    written_configs: set[str] = set()
    manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for img, config in zip(images, configs, strict=True):
        mtime = _mtime(config.created)
        paths: list[str] = []
        for layer, (v1id, v1json) in zip(img.layers, _v1_layers(config), strict=True):
            path = f"{v1id}/layer.tar"
            paths.append(path)
            if v1id in dirs:
                continue
            dirs.add(v1id)
            _add_dir(tf, v1id, mtime)
            _add_bytes(tf, f"{v1id}/VERSION", b"1.0", mtime)
            _add_bytes(tf, f"{v1id}/json", v1json, mtime)
            if layer.diff_id in layer_paths:
                # Same content under another chain: link it, as Docker does.
                link = _tarinfo(path, tarfile.SYMTYPE, mtime=mtime)
                link.linkname = f"../{layer_paths[layer.diff_id]}"
                tf.addfile(link)
                continue
            layer_paths[layer.diff_id] = path
            with open_blob(layer.descriptor.digest) as blob:
                stream = _uncompressed(layer, blob)
                try:
                    what = f"layer {layer.descriptor.digest}"
                    _add_stream(tf, path, stream, layer.tar_size, what, mtime)
                finally:
                    if stream is not blob:
                        stream.close()
        config_name = f"{hex_of(config.id)}.json"
        if config_name not in written_configs:
            written_configs.add(config_name)
            _add_bytes(tf, config_name, img.config_raw, mtime)
        manifest.append(
            {"Config": config_name, "RepoTags": list(img.repo_tags) or None, "Layers": paths}
        )
        if paths:
            top = paths[-1].split("/", 1)[0]
            for tag in img.repo_tags:
                repo, name = _split_tag(tag)
                repositories.setdefault(repo, {})[name] = top
    _add_bytes(tf, MANIFEST_JSON, _json(manifest))
    if repositories:
        _add_bytes(tf, REPOSITORIES, _json(repositories))
    tf.close()


_OCI_LAYER_TYPES = {
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_FOREIGN_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER: OCI_LAYER,
}


def write_oci_archive(
    out: BinaryIO, images: Sequence[ExportImage], open_blob: Callable[[str], BinaryIO]
) -> None:
    """A tar of an OCI image layout: one index.json entry per tag (annotated with the tag and
    the full name, as Docker 25 and containerd write them), blobs as stored."""
    configs = [_parse_export(img) for img in images]
    entries: list[Descriptor] = []
    manifests: list[tuple[Descriptor, bytes]] = []
    for img, config in zip(images, configs, strict=True):
        layers = tuple(
            Descriptor(
                _OCI_LAYER_TYPES.get(
                    la.descriptor.media_type, la.descriptor.media_type or OCI_LAYER
                ),
                la.descriptor.digest,
                la.descriptor.size,
            )
            for la in img.layers
        )
        config_desc = Descriptor(OCI_CONFIG, config.id, len(img.config_raw))
        raw = Manifest(config_desc, layers, OCI_MANIFEST).to_bytes()
        mdesc = Descriptor(OCI_MANIFEST, digest_bytes(raw), len(raw))
        manifests.append((mdesc, raw))
        for tag in img.repo_tags:
            ann = {ANNOTATION_CONTAINERD_NAME: tag, ANNOTATION_REF_NAME: _split_tag(tag)[1]}
            entries.append(Descriptor(OCI_MANIFEST, mdesc.digest, mdesc.size, ann))
        if not img.repo_tags:
            entries.append(mdesc)
    tf = _open_writer(out)
    _add_bytes(tf, OCI_LAYOUT, _json({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    _add_dir(tf, "blobs")
    _add_dir(tf, "blobs/sha256")
    written: set[str] = set()
    for img, (mdesc, raw) in zip(images, manifests, strict=True):
        for la in img.layers:
            d = la.descriptor
            if d.digest in written:
                continue
            written.add(d.digest)
            with open_blob(d.digest) as blob:
                _add_stream(
                    tf, f"blobs/sha256/{hex_of(d.digest)}", blob, d.size, f"blob {d.digest}"
                )
        for digest, data in ((digest_bytes(img.config_raw), img.config_raw), (mdesc.digest, raw)):
            if digest not in written:
                written.add(digest)
                _add_bytes(tf, f"blobs/sha256/{hex_of(digest)}", data)
    _add_bytes(tf, INDEX_JSON, Index(tuple(entries), OCI_INDEX).to_bytes())
    tf.close()


__all__ = [
    "ANNOTATION_CONTAINERD_NAME",
    "ANNOTATION_REF_NAME",
    "ArchiveImage",
    "ArchiveLayer",
    "ArchiveReader",
    "ExportImage",
    "ExportLayer",
    "write_docker_archive",
    "write_oci_archive",
]
