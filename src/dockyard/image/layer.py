"""Layer tarballs: the OCI image-spec changesets (``layer.md``), written and applied.

A layer is a tar stream, possibly compressed. Applying one never trusts its names: every
entry is checked so that nothing is created, changed or linked outside the destination, and
the diff_id (the sha256 of the uncompressed stream) is computed in the same single pass.

Whiteouts follow the OCI spec: ``dir/.wh.name`` deletes ``name`` from lower layers and
``dir/.wh..wh..opq`` makes ``dir`` opaque. On disk, for overlayfs, they become a 0:0 char
device and the ``trusted.overlay.opaque`` xattr; ``write_layer`` converts back.
"""

from __future__ import annotations

import decimal
import errno
import gzip
import hashlib
import importlib
import io
import json
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, Self, cast

from dockyard.errors import CorruptData, UnsafeContent

CHUNK = 1 << 20

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
PAX_XATTR = "SCHILY.xattr."

# Failures that an entry itself causes (a name too long, too many links, ...): reported as
# bad content. Anything else (ENOSPC, EIO, ...) is the host's problem and stays an OSError.
_CONTENT_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.EMLINK, errno.ENOTDIR, errno.EINVAL, errno.ELOOP, errno.EEXIST}
)

_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_OPEN_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


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


