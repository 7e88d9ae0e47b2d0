"""Layer tarballs: the OCI image-spec changesets (``layer.md``), written and applied.

A layer is a tar stream, possibly compressed (plain, gzip or zstd: the OCI media types).
Applying one goes through the one tar extractor (``unpack.py``), which never trusts its
names: nothing is created, changed or linked outside the destination, and the diff_id (the
sha256 of the uncompressed stream) is computed in the same single pass.

Whiteouts follow the OCI spec: ``dir/.wh.name`` deletes ``name`` from lower layers and
``dir/.wh..wh..opq`` makes ``dir`` opaque. On disk, for overlayfs, they become a 0:0 char
device and the ``trusted.overlay.opaque`` xattr; ``write_layer`` converts back.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, cast

from dockyard.errors import CorruptData
from dockyard.image.compression import LAYER_COMPRESSIONS
from dockyard.image.compression import open_decompressed as _open_decompressed
from dockyard.image.tarstream import TarStream
from dockyard.image.unpack import (
    OVERLAY_OPAQUE_XATTR,
    PAX_XATTR,
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
    UnpackOptions,
    open_root,
    unpack,
)

CHUNK = 1 << 20  # write_layer's reads and writes
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC

# A layer's entries land as archived (owners, modes, xattrs, the "." entry's metadata);
# nothing is followed: a layer dir is our own, and a symlink on the way is an attack.
# Device nodes are made: Docker's layers carry them (a debootstrap root has /dev/console),
# and a container's device cgroup is what keeps them from being opened.
LAYER_OPTIONS = UnpackOptions(noun="layer", whiteouts="overlay", devices="create")
FLAT_LAYER_OPTIONS = UnpackOptions(noun="layer", whiteouts="delete", devices="create")


@dataclass(frozen=True, slots=True)
class AppliedLayer:
    diff_id: str  # sha256 of the whole uncompressed tar stream, read to EOF
    tar_size: int  # bytes of the uncompressed tar stream
    size: int  # sum of the regular-file sizes written


@dataclass(frozen=True, slots=True)
class WrittenLayer:
    diff_id: str  # sha256 of the tar bytes written
    tar_size: int
    size: int  # sum of the regular-file sizes written


class SupportsWriteBytes(Protocol):
    """Where ``write_layer`` puts the tar: a binary file or anything with ``write``."""

    def write(self, data: bytes, /) -> object: ...


def open_decompressed(f: BinaryIO) -> BinaryIO:
    """The uncompressed tar stream of a layer blob (plain, gzip or zstd), sniffed without
    seeking (``f`` may be a pipe). Closing the result does not close ``f``."""
    return _open_decompressed(f, what="layer", allowed=LAYER_COMPRESSIONS)


# ------------------------------------------------------------------ apply


def apply_layer(
    stream: BinaryIO,
    dest: str,
    *,
    overlay_whiteouts: bool = True,
    expected_diff_id: str | None = None,
) -> AppliedLayer:
    """Unpack a (possibly compressed) layer into ``dest``, an existing directory.

    With ``overlay_whiteouts`` whiteouts become overlayfs whiteouts (``dest`` is a layer
    dir); without, they delete from ``dest`` (a flat, merged tree). Raises UnsafeContent for
    an entry that would escape ``dest``, CorruptData for a broken stream
    or a diff_id other than ``expected_diff_id``. On error ``dest`` is left partial.
    """
    options = LAYER_OPTIONS if overlay_whiteouts else FLAT_LAYER_OPTIONS
    root = open_root(dest)
    try:
        with TarStream(stream, noun="layer", compressions=LAYER_COMPRESSIONS, digest=True) as tar:
            size = unpack(tar, root, options)  # reads to the end: the diff_id covers it all
            diff_id, tar_size = tar.digest(), tar.size
    finally:
        os.close(root)
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise CorruptData(f"layer diff_id mismatch: expected {expected_diff_id}, got {diff_id}")
    return AppliedLayer(diff_id=diff_id, tar_size=tar_size, size=size)


# ------------------------------------------------------------------ hashing writes


class _HashingWriter:
    """Hashes and counts what is written; batches tar's 512-byte headers into big writes."""

    def __init__(self, out: SupportsWriteBytes) -> None:
        self._out = out
        self._hash = hashlib.sha256()
        self._buf = bytearray()
        self.count = 0

    def write(self, b: bytes, /) -> int:
        self._hash.update(b)
        self.count += len(b)
        if len(b) >= CHUNK:
            self.flush()
            self._out.write(bytes(b))
        else:
            self._buf += b
            if len(self._buf) >= CHUNK:
                self.flush()
        return len(b)

    def flush(self) -> None:
        if self._buf:
            self._out.write(bytes(self._buf))
            self._buf.clear()

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def read(self, size: int = -1, /) -> bytes:
        raise io.UnsupportedOperation("read")

    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("seek")

    def close(self) -> None:
        self.flush()


# ------------------------------------------------------------------ write


