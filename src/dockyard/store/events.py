"""The event journal: what ``docker events`` shows, written by every dockyard process.

Docker keeps its last 256 events in the daemon's memory. dockyard has no daemon to keep
them, so every process that changes something (the CLI, ``dockyard daemon``, a container's
exit command, a container's monitor for its health checks) appends the event to a journal
in the store, and readers (``dockyard events``, ``GET /events``) read it and follow it as it
grows, whoever wrote it.

It lives in the store's layer, below the runtime, because a container's monitor writes to
it (``health_status`` events, runtime/healthcheck.py) with the writer alone, store/journal.py,
which this module's ``Events.emit`` uses too.

Layout: ``<root>/events/<hour>.jsonl``, hour = Unix time // 3600, one Docker event message
(``{"status","id","from","Type","Action","Actor":{"ID","Attributes"},"scope","time",
"timeNano"}``) a line, appended with ``O_APPEND`` in one ``write`` (whole lines, whoever
writes at once). ``--since`` opens the segment of its hour (older ones are not read) and
searches it by time; segments older than a week are removed when a new one starts. A line
carries the time it was emitted, taken just before its write: across processes lines are in
time order give or take the moments between taking the time and writing, which readers allow
for (``SKEW``).

The hook (the one API for the rest of the engine, restart policies included):
``engine.events.emit(type, action, actor_id, attributes)``, or
``engine.events.container(ctr, action, **extra)`` for a container's events, whose attributes
are Docker's (its labels, ``image``, ``name``, plus ``extra``). The monitor, which knows
neither the store's root nor the container's record, is handed the journal's directory and
the container's attributes in ``healthcheck.json`` and calls ``journal.append(dir, ...)``.
Emitting never fails the operation that reports it: a journal that cannot be written is
skipped.
"""

from __future__ import annotations

import os
import time

from dockyard.fastjson import scan
from dockyard.store.journal import HOUR_NS, SUFFIX, append, segments

TYPE_CHECKING = False  # not typing's: ~2 ms of `run`'s start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from typing import Any

    from dockyard.model.container import Container

__all__ = ["Events", "matches"]

SKEW = 5 * 1_000_000_000  # how far out of time order two processes' lines may be
POLL = 0.1  # how often a follower looks for new lines


