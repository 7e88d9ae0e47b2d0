"""Resolve ``--user`` and ``--group-add`` against a container's own /etc/passwd and /etc/group.

The files are read from inside the container's root directory, never from the host: every
path is resolved one component at a time with symlinks interpreted as if the root directory
were ``/`` (absolute targets restart at the rootfs, ``..`` stops at its top). An image whose
``/etc/passwd`` is a symlink to ``/../../etc/shadow`` therefore reads ``<rootfs>/etc/shadow``.

The rules follow Docker's (runc's ``GetExecUser``):

* ``""`` is uid 0; gid and home come from the passwd entry of uid 0 when there is one
  (otherwise gid 0 and home ``/``).
* ``name`` or ``uid``: a numeric value matches by uid, anything else by name. An unknown
  numeric uid is allowed (gid 0, home ``/``); an unknown name is an error.
* ``user:group``: the group is matched by gid when numeric, else by name; an unknown numeric
  gid is allowed, an unknown name is an error. With an explicit group the user's supplementary
  groups from /etc/group are not added.
* Without an explicit group, the supplementary groups are the /etc/group entries that list the
  user's name. ``group_add`` entries (names or numbers) are appended.
"""

from __future__ import annotations

import errno
import os
import stat

from dockyard.errors import InvalidArgument
from dockyard.runtime.paths import resolve_in_root

TYPE_CHECKING = False  # not typing's: `run` loads this module
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NamedTuple
else:
    from dockyard.model.values import NamedTuple

__all__ = ["ResolvedUser", "resolve_user", "resolve_in_root"]

# Linux ids are 32-bit unsigned, but (uid_t)-1 means "no change" and Docker caps at 2^31-1.
_MAX_ID = (1 << 31) - 1
_MAX_FILE_SIZE = 64 * 1024 * 1024  # a passwd/group file bigger than this is not a real one


class ResolvedUser(NamedTuple):
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


class _PasswdEntry(NamedTuple):
    name: str
    uid: int
    gid: int
    home: str


class _GroupEntry(NamedTuple):
    name: str
    gid: int
    members: tuple[str, ...]


def _read_root_file(root: str, path: str) -> str:
    """The text of ``path`` inside ``root``; "" when it is missing or not a regular file."""
    host_path = resolve_in_root(root, path)
    try:
        # O_NOFOLLOW: the last component was checked not to be a symlink; if it has become one
        # since, refuse rather than follow it. O_NONBLOCK: never hang on a FIFO.
        fd = os.open(host_path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return ""
        raise InvalidArgument(f"cannot read {path} in the container: {e.strerror}")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return ""
        if st.st_size > _MAX_FILE_SIZE:
            raise InvalidArgument(f"{path} in the container is too large ({st.st_size} bytes)")
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


def _parse_id(text: str) -> int | None:
    """``text`` as an id when it is a plain decimal number, else None."""
    if not text or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def _check_range(value: int, what: str) -> int:
    if value > _MAX_ID:
        raise InvalidArgument(f"{what} {value} is out of range (0-{_MAX_ID})")
    return value


def _parse_passwd(text: str) -> list[_PasswdEntry]:
    entries: list[_PasswdEntry] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 4:
            continue
        uid = _parse_id(fields[2])
        gid = _parse_id(fields[3])
        if uid is None or gid is None:
            continue  # e.g. NIS "+" lines: not something a container can resolve
        home = fields[5] if len(fields) > 5 else ""
        entries.append(_PasswdEntry(fields[0], uid, gid, home))
    return entries


def _parse_group(text: str) -> list[_GroupEntry]:
    entries: list[_GroupEntry] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 3:
            continue
        gid = _parse_id(fields[2])
        if gid is None:
            continue
        members = fields[3] if len(fields) > 3 else ""
        entries.append(
            _GroupEntry(fields[0], gid, tuple(m.strip() for m in members.split(",") if m.strip()))
        )
    return entries


def _lookup_group(groups: list[_GroupEntry], spec: str) -> int:
    """The gid for a group given by name or number (an unknown number is allowed)."""
    number = _parse_id(spec)
    if number is not None:
        for g in groups:
            if g.gid == number:
                return g.gid
        return _check_range(number, "gid")
    for g in groups:
        if g.name == spec:
            return g.gid
    raise InvalidArgument(f"unable to find group {spec}: no matching entries in group file")


def resolve_user(rootfs: str, user: str, group_add: Sequence[str] = ()) -> ResolvedUser:
    """The uid, gid, supplementary gids and home directory ``user`` means in ``rootfs``."""
    user_part, sep, group_part = user.partition(":")
    if sep and not group_part:
        raise InvalidArgument(f"invalid user {user!r}: empty group")
    if sep and not user_part:
        raise InvalidArgument(f"invalid user {user!r}: empty user")

    passwd = _parse_passwd(_read_root_file(rootfs, "/etc/passwd"))
    groups = _parse_group(_read_root_file(rootfs, "/etc/group"))

    uid_arg = _parse_id(user_part) if user_part else 0
    matched: _PasswdEntry | None = None
    for entry in passwd:
        if (uid_arg is not None and entry.uid == uid_arg) or (
            uid_arg is None and entry.name == user_part
        ):
            matched = entry
            break

    if matched is not None:
        uid, gid, home, name = matched.uid, matched.gid, matched.home or "/", matched.name
    elif uid_arg is not None:
        uid, gid, home, name = _check_range(uid_arg, "uid"), 0, "/", ""
    else:
        raise InvalidArgument(
            f"unable to find user {user_part}: no matching entries in passwd file"
        )

    extra: list[int] = []
    if group_part:
        gid = _lookup_group(groups, group_part)
    elif name:
        extra.extend(g.gid for g in groups if name in g.members)
    for spec in group_add:
        spec = spec.strip()
        if not spec:
            raise InvalidArgument("invalid --group-add: empty group")
        extra.append(_lookup_group(groups, spec))

    seen: set[int] = set()
    additional: list[int] = []
    for g in extra:
        if g not in seen:
            seen.add(g)
            additional.append(g)
    return ResolvedUser(uid=uid, gid=gid, additional_gids=tuple(additional), home=home)
