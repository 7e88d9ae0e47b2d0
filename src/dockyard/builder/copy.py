"""COPY and ADD into a mounted root filesystem, with the rules of Docker's copier (the classic
builder's ``builder/dockerfile/copy.go``; ``tests/builder/test_corpus.py`` compares the
results with the reference Docker's):

* The destination is joined to WORKDIR when relative and resolved inside the root with every
  symlink followed, the last one included (``builder.paths.destination``).
* A file lands at ``dest/<name>`` when the destination ends in ``/`` (or is ``.``) or is an
  existing directory, else at ``dest`` itself, replacing whatever is there (a directory
  too). Missing parents are made 0755 and owned like the file.
* A directory copies its *contents*; the destination is made 0755 (parents: root's) and,
  when it is new, owned like the copied entries. Entries merge into existing directories
  and replace anything else; modes come from the source.
* Owners: 0:0 for the context (or ``--chown``), as in the source for ``--from`` (or
  ``--chown``); ``--chmod`` sets every mode.
* ADD unpacks local tar archives (plain, gzip, bzip2, xz, zstd)
  into the destination directory with the archive's owners, through the one tar extractor.

Nothing is ever written through a symlink below the destination: one that stands where an
entry goes is replaced, as Docker's untar replaces it.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from typing import TYPE_CHECKING, BinaryIO

from dockyard.builder.parser import Instruction
from dockyard.builder.paths import Destination, Ids, container_path, mkdir_all

if TYPE_CHECKING:
    from dockyard.builder.context import Match, SourceRoot
    from dockyard.builder.ignore import IgnoreRules

_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove(path: str) -> None:
    """Docker's untar removes whatever stands where an entry goes (``os.RemoveAll``)."""
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
        dfd = os.open(dst, _OPEN_NEW, 0o600)
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
    """One COPY/ADD step's writes into ``rootfs``."""

    def __init__(
        self,
        rootfs: str,
        ins: Instruction,
        *,
        owner: Ids | None = None,
        chmod: int | None = None,
        keep_owner: bool = False,
    ) -> None:
        self.rootfs = rootfs
        self.ins = ins
        self.owner = owner  # --chown
        self.chmod = chmod
        self.keep_owner = keep_owner and owner is None  # --from: the source's owners

    def _ids(self, st: os.stat_result) -> Ids:
        if self.owner is not None:
            return self.owner
        return (st.st_uid, st.st_gid) if self.keep_owner else (0, 0)

    def _new_dir_ids(self) -> Ids:
        """Who owns the parents a file copy makes: the files' owner (root for --from)."""
        return self.owner or (0, 0)

    def _finish(self, path: str, st: os.stat_result, *, link: bool = False) -> None:
        uid, gid = self._ids(st)
        os.chown(path, uid, gid, follow_symlinks=not link)
        if not link:
            mode = self.chmod if self.chmod is not None else stat.S_IMODE(st.st_mode)
            os.chmod(path, mode)
        os.utime(path, ns=(st.st_mtime_ns, st.st_mtime_ns), follow_symlinks=not link)

    def _mkdir_all(self, host: str, ids: Ids | None) -> bool:
        try:
            return mkdir_all(self.rootfs, host, ids)
        except NotADirectoryError as e:
            raise self.ins.error(f"{self.ins.cmd} failed: mkdir: {e.strerror}") from None

    # -- files

    def file_target(self, dest: Destination, name: str) -> str:
        """Where a file named ``name`` goes (its parents made): Docker's performCopyForInfo."""
        if dest.is_dir or os.path.isdir(dest.host):
            self._mkdir_all(dest.host, self._new_dir_ids())
            return os.path.join(dest.host, name)
        self._mkdir_all(os.path.dirname(dest.host), self._new_dir_ids())
        return dest.host

    def copy_file(self, src: str, st: os.stat_result, name: str, dest: Destination) -> None:
        target = self.file_target(dest, name)
        _remove(target)
        _copy_file(src, target, st)
        self._finish(target, st)

    def write_file(self, name: str, body: bytes, mode: int, dest: Destination) -> None:
        """A heredoc's or a download's bytes as a file (root's, or --chown's)."""
        target = self.file_target(dest, name)
        _remove(target)
        fd = os.open(target, _OPEN_NEW, 0o600)
        with open(fd, "wb") as f:
            f.write(body)
        uid, gid = self.owner or (0, 0)
        os.chown(target, uid, gid)
        os.chmod(target, self.chmod if self.chmod is not None else mode)

    # -- directories

    def copy_dir(
        self,
        source: SourceRoot,
        m: Match,
        dest: Destination,
        exclude: IgnoreRules | None = None,
    ) -> None:
        """The contents of directory ``m`` into ``dest`` (Docker's copyDirectory)."""
        existed = os.path.isdir(dest.host)
        if not existed:
            try:
                os.lstat(dest.host)
                raise self.ins.error(
                    f"{self.ins.cmd} failed: mkdir {container_path(self.rootfs, dest.host)}:"
                    " not a directory"
                )
            except FileNotFoundError:
                pass
        self._mkdir_all(dest.host, (0, 0))
        dirs: list[tuple[str, os.stat_result]] = []
        for rel, host, st in source.walk(m, exclude):
            if not rel:
                if not existed and not self.keep_owner:
                    # fixPermissions: a destination the copy made belongs to the copy's owner
                    os.chown(dest.host, *self._ids(st))
                continue
            dst = os.path.join(dest.host, rel)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                try:
                    if not stat.S_ISDIR(os.lstat(dst).st_mode):
                        os.unlink(dst)
                        os.mkdir(dst, 0o700)
                except FileNotFoundError:
                    os.mkdir(dst, 0o700)
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
            # sockets and device nodes are not copied (Docker's tar skips sockets)
        for dst, st in reversed(dirs):  # mtimes after the contents are written
            self._finish(dst, st)

    # -- archives

    def unpack(self, path: str, dest: Destination) -> None:
        """ADD of a local archive: its entries into ``dest`` with their own owners."""
        self._mkdir_all(dest.host, (0, 0))
        with open(path, "rb") as f:
            extract_archive(f, dest.host, self.ins)


def is_archive(path: str) -> bool:
    """Whether ADD should unpack ``path``: a tar stream, plain or compressed (gzip, bzip2,
    xz, zstd), as Docker's ADD decides."""
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


def basename(rel: str) -> str:
    return posixpath.basename(rel) or "file"
