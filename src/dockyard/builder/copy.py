"""COPY and ADD into a mounted root filesystem, with Docker's destination rules.

* A relative destination is relative to WORKDIR. A destination ending in ``/`` is a
  directory; several sources (or a wildcard) need one.
* A directory source copies its *contents*; a file source lands at ``dest/<name>`` when the
  destination is a directory (or already one in the image), else at ``dest`` itself.
* Missing parent directories are created (0755). Files keep their mode and mtime; owners are
  0:0 for context files (or ``--chown``), kept for ``--from``; ``--chmod`` sets every mode.
* ADD unpacks local tar archives (plain, gzip, bzip2, xz) into the destination directory
  through the one tar extractor (``image.unpack``) and downloads URLs (mode 0600,
  optionally verified with ``--checksum``).

Every destination path is resolved inside the root (``resolve_in_root``), so a symlink in
the image cannot send a write outside it.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from typing import BinaryIO

from dockyard.builder.context import Match, SourceRoot
from dockyard.builder.parser import Instruction
from dockyard.runtime.paths import resolve_in_root

Owner = tuple[int, int] | None


def dest_path(dest: str, workdir: str) -> str:
    if dest.startswith("/"):
        return dest
    base = workdir or "/"
    joined = posixpath.join(base, dest)
    # Keep the trailing slash (it means "a directory").
    return joined + ("/" if dest.endswith(("/", "/.")) or dest in (".",) else "")


def is_dir_dest(dest: str) -> bool:
    return dest.endswith("/") or dest.endswith("/.") or dest == "."


def make_dirs(rootfs: str, path: str, owner: Owner) -> str:
    """Create ``path`` (a container path) and missing parents inside ``rootfs``; returns the
    host path."""
    parts = [p for p in path.split("/") if p and p != "."]
    cur = "/"
    host = rootfs
    for p in parts:
        cur = posixpath.join(cur, p)
        host = resolve_in_root(rootfs, cur)
        try:
            st = os.stat(host)
        except FileNotFoundError:
            os.mkdir(host, 0o755)
            os.chmod(host, 0o755)
            uid, gid = owner if owner else (0, 0)
            os.chown(host, uid, gid)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, f"{cur} is not a directory")
    return host


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        import shutil

        shutil.rmtree(path)
    else:
        os.unlink(path)


def _copy_file(src: str, dst: str, st: os.stat_result) -> None:
    sfd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dfd = os.open(
            dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        try:
            left = st.st_size
            use_cfr = True
            while left > 0:
                n = 0
                if use_cfr:
                    try:
                        n = os.copy_file_range(sfd, dfd, min(left, 1 << 30))
                    except OSError as e:
                        if e.errno not in (
                            errno.EXDEV,
                            errno.ENOSYS,
                            errno.EINVAL,
                            errno.EOPNOTSUPP,
                        ):
                            raise
                        use_cfr = False
                        continue
                else:
                    n = os.sendfile(dfd, sfd, None, min(left, 1 << 30))
                if n == 0:
                    break  # the file shrank meanwhile
                left -= n
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)


class Copier:
    """One COPY/ADD: writes ``matches`` from ``source`` into ``rootfs``."""

    def __init__(
        self,
        rootfs: str,
        source: SourceRoot,
        ins: Instruction,
        *,
        owner: Owner = None,
        chmod: int | None = None,
        unpack_archives: bool = False,
    ) -> None:
        self.rootfs = rootfs
        self.source = source
        self.ins = ins
        self.owner = owner
        self.chmod = chmod
        self.unpack = unpack_archives

    def _ids(self, st: os.stat_result) -> tuple[int, int]:
        if self.owner is not None:
            return self.owner
        return (st.st_uid, st.st_gid) if self.source.keep_owner else (0, 0)

    def _finish(self, path: str, st: os.stat_result, *, link: bool = False) -> None:
        uid, gid = self._ids(st)
        os.chown(path, uid, gid, follow_symlinks=not link)
        if not link:
            mode = self.chmod if self.chmod is not None else stat.S_IMODE(st.st_mode)
            os.chmod(path, mode)
        os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=not link)

    def copy(self, matches: list[Match], dest: str, workdir: str, several: bool) -> None:
        dest = dest_path(dest, workdir)
        if several and not is_dir_dest(dest):
            raise self.ins.error(
                f"When using {self.ins.cmd} with more than one source file, the destination "
                "must be a directory and end with a /"
            )
        for m in matches:
            st = os.stat(m.host)
            if stat.S_ISDIR(st.st_mode):
                target = make_dirs(self.rootfs, dest, self.owner)
                self._copy_tree(m, target)
            elif self.unpack and is_archive(m.host):
                target = make_dirs(self.rootfs, dest, self.owner)
                with open(m.host, "rb") as f:
                    extract_archive(f, target, self.ins)
            else:
                self.copy_file(m.host, st, posixpath.basename(m.rel) or "file", dest)

    def target_for_file(self, name: str, dest: str) -> str:
        host = resolve_in_root(self.rootfs, dest)
        if is_dir_dest(dest) or os.path.isdir(host):
            make_dirs(self.rootfs, dest, self.owner)
            return resolve_in_root(self.rootfs, posixpath.join(dest, name), follow_final=False)
        parent = posixpath.dirname(dest.rstrip("/")) or "/"
        make_dirs(self.rootfs, parent, self.owner)
        return resolve_in_root(self.rootfs, dest, follow_final=False)

    def copy_file(self, src: str, st: os.stat_result, name: str, dest: str) -> None:
        target = self.target_for_file(name, dest)
        _remove(target)
        _copy_file(src, target, st)
        self._finish(target, st)

    def _copy_tree(self, m: Match, target: str) -> None:
        dirs: list[tuple[str, os.stat_result]] = []
        for rel, host, st in self.source.walk(m):
            if not rel:
                continue  # the directory itself: its contents go into target
            dst = os.path.join(target, rel)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                try:
                    dst_st = os.lstat(dst)
                    if not stat.S_ISDIR(dst_st.st_mode):
                        os.unlink(dst)
                        os.mkdir(dst, 0o755)
                except FileNotFoundError:
                    os.mkdir(dst, 0o755)
                dirs.append((dst, st))
                continue
            _remove(dst)
            if stat.S_ISREG(mode):
                _copy_file(host, dst, st)
                self._finish(dst, st)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(host), dst)
                self._finish(dst, st, link=True)
            elif stat.S_ISFIFO(mode):
                os.mkfifo(dst)
                self._finish(dst, st)
            # sockets and devices are not copied (Docker skips sockets; devices are refused)
        for dst, st in reversed(dirs):  # mtimes after the contents are written
            self._finish(dst, st)


def is_archive(path: str) -> bool:
    """Whether ADD should unpack ``path``: a tar stream, plain or compressed (gzip, bzip2,
    xz; zstd with the zstandard package), as Docker's ADD decides."""
    from dockyard.errors import CorruptData
    from dockyard.image.compression import open_decompressed
    from dockyard.image.tarstream import is_tar_header

    try:
        # Only the first block: an archive that breaks further on is still an archive (its
        # unpacking then fails, as in Docker), not a file to copy as it is.
        with open(path, "rb") as f, open_decompressed(f, what="archive", buffer_size=512) as plain:
            block = plain.read(512)
    except (OSError, CorruptData):
        return False
    return is_tar_header(block)


def unpack_archive(f: BinaryIO, target: str) -> None:
    """An untrusted tar (plain or compressed) into directory ``target`` (a host path)."""
    from dockyard.image.tarstream import TarStream
    from dockyard.image.unpack import UnpackOptions, open_root, unpack

    # Docker's Untar rules where they are no weaker than ours: the destination keeps its own
    # owner, mode and mtime (the archive's "." entry is skipped); names stay inside it and
    # symlinks on the way are refused; OCI whiteouts delete what they name (as before).
    options = UnpackOptions(noun="archive", whiteouts="delete", root_metadata=False)
    root = open_root(target)
    try:
        with TarStream(f) as tar:
            unpack(tar, root, options)
    finally:
        os.close(root)


def extract_archive(f: BinaryIO, target: str, ins: Instruction) -> None:
    from dockyard.errors import CorruptData

    try:
        unpack_archive(f, target)
    except CorruptData as e:
        raise ins.error(f"ADD failed: cannot unpack archive: {e}") from None
