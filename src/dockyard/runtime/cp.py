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
    from dockyard.runtime.fs import copy_in, copy_out, copy_to_container, extract_to_host
    from dockyard.runtime.rootfs import unmount

    src_c, src_path = _split(src)
    dst_c, dst_path = _split(dst)
    if src_c is not None and dst_c is not None:
        raise InvalidArgument("copying between containers is not supported")
    if src_c is None and dst_c is None:
        raise InvalidArgument("must specify at least one container source")
    name = src_c or dst_c
    assert name is not None
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
