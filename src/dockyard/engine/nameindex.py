"""The container names on disk: ``<root>/container-names/<name>``, a symlink to the ID.

SQLite's ``containers`` table is the truth about names. This index is a hint that lets the
lean ``logs`` path find a container without opening the store: importing ``_sqlite3`` (and
the functools and collections it imports) and opening the database are ~5 ms of a command
that is benchmarked against ``docker logs --tail``. Anything the index cannot answer goes
to the store, so the index only has to be never *wrong*, not complete:

- a link is made once its row is committed (create) or its new name is (rename);
- a link is removed before the row stops holding it is committed (rm, rename, ``--rm``);
- a reader follows a link only to a container directory that exists.

A store made before the index, or a crash between the two writes, leaves names without
links: those are read through SQLite, as before. ``system check`` reports links that
disagree with the table and ``--repair`` rewrites the index from it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

INDEX = "container-names"
_HEX = frozenset("0123456789abcdef")


def _dir(root: str) -> str:
    return os.path.join(root, INDEX)


def link(root: str, name: str, cid: str) -> None:
    """Point ``name`` at ``cid`` (atomically replacing what was there)."""
    directory = _dir(root)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}")
    try:
        try:
            os.symlink(cid, tmp)
        except FileNotFoundError:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            os.symlink(cid, tmp)
        except FileExistsError:
            os.unlink(tmp)  # left by a killed process with this PID
            os.symlink(cid, tmp)
        os.rename(tmp, os.path.join(directory, name))
    except OSError:
        pass  # a hint: without it the name is read through the store


def unlink(root: str, name: str, cid: str) -> None:
    """Forget ``name`` if it points at ``cid``."""
    path = os.path.join(_dir(root), name)
    try:
        if os.readlink(path) == cid:
            os.unlink(path)
    except OSError:
        pass


def lookup(root: str, ref: str) -> str | None:
    """The ID of the container ``ref`` names (a full ID, or a name with or without "/") when
    the disk says so; None means "ask the store" (ID prefixes always do: a name that looks
    like a prefix must win over it, as in Docker, and only the store knows every name)."""
    containers = os.path.join(root, "containers")
    if len(ref) == 64 and _HEX.issuperset(ref) and os.path.isdir(os.path.join(containers, ref)):
        return ref
    name = ref[1:] if ref.startswith("/") else ref
    if not name or name.startswith(".") or "/" in name:
        return None
    try:
        cid = os.readlink(os.path.join(_dir(root), name))
    except OSError:
        return None
    if len(cid) == 64 and _HEX.issuperset(cid) and os.path.isdir(os.path.join(containers, cid)):
        return cid
    return None


def _links(root: str) -> dict[str, str]:
    """Every entry of the index and where it points ("" where it is no link)."""
    try:
        entries = os.listdir(_dir(root))
    except FileNotFoundError:
        return {}
    out = {}
    for entry in entries:
        try:
            out[entry] = os.readlink(os.path.join(_dir(root), entry))
        except OSError:
            out[entry] = ""
    return out


def _stale(entry: str, target: str, names: Mapping[str, str]) -> bool:
    return entry.startswith(".") or names.get(entry) != target


def differences(root: str, names: Mapping[str, str]) -> list[str]:
    """Links that disagree with ``names`` (name -> ID, from the table), as ``system check``
    words them. Missing links are not listed: the index need not be complete."""
    return [
        f"stale container name link {entry!r}"
        for entry, target in sorted(_links(root).items())
        if _stale(entry, target, names)
    ]


def rebuild(root: str, names: Mapping[str, str]) -> None:
    """Make the index exactly ``names`` (name -> ID, from the table)."""
    links = _links(root)
    for entry, target in links.items():
        if _stale(entry, target, names):
            try:
                os.unlink(os.path.join(_dir(root), entry))
            except OSError:
                pass
    for name, cid in names.items():
        if links.get(name) != cid:
            link(root, name, cid)