class Events:
    def __init__(self, root: str) -> None:
        self.dir = os.path.join(root, "events")

    # ------------------------------------------------------------------ writing

    def emit(
        self, type_: str, action: str, actor: str, attributes: Mapping[str, str] | None = None
    ) -> None:
        """Record one event (journal.append): ``type_`` is Docker's (container, image,
        network, volume), ``action`` its verb, ``actor`` the object's ID, ``attributes``
        Docker's for that event."""
        append(self.dir, type_, action, actor, attributes)

    def container(self, ctr: Container, action: str, **extra: str) -> None:
        """A container's event, with Docker's attributes: its labels, ``image`` (as it was
        asked for) and ``name``, then ``extra`` (``exitCode``, ``signal``, ``execID``...)."""
        self.emit("container", action, ctr.id, container_attributes(ctr, extra))

    # ------------------------------------------------------------------ reading

    def _segments(self) -> list[int]:
        return segments(self.dir)

    def read(
        self,
        *,
        since: int = 0,
        until: int = 0,
        filters: Mapping[str, Sequence[str]] | None = None,
        follow: bool = False,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Docker's ``GET /events``: with ``since`` or ``until`` (ns), the recorded events
        from ``since`` to ``until``; then, with ``follow`` and unless ``until`` has passed,
        the events written from now on (by any process) until ``until`` (or ``stop()``,
        asked while none comes, says to stop). Only those ``filters`` match. Errors are
        raised here, before the first event (the API has not answered yet)."""
        if until and since > until:
            from dockyard.errors import InvalidArgument

            raise InvalidArgument(
                f"`since` time ({_api_time(since)}) cannot be after `until` time "
                f"({_api_time(until)})"
            )
        return self._read(since, until, filters or {}, follow, stop)

    def _read(
        self,
        since: int,
        until: int,
        want: Mapping[str, Sequence[str]],
        follow: bool,
        stop: Callable[[], bool] | None,
    ) -> Iterator[dict[str, Any]]:
        # What the journal holds now is the past; what comes after, the follower's. The
        # sizes taken here split them: nothing is missed or shown twice.
        ends = {seg: _size(self._path(seg)) for seg in self._segments()}
        if since or until:
            for msg in self._past(since, until, ends):
                if matches(msg, want):
                    yield msg
        if not follow or (until and until < time.time_ns()):
            return
        yield from self._follow(ends, want, until, stop)

    def _path(self, seg: int) -> str:
        return os.path.join(self.dir, f"{seg}{SUFFIX}")

    def _past(self, since: int, until: int, ends: dict[int, int]) -> Iterator[dict[str, Any]]:
        """The recorded events from ``since`` to ``until`` (each segment up to ``ends``)."""
        first = (since - SKEW) // HOUR_NS if since else 0
        for seg in sorted(ends):
            if seg < first:
                continue
            if until and seg * HOUR_NS > until + SKEW:
                break
            try:
                f = open(self._path(seg), "rb")  # noqa: SIM115 - closed below
            except OSError:
                continue
            with f:
                start = _seek(f, ends[seg], since - SKEW) if since and seg == first else 0
                f.seek(start)
                for raw in f.read(ends[seg] - start).splitlines(keepends=True):
                    if not raw.endswith(b"\n"):
                        break  # a line being written: the follower's
                    msg = _decode(raw)
                    if msg is None:
                        continue
                    ns = int(msg.get("timeNano") or 0)
                    if ns < since or (until and ns > until):
                        continue
                    yield msg

    def _follow(
        self,
        positions: dict[int, int],
        want: Mapping[str, Sequence[str]],
        until: int,
        stop: Callable[[], bool] | None,
    ) -> Iterator[dict[str, Any]]:
        """The lines appended from ``positions`` on (segment -> offset), as they come."""
        while True:
            got = False
            segments = self._segments()
            newest = segments[-1] if segments else 0
            for seg in segments:
                # The hour before the newest may still get a line from a process that took
                # its time just before the hour turned: both are watched.
                if seg < newest - 1:
                    continue
                pos = positions.get(seg, 0)
                path = self._path(seg)
                if _size(path) <= pos:
                    continue
                try:
                    with open(path, "rb") as f:
                        f.seek(pos)
                        data = f.read()
                except OSError:
                    continue
                whole = data.rfind(b"\n") + 1  # a line being written is read again later
                positions[seg] = pos + whole
                for raw in data[:whole].splitlines():
                    msg = _decode(raw)
                    if msg is None or (until and int(msg.get("timeNano") or 0) > until):
                        continue
                    if matches(msg, want):
                        got = True
                        yield msg
            if until and time.time_ns() > until:
                return
            if not got:
                if stop is not None and stop():
                    return
                time.sleep(POLL)


def _api_time(ns: int) -> str:
    """A time as Docker's API gives it ("1700000000", "1700000000.500000000")."""
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{sec}.{frac:09d}" if frac else str(sec)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _decode(raw: bytes) -> dict[str, Any] | None:
    try:
        msg, _ = scan(raw.decode("utf-8", "replace"), 0)
    except (StopIteration, ValueError):
        return None
    return msg if isinstance(msg, dict) else None


def _time_of(raw: bytes) -> int | None:
    i = raw.rfind(b'"timeNano":')
    if i < 0:
        return None
    j = i + 11
    k = j
    while k < len(raw) and 48 <= raw[k] <= 57:
        k += 1
    return int(raw[j:k]) if k > j else None


def _seek(f: Any, end: int, target: int) -> int:
    """An offset of a line boundary in ``f`` (of ``end`` bytes) before which every line is
    older than ``target``: a binary search (lines are appended in time order, give or take
    SKEW, which the caller has taken off ``target``)."""
    lo, hi = 0, end
    while hi - lo > 16384:
        mid = (lo + hi) // 2
        f.seek(mid)
        f.readline()  # to the next line boundary
        at = f.tell()
        raw = f.readline()
        t = _time_of(raw) if raw.endswith(b"\n") and at < hi else None
        if t is not None and t < target:
            lo = at
        else:
            hi = mid
    return lo


def container_attributes(ctr: Container, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Docker's attributes of a container's events: its labels, then ``image`` (the name it
    was asked for) and ``name``, then the event's own (daemon/events.go LogContainerEvent)."""
    attrs = dict(ctr.spec.labels)
    attrs["image"] = ctr.spec.image
    attrs["name"] = ctr.name
    if extra:
        attrs.update(extra)
    return attrs


# ------------------------------------------------------------------------------ filters


def matches(msg: Mapping[str, Any], filters: Mapping[str, Sequence[str]]) -> bool:
    """Docker's event filters (daemon/events/filter.go): every key given must match; within
    a key any value may. ``container``, ``network``, ``volume`` match the actor's ID or name
    by prefix, ``image`` the image's ID or name with or without its tag, ``label`` a key or
    key=value of the attributes, ``event`` the action (``exec_create`` and ``health_status``
    by prefix), ``type`` the type. Keys Docker does not know match everything, as there."""
    if not filters:
        return True
    type_ = str(msg.get("Type", ""))
    action = str(msg.get("Action", ""))
    actor = msg.get("Actor") or {}
    actor_id = str(actor.get("ID", ""))
    attrs: dict[str, str] = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
    events = filters.get("event")
    if events:
        fuzzy = any(e in ("health_status", "exec_create", "exec_start") for e in events)
        if not (action in events or (fuzzy and any(action.startswith(e) for e in events))):
            return False
    if filters.get("type") and type_ not in filters["type"]:
        return False
    if filters.get("scope") and "local" not in filters["scope"]:
        return False
    for kind in ("container", "network", "volume"):
        values = filters.get(kind)
        if values and not (_fuzzy(values, actor_id) or _fuzzy(values, attrs.get("name", ""))):
            return False
    images = filters.get("image")
    if images:
        name = attrs.get("name" if type_ == "image" else "image", "")
        candidates = {actor_id, name, _strip_tag(actor_id), _strip_tag(name)}
        if not any(c in images for c in candidates):
            return False
    for label in filters.get("label") or ():
        key, eq, value = label.partition("=")
        if key not in attrs or (eq and attrs[key] != value):
            return False
    return not (filters.get("daemon") or filters.get("plugin") or filters.get("node"))


def _fuzzy(values: Sequence[str], source: str) -> bool:
    return any(source == v or source.startswith(v) for v in values)


def _strip_tag(ref: str) -> str:
    """A reference without its tag (moby's stripTag: digests are kept)."""
    if "@" in ref:
        return ref
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[:colon] if colon > slash else ref
