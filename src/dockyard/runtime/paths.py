"""Paths inside a container's root, resolved the way a chroot would resolve them.

One implementation for everything that reads or writes a container's files from the host
(users from /etc/passwd, WORKDIR, docker cp): a symlink inside the container can never lead
outside its root.
"""

from __future__ import annotations

import os
import stat

from dockyard.errors import InvalidArgument

MAX_SYMLINKS = 40  # Linux's limit (ELOOP) for one path resolution
_LOOP_MESSAGE = "too many levels of symbolic links"


def resolve_in_root(root: str, path: str, *, follow_final: bool = True) -> str:
    """The host path for container path ``path``, every symlink resolved inside ``root``.

    Absolute link targets are taken relative to ``root``; ``..`` never climbs above it; more
    than 40 links -> InvalidArgument. Components that do not exist are joined as they are.
    With ``follow_final=False`` a symlink in the last component is left unresolved (a trailing
    ``/`` or ``/.`` still makes it followed, as in POSIX). Relative ``path`` means from ``/``.
    """
    root = os.path.abspath(root)
    resolved: list[str] = []
    # "" and "." stay queued so that "link/" and "link/." count as not ending in "link".
    # A stack, next name last (not a deque: collections costs `run` ~1 ms of start-up).
    pending = path.split("/")[::-1]
    links = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            if resolved:
                resolved.pop()
            continue
        if not pending and not follow_final:
            resolved.append(name)
            break
        host = os.path.join(root, *resolved, name)
        try:
            st = os.lstat(host)
        except OSError:  # missing (or under a non-directory): the rest is taken as written
            resolved.append(name)
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved.append(name)
            continue
        links += 1
        if links > MAX_SYMLINKS:
            raise InvalidArgument(_LOOP_MESSAGE)
        target = os.readlink(host)
        if target.startswith("/"):
            resolved.clear()
        pending.extend(reversed(target.split("/")))
    result = os.path.join(root, *resolved)
    assert os.path.commonpath([root, result]) == root, (root, result)
    return result


def which(name: str) -> str | None:
    """A host executable from $PATH, like shutil.which without importing shutil (it loads
    the compression modules): the OCI runtime's binary, found without importing subprocess."""
    if "/" in name:
        return name if os.access(name, os.X_OK) else None
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        path = os.path.join(d or ".", name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None
