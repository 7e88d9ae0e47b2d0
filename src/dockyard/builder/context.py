"""Where COPY and ADD read from: the build context (with ``.dockerignore``) or another stage.

Source paths are resolved like Docker resolves them: relative to the context root, ``..``
may not climb out of it, and symlinks are followed *inside* the root (a link to
``/etc/passwd`` means ``<context>/etc/passwd``), so nothing outside the context is ever read.
Excluded files never reach a layer or a cache key.

Content digests of context files are kept in a small cache keyed by (size, mtime, ctime,
inode), so a rebuild of an unchanged context reads no file contents.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import stat
from collections.abc import Iterator
from typing import NamedTuple

from dockyard.builder.ignore import IgnoreRules
from dockyard.builder.parser import Instruction
from dockyard.runtime.paths import resolve_in_root

CHUNK = 1 << 20
MAX_CACHED_DIGESTS = 200_000
_WILDCARD = frozenset("*?[")


class Match(NamedTuple):
    rel: str  # path inside the source root, slash-separated, "" for the root itself
    host: str  # where it is on the host (symlinks resolved inside the root)


class HashCache:
    """sha256 of file contents by path, trusted while size, mtime, ctime and inode match."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._data: dict[str, tuple[int, int, int, int, str]] | None = None
        self.dirty = False
        self.touched: set[str] = set()

    def _load(self) -> dict[str, tuple[int, int, int, int, str]]:
        if self._data is None:
            import marshal

            try:
                with open(self.path, "rb") as f:
                    data = marshal.load(f)
                self._data = data if isinstance(data, dict) else {}
            except (OSError, EOFError, ValueError, TypeError):
                self._data = {}
        return self._data

    def digest(self, host: str, st: os.stat_result) -> str:
        data = self._load()
        key = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        hit = data.get(host)
        self.touched.add(host)
        if hit is not None and hit[:4] == key:
            return hit[4]
        h = hashlib.sha256()
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while chunk := os.read(fd, CHUNK):
                h.update(chunk)
        finally:
            os.close(fd)
        value = h.hexdigest()
        data[host] = (*key, value)
        self.dirty = True
        return value

    def save(self) -> None:
        if not self.dirty or self._data is None:
            return
        import marshal

        if len(self._data) > MAX_CACHED_DIGESTS:
            # Keep what this build used: the cache serves rebuilds, not every context ever.
            self._data = {k: v for k, v in self._data.items() if k in self.touched}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                marshal.dump(self._data, f)
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self.dirty = False


