"""``docker cp``: which host directory a container path is read from or written to.

The container's root is its overlay as mounted on the host; paths that the container sees
through a mount (its /etc/hosts, hostname and resolv.conf, volumes and bind mounts) are read
from and written to the mount's source, as Docker does, after symlinks are resolved inside the
container's root.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


def locate(root: str, path: str, mounts: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(root, path) to use for container ``path``: the overlay root, or the source of the mount
    that covers it. ``mounts`` are (destination, host source) pairs."""
    from dockyard.runtime.fs import resolve_in_root

    trailing = "/" if path.endswith(("/", "/.")) else ""
    dot = "." if path.endswith("/.") else ""
    host = resolve_in_root(
        root, path.rstrip("/") if path not in ("/", "") else "/", follow_final=False
    )
    inside = "/" + os.path.relpath(host, root).lstrip(".").lstrip("/")
    best = None
    for dest, source in mounts:
        if (inside == dest or inside.startswith(dest.rstrip("/") + "/")) and (
            best is None or len(dest) > len(best[0])
        ):
            best = (dest, source)
    if best is None:
        return root, path
    dest, source = best
    rest = inside[len(dest) :].lstrip("/")
    if os.path.isfile(source):
        return os.path.dirname(source), "/" + os.path.basename(source) + trailing
    return source, "/" + rest + (trailing + dot if rest else dot)


def copy_lock(container_dir: str) -> int:
    import fcntl

    fd = os.open(container_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def copy_in_progress(container_dir: str) -> bool:
    """Whether a ``cp`` holds the container dir's lock (see :func:`copy`)."""
    import fcntl

    try:
        fd = os.open(container_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
