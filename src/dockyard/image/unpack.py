"""The one tar extractor: image layers, tar build contexts, ADD archives and ``docker cp``.

An archive is untrusted input, and the tree it is unpacked into may be changing under us (a
running container's root). So nothing is resolved by path: every entry is written through
directory file descriptors opened component by component with ``O_NOFOLLOW``, below the
directory the caller named, and a name that would land outside it (``..``, an absolute
name, a symlink on the way, a hard link to outside) is refused before anything is written.
Device nodes are made only where the caller says (image layers), never opened.

What differs between callers is spelt out in ``UnpackOptions``; each field is a requirement
of one caller (see docs/architecture.md, "One tar extractor"):

* image layers: OCI whiteouts (as overlayfs whiteouts in a layer dir, or as deletions in a
  flat tree), owners, modes and xattrs as archived, the ``.`` entry's metadata kept;
* ``docker cp``: symlinks on the way are followed *inside* the container's root (a chroot's
  view, as Docker's cp), absolute names are taken below the destination, a directory is
  never replaced by a file or the reverse (Docker's noOverwriteDirNonDir), the top entry may
  be renamed (Docker's destination rules), and on the host files belong to the user and lose
  their set-id bits.
"""

from __future__ import annotations

import decimal
import errno
import json
import os
import shutil
import stat
import tarfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dockyard.errors import CorruptData, DockyardError, InvalidArgument, UnsafeContent
from dockyard.image.rootdir import DIR_FLAGS, open_dir_in_root
from dockyard.image.tarstream import TarStream

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
PAX_XATTR = "SCHILY.xattr."

