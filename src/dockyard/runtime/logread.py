"""Reading a container's log (runtime/logfile.py has the formats and the writer): the last
records of all its files (``--tail``), those from a time on (``--since``, found by a binary
search after whole files are passed over by their last record's time) up to another
(``--until``), then, following, what the monitor writes next, across rotations.

Docker's order is kept: the tail of all the files first, then since/until on it.
"""

from __future__ import annotations

import os
import time

from dockyard.fastjson import scan
from dockyard.runtime.logfile import (
    BLOCK,
    FORMATS,
    DirLock,
    Entry,
    JSONFile,
    LocalFile,
    parse_ns,
    rotated_files,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["gzip_last_time", "read_log"]

SEEK_SPAN = 64 * 1024  # binary search by time stops when the range is this small: then scan
FOLLOW_POLL = 0.05


def gzip_last_time(fd: int) -> int | None:
    """The ``lastTime`` Docker (and we) put in a rotated file's gzip header, in ns."""
    head = os.pread(fd, 12, 0)
    if len(head) < 12 or head[:2] != b"\x1f\x8b" or not head[3] & 0x04:
        return None
    size = int.from_bytes(head[10:12], "little")
    extra = os.pread(fd, size, 12)
    try:
        value, _ = scan(extra.decode("utf-8"), 0)
        return parse_ns(str(value["lastTime"]))
    except (ValueError, KeyError, TypeError, StopIteration, UnicodeDecodeError):
        return None


Format = type[JSONFile] | type[LocalFile]


class _Open:
    """One file of the log, opened: its fd, where its last whole record ends (when opened),
    compressed or not."""

    __slots__ = ("fd", "end", "gz", "index")

    def __init__(self, fd: int, index: int, gz: bool, fmt: Format) -> None:
        self.fd = fd
        self.gz = gz
        self.index = index
        size = os.fstat(fd).st_size
        self.end = size if gz else fmt.complete_end(fd, size)


def _open_all(path: str, fmt: Format) -> list[_Open]:
    """The log's files, oldest first, opened together under the directory's shared lock."""
    directory = os.path.dirname(path)
    out: list[_Open] = []
    with DirLock(directory, exclusive=False):
        for index, name in rotated_files(path):
            try:
                fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            out.append(_Open(fd, index, name.endswith(".gz"), fmt))
    return out


def _inflate(fd: int) -> Iterator[bytes]:
    import zlib

    d = zlib.decompressobj(31)
    pos = 0
    while not d.eof:
        chunk = os.pread(fd, 1 << 20, pos)
        if not chunk:
            break
        pos += len(chunk)
        data = d.decompress(chunk)
        if data:
            yield data


def _records(fmt: Format, f: _Open, start: int = 0) -> Iterator[bytes]:
    """Every record of ``f`` from ``start`` (a record boundary) to its end."""
    buf = bytearray()
    if f.gz:
        for data in _inflate(f.fd):
            buf += data
            yield from fmt.split(buf)
        return
    pos = start
    while pos < f.end:
        chunk = os.pread(f.fd, min(BLOCK * 4, f.end - pos), pos)
        if not chunk:
            break
        pos += len(chunk)
        buf += chunk
        yield from fmt.split(buf)


def _last_time(fmt: Format, f: _Open) -> int | None:
    if f.gz:
        return gzip_last_time(f.fd)
    lines = fmt.last(f.fd, f.end, 1)
    return fmt.time_of(lines[0]) if lines else None


def _seek(fmt: Format, f: _Open, since: int) -> int:
    """A record boundary of ``f`` before which every record is older than ``since``:
    a binary search over byte offsets (records are appended in time order)."""
    lo, hi = 0, f.end
    while hi - lo > SEEK_SPAN:
        mid = (lo + hi) // 2
        found = fmt.record_at(f.fd, mid, hi)
        if found is None:
            hi = mid
            continue
        raw, at = found
        t = fmt.time_of(raw)
        if t is not None and t < since:
            lo = at
        else:
            hi = mid
    return lo


def read_log(
    path: str,
    driver: str,
    *,
    tail: int | None = None,
    since: int = 0,
    until: int = 0,
    follow: bool = False,
    running: Callable[[], bool] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Entry]:
    """(stream, text, time) of the log's records, oldest first, as Docker's reader gives
    them: the last ``tail`` records (None or < 0: all) of all the files together, of those
    the ones at or after ``since`` and at or before ``until`` (ns; 0: no bound). With
    ``follow``, then the records written later, while ``running()`` says so (and until
    ``stop()``, asked while nothing comes, says to stop).

    The files are opened by this call, not at the first record: what the log holds now is
    read even if the container is removed before the caller reads (docker-py's
    ``containers.run`` asks for the follow, waits, removes, and only then reads it)."""
    records = _read_log(path, FORMATS[driver], tail, since, until, follow, running, stop)
    next(records)  # opened; from here a close() (or the iterator's end) closes the files
    return records


_OPENED: Entry = ("", "", "")  # the marker: the files are open


def _read_log(
    path: str,
    fmt: Format,
    tail: int | None,
    since: int,
    until: int,
    follow: bool,
    running: Callable[[], bool] | None,
    stop: Callable[[], bool] | None,
) -> Iterator[Entry]:
    files = _open_all(path, fmt)
    try:
        yield _OPENED
        if tail is None or tail < 0:
            chosen = _whole(fmt, files, since, until)
        else:
            chosen = _tail(fmt, files, tail, since, until)
        for entry in chosen:
            if entry is _UNTIL_PASSED:
                return
            yield entry
        if not follow:
            return
        current = files[-1] if files and files[-1].index == 0 else None
        yield from _follow(fmt, path, current, since, until, running, stop)
    finally:
        for f in files:
            os.close(f.fd)


_UNTIL_PASSED: Entry = ("", "", "")  # the marker: a record after ``until`` came


def _filtered(fmt: Format, raws: Iterator[bytes], since: int, until: int) -> Iterator[Entry]:
    decode = fmt.decode
    if not since and not until:
        for raw in raws:
            entry = decode(raw)
            if entry is not None:
                yield entry
        return
    for raw in raws:
        entry = decode(raw)
        if entry is None:
            continue
        ns = parse_ns(entry[2])
        if ns is None or (since and ns < since):
            continue
        if until and ns > until:
            yield _UNTIL_PASSED
            return
        yield entry


def _whole(fmt: Format, files: list[_Open], since: int, until: int) -> Iterator[Entry]:
    first = 0
    if since:
        # Whole files older than ``since`` are passed over by their last record (a gzip
        # header's lastTime for a compressed one), then the first that reaches it is
        # searched by time.
        while first < len(files) - 1:
            t = _last_time(fmt, files[first])
            if t is None or t >= since:
                break
            first += 1
    for i in range(first, len(files)):
        f = files[i]
        start = _seek(fmt, f, since) if since and i == first and not f.gz else 0
        for entry in _filtered(fmt, _records(fmt, f, start), since, until):
            yield entry
            if entry is _UNTIL_PASSED:
                return


def _tail(fmt: Format, files: list[_Open], n: int, since: int, until: int) -> Iterator[Entry]:
    if n == 0:
        return
    chunks: list[list[bytes]] = []
    need = n
    for f in reversed(files):
        if need <= 0:
            break
        if f.gz:  # no way into a gzip stream from its end: inflate it, keep its last records
            from collections import deque

            last: deque[bytes] = deque(_records(fmt, f), maxlen=need)
            got = list(last)
        else:
            got = fmt.last(f.fd, f.end, need)
        chunks.append(got)
        need -= len(got)
    raws = (raw for chunk in reversed(chunks) for raw in chunk)
    yield from _filtered(fmt, raws, since, until)


def _follow(
    fmt: Format,
    path: str,
    current: _Open | None,
    since: int,
    until: int,
    running: Callable[[], bool] | None,
    stop: Callable[[], bool] | None,
) -> Iterator[Entry]:
    """The records written after ``current``'s end, as they come. When ``path`` is another
    file (a rotation), ours is read to its end (the monitor is done with it), then the
    files after it: whichever of the log's files hold records newer than the last one read,
    compressed or not, so a follower that slept through several rotations misses nothing
    that is still kept."""
    fd, pos = (os.dup(current.fd), current.end) if current is not None else (-1, 0)
    last = (_last_time(fmt, current) or 0) if current is not None else 0
    buf = bytearray()

    def emit(raws: list[bytes], newer_only: bool) -> Iterator[Entry]:
        nonlocal last
        for raw in raws:
            entry = fmt.decode(raw)
            if entry is None:
                continue
            ns = parse_ns(entry[2]) or 0
            if newer_only and ns <= last:
                continue  # read before the rotation
            last = max(last, ns)
            if since and ns < since:
                continue
            if until and ns > until:
                yield _UNTIL_PASSED
                return
            yield entry

    def more() -> Iterator[Entry]:
        nonlocal pos
        while fd >= 0 and (chunk := os.pread(fd, BLOCK * 4, pos)):
            pos += len(chunk)
            buf.extend(chunk)
            yield from emit(fmt.split(buf), False)

    def catch_up() -> Iterator[Entry]:
        """Every kept file's records newer than ``last``, oldest first; the newest file
        becomes ours."""
        nonlocal fd, pos
        files = _open_all(path, fmt)
        try:
            for f in files:
                if f.index != 0:
                    t = _last_time(fmt, f)
                    if t is not None and t <= last:
                        continue
                yield from emit(list(_records(fmt, f)), True)
                if f.index == 0:
                    if fd >= 0:
                        os.close(fd)
                    fd, pos = os.dup(f.fd), f.end
                    buf.clear()
        finally:
            for f in files:
                os.close(f.fd)

    def rotated() -> bool:
        try:
            ino = os.stat(path).st_ino
        except OSError:
            return False
        return fd < 0 or ino != os.fstat(fd).st_ino

    try:
        while True:
            got = False
            for entry in more():
                if entry is _UNTIL_PASSED:
                    return
                got = True
                yield entry
            if got:
                continue
            if rotated():
                for entry in catch_up():
                    if entry is _UNTIL_PASSED:
                        return
                    yield entry
                continue
            if until and time.time_ns() > until:
                return
            if running is not None and not running():
                # What the monitor wrote before it ended, rotations included.
                for entry in (*more(), *(catch_up() if rotated() else ())):
                    if entry is _UNTIL_PASSED:
                        return
                    yield entry
                return
            if stop is not None and stop():
                return
            time.sleep(FOLLOW_POLL)
    finally:
        if fd >= 0:
            os.close(fd)
