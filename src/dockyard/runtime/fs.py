"""A container's filesystem seen from the host: ``docker cp`` and ``docker diff``.

Every operation on a container works on its root directory on the host (the mounted overlay
"merged" dir; the "upper" dir for diff) and must never touch anything outside it, even though
the container's own processes may be changing that tree at the same time. So paths inside the
container are never handed to the host kernel to resolve: symlinks are read and followed by hand,
component by component, with absolute targets taken relative to the root and ``..`` clamped at
the root, as a chroot would. Writes go through directory file descriptors opened with
``O_NOFOLLOW`` (``*at`` system calls), so a symlink swapped in after a check cannot redirect them.

Archives follow Docker's layout: the top entry is the base name of the requested path, or ``.``
for ``dir/.`` (its entries are then ``./name``, the contents without the directory's name).
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO

from dockyard.errors import CorruptData, InvalidArgument, NotFound
from dockyard.image.rootdir import DIR_FLAGS as _DIR_FLAGS
from dockyard.image.rootdir import open_dir_in_root
from dockyard.image.tarstream import TarStream
from dockyard.image.unpack import UnpackOptions, unpack
from dockyard.runtime.paths import resolve_in_root

__all__ = [
    "ArchiveSource",
    "Change",
    "copy_from_host",
    "copy_in",
    "copy_out",
    "copy_to_container",
    "destination_rule",
    "diff_upper",
    "extract_to_host",
    "go_file_mode",
    "go_mode_is_dir",
    "resolve_in_root",
]


# Go's os.FileMode type bits, as Docker sends them in X-Docker-Container-Path-Stat.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_NAMED_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHAR_DEVICE = 1 << 21
_GO_STICKY = 1 << 20


# --------------------------------------------------------------------------- path resolution


def _relative_parts(root: str, host_path: str) -> list[str]:
    rel = os.path.relpath(host_path, os.path.abspath(root))
    return [] if rel == "." else rel.split("/")


# --------------------------------------------------------------------------- stat, archiving


def go_file_mode(st_mode: int) -> int:
    """A stat mode as Go's os.FileMode (what Docker's path-stat header carries)."""
    mode = st_mode & 0o777
    if stat.S_ISDIR(st_mode):
        mode |= _GO_DIR
    elif stat.S_ISLNK(st_mode):
        mode |= _GO_SYMLINK
    elif stat.S_ISBLK(st_mode):
        mode |= _GO_DEVICE
    elif stat.S_ISCHR(st_mode):
        mode |= _GO_DEVICE | _GO_CHAR_DEVICE
    elif stat.S_ISFIFO(st_mode):
        mode |= _GO_NAMED_PIPE
    elif stat.S_ISSOCK(st_mode):
        mode |= _GO_SOCKET
    if st_mode & stat.S_ISUID:
        mode |= _GO_SETUID
    if st_mode & stat.S_ISGID:
        mode |= _GO_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def _rfc3339(ns: int) -> str:
    """Go's time.Time JSON form (RFC 3339, nanoseconds without trailing zeros), in UTC."""
    secs, frac = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(secs, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


class _Exact:
    """Exactly ``size`` bytes of a file that may shrink or grow while it is read (a running
    container): the tar header's size must hold, so it is cut or padded with zeros."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f = f
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._left:
            n = self._left
        data = self._f.read(n) if n else b""
        if len(data) < n:
            data += bytes(n - len(data))
        self._left -= n
        return data


def _tarinfo(arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(arcname)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""  # numeric ids only: host names mean nothing inside a container
    ti.mtime = int(st.st_mtime)  # Docker truncates to seconds too
    return ti


def _add_entry(
    tf: tarfile.TarFile,
    dir_fd: int,
    name: str,
    arcname: str,
    st: os.stat_result,
    inodes: dict[tuple[int, int], str],
) -> None:
    """One archive entry for ``name`` in ``dir_fd`` (never following a symlink)."""
    mode = st.st_mode
    ti = _tarinfo(arcname, st)
    if stat.S_ISDIR(mode):
        ti.type = tarfile.DIRTYPE
        tf.addfile(ti)
        return
    if stat.S_ISSOCK(mode):
        return  # tar cannot hold sockets; Docker skips them too
    key = (st.st_dev, st.st_ino)
    if st.st_nlink > 1:
        if key in inodes:
            ti.type = tarfile.LNKTYPE
            ti.linkname = inodes[key]
            tf.addfile(ti)
            return
        inodes[key] = arcname
    if stat.S_ISLNK(mode):
        ti.type = tarfile.SYMTYPE
        ti.linkname = os.readlink(name, dir_fd=dir_fd)
        tf.addfile(ti)
    elif stat.S_ISFIFO(mode):
        ti.type = tarfile.FIFOTYPE
        tf.addfile(ti)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        tf.addfile(ti)
    elif stat.S_ISREG(mode):
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=dir_fd)
        except (FileNotFoundError, OSError) as e:
            if isinstance(e, FileNotFoundError) or e.errno == errno.ELOOP:
                return  # gone or replaced by a symlink meanwhile
            raise
        with os.fdopen(fd, "rb") as f:
            fst = os.fstat(fd)
            if not stat.S_ISREG(fst.st_mode):
                return
            ti.type = tarfile.REGTYPE
            ti.size = fst.st_size
            tf.addfile(ti, _Exact(f, fst.st_size))


def _write_archive(out: BinaryIO, parent_fd: int, leaf: str, top: str) -> None:
    """Tar ``leaf`` (in ``parent_fd``; "." for that directory itself) as ``top``, recursively,
    in sorted order, symlinks as symlinks. ``top`` "": no entry for ``leaf`` itself, and its
    contents named from there (``bin/``, ``bin/sh``: ``docker export``'s layout)."""
    inodes: dict[tuple[int, int], str] = {}
    stack: list[tuple[int, str, Iterator[str]]] = []
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
            st = os.stat(leaf, dir_fd=parent_fd, follow_symlinks=False)
            if top:
                _add_entry(tf, parent_fd, leaf, top, st, inodes)
            if stat.S_ISDIR(st.st_mode):
                fd = os.open(leaf, _DIR_FLAGS, dir_fd=parent_fd)
                stack.append((fd, top, iter(sorted(os.listdir(fd)))))
            while stack:
                fd, arc, names = stack[-1]
                name = next(names, None)
                if name is None:
                    stack.pop()
                    os.close(fd)
                    continue
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                child = f"{arc}/{name}" if arc else name
                _add_entry(tf, fd, name, child, st, inodes)
                if stat.S_ISDIR(st.st_mode):
                    try:
                        cfd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError as e:
                        if e.errno in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR):
                            continue
                        raise
                    stack.append((cfd, child, iter(sorted(os.listdir(cfd)))))
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _asserts_dir(path: str) -> bool:
    return path.endswith("/") or _wants_contents(path)


def _wants_contents(path: str) -> bool:
    """Docker's "SRC_PATH ends with /.": copy the directory's contents, not the directory."""
    return path == "." or path.endswith("/.")


class ArchiveSource:
    """A container path opened for archiving: its path stat (what ``HEAD .../archive`` and
    the ``X-Docker-Container-Path-Stat`` header carry) is known before any byte of the tar
    is written. Holds directory fds until closed."""

    def __init__(self, root: str, src: str, *, follow_link: bool = False) -> None:
        root = os.path.abspath(root)
        contents = _wants_contents(src)
        follow = follow_link or _asserts_dir(src)
        host = resolve_in_root(root, src, follow_final=follow)
        parts = _relative_parts(root, host)
        last = src.rstrip("/").rsplit("/", 1)[-1]
        if contents or not parts:
            top = "."
        elif last and last not in (".", ".."):
            top = last  # as requested: with -L a link is archived under its own name (Docker)
        else:
            top = parts[-1]
        missing = NotFound(f"Could not find the file {src} in container")
        self._parent_fd = -1
        root_fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        try:
            try:
                self._parent_fd = open_dir_in_root(root_fd, parts[:-1])
            except (FileNotFoundError, NotADirectoryError):
                raise missing from None
        finally:
            os.close(root_fd)
        try:
            leaf = parts[-1] if parts else "."
            try:
                st = os.stat(leaf, dir_fd=self._parent_fd, follow_symlinks=False)
            except (FileNotFoundError, NotADirectoryError):
                raise missing from None
            if _asserts_dir(src) and not stat.S_ISDIR(st.st_mode):
                raise InvalidArgument(f"{src}: not a directory")
            link_target = ""
            if stat.S_ISLNK(st.st_mode):
                try:
                    resolved = resolve_in_root(root, src, follow_final=True)
                    link_target = "/" + "/".join(_relative_parts(root, resolved))
                except InvalidArgument:
                    link_target = os.readlink(leaf, dir_fd=self._parent_fd)
        except BaseException:
            self.close()
            raise
        self._leaf, self._top = leaf, top
        self.stat: dict[str, Any] = {
            "name": "." if contents else ("/" if not parts and top == "." else top),
            "size": st.st_size,
            "mode": go_file_mode(st.st_mode),
            "mtime": _rfc3339(st.st_mtime_ns),
            "linkTarget": link_target,
        }

    def write(self, out: BinaryIO) -> None:
        """The tar, written to ``out``."""
        _write_archive(out, self._parent_fd, self._leaf, self._top)

    def close(self) -> None:
        if self._parent_fd >= 0:
            os.close(self._parent_fd)
            self._parent_fd = -1

    def __enter__(self) -> ArchiveSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def export_root(root: str, out: BinaryIO) -> None:
    """``docker export``: the container's whole file system (its merged root, none of what is
    mounted into it at run time) as a tar, entries named from the root (``bin/``, ``etc/hosts``)
    in sorted order."""
    root_fd = os.open(os.path.abspath(root), _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        _write_archive(out, root_fd, ".", "")
    finally:
        os.close(root_fd)


def copy_out(root: str, src: str, out: BinaryIO, *, follow_link: bool = False) -> dict[str, Any]:
    """``docker cp CONTAINER:SRC -``: write a tar of container path ``src`` to ``out``.

    The top entry is the base name of ``src`` (for ``dir/.``: ``.`` and ``./...``, the
    contents). Symlinks are archived as links; ``src`` itself too, unless ``follow_link``
    (``-L``) or it ends with ``/``. Returns Docker's path stat (name, size, mode as a Go
    FileMode, mtime in RFC 3339, linkTarget: a symlink's target resolved in the container).
    """
    with ArchiveSource(root, src, follow_link=follow_link) as source:
        source.write(out)
        return source.stat


def copy_from_host(host_src: str, out: BinaryIO, *, follow_link: bool = False) -> tuple[str, bool]:
    """The client side of ``docker cp HOSTPATH CONTAINER:DST``: tar a host path for copy_in.

    Same layout as copy_out (base name on top, ``dir/.`` for the contents); modes, mtimes,
    symlinks and numeric uid/gid kept. A symlink is archived as a link unless ``follow_link``
    or the path ends with ``/``; followed, its target is archived under the link's name.
    Returns (the archive's top name, whether it is a directory): what the destination rules
    of :func:`destination_rule` need.
    """
    contents = _wants_contents(host_src)
    path = os.path.abspath(host_src)
    if follow_link or _asserts_dir(host_src):
        path = os.path.realpath(path)
    requested = os.path.basename(os.path.abspath(host_src))
    top = "." if contents or not requested else requested
    parent, leaf = os.path.split(path)
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(f"could not find {host_src}: no such file or directory") from None
    if _asserts_dir(host_src) and not stat.S_ISDIR(st.st_mode):
        raise InvalidArgument(f"{host_src}: not a directory")
    parent_fd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _write_archive(out, parent_fd, leaf or ".", top)
    finally:
        os.close(parent_fd)
    return top, stat.S_ISDIR(st.st_mode)


# --------------------------------------------------------------------------- extraction


# What ``docker cp`` unpacks with (Docker's Untar): names as tar takes them (a leading "/"
# dropped), no whiteouts, no xattrs, the destination's own metadata left alone, and a
# directory never replaced by a non-directory or the reverse (noOverwriteDirNonDir).
_CP_OPTIONS = UnpackOptions(
    noun="archive",
    absolute_names=True,
    xattrs=False,
    root_metadata=False,
    replace_dir_non_dir=False,
)


def copy_in(
    root: str,
    dst: str,
    tar_stream: BinaryIO,
    *,
    no_overwrite_dir_non_dir: bool = True,
    chown: tuple[int, int] | None = None,
    rename_top: tuple[str, str] | None = None,
) -> None:
    """``docker cp - CONTAINER:DST`` (PUT /containers/{id}/archive): unpack a tar (plain or
    compressed) into ``dst``, an existing directory in the container; ``rename_top`` (the
    archive's top name, the name it gets) is how Docker's CLI copies to a DEST that does not
    exist yet (it rewrites the archive and sends it to DEST's parent).

    Entry paths (with ".." or absolute) and symlinks met on the way, the container's own or
    ones the archive made, are resolved inside ``root``; an existing symlink at an entry's own
    path is replaced, not followed; hard links resolve the same way; device nodes are refused.
    Owners are the archive's uid/gid unless ``chown`` forces one.
    """
    root = os.path.abspath(root)
    host = resolve_in_root(root, dst)
    base = _relative_parts(root, host)
    root_fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        try:
            os.close(open_dir_in_root(root_fd, base))
        except FileNotFoundError:
            raise NotFound(f"Could not find the file {dst} in container") from None
        except NotADirectoryError:
            raise InvalidArgument("extraction point is not a directory") from None
        options = replace(
            _CP_OPTIONS,
            shown_root="/" + "/".join(base),
            follow_symlinks=True,
            owners=chown or "archive",
            replace_dir_non_dir=not no_overwrite_dir_non_dir,
            rename_top=rename_top,
        )
        with TarStream(tar_stream) as tar:
            unpack(tar, root_fd, options, base)
    finally:
        os.close(root_fd)


def _first_member(tar: TarStream) -> tuple[str, bool]:
    """The name of the archive's top (``.`` for contents archives), and whether that top is
    a directory."""
    first = tar.peek()
    if first is None:
        raise CorruptData("empty archive")
    comps = [c for c in first.name.split("/") if c]
    return (comps[0] if comps else "."), first.isdir() or len(comps) > 1


def go_mode_is_dir(go_mode: int) -> bool:
    """Whether a Go os.FileMode (a path stat's ``mode``) is a directory's."""
    return bool(go_mode & _GO_DIR)


def destination_rule(dst_mode: int | None, src_is_dir: bool, dst: str) -> bool:
    """Docker's destination table for ``cp SRC DST`` (see extract_to_host): True to unpack
    inside DST, False to unpack in its parent with the top entry renamed to DST's name.
    ``dst_mode``: DST's stat mode, None when it does not exist."""
    return _into_destination(dst_mode, src_is_dir, _asserts_dir(dst), dst)


def _into_destination(
    dst_mode: int | None, src_is_dir: bool, asserts_dir: bool, shown: str
) -> bool:
    """Docker's destination table: True to unpack inside DEST, False to unpack in its parent
    with the top entry renamed to DEST's base name. ``dst_mode`` is None when DEST is missing."""
    if dst_mode is not None and stat.S_ISDIR(dst_mode):
        return True
    if dst_mode is not None:
        if asserts_dir:
            raise InvalidArgument(f'destination "{shown}" is not a directory')
        if src_is_dir:
            raise InvalidArgument(f'cannot copy a directory to a file: "{shown}"')
        return False
    if not src_is_dir and asserts_dir:
        raise InvalidArgument(f'destination directory "{shown}" must exist')
    return False


def extract_to_host(tar_stream: BinaryIO, host_dst: str) -> None:
    """The client side of ``docker cp CONTAINER:SRC HOSTDST``, with Docker's rules:

    ============================  =========================================================
    DEST does not exist           the top entry (file or directory) is renamed to DEST; its
                                  parent must exist; a file to "DEST/" is an error
    DEST is a file                a file replaces it; a directory is an error
    DEST is a directory           the top entry goes inside it ("dir/." archives: the
                                  contents go straight into it)
    ============================  =========================================================

    A symlink at DEST itself is followed, as Docker does. Entries never leave DEST: ".."
    and names outside the copied path are refused, and so is writing through any symlink below
    the extraction dir. Files belong to the extracting user; set-id bits are dropped.
    """
    with TarStream(tar_stream) as tar:
        src_base, src_is_dir = _first_member(tar)
        path = os.path.abspath(host_dst)
        if os.path.islink(path):
            path = os.path.realpath(path)
        try:
            dst_mode: int | None = os.stat(path).st_mode
        except FileNotFoundError:
            dst_mode = None
        if _into_destination(dst_mode, src_is_dir, _asserts_dir(host_dst), host_dst):
            extract_dir, rename = path, None
        else:
            extract_dir, rename = os.path.dirname(path), (src_base, os.path.basename(path))
            if not os.path.isdir(extract_dir):
                raise NotFound(f'destination directory "{extract_dir}" does not exist')
        options = replace(
            _CP_OPTIONS,
            shown_root=extract_dir,
            owners="extractor",
            strip_setid=True,
            rename_top=rename,
        )
        base_fd = os.open(extract_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            unpack(tar, base_fd, options)
        finally:
            os.close(base_fd)


def copy_to_container(
    root: str, dst: str, tar_stream: BinaryIO, *, chown: tuple[int, int] | None = None
) -> None:
    """``docker cp HOSTPATH CONTAINER:DST`` end to end (Docker's CLI stats DST first): the
    destination table of extract_to_host applied to a container path (so ``f`` to a missing
    ``/etc/new.conf`` is renamed), then unpacked like copy_in, resolved inside ``root``.
    A symlink at DST is followed inside the container."""
    root = os.path.abspath(root)
    parts = _relative_parts(root, resolve_in_root(root, dst))
    root_fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        with TarStream(tar_stream) as tar:
            src_base, src_is_dir = _first_member(tar)
            dst_mode: int | None = stat.S_IFDIR
            if parts:
                try:
                    pfd = open_dir_in_root(root_fd, parts[:-1])
                except (FileNotFoundError, NotADirectoryError):
                    parent = "/" + "/".join(parts[:-1])
                    raise NotFound(f"Could not find the file {parent} in container") from None
                try:
                    dst_mode = os.stat(parts[-1], dir_fd=pfd, follow_symlinks=False).st_mode
                except FileNotFoundError:
                    dst_mode = None
                finally:
                    os.close(pfd)
            if _into_destination(dst_mode, src_is_dir, _asserts_dir(dst), dst):
                base, rename = parts, None
            else:
                base, rename = parts[:-1], (src_base, parts[-1])
            options = replace(
                _CP_OPTIONS,
                shown_root="/" + "/".join(base),
                follow_symlinks=True,
                owners=chown or "archive",
                rename_top=rename,
            )
            unpack(tar, root_fd, options, base)
    finally:
        os.close(root_fd)


# --------------------------------------------------------------------------- diff


@dataclass(frozen=True, slots=True)
class Change:
    """One line of ``docker diff``."""

    kind: str  # "A" added, "C" changed, "D" deleted
    path: str  # absolute path in the container


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(path: str) -> bool:
    for attr in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, attr, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


def lookup_in_layers(lowers: Sequence[str], parts: Sequence[str]) -> os.stat_result | None:
    """``parts`` as the stacked lower dirs (top first) show it, or None: whiteouts delete, an
    opaque dir or a non-directory hides what the layers below have under it."""
    for lower in lowers:
        hidden = False
        for i in range(len(parts)):
            try:
                st = os.lstat(os.path.join(lower, *parts[: i + 1]))
            except OSError:
                break
            if _is_whiteout(st):
                return None
            if i == len(parts) - 1:
                return st
            if not stat.S_ISDIR(st.st_mode):
                return None
            if _is_opaque(os.path.join(lower, *parts[: i + 1])):
                hidden = True
        if hidden:
            return None
    return None


def _lower_children(lowers: Sequence[str], parts: Sequence[str]) -> set[str]:
    names: set[str] = set()
    for lower in lowers:
        try:
            names.update(os.listdir(os.path.join(lower, *parts)))
        except OSError:
            pass
    return {n for n in names if lookup_in_layers(lowers, [*parts, n]) is not None}


def _same_dir_meta(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) == (
        b.st_mode,
        b.st_uid,
        b.st_gid,
        b.st_mtime_ns,
    )


def diff_upper(upper: str, lower_dirs: Sequence[str]) -> list[Change]:
    """``docker diff`` from an overlay upper dir over ``lower_dirs`` (top layer first).

    A whiteout (char device 0:0) -> D. Anything else in upper -> C if the lowers have that path,
    else A. A directory that is also below is C when something under it changed, it is opaque
    (then each lower entry it hides and upper lacks is D), or its mode/owner/mtime differ;
    otherwise it was merely copied up and is left out. Sorted by path, as Docker does.
    """
    if not os.path.isdir(upper):
        return []
    entries: list[tuple[list[str], str, os.stat_result]] = []  # pre-order
    stack: list[tuple[list[str], str]] = [([], upper)]
    while stack:
        parts, host = stack.pop()
        with os.scandir(host) as it:
            found = sorted(it, key=lambda e: e.name, reverse=True)
        for e in found:
            st = e.stat(follow_symlinks=False)
            child = [*parts, e.name]
            entries.append((child, e.path, st))
            if stat.S_ISDIR(st.st_mode):
                stack.append((child, e.path))
    changes: dict[str, str] = {}
    changed_dirs: set[str] = set()

    def record(path: str, kind: str) -> None:
        changes[path] = kind
        changed_dirs.add(path.rsplit("/", 1)[0] or "/")

    # Children before their directory: reversed pre-order.
    for parts, host, st in reversed(entries):
        path = "/" + "/".join(parts)
        if _is_whiteout(st):
            record(path, "D")
            continue
        below = lookup_in_layers(lower_dirs, parts)
        if below is None:
            record(path, "A")
        elif not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(below.st_mode):
            record(path, "C")
        elif _is_opaque(host):
            present = set(os.listdir(host))
            for name in _lower_children(lower_dirs, parts) - present:
                record(f"{path}/{name}", "D")
            record(path, "C")
        elif path in changed_dirs or not _same_dir_meta(st, below):
            record(path, "C")
    return [Change(kind, path) for path, kind in sorted(changes.items())]
