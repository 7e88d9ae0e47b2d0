"""Container paths as Docker's builder treats them: destinations joined to WORKDIR, resolved
inside the step's root with every symlink followed (Docker's ResolveScopedPath), and missing
directories made the way its ``MkdirAllAndChownNew`` makes them.

Messages name container paths, never the host path of the step's root.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from typing import NamedTuple

from dockyard.errors import InvalidArgument
from dockyard.runtime.paths import resolve_in_root

Ids = tuple[int, int]


def go_clean(path: str) -> str:
    """Go's ``path.Clean`` of an absolute path ("//a/./b/" -> "/a/b")."""
    parts: list[str] = []
    for p in path.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/" + "/".join(parts)


def normalize_workdir(current: str, requested: str) -> str:
    """Docker's normalizeWorkdir: a relative WORKDIR is relative to the current one."""
    return go_clean(posixpath.join(current or "/", requested))


class Destination(NamedTuple):
    path: str  # the container path, as Docker's normalizeDest makes it
    host: str  # where it is on the host: every symlink on the way resolved inside the root
    is_dir: bool  # written as a directory: a trailing "/" (or BuildKit's "." and "/.")


def destination(rootfs: str, workdir: str, dest: str) -> Destination:
    """A COPY/ADD destination. Docker joins a relative one to WORKDIR (keeping a trailing
    slash) and resolves the result with its final symlink followed, so ``COPY a /link`` with
    ``/link -> /real`` writes into ``/real``. BuildKit also takes ``.`` as a directory."""
    if dest.startswith("/"):
        path = dest
    else:
        path = go_clean(posixpath.join("/", workdir or "/", dest))
        if dest.endswith("/") and path != "/":
            path += "/"
    is_dir = dest.endswith("/") or dest == "." or dest.endswith("/.")
    try:
        host = resolve_in_root(rootfs, path)
    except InvalidArgument as e:
        raise InvalidArgument(f"{dest}: {e}") from None
    return Destination(path, host, is_dir)


def container_path(rootfs: str, host: str) -> str:
    """The container path of ``host``, a path below ``rootfs``."""
    rel = os.path.relpath(host, rootfs)
    return "/" if rel == "." else "/" + rel


def mkdir_all(rootfs: str, host: str, ids: Ids | None, mode: int = 0o755) -> bool:
    """Make directory ``host`` (below ``rootfs``, already resolved) and its missing parents,
    ``mode`` and owned by ``ids`` (root when None); existing ones are left as they are, as
    Docker's ``MkdirAllAndChownNew``. Returns whether ``host`` itself was made.

    A non-directory on the way is NotADirectoryError naming its container path."""
    rel = os.path.relpath(host, rootfs)
    if rel == ".":
        return False
    cur = rootfs
    made = False
    for part in rel.split("/"):
        cur = os.path.join(cur, part)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o700)
            uid, gid = ids or (0, 0)
            os.chown(cur, uid, gid)
            os.chmod(cur, mode)
            made = True
            continue
        # resolve_in_root leaves no symlink on the way; one here is a dangling link's
        # target that another component made meanwhile: never follow it.
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(
                errno.ENOTDIR, f"{container_path(rootfs, cur)} is not a directory"
            )
        made = False
    return made


def make_workdir(rootfs: str, workdir: str, ids: Ids | None) -> None:
    """Docker creates WORKDIR in the image (and a RUN's working directory): missing
    directories are made 0755, owned by ``ids``."""
    try:
        host = resolve_in_root(rootfs, workdir)
        mkdir_all(rootfs, host, ids)
    except NotADirectoryError:
        raise InvalidArgument(f"Cannot mkdir: {workdir} is not a directory") from None