# Failures that an entry itself causes (a name too long, too many links, ...): reported as
# bad content. Anything else (ENOSPC, EIO, EACCES, ...) is the host's problem.
_CONTENT_ERRNOS = frozenset(
    {
        errno.ENAMETOOLONG,
        errno.EMLINK,
        errno.ENOTDIR,
        errno.EINVAL,
        errno.ELOOP,
        errno.EEXIST,
        errno.ENOENT,
    }
)
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Open directory fds kept between entries (an archive lists a directory's entries together).
_CACHED_DIRS = 64

Whiteouts = Literal["keep", "overlay", "delete"]
Devices = Literal["refuse", "create", "skip"]
Owners = Literal["archive", "extractor"] | tuple[int, int]


@dataclass(frozen=True, slots=True)
class UnpackOptions:
    noun: str = "archive"  # names the input in messages: "layer", "archive"
    shown_root: str = ""  # the destination as the user knows it, for messages ("" = none)
    # OCI whiteouts (.wh.name, .wh..wh..opq, 0:0 char devices): "overlay" makes overlayfs
    # whiteouts (a layer dir), "delete" deletes what they name (a flat tree), "keep" treats
    # .wh. names as ordinary files (docker cp, as Docker's Untar).
    whiteouts: Whiteouts = "keep"
    absolute_names: bool = False  # "/x" means "x" below the destination (tar, Docker's cp)
    follow_symlinks: bool = False  # symlinks on the way: followed inside the root, or refused
    owners: Owners = "archive"  # the archive's ids, the extracting user's, or these
    strip_setid: bool = False
    xattrs: bool = True
    root_metadata: bool = True  # the "." entry's owner/mode/mtime go to the destination
    replace_dir_non_dir: bool = True  # else a dir/non-dir clash is an error (Docker's cp)
    rename_top: tuple[str, str] | None = None  # (old, new) top entry name; others refused
    # Device nodes: refused, made (image layers: a root filesystem made by debootstrap has
    # /dev/console, and Docker's layers carry them; a container's device cgroup denies
    # opening them), or left out (a root filesystem exported to the host).
    devices: Devices = "refuse"


def _q(name: str) -> str:
    """A name for messages: double-quoted, undecodable bytes shown as U+FFFD."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return json.dumps(text, ensure_ascii=False)


# ------------------------------------------------------------------ metadata

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


def _lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


# ------------------------------------------------------------------ unpacking

_Parts = tuple[str, ...]


class _Unpacker:
    """Unpacks one archive's entries below ``base`` of ``root_fd``; holds what it has learnt."""

    def __init__(self, root_fd: int, base: _Parts, opts: UnpackOptions, archive: TarStream) -> None:
        self.root_fd = root_fd
        self.base = base
        self.opts = opts
        self.archive = archive
        self.noun = opts.noun
        # Docker's words where the destination means something to the user (docker cp).
        self.escapes = (
            f"is outside of {_q(opts.shown_root)}" if opts.shown_root else "escapes the root"
        )
        self.track_written = opts.whiteouts != "keep"
        # Paths this archive wrote: whiteouts never hide entries of their own layer.
        self.written: set[_Parts] = set()
        # Directory metadata is set last: creating entries inside changes the mtime.
        self.dirs: dict[_Parts, tarfile.TarInfo] = {}
        self.size = 0
        # Directory fds by entry path (below base), least recently used first. Those handed
        # out for the current entry are pinned: never closed until the next entry.
        self._fds: OrderedDict[_Parts, int] = OrderedDict()
        self._pinned: set[_Parts] = set()
        if opts.owners == "archive":
            self._implicit_ids: tuple[int, int] | None = (0, 0)
        elif opts.owners == "extractor":
            self._implicit_ids = None
        else:
            self._implicit_ids = opts.owners
        # Whiteouts know what this archive wrote by name, which holds only when no symlink
        # redirects a name; a base is resolved the way the entries below it are.
        if opts.follow_symlinks and self.track_written:
            raise ValueError("whiteouts need follow_symlinks off")
        if base and not opts.follow_symlinks:
            raise ValueError("a base below the root needs follow_symlinks")
        self.base_fd = open_dir_in_root(root_fd, base) if opts.follow_symlinks else os.dup(root_fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        os.close(self.base_fd)

    # -- names

    def parts(self, name: str, what: str) -> _Parts:
        """An archive name as components below the destination. ``what`` starts messages."""
        if "\x00" in name:
            raise UnsafeContent(f"{what} has a NUL byte")
        prefix: _Parts = ()
        if self.opts.rename_top is not None:
            old, new = self.opts.rename_top
            prefix = (new,)
            if old != ".":
                comps = [c for c in name.split("/") if c]
                if not comps or comps[0] != old:
                    raise UnsafeContent(f"{what} is not inside the copied path {_q(old)}")
                name = "/".join(comps[1:])
        if name.startswith("/") and not self.opts.absolute_names:
            raise UnsafeContent(f"{what} is absolute")
        out: list[str] = []
        for c in name.split("/"):
            if c in ("", "."):
                continue
            if c == "..":
                if not out:
                    raise UnsafeContent(f"{what} {self.escapes}")
                out.pop()
            else:
                out.append(c)
        return prefix + tuple(out)

    def show(self, parts: _Parts) -> str:
        return os.path.join(self.opts.shown_root or "/", *parts)

    # -- directories

    def _made(self, fd: int) -> None:
        """A parent the archive did not list: 0755, root's (or the forced owner's), as Docker
        makes them, whatever the umask."""
        if self._implicit_ids is not None:
            os.fchown(fd, *self._implicit_ids)
        os.fchmod(fd, 0o755)

    def _remember(self, parts: _Parts, fd: int) -> None:
        self._fds[parts] = fd
        self._pinned.add(parts)
        while len(self._fds) > _CACHED_DIRS:
            oldest = next((k for k in self._fds if k not in self._pinned), None)
            if oldest is None:
                break
            os.close(self._fds.pop(oldest))

    def forget(self) -> None:
        """Something was removed: cached directories may be gone or reached differently."""
        for key in [k for k in self._fds if k not in self._pinned]:
            os.close(self._fds.pop(key))

    def dir(self, parts: _Parts, name: str, *, create: bool) -> int:
        """The (borrowed) fd of directory ``parts`` below base. Missing directories are made
        when ``create``, else FileNotFoundError. A symlink on the way is followed inside the
        root or refused (UnsafeContent); a non-directory is CorruptData."""
        if not parts:
            return self.base_fd
        fd = self._fds.get(parts)
        if fd is not None:
            self._fds.move_to_end(parts)
            self._pinned.add(parts)
            return fd
        if self.opts.follow_symlinks:
            try:
                fd = open_dir_in_root(
                    self.root_fd, self.base + parts, create=self._made if create else None
                )
            except NotADirectoryError as e:
                raise CorruptData(
                    f"invalid path in {self.noun}: {_q(name)}: {_q(str(e.filename))} is not a"
                    " directory"
                ) from None
            self._remember(parts, fd)
            return fd
        # No symlinks are followed, so any cached prefix is where the walk can start.
        start = len(parts) - 1
        while start > 0 and parts[:start] not in self._fds:
            start -= 1
        cur = self.base_fd
        if start:
            cur = self._fds[parts[:start]]
            self._pinned.add(parts[:start])
        for i in range(start, len(parts)):
            cur = self._open_child(cur, parts[: i + 1], name, create)
            self._remember(parts[: i + 1], cur)
        return cur

    def _open_child(self, parent: int, parts: _Parts, name: str, create: bool) -> int:
        leaf = parts[-1]
        for _ in range(100):  # another process may be swapping the entry under us
            try:
                return os.open(leaf, DIR_FLAGS, dir_fd=parent)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(leaf, 0o700, dir_fd=parent)
                except FileExistsError:
                    continue  # made meanwhile: look again
                fd = os.open(leaf, DIR_FLAGS, dir_fd=parent)
                self._made(fd)
                if self.track_written:
                    self.written.add(parts)
                return fd
            except OSError as e:
                if e.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                st = os.stat(leaf, dir_fd=parent, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    raise UnsafeContent(
                        f"unsafe path in {self.noun}: {_q(name)} goes through symlink"
                        f" {_q('/'.join(parts))}"
                    ) from None
                if stat.S_ISDIR(st.st_mode):
                    continue  # replaced meanwhile: look again
                raise CorruptData(
                    f"invalid path in {self.noun}: {_q(name)}: {_q('/'.join(parts))} is not a"
                    " directory"
                ) from None
        raise DockyardError(f"cannot unpack {_q(name)}: {_q('/'.join(parts))} keeps changing")

    def remove(self, parent: int, leaf: str, st: os.stat_result) -> None:
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(leaf, dir_fd=parent)  # fd-based, never follows symlinks inside
        else:
            os.unlink(leaf, dir_fd=parent)
        self.forget()

    # -- metadata

    def ids(self, ti: tarfile.TarInfo) -> tuple[int, int] | None:
        owners = self.opts.owners
        if owners == "archive":
            return ti.uid, ti.gid
        if owners == "extractor":
            return None
        return owners

    def mode(self, ti: tarfile.TarInfo) -> int:
        mode = ti.mode & 0o7777
        if self.opts.strip_setid:
            mode &= ~(stat.S_ISUID | stat.S_ISGID)
        return mode

    def set_xattrs(self, target: int | str, ti: tarfile.TarInfo) -> None:
        """The entry's PAX xattrs on ``target`` (an open fd, or the /proc path of a symlink)."""
        if not self.opts.xattrs:
            return
        for key, value in ti.pax_headers.items():
            if not key.startswith(PAX_XATTR):
                continue
            attr = key[len(PAX_XATTR) :]
            if attr.startswith("trusted.overlay."):
                # Overlay state (opaque, redirect, ...) comes only from OCI whiteouts: an
                # archive must not steer overlayfs by itself.
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
                    f"cannot set xattr {attr} on {_q(ti.name)} from {self.noun}: {e.strerror}"
                ) from e

    def set_meta(self, fd: int, ti: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs and mtime of an entry, through its open fd."""
        ids = self.ids(ti)
        if ids is not None:
            os.fchown(fd, *ids)  # before chmod: chown clears set-id bits
        os.fchmod(fd, self.mode(ti))
        self.set_xattrs(fd, ti)
        ns = _mtime_ns(ti)
        os.utime(fd, ns=(ns, ns))

    # -- entries

    def entry(self, ti: tarfile.TarInfo) -> None:
        self._pinned.clear()
        name = ti.name
        parts = self.parts(name, f"unsafe path in {self.noun}: {_q(name)}")
        if self.opts.whiteouts != "keep" and parts:
            if parts[-1].startswith(WHITEOUT_PREFIX):
                self.whiteout_entry(parts, name, ti)
                return
            if ti.ischr() and ti.devmajor == 0 and ti.devminor == 0:
                self.whiteout(parts, name, ti)  # the overlayfs whiteout form
                return
        device = ti.ischr() or ti.isblk()
        if device and self.opts.devices != "create":
            if self.opts.devices == "skip":
                return
            kind = "char" if ti.ischr() else "block"
            raise UnsafeContent(
                f"unsafe entry in {self.noun}: {_q(name)} is a {kind} device"
                f" {ti.devmajor}:{ti.devminor}; device nodes are not allowed"
            )
        if not (device or ti.isreg() or ti.isdir() or ti.issym() or ti.islnk() or ti.isfifo()):
            raise UnsafeContent(
                f"unsafe entry in {self.noun}: {_q(name)} has unsupported type {ti.type!r}"
            )
        if ti.issym() and "\x00" in ti.linkname:
            raise UnsafeContent(f"unsafe symlink in {self.noun}: {_q(name)} has a NUL byte")
        if not parts:
            # "." is the destination itself: it stays a directory.
            if not ti.isdir():
                raise UnsafeContent(
                    f"unsafe entry in {self.noun}: {_q(name)} would replace the root"
                )
            if self.opts.root_metadata:
                self.dirs[()] = ti
            return
        link: tuple[int, str] | None = None
        if ti.islnk():
            source = self.link_source(ti)  # checked before anything is removed
            if source == parts:
                return  # a link to itself (GNU tar writes them for a file named twice)
            link = (self.dir(source[:-1], ti.linkname, create=False), source[-1])
        parent = self.dir(parts[:-1], name, create=True)
        leaf = parts[-1]
        old = _lstat_at(parent, leaf)
        if old is not None:
            old_is_dir = stat.S_ISDIR(old.st_mode)
            if old_is_dir and ti.isdir():
                self.dirs[parts] = ti  # merge: the archive's metadata, set at the end
                if self.track_written:
                    self.written.add(parts)
                return
            if not self.opts.replace_dir_non_dir and (old_is_dir or ti.isdir()):
                raise InvalidArgument(
                    f"cannot overwrite {'' if old_is_dir else 'non-'}directory "
                    f'"{self.show(parts)}" with {"non-" if old_is_dir else ""}directory '
                    f'"{name}"'
                )
            # Replace, never write through: an existing symlink is removed, not followed.
            self.remove(parent, leaf, old)
        if ti.isdir():
            os.mkdir(leaf, 0o700, dir_fd=parent)
            self.dirs[parts] = ti
        elif ti.isreg():
            self.file(parent, leaf, ti)
        elif ti.issym():
            self.symlink(parent, leaf, ti)
        elif link is not None:
            # follow_symlinks=False: a symlink target is linked itself, never what it names.
            os.link(link[1], leaf, src_dir_fd=link[0], dst_dir_fd=parent, follow_symlinks=False)
        elif device:
            self.device(parent, leaf, ti)
        else:
            self.fifo(parent, leaf, ti)
        if self.track_written:
            self.written.add(parts)

    def file(self, parent: int, leaf: str, ti: tarfile.TarInfo) -> None:
        # O_EXCL|O_NOFOLLOW: always a new inode here, never an existing file or link target.
        fd = os.open(leaf, _OPEN_NEW, 0o600, dir_fd=parent)
        try:
            self.archive.copy_data(ti, fd)
            self.set_meta(fd, ti)
        finally:
            os.close(fd)
        self.size += ti.size

    def symlink(self, parent: int, leaf: str, ti: tarfile.TarInfo) -> None:
        # The target may point anywhere (absolute links are normal in images): nothing is
        # ever written through a symlink, see dir().
        os.symlink(ti.linkname, leaf, dir_fd=parent)
        ids = self.ids(ti)
        if ids is not None:
            os.chown(leaf, *ids, dir_fd=parent, follow_symlinks=False)
        if self.opts.xattrs and any(k.startswith(PAX_XATTR) for k in ti.pax_headers):
            self.set_xattrs(f"/proc/self/fd/{parent}/{leaf}", ti)
        ns = _mtime_ns(ti)
        os.utime(leaf, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)

    def fifo(self, parent: int, leaf: str, ti: tarfile.TarInfo) -> None:
        os.mkfifo(leaf, 0o600, dir_fd=parent)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(leaf, flags, dir_fd=parent)
        try:
            self.set_meta(fd, ti)
        finally:
            os.close(fd)

    def device(self, parent: int, leaf: str, ti: tarfile.TarInfo) -> None:
        """A device node, never opened: its metadata is set by name below ``parent``, where
        this extractor just made it."""
        kind = stat.S_IFCHR if ti.ischr() else stat.S_IFBLK
        os.mknod(leaf, kind | 0o600, os.makedev(ti.devmajor, ti.devminor), dir_fd=parent)
        ids = self.ids(ti)
        if ids is not None:
            os.chown(leaf, *ids, dir_fd=parent, follow_symlinks=False)
        os.chmod(leaf, self.mode(ti), dir_fd=parent)
        if self.opts.xattrs and any(k.startswith(PAX_XATTR) for k in ti.pax_headers):
            self.set_xattrs(f"/proc/self/fd/{parent}/{leaf}", ti)
        ns = _mtime_ns(ti)
        os.utime(leaf, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)

    def link_source(self, ti: tarfile.TarInfo) -> _Parts:
        """A hard link's target, checked: below the destination (resolved like any entry),
        existing, not a directory."""
        what = f"unsafe hard link in {self.noun}: {_q(ti.name)} -> {_q(ti.linkname)}"
        source = self.parts(ti.linkname, what)
        if not source:
            raise UnsafeContent(f"{what}: target is a directory")
        try:
            parent = self.dir(source[:-1], ti.linkname, create=False)
        except UnsafeContent:
            raise UnsafeContent(f"{what}: target goes through a symlink") from None
        except (FileNotFoundError, CorruptData):
            raise UnsafeContent(f"{what}: target does not exist") from None
        st = _lstat_at(parent, source[-1])
        if st is None:
            raise UnsafeContent(f"{what}: target does not exist")
        if stat.S_ISDIR(st.st_mode):
            raise UnsafeContent(f"{what}: target is a directory")
        return source

    # -- whiteouts

    def whiteout_entry(self, parts: _Parts, name: str, ti: tarfile.TarInfo) -> None:
        base = parts[-1]
        if base == WHITEOUT_OPAQUE:
            self.opaque(parts[:-1], name)
        elif base.startswith(WHITEOUT_META_PREFIX):
            pass  # AUFS bookkeeping (.wh..wh.plnk, ...): ignored, as Docker does
        else:
            target = base[len(WHITEOUT_PREFIX) :]
            if target in ("", ".", ".."):
                raise UnsafeContent(f"unsafe whiteout in {self.noun}: {_q(name)}")
            self.whiteout((*parts[:-1], target), name, ti)

    def whiteout(self, parts: _Parts, name: str, ti: tarfile.TarInfo) -> None:
        # OCI layer.md: whiteouts apply to lower layers only, never to this layer's entries.
        if parts in self.written:
            return
        if self.opts.whiteouts == "overlay":
            parent = self.dir(parts[:-1], name, create=True)
        else:
            try:
                parent = self.dir(parts[:-1], name, create=False)
            except FileNotFoundError:
                return  # nothing there to delete
        leaf = parts[-1]
        old = _lstat_at(parent, leaf)
        if old is not None:
            self.remove(parent, leaf, old)
        if self.opts.whiteouts == "overlay":
            os.mknod(leaf, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)  # overlayfs's form
            os.chown(leaf, ti.uid, ti.gid, dir_fd=parent, follow_symlinks=False)

    def opaque(self, parts: _Parts, name: str) -> None:
        fd = self.dir(parts, name, create=True)
        if self.opts.whiteouts == "overlay":
            os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
            return
        # Flat tree: hide what lower layers put in the dir, keep this layer's entries.
        self._clear_lower(fd, parts)

    def _clear_lower(self, fd: int, parts: _Parts) -> None:
        for child in os.listdir(fd):
            rel = (*parts, child)
            st = os.stat(child, dir_fd=fd, follow_symlinks=False)
            if rel not in self.written:
                self.remove(fd, child, st)
            elif stat.S_ISDIR(st.st_mode):
                sub = os.open(child, DIR_FLAGS, dir_fd=fd)
                try:
                    self._clear_lower(sub, rel)
                finally:
                    os.close(sub)

    # -- the end

    def finish(self) -> None:
        """Directory metadata, now that nothing more is written inside."""
        for parts, ti in self.dirs.items():
            self._pinned.clear()
            try:
                if parts:
                    parent = self.dir(parts[:-1], ti.name, create=False)
                    fd = os.open(parts[-1], DIR_FLAGS, dir_fd=parent)
                else:
                    fd = os.dup(self.base_fd)
            except (FileNotFoundError, NotADirectoryError, CorruptData):
                continue  # replaced or removed by a later entry
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                continue
            try:
                self.set_meta(fd, ti)
            finally:
                os.close(fd)


def _os_error(e: OSError, ti: tarfile.TarInfo, noun: str) -> DockyardError:
    if e.errno in _CONTENT_ERRNOS:
        return CorruptData(f"cannot apply {noun} entry {_q(ti.name)}: {e.strerror}")
    return DockyardError(f"cannot write {noun} entry {_q(ti.name)}: {e.strerror or e}")


def unpack(
    archive: TarStream, root_fd: int, options: UnpackOptions, base: Sequence[str] = ()
) -> int:
    """Unpack every entry of ``archive`` into directory ``base`` below ``root_fd`` (which
    must exist; a ``base`` is resolved inside the root and needs ``follow_symlinks``).

    Raises UnsafeContent for an entry that would leave the destination or create a device,
    CorruptData for a broken archive or an entry that cannot be applied, InvalidArgument for
    a dir/non-dir clash when ``replace_dir_non_dir`` is off, DockyardError for a host error
    (no space, permission). On error the destination is left partial: callers that promise
    atomicity unpack into a temporary directory. Returns the bytes of regular files written.
    """
    unpacker = _Unpacker(root_fd, tuple(base), options, archive)
    try:
        for ti in archive.entries():
            try:
                unpacker.entry(ti)
            except OSError as e:
                raise _os_error(e, ti, options.noun) from e
            except (OverflowError, ValueError) as e:  # ids or times no syscall can take
                raise CorruptData(f"cannot apply {options.noun} entry {_q(ti.name)}: {e}") from e
        # Read to the end: what follows the archive's end blocks must decompress too (a
        # gzip stream's checksum comes last), and a layer's diff_id covers all of it.
        archive.drain()
        try:
            unpacker.finish()
        except OSError as e:
            if e.errno in _CONTENT_ERRNOS:
                raise CorruptData(f"cannot apply {options.noun}: {e.strerror}") from e
            raise DockyardError(f"cannot write {options.noun}: {e.strerror or e}") from e
    finally:
        unpacker.close()
    return unpacker.size


def open_root(path: str) -> int:
    """An fd of the destination directory a caller named (its own path: followed)."""
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