def _list_sorted(path: str) -> Iterator[os.DirEntry[str]]:
    # Byte order of names: the same tree always gives the same bytes.
    with os.scandir(path) as it:
        entries = sorted(it, key=lambda e: os.fsencode(e.name))
    return iter(entries)


def _read_xattrs(path: str) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EPERM):
            return {}
        raise
    out: dict[str, str] = {}
    for attr in sorted(names):
        if attr.startswith("trusted.overlay.") or attr == "security.selinux":
            continue  # overlayfs internals and host labels are not image content
        try:
            value = os.getxattr(path, attr, follow_symlinks=False)
        except OSError as e:
            if e.errno == errno.ENODATA:
                continue  # removed meanwhile
            raise
        out[PAX_XATTR + attr] = value.decode("utf-8", "surrogateescape")
    return out


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def write_layer(
    src: str,
    out: SupportsWriteBytes,
    *,
    from_overlay_upper: bool = True,
    mtime_clamp: int | None = None,
) -> WrittenLayer:
    """Write the tree under ``src`` to ``out`` as an uncompressed layer tar.

    Deterministic: entries in sorted order, directories before their contents, PAX format,
    numeric owners only. With ``from_overlay_upper``, overlayfs whiteouts (0:0 char devices,
    ``trusted.overlay.opaque``) become OCI ``.wh.`` entries. Sockets are skipped.
    """
    hw = _HashingWriter(out)
    tf = tarfile.TarFile(
        fileobj=hw,
        mode="w",
        format=tarfile.PAX_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
        copybufsize=CHUNK,
    )
    links: dict[tuple[int, int], str] = {}
    size = 0

    def header(rel: str, st: os.stat_result, kind: bytes) -> tarfile.TarInfo:
        ti = tarfile.TarInfo(rel)
        ti.type = kind
        ti.mode = stat.S_IMODE(st.st_mode)
        ti.uid, ti.gid = st.st_uid, st.st_gid
        ti.uname = ti.gname = ""
        mtime = int(st.st_mtime)
        ti.mtime = mtime if mtime_clamp is None else min(mtime, mtime_clamp)
        return ti

    def add(ti: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        tf.addfile(ti, data)
        cast(Any, tf).members.clear()  # tarfile keeps every member otherwise

    stack = [("", _list_sorted(src))]
    while stack:
        prefix, it = stack[-1]
        entry = next(it, None)
        if entry is None:
            stack.pop()
            continue
        rel = prefix + entry.name
        path = entry.path
        st = entry.stat(follow_symlinks=False)
        mode = st.st_mode

        if stat.S_ISDIR(mode):
            ti = header(rel, st, tarfile.DIRTYPE)
            ti.pax_headers = _read_xattrs(path)
            add(ti)
            if from_overlay_upper and _is_opaque(path):
                # OCI layer.md: the opaque marker sits in the directory it applies to.
                wo = header(f"{rel}/{WHITEOUT_OPAQUE}", st, tarfile.REGTYPE)
                wo.mode &= 0o777
                add(wo)
            stack.append((rel + "/", _list_sorted(path)))
            continue

        if from_overlay_upper and stat.S_ISCHR(mode) and st.st_rdev == 0:
            # overlayfs whiteout -> OCI whiteout file. Checked before hard links: the
            # kernel may share one whiteout inode between many names.
            parent, _, base = rel.rpartition("/")
            wname = f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else WHITEOUT_PREFIX + base
            wo = header(wname, st, tarfile.REGTYPE)
            wo.mode = 0o600
            add(wo)
            continue

        if stat.S_ISSOCK(mode):
            continue  # sockets cannot be archived (Docker skips them too)

        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = links.get(key)
            if first is not None:
                ti = header(rel, st, tarfile.LNKTYPE)
                ti.linkname = first
                add(ti)
                continue
            links[key] = rel

        if stat.S_ISREG(mode):
            fd = os.open(path, _OPEN_READ)
            with open(fd, "rb", buffering=CHUNK) as f:
                fst = os.fstat(fd)
                ti = header(rel, fst, tarfile.REGTYPE)
                ti.size = fst.st_size
                ti.pax_headers = _read_xattrs(path)
                add(ti, f)
            size += ti.size
        elif stat.S_ISLNK(mode):
            ti = header(rel, st, tarfile.SYMTYPE)
            ti.linkname = os.readlink(path)
            ti.pax_headers = _read_xattrs(path)
            add(ti)
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = (
                tarfile.FIFOTYPE
                if stat.S_ISFIFO(mode)
                else tarfile.CHRTYPE
                if stat.S_ISCHR(mode)
                else tarfile.BLKTYPE
            )
            ti = header(rel, st, kind)
            if not stat.S_ISFIFO(mode):
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            ti.pax_headers = _read_xattrs(path)
            add(ti)

    tf.close()  # end-of-archive blocks
    hw.flush()
    return WrittenLayer(diff_id=hw.digest(), tar_size=hw.count, size=size)