def _q(name: str) -> str:
    """A name for messages: double-quoted, undecodable bytes shown as U+FFFD."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return json.dumps(text, ensure_ascii=False)


# ------------------------------------------------------------------ decompression


class _PrefixedRaw(io.RawIOBase):
    """The bytes already sniffed, then the rest of ``inner``: peeking on any stream.
    Closing it leaves ``inner`` open (the caller owns it)."""

    def __init__(self, prefix: bytes, inner: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        mv = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(mv), len(self._prefix))
            mv[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        readinto = getattr(self._inner, "readinto", None)
        if readinto is not None:
            return int(readinto(mv) or 0)
        data = self._inner.read(len(mv))
        mv[: len(data)] = data
        return len(data)


class _DecompressedRaw(io.RawIOBase):
    """A decompressor's output, its format errors turned into CorruptData."""

    def __init__(self, inner: Any, errors: tuple[type[BaseException], ...], kind: str) -> None:
        super().__init__()
        self._inner = inner
        self._errors = errors
        self._kind = kind

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        mv = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(mv))
        except self._errors as e:
            raise CorruptData(f"layer {self._kind} stream is truncated or corrupt: {e}") from e
        mv[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def _read_upto(f: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, looping over short reads (pipes)."""
    out = b""
    while len(out) < n:
        chunk = f.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def open_decompressed(f: BinaryIO) -> BinaryIO:
    """The uncompressed tar stream of a layer blob, whatever its compression.

    Sniffs the magic bytes (gzip, zstd, else plain tar) without seeking, so ``f`` may be a
    pipe. Closing the result does not close ``f``.
    """
    prefix = _read_upto(f, 4)
    raw = io.BufferedReader(_PrefixedRaw(prefix, f), CHUNK)
    if prefix.startswith(GZIP_MAGIC):
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        errors = (EOFError, zlib.error, gzip.BadGzipFile)
        return io.BufferedReader(_DecompressedRaw(gz, errors, "gzip"), CHUNK)
    if prefix == ZSTD_MAGIC:
        try:
            zstd = importlib.import_module("zstandard")
        except ImportError:
            raise CorruptData("zstd layers need the zstandard package") from None
        reader = zstd.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(_DecompressedRaw(reader, (zstd.ZstdError,), "zstd"), CHUNK)
    return raw


# ------------------------------------------------------------------ hashing streams


class _HashingReader:
    """Hashes everything read through it: the diff_id comes out of the same pass."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        self._hash.update(data)
        self.count += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()

    def write(self, b: bytes, /) -> int:
        raise io.UnsupportedOperation("write")

    def tell(self) -> int:
        return self.count

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("seek")

    def close(self) -> None:
        pass


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


# ------------------------------------------------------------------ reading tar headers

# tarfile ends an archive silently on a bad or short header past the first member; only an
# empty read or a zero block is a real end (POSIX: two zero blocks end the archive).
_END_OF_ARCHIVE: tuple[type[Exception], ...] = (
    vars(tarfile)["EmptyHeaderError"],
    vars(tarfile)["EOFHeaderError"],
)
_TRUNCATED_HEADER: tuple[type[Exception], ...] = (
    vars(tarfile)["TruncatedHeaderError"],
    vars(tarfile)["SubsequentHeaderError"],
)


class _StrictTarInfo(tarfile.TarInfo):
    @classmethod
    def fromtarfile(cls, tarfile_: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tarfile_)
        except _END_OF_ARCHIVE:
            raise
        except tarfile.HeaderError as e:
            if tarfile_.offset == 0 or not isinstance(e, _TRUNCATED_HEADER):
                raise CorruptData(f"layer is not a valid tar archive: {e}") from e
            raise CorruptData("layer tar is truncated") from e


def _tar_error(e: tarfile.TarError) -> CorruptData:
    if "unexpected end of data" in str(e):
        return CorruptData("layer tar is truncated")
    return CorruptData(f"layer is not a valid tar archive: {e}")


def _clean(name: str, what: str) -> str:
    """``name`` relative to the root, lexically normalised ("." is the root itself).
    ``what`` starts the error message."""
    if name.startswith("/"):
        raise UnsafeContent(f"{what} is absolute")
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../"):
        raise UnsafeContent(f"{what} escapes the root")
    return norm


_NS_MAX = (1 << 63) - 1


def _mtime_ns(ti: tarfile.TarInfo) -> int:
    """The entry's mtime in ns: exact from a PAX record, clamped to what utime accepts."""
    ns = 0
    try:
        raw = ti.pax_headers.get("mtime")
        if raw:
            ns = int(decimal.Decimal(raw) * 1_000_000_000)
        else:
            ns = int(ti.mtime) * 1_000_000_000
    except (ArithmeticError, ValueError):  # "nan", "inf", garbage
        pass
    return max(-_NS_MAX, min(ns, _NS_MAX))


# ------------------------------------------------------------------ apply


class _Applier:
    """Applies one layer's entries under ``dest``; holds what the checks have learnt."""

    def __init__(self, dest: str, overlay: bool) -> None:
        self.dest = os.path.abspath(dest)
        self.overlay = overlay
        # Dirs (relative) verified to be real directories, all their ancestors too. Cleared
        # whenever a directory is removed, so a replaced parent is always re-checked.
        self.real_dirs: set[str] = set()
        # Paths this layer created: whiteouts never hide entries of their own layer.
        self.written: set[str] = set()
        # Directory mtimes are set last: creating entries inside changes them.
        self.dir_times: dict[str, int] = {}
        self.size = 0

    def path(self, rel: str) -> str:
        return self.dest if rel == "." else os.path.join(self.dest, rel)

    # -- path checks

    def _parents(self, rel: str, name: str, *, create: bool) -> bool:
        """Check (with lstat) that every parent of ``rel`` is a real directory, never a
        symlink. Missing parents are created if ``create``, else the result is False."""
        parent = rel.rpartition("/")[0]
        if not parent or parent in self.real_dirs:
            return True
        prefix = ""
        for part in parent.split("/"):
            prefix = f"{prefix}/{part}" if prefix else part
            if prefix in self.real_dirs:
                continue
            p = self.path(prefix)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                if not create:
                    return False
                os.mkdir(p, 0o755)
                self.written.add(prefix)
                self.real_dirs.add(prefix)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeContent(
                    f"unsafe path in layer: {_q(name)} goes through symlink {_q(prefix)}"
                )
            if not stat.S_ISDIR(st.st_mode):
                raise CorruptData(
                    f"invalid path in layer: {_q(name)}: {_q(prefix)} is not a directory"
                )
            self.real_dirs.add(prefix)
        return True

    def _lstat(self, rel: str) -> os.stat_result | None:
        try:
            return os.lstat(self.path(rel))
        except FileNotFoundError:
            return None

    def _remove(self, rel: str, st: os.stat_result) -> None:
        p = self.path(rel)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(p)  # never follows symlinks inside
            self.real_dirs.clear()
        else:
            os.unlink(p)

    def _dir_at(self, rel: str, name: str) -> None:
        """Make sure ``rel`` is a real directory (for whiteouts that name it)."""
        if rel == "." or rel in self.real_dirs:
            return
        self._parents(rel, name, create=True)
        st = self._lstat(rel)
        if st is None:
            os.mkdir(self.path(rel), 0o755)
            self.written.add(rel)
        elif stat.S_ISLNK(st.st_mode):
            raise UnsafeContent(f"unsafe path in layer: {_q(name)} goes through symlink {_q(rel)}")
        elif not stat.S_ISDIR(st.st_mode):
            raise CorruptData(f"invalid path in layer: {_q(name)}: {_q(rel)} is not a directory")
        self.real_dirs.add(rel)

    # -- metadata

    def _xattrs(self, target: str | int, ti: tarfile.TarInfo) -> None:
        for key, value in ti.pax_headers.items():
            if not key.startswith(PAX_XATTR):
                continue
            attr = key[len(PAX_XATTR) :]
            if attr.startswith("trusted.overlay."):
                # Overlay state (opaque, redirect, ...) comes only from OCI whiteouts: a
                # layer must not steer overlayfs by itself.
                continue
            data = value.encode("utf-8", "surrogateescape")
            try:
                if isinstance(target, int):
                    os.setxattr(target, attr, data)
                else:
                    os.setxattr(target, attr, data, follow_symlinks=False)
            except OSError as e:
                if attr.startswith("security.") and e.errno in (errno.EPERM, errno.EOPNOTSUPP):
                    continue  # e.g. no SELinux/IMA here: best effort, as Docker does
                raise CorruptData(
                    f"cannot set xattr {attr} on {_q(ti.name)} from layer: {e.strerror}"
                ) from e

    def _owner_mode(self, p: str, ti: tarfile.TarInfo, *, chmod: bool = True) -> None:
        os.chown(p, ti.uid, ti.gid, follow_symlinks=False)
        if chmod:
            # After chown: chown clears setuid/setgid.
            os.chmod(p, ti.mode & 0o7777)

    # -- entries

    def entry(self, ti: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        name = ti.name
        rel = _clean(name, f"unsafe path in layer: {_q(name)}")
        parent, _, base = rel.rpartition("/")
        parent = parent or "."
        if base.startswith(WHITEOUT_PREFIX):
            if base == WHITEOUT_OPAQUE:
                self._opaque(parent, name)
            elif base.startswith(WHITEOUT_META_PREFIX):
                pass  # AUFS bookkeeping (.wh..wh.plnk, ...): ignored, as Docker does
            else:
                target = base[len(WHITEOUT_PREFIX) :]
                if target in ("", ".", ".."):
                    raise UnsafeContent(f"unsafe whiteout in layer: {_q(name)}")
                self._whiteout(target if parent == "." else f"{parent}/{target}", name, ti)
            return
        if ti.ischr() and ti.devmajor == 0 and ti.devminor == 0:
            self._whiteout(rel, name, ti)  # the overlayfs whiteout form
            return
        if ti.ischr() or ti.isblk():
            kind = "char" if ti.ischr() else "block"
            raise UnsafeContent(
                f"unsafe entry in layer: {_q(name)} is a {kind} device"
                f" {ti.devmajor}:{ti.devminor}; device nodes are not allowed"
            )
        if not (ti.isreg() or ti.isdir() or ti.issym() or ti.islnk() or ti.isfifo()):
            raise UnsafeContent(
                f"unsafe entry in layer: {_q(name)} has unsupported type {ti.type!r}"
            )
        if rel == ".":
            if not ti.isdir():
                raise UnsafeContent(f"unsafe entry in layer: {_q(name)} would replace the root")
            self._owner_mode(self.dest, ti)
            self._xattrs(self.dest, ti)
            self.dir_times["."] = _mtime_ns(ti)
            return

        self._parents(rel, name, create=True)
        p = self.path(rel)
        old = self._lstat(rel)

        if ti.isdir():
            if old is not None and not stat.S_ISDIR(old.st_mode):
                self._remove(rel, old)
                old = None
            if old is None:
                os.mkdir(p, 0o700)
            self._owner_mode(p, ti)
            self._xattrs(p, ti)
            self.real_dirs.add(rel)
            self.dir_times[rel] = _mtime_ns(ti)
        elif ti.islnk():
            source = self._link_source(ti)
            if source == rel:
                return
            if old is not None:
                self._remove(rel, old)
            try:
                os.link(self.path(source), p, follow_symlinks=False)
            except FileNotFoundError:
                raise UnsafeContent(
                    f"unsafe hard link in layer: {_q(name)} -> {_q(ti.linkname)}:"
                    " target does not exist in the layer"
                ) from None
        else:
            if old is not None:
                self._remove(rel, old)
            if ti.isreg():
                self._file(p, ti, tf)
            elif ti.issym():
                # The target may point anywhere (absolute links are normal in images):
                # nothing is ever written through a symlink, see _parents.
                os.symlink(ti.linkname, p)
                self._owner_mode(p, ti, chmod=False)
                self._xattrs(p, ti)
                os.utime(p, ns=(_mtime_ns(ti),) * 2, follow_symlinks=False)
            else:
                os.mkfifo(p, 0o600)
                self._owner_mode(p, ti)
                self._xattrs(p, ti)
                os.utime(p, ns=(_mtime_ns(ti),) * 2, follow_symlinks=False)
        self.written.add(rel)

    def _file(self, p: str, ti: tarfile.TarInfo, tf: tarfile.TarFile) -> None:
        src = tf.extractfile(ti)
        assert src is not None  # regular files always have a data stream
        # O_EXCL|O_NOFOLLOW: always a new inode here, never an existing file or link target.
        fd = os.open(p, _OPEN_NEW, 0o600)
        with open(fd, "wb", buffering=CHUNK) as out:
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fchown(fd, ti.uid, ti.gid)
            os.fchmod(fd, ti.mode & 0o7777)
            self._xattrs(fd, ti)
            os.utime(fd, ns=(_mtime_ns(ti),) * 2)
        self.size += ti.size

    def _link_source(self, ti: tarfile.TarInfo) -> str:
        """The hard link's target, checked: inside dest, not through a symlink, existing."""
        what = f"unsafe hard link in layer: {_q(ti.name)} -> {_q(ti.linkname)}"
        source = _clean(ti.linkname, what)
        if source == ".":
            raise UnsafeContent(f"{what}: target is a directory")
        try:
            exists = self._parents(source, ti.linkname, create=False)
        except UnsafeContent:
            raise UnsafeContent(f"{what}: target goes through a symlink") from None
        except CorruptData:
            exists = False
        st = self._lstat(source) if exists else None
        if st is None:
            raise UnsafeContent(f"{what}: target does not exist in the layer")
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeContent(f"{what}: target is a directory")
        return source

    def _whiteout(self, rel: str, name: str, ti: tarfile.TarInfo) -> None:
        # OCI layer.md: whiteouts apply to lower layers only, never to this layer's entries.
        if rel in self.written:
            return
        if self.overlay:
            self._parents(rel, name, create=True)
            old = self._lstat(rel)
            if old is not None:
                self._remove(rel, old)
            p = self.path(rel)
            os.mknod(p, stat.S_IFCHR, os.makedev(0, 0))  # overlayfs's whiteout
            os.chown(p, ti.uid, ti.gid, follow_symlinks=False)
        else:
            if not self._parents(rel, name, create=False):
                return
            old = self._lstat(rel)
            if old is not None:
                self._remove(rel, old)

    def _opaque(self, rel_dir: str, name: str) -> None:
        self._dir_at(rel_dir, name)
        if self.overlay:
            os.setxattr(self.path(rel_dir), OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
            return
        # Flat tree: hide what lower layers put in the dir, keep this layer's entries.
        todo = [rel_dir]
        while todo:
            d = todo.pop()
            with os.scandir(self.path(d)) as it:
                children = list(it)
            for child in children:
                rel = child.name if d == "." else f"{d}/{child.name}"
                if rel not in self.written:
                    self._remove(rel, child.stat(follow_symlinks=False))
                elif child.is_dir(follow_symlinks=False):
                    todo.append(rel)

    def _parents_ok(self, rel: str) -> bool:
        try:
            return self._parents(rel, rel, create=False)
        except CorruptData:
            return False

    def finish(self) -> None:
        for rel, ns in self.dir_times.items():
            if rel != "." and not self._parents_ok(rel):
                continue
            st = self._lstat(rel)
            if st is not None and stat.S_ISDIR(st.st_mode):
                os.utime(self.path(rel), ns=(ns, ns), follow_symlinks=False)


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
    an entry that would escape ``dest`` or create a device, CorruptData for a broken stream
    or a diff_id other than ``expected_diff_id``. On error ``dest`` is left partial.
    """
    applier = _Applier(dest, overlay_whiteouts)
    with open_decompressed(stream) as plain:
        reader = _HashingReader(plain)
        tf: tarfile.TarFile | None
        try:
            tf = tarfile.open(
                fileobj=reader,
                mode="r|",
                bufsize=CHUNK,
                tarinfo=_StrictTarInfo,
                encoding="utf-8",
                errors="surrogateescape",
            )
        except tarfile.TarError as e:
            if reader.count:
                raise _tar_error(e) from e
            tf = None  # an empty stream: an empty layer (Go's archive/tar agrees)
        if tf is not None:
            try:
                while (ti := tf.next()) is not None:
                    # tarfile keeps every member; a layer can have millions.
                    cast(Any, tf).members.clear()
                    try:
                        applier.entry(ti, tf)
                    except OSError as e:
                        if e.errno not in _CONTENT_ERRNOS:
                            raise
                        raise CorruptData(
                            f"cannot apply layer entry {_q(ti.name)}: {e.strerror}"
                        ) from e
            except tarfile.TarError as e:
                raise _tar_error(e) from e
            tf.close()
        # The diff_id covers the whole stream, end-of-archive blocks and padding included.
        reader.drain()
    applier.finish()
    diff_id = reader.digest()
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise CorruptData(f"layer diff_id mismatch: expected {expected_diff_id}, got {diff_id}")
    return AppliedLayer(diff_id=diff_id, tar_size=reader.count, size=applier.size)


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
