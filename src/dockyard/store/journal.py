"""The event journal's writer: one Docker event message appended to ``<dir>/<hour>.jsonl``.

Apart from the journal's readers (store/events.py) because a container's monitor writes
with it too (the ``health_status`` events of runtime/healthcheck.py): the monitor runs as
``python -I -S`` and every module it loads is memory in each container's monitor, so this
one holds only what a write needs and imports only built-in modules.

A line is the message in Go's compact JSON, written with ``O_APPEND`` in one ``write``:
whole lines, whoever writes at once. It carries the time taken just before its write, so
lines of different processes are in time order give or take that moment (the readers allow
for it). Segments older than a week go when a new one starts.
"""

from __future__ import annotations

import _json
import os
import time

TYPE_CHECKING = False  # not typing's: ~2 ms of `run`'s start-up
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["HOUR_NS", "SUFFIX", "append", "encode", "message", "segments"]

HOUR_NS = 3600 * 1_000_000_000
KEEP_HOURS = 7 * 24
SUFFIX = ".jsonl"


def _fail(obj: object) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# Compact, UTF-8 kept: the form Go's encoder writes (less its HTML escapes).
_encode = _json.make_encoder({}, _fail, _json.encode_basestring, None, ":", ",", False, False, True)


def encode(message: Mapping[str, Any]) -> str:
    return "".join(_encode(message, 0))


def message(
    type_: str, action: str, actor: str, attributes: Mapping[str, str], ns: int
) -> dict[str, Any]:
    """Docker's event message (api/types/events.Message), in its JSON order. Containers and
    images also carry the old ``status``/``id``/``from`` fields, as Docker's do."""
    msg: dict[str, Any] = {}
    if type_ in ("container", "image"):
        msg["status"] = action
        msg["id"] = actor
        if type_ == "container" and attributes.get("image"):
            msg["from"] = attributes["image"]
    msg["Type"] = type_
    msg["Action"] = action
    msg["Actor"] = {"ID": actor, "Attributes": dict(attributes)}
    msg["scope"] = "local"
    msg["time"] = ns // 1_000_000_000
    msg["timeNano"] = ns
    return msg


def append(
    directory: str,
    type_: str,
    action: str,
    actor: str,
    attributes: Mapping[str, str] | None = None,
) -> None:
    """Record one event in the journal in ``directory``: ``type_`` is Docker's (container,
    image, network, volume), ``action`` its verb (``create``, ``die``, ``health_status:
    healthy``...), ``actor`` the object's ID, ``attributes`` Docker's for that event. Never
    raises for the journal: the operation it reports went through."""
    ns = time.time_ns()
    line = encode(message(type_, action, actor, attributes or {}, ns)) + "\n"
    path = os.path.join(directory, f"{ns // HOUR_NS}{SUFFIX}")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(path, flags | os.O_CREAT, 0o600)
            _drop_old(directory, ns)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # a full or read-only disk: the operation itself went through


def segments(directory: str) -> list[int]:
    """The hours the journal has a segment for, oldest first."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(int(n[: -len(SUFFIX)]) for n in names if _is_segment(n))


def _is_segment(name: str) -> bool:
    return name.endswith(SUFFIX) and name[: -len(SUFFIX)].isdigit()


def _drop_old(directory: str, ns: int) -> None:
    oldest = ns // HOUR_NS - KEEP_HOURS
    for hour in segments(directory):
        if hour < oldest:
            try:
                os.unlink(os.path.join(directory, f"{hour}{SUFFIX}"))
            except OSError:
                pass
