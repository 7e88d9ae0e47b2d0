"""Mounts under the store: finding them (``/proc/self/mountinfo``) and detaching them.

A directory of the store must never be deleted while something is mounted inside it: the
delete would go through the mount (into an overlay's upper dir, or a bind mount's source),
and the mount point itself cannot be removed, so the leftover comes back at every check.
"""

from __future__ import annotations

import os

MNT_DETACH = 2
_EINVAL, _ENOENT = 22, 2


def unescape(field: str) -> str:
    """A mountinfo path: space, tab, newline and backslash are written as octal escapes
    (``\\040``)."""
    if "\\" not in field:
        return field
    raw = field.encode()
    out = bytearray()
    i = 0
    while i < len(raw):
        chunk = raw[i + 1 : i + 4]
        if raw[i] == 0x5C and len(chunk) == 3 and all(0x30 <= c <= 0x37 for c in chunk):
            out.append(int(chunk, 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return out.decode(errors="surrogateescape")


def mount_points(under: str) -> list[str]:
    """Mount points at or below ``under``, deepest first (the order to detach them in)."""
    base = os.path.realpath(under)
    prefix = base.rstrip("/") + "/"
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return []
    points = {unescape(line.split()[4]) for line in lines if len(line.split()) > 4}
    found = [p for p in points if p == base or p.startswith(prefix)]
    return sorted(found, key=lambda p: (-p.count("/"), p))


def detach(target: str) -> bool:
    """Lazy unmount (``umount2(MNT_DETACH)``): gone from the tree at once, released by the
    kernel when its last user lets go. False when nothing was mounted there."""
    from dockyard.libc import errno, function

    if function("umount2")(os.fsencode(target), MNT_DETACH) != 0:
        err = errno()
        if err in (_EINVAL, _ENOENT):
            return False
        raise OSError(err, f"unmounting {target}: {os.strerror(err)}")
    return True


def detach_all(under: str) -> list[str]:
    """Detach every mount at or below ``under`` (stacked mounts too); returns what it
    detached."""
    done: list[str] = []
    for _ in range(8):  # a point can carry several stacked mounts
        points = mount_points(under)
        if not points:
            break
        for p in points:
            if detach(p):
                done.append(p)
    return done


def detach_stack(target: str, limit: int = 8) -> int:
    """Detach ``target`` and whatever is stacked under it (a mount a killed process left,
    and the one made over it later) without reading mountinfo; how many went."""
    n = 0
    while n < limit and detach(target):
        n += 1
    return n
