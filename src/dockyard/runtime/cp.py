"""``docker cp`` between the host and a container (either direction, ``-`` for a tar stream).

The container's root is its overlay as mounted on the host; paths that the container sees
through a mount (its /etc/hosts, hostname and resolv.conf, volumes and bind mounts) are read
from and written to the mount's source, as Docker does, after symlinks are resolved inside the
container's root.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    from dockyard.engine.containers import ContainerService


def _split(arg: str) -> tuple[str | None, str]:
    """ "name:/path" -> ("name", "/path"); a host path (absolute, ./rel, or no colon) -> None."""
    if arg == "-" or arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


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


def copy(containers: ContainerService, src: str, dst: str, *, follow_link: bool = False) -> None:
    src_c, src_path = _split(src)
    dst_c, dst_path = _split(dst)
    if src_c is not None and dst_c is not None:
        raise InvalidArgument("copying between containers is not supported")
    if src_c is None and dst_c is None:
        raise InvalidArgument("must specify at least one container source")
    name = src_c or dst_c
    assert name is not None
    # While we may mount a stopped container's root, its dir is locked (shared): `system
    # check` then does not take that mount for one a killed cp left.
    lock = copy_lock(containers.container_dir(containers.resolve(name)))
    try:
        _copy(containers, name, src_c, src_path, dst_path, follow_link)
    finally:
        os.close(lock)


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


def _copy(
    containers: ContainerService,
    name: str,
    src_c: str | None,
    src_path: str,
    dst_path: str,
    follow_link: bool,
) -> None:
    from dockyard.runtime.fs import copy_in, copy_out, copy_to_container, extract_to_host
    from dockyard.runtime.rootfs import unmount

    cid, root, mounted = containers.rootfs_for_copy(name)
    mounts = containers.mount_sources(cid)
    try:
        if src_c is not None:
            base, path = locate(root, src_path, mounts)
            if dst_path == "-":
                copy_out(base, path, sys.stdout.buffer, follow_link=follow_link)
                sys.stdout.buffer.flush()
                return
            with tempfile.TemporaryFile() as spool:
                copy_out(base, path, spool, follow_link=follow_link)
                spool.seek(0)
                extract_to_host(spool, dst_path)
            return
        base, path = locate(root, dst_path, mounts)
        if src_path == "-":
            copy_in(base, path, sys.stdin.buffer)
            return
        from dockyard.runtime.fs import copy_from_host

        with tempfile.TemporaryFile() as spool:
            copy_from_host(src_path, spool, follow_link=follow_link)
            spool.seek(0)
            copy_to_container(base, path, spool)
    finally:
        if mounted:
            unmount(root)