class SourceRoot:
    """A tree COPY reads from: the context, or a stage's root filesystem (``--from``)."""

    def __init__(
        self,
        root: str,
        ignore: IgnoreRules | None = None,
        hashes: HashCache | None = None,
        *,
        keep_owner: bool = False,
        what: str = "build context",
    ) -> None:
        self.root = os.path.abspath(root)
        self.ignore = ignore or IgnoreRules(())
        self.hashes = hashes
        self.keep_owner = keep_owner  # --from keeps owners; context files become 0:0
        self.what = what

    def excluded(self, rel: str) -> bool:
        return bool(rel) and self.ignore.excluded(rel)

    def clean(self, src: str, ins: Instruction) -> str:
        """``src`` as a path relative to the root; ``..`` out of it is an error."""
        norm = posixpath.normpath("/" + src) if src.startswith("/") else posixpath.normpath(src)
        if norm == ".." or norm.startswith("../"):
            raise ins.error(f"{ins.cmd} failed: forbidden path outside the build context: {src}")
        return norm.lstrip("/") if norm not in (".", "/") else ""

    def resolve(self, src: str, ins: Instruction) -> list[Match]:
        """The paths ``src`` names, wildcards expanded (sorted), excluded paths dropped."""
        rel = self.clean(src, ins)
        if not _WILDCARD & set(rel):
            host = resolve_in_root(self.root, rel) if rel else self.root
            if self.excluded(rel) or not os.path.lexists(host):
                raise ins.error(
                    f"{ins.cmd} failed: file not found in {self.what} or excluded by "
                    f".dockerignore: stat {src}: file does not exist"
                )
            if os.path.islink(host):  # a link loop or one into nowhere
                raise ins.error(f"{ins.cmd} failed: {src}: symlink target does not exist")
            return [Match(rel, host)]
        found = [m for m in self._glob(rel.split("/"), "", self.root) if not self.excluded(m.rel)]
        return sorted(found)

    def _glob(self, parts: list[str], prefix: str, host_dir: str) -> Iterator[Match]:
        head, rest = parts[0], parts[1:]
        if not _WILDCARD & set(head):
            names = [head]
        else:
            try:
                names = sorted(n for n in os.listdir(host_dir) if _match(head, n))
            except OSError:
                return
        for n in names:
            rel = f"{prefix}{n}"
            host = resolve_in_root(self.root, rel)
            if not os.path.lexists(host) or os.path.islink(host):
                continue
            if rest:
                if os.path.isdir(host) and not self.ignore.skip_dir(rel):
                    yield from self._glob(rest, rel + "/", host)
            else:
                yield Match(rel, host)

    def walk(
        self, m: Match, exclude: IgnoreRules | None = None
    ) -> Iterator[tuple[str, str, os.stat_result]]:
        """(path relative to ``m``, host path, lstat) of ``m`` and, for a directory, every
        entry under it that is not excluded (by .dockerignore, or by ``exclude``: COPY
        --exclude's patterns, matched below ``m``); parents before children, names sorted."""
        st = os.stat(m.host)
        yield "", m.host, st
        if stat.S_ISDIR(st.st_mode):
            yield from self._walk_dir(m.host, m.rel, "", exclude or IgnoreRules(()))

    def _walk_dir(
        self, host_dir: str, ctx_rel: str, sub: str, exclude: IgnoreRules
    ) -> Iterator[tuple[str, str, os.stat_result]]:
        with os.scandir(host_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            crel = f"{ctx_rel}/{e.name}" if ctx_rel else e.name
            srel = f"{sub}/{e.name}" if sub else e.name
            st = e.stat(follow_symlinks=False)
            out = self.excluded(crel) or (bool(exclude) and exclude.excluded(srel))
            if stat.S_ISDIR(st.st_mode):
                if out:
                    if self.ignore.skip_dir(crel) or (bool(exclude) and exclude.skip_dir(srel)):
                        continue
                    # Excluded itself, but an exception may bring back something inside:
                    # then the directory comes too, as the path to what was brought back.
                    inner = list(self._walk_dir(e.path, crel, srel, exclude))
                    if inner:
                        yield srel, e.path, st
                        yield from inner
                    continue
                yield srel, e.path, st
                yield from self._walk_dir(e.path, crel, srel, exclude)
            elif not out:
                yield srel, e.path, st

    def digest(self, matches: list[Match], exclude: IgnoreRules | None = None) -> str:
        """A checksum of what COPY would read: names, types, modes, link targets and file
        contents (not mtimes or owners, which COPY does not depend on)."""
        h = hashlib.sha256()
        for m in matches:
            h.update(f"{m.rel}\0".encode("utf-8", "surrogateescape"))
            for rel, host, st in self.walk(m, exclude):
                mode = st.st_mode
                h.update(f"{rel}\0{stat.S_IFMT(mode):o}\0{stat.S_IMODE(mode):o}\0".encode(
                    "utf-8", "surrogateescape"))  # fmt: skip
                if self.keep_owner:
                    h.update(f"{st.st_uid}:{st.st_gid}\0".encode())
                if stat.S_ISREG(mode):
                    if self.hashes is not None:
                        h.update(self.hashes.digest(host, st).encode())
                    else:
                        h.update(_file_digest(host).encode())
                elif stat.S_ISLNK(mode):
                    h.update(os.readlink(host).encode("utf-8", "surrogateescape"))
                h.update(b"\n")
        return h.hexdigest()


def _file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _match(pattern: str, name: str) -> bool:
    """Go's filepath.Match for one path element (``[^...]`` as well as ``[!...]``)."""
    return fnmatch.fnmatchcase(name, pattern.replace("[^", "[!"))
