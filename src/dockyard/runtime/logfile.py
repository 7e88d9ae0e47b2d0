"""Container logs on disk: Docker's ``json-file`` and ``local`` formats, rotated while the
container runs, and read from the end (``--tail``) or by time (``--since``/``--until``) so
that a read costs what it returns, not the size of the log.

This module holds the formats and the writer: the container's monitor (runtime/monitor.py,
``python -I -S``) imports it, so it imports only built-in modules (zlib only when it
compresses). Reading, by tail, by time and following, is runtime/logread.py's.

Files, newest first: ``PATH``, ``PATH.1`` ... ``PATH.<max-file - 1>``, each ``.gz`` once
compressed: Docker's names. json-file's ``PATH`` is ``<container dir>/<id>-json.log``, one
JSON object a line (``{"log":...,"stream":...,"time":...}``); local's is
``<container dir>/local-logs/container.log``, Docker's binary frames: a big-endian u32 size,
a protobuf ``LogEntry`` (source 1, time_nano 2, line 3 without its newline, partial 4), the
size again, so the file reads backwards as well as forwards. Docker's own ``local`` files read
here and ours read with Docker's reader (``partial_log_metadata`` is not written).

Rotation (moby's loggerutils.LogFile): before a record goes into a file that has reached
max-size, ``PATH.<n-1>`` becomes ``PATH.<n>`` down to ``PATH`` -> ``PATH.1``, and a new
``PATH`` is made (with max-file 1 the file is replaced). With compression the file just
rotated is gzipped by a forked child; its gzip header's Extra is Docker's
``{"lastTime": <its last record's time>}``, so ``--since`` passes over it without inflating it.

Readers and rotations agree through ``flock`` on the directory that holds the files: the
monitor renames with it held exclusively, a reader lists and opens with it shared, so a reader
never sees half a rotation (a file missing or seen twice). A follower keeps its file open and
notices a rotation when ``PATH`` names another inode: the old one is read to its end first
(its writer is done with it), then the new one.
"""

from __future__ import annotations

import _json
import fcntl
import os
import time

from dockyard.fastjson import scan

__all__ = ["FORMATS", "JSONFile", "LocalFile", "LogWriter", "format_ns", "parse_ns"]

BLOCK = 64 * 1024
MAX_FRAME = 64 << 20  # a local frame bigger than this is not a frame (resync, torn tail)

# (stream, text, time): "stdout"/"stderr", the text as written, RFC 3339 with nanoseconds
Entry = tuple[str, str, str]

# ----------------------------------------------------------------------------- names, times


_second = [-1, ""]  # the last second formatted, and its text: records come many a second


def format_ns(ns: int) -> str:
    """UTC with nine fraction digits, as ``docker logs -t`` prints it."""
    sec, frac = divmod(ns, 1_000_000_000)
    if sec != _second[0]:
        t = time.gmtime(sec)
        _second[0] = sec
        _second[1] = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}."
        )
    return f"{_second[1]}{frac:09d}Z"


def _go_time(ns: int) -> str:
    """Go's JSON form of a time, as json-file's "time" holds it: RFC 3339 with the
    fraction's trailing zeros dropped (record sizes, so rotation points, are Docker's)."""
    text = format_ns(ns)
    head, frac = text[:19], text[20:-1].rstrip("0")
    return f"{head}.{frac}Z" if frac else f"{head}Z"


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_ns(text: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time with any fraction (``Z`` or an
    offset); None if it is not one."""
    try:
        if len(text) < 20 or text[4] != "-" or text[10] not in "Tt":
            return None
        days = _days_from_civil(int(text[0:4]), int(text[5:7]), int(text[8:10]))
        secs = days * 86400 + int(text[11:13]) * 3600 + int(text[14:16]) * 60 + int(text[17:19])
        i = 19
        frac = 0
        if text[i] == ".":
            j = i + 1
            while j < len(text) and text[j].isdigit():
                j += 1
            digits = text[i + 1 : j][:9]
            frac = int(digits.ljust(9, "0")) if digits else 0
            i = j
        zone = text[i:]
        if zone in ("Z", "z"):
            offset = 0
        elif len(zone) == 6 and zone[0] in "+-" and zone[3] == ":":
            offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == "+" else -1)
        else:
            return None
    except (ValueError, IndexError):
        return None
    return (secs - offset) * 1_000_000_000 + frac


# ----------------------------------------------------------------------------- formats


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


# How Docker's json-file writer (moby jsonlog, ffjson's string writer) escapes what Python's
# encoder writes otherwise: every control character but \n and \r as \u00XX, <, > and &
# (for browsers), U+2028/U+2029; the same bytes make the same record sizes, so the same
# rotation points as Docker.
_GO_DIFFERS = ("\t", "\b", "\f", "<", ">", "&", "\u2028", "\u2029")
_GO_ESCAPES = {c: f"\\u{c:04x}" for c in range(0x20)}
_GO_ESCAPES.update({ord(c): f"\\u{ord(c):04x}" for c in "<>&\u2028\u2029"})
_GO_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord('"'): '\\"', ord("\\"): "\\\\"})
# A byte that is not UTF-8 (surrogateescape's U+DC80-U+DCFF): Go writes one \ufffd for each.
_GO_ESCAPES.update({0xDC80 + b: "\\ufffd" for b in range(128)})


def go_json_string(data: bytes) -> str:
    """``data`` as a JSON string, escaped as Docker's json-file writes it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "surrogateescape")
    else:
        if not any(c in text for c in _GO_DIFFERS):
            return _json.encode_basestring(text)  # the same bytes, from C
    return '"' + text.translate(_GO_ESCAPES) + '"'


class JSONFile:
    """Docker's json-file: one JSON object a line."""

    name = "json-file"

    @staticmethod
    def encode(stream: bytes, line: bytes, ns: int, attrs: bytes) -> bytes:
        text = go_json_string(line).encode()
        return (
            b'{"log":' + text + b',"stream":"' + stream + b'"' + attrs + b',"time":"'
            + _go_time(ns).encode() + b'"}\n'
        )  # fmt: skip

    @staticmethod
    def split(buf: bytearray) -> list[bytes]:
        """The complete records at the front of ``buf``, taken out of it."""
        end = buf.rfind(b"\n")
        if end < 0:
            return []
        out = bytes(buf[:end]).split(b"\n")
        del buf[: end + 1]
        return out

    @staticmethod
    def decode(raw: bytes) -> Entry | None:
        try:
            text = raw.decode("utf-8", "replace")
            rec, _ = scan(text, 0)
            ts = str(rec.get("time", ""))
            if len(ts) != 30:  # Docker's own files drop trailing fraction zeros
                ns = parse_ns(ts)
                ts = format_ns(ns) if ns is not None else ts
            return str(rec.get("stream", "stdout")), str(rec.get("log", "")), ts
        except (ValueError, AttributeError, StopIteration):
            return None  # a torn or foreign line

    @staticmethod
    def time_of(raw: bytes) -> int | None:
        i = raw.rfind(b'"time":"')
        if i < 0:
            return None
        j = raw.find(b'"', i + 8)
        return parse_ns(raw[i + 8 : j].decode("ascii", "replace")) if j > 0 else None

    @staticmethod
    def complete_end(fd: int, size: int) -> int:
        """Where the last complete record of the first ``size`` bytes ends (a line being
        written is left for later)."""
        pos = size
        while pos > 0:
            start = max(0, pos - BLOCK)
            nl = os.pread(fd, pos - start, start).rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            pos = start
        return 0

    @staticmethod
    def last(fd: int, end: int, n: int) -> list[bytes]:
        """The last ``n`` records of ``[0, end)`` (a record boundary), oldest first."""
        pos = end
        buf = b""
        while pos > 0:
            size = min(BLOCK, pos)
            pos -= size
            buf = os.pread(fd, size, pos) + buf
            if buf.count(b"\n") > n:
                break
        lines = buf.split(b"\n")[:-1]
        if len(lines) > n or pos > 0:
            lines = lines[-n:] if n else []
        return lines

    @staticmethod
    def record_at(fd: int, start: int, end: int) -> tuple[bytes, int] | None:
        """The record beginning at or after ``start`` (a newline boundary is found first
        unless ``start`` is 0): (record, its offset), None if none starts before ``end``."""
        pos = start
        if start > 0:
            pos = start - 1  # start itself may begin a record
            while True:
                chunk = os.pread(fd, min(BLOCK, end - pos), pos)
                if not chunk:
                    return None
                nl = chunk.find(b"\n")
                if nl >= 0:
                    pos += nl + 1
                    break
                pos += len(chunk)
        if pos >= end:
            return None
        out = b""
        cur = pos
        while cur < end:
            chunk = os.pread(fd, min(BLOCK, end - cur), cur)
            if not chunk:
                return None
            nl = chunk.find(b"\n")
            if nl >= 0:
                return out + chunk[:nl], pos
            out += chunk
            cur += len(chunk)
        return None


class LocalFile:
    """Docker's local driver: size-framed protobuf LogEntry records."""

    name = "local"

    @staticmethod
    def encode(stream: bytes, line: bytes, ns: int, attrs: bytes) -> bytes:
        partial = not line.endswith(b"\n")
        if not partial:
            line = line[:-1]
        msg = (
            b"\x0a" + _varint(len(stream)) + stream
            + b"\x10" + _varint(ns)
            + b"\x1a" + _varint(len(line)) + line
            + (b"\x20\x01" if partial else b"")
        )  # fmt: skip
        size = len(msg).to_bytes(4, "big")
        return size + msg + size

    @staticmethod
    def split(buf: bytearray) -> list[bytes]:
        out = []
        i = 0
        n = len(buf)
        while n - i >= 8:
            size = int.from_bytes(buf[i : i + 4], "big")
            if n - i < size + 8:
                break
            out.append(bytes(buf[i + 4 : i + 4 + size]))
            i += size + 8
        del buf[:i]
        return out

    @staticmethod
    def _fields(raw: bytes) -> tuple[str, int, bytes, bool]:
        source, ns, line, partial = "stdout", 0, b"", False
        i, n = 0, len(raw)
        while i < n:
            key, i = _read_varint(raw, i)
            field, wire = key >> 3, key & 7
            if wire == 0:
                value, i = _read_varint(raw, i)
                if field == 2:
                    ns = value
                elif field == 4:
                    partial = bool(value)
            elif wire == 2:
                size, i = _read_varint(raw, i)
                data = raw[i : i + size]
                i += size
                if field == 1:
                    source = data.decode("utf-8", "replace")
                elif field == 3:
                    line = data
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            else:
                raise ValueError("bad wire type")
        return source, ns, line, partial

    @classmethod
    def decode(cls, raw: bytes) -> Entry | None:
        try:
            source, ns, line, partial = cls._fields(raw)
        except (ValueError, IndexError):
            return None
        text = line.decode("utf-8", "replace") + ("" if partial else "\n")
        return source, text, format_ns(ns)

    @classmethod
    def time_of(cls, raw: bytes) -> int | None:
        try:
            return cls._fields(raw)[1]
        except (ValueError, IndexError):
            return None

    @staticmethod
    def _frame_end_ok(fd: int, pos: int) -> bool:
        """Whether a frame ends at ``pos`` (its two sizes agree)."""
        if pos < 8:
            return pos == 0
        size = int.from_bytes(os.pread(fd, 4, pos - 4), "big")
        if size > MAX_FRAME or size + 8 > pos:
            return False
        return int.from_bytes(os.pread(fd, 4, pos - 8 - size), "big") == size

    @classmethod
    def complete_end(cls, fd: int, size: int) -> int:
        """Where the last whole frame ends: ``size`` unless a frame is being written there,
        then where it ends once written (waited for briefly), else found walking forward."""
        for _ in range(50):
            if cls._frame_end_ok(fd, size):
                return size
            time.sleep(0.01)
            size = os.fstat(fd).st_size
        return _last_frame_end(fd, size)

    @staticmethod
    def last(fd: int, end: int, n: int) -> list[bytes]:
        window = _Window(fd)
        out: list[bytes] = []
        pos = end
        while pos >= 8 and len(out) < n:
            size = int.from_bytes(window.get(pos - 4, pos), "big")
            start = pos - 8 - size
            if size > MAX_FRAME or start < 0:
                break
            frame = window.get(start, pos)
            if int.from_bytes(frame[:4], "big") != size:
                break
            out.append(frame[4:-4])
            pos = start
        out.reverse()
        return out

    @staticmethod
    def _valid_at(fd: int, p: int, end: int) -> int:
        """The size of a frame starting at ``p`` if it looks like one of ours, else -1."""
        head = os.pread(fd, 5, p)
        if len(head) < 5 or head[4] != 0x0A:  # every entry starts with its source (field 1)
            return -1
        size = int.from_bytes(head[:4], "big")
        if size > MAX_FRAME or p + 8 + size > end:
            return -1
        if int.from_bytes(os.pread(fd, 4, p + 4 + size), "big") != size:
            return -1
        return size

    @classmethod
    def record_at(cls, fd: int, start: int, end: int) -> tuple[bytes, int] | None:
        """The first frame starting at or after ``start``: a position where a frame and the
        one after it (or the end) check out."""
        if start == 0:
            size = cls._valid_at(fd, 0, end)
            return (os.pread(fd, size, 4), 0) if size >= 0 else None
        p = start
        while p + 8 <= end:
            window = os.pread(fd, min(BLOCK, end - p), p)
            k = window.find(b"\x0a", 4)
            while k >= 0:
                q = p + k - 4
                size = cls._valid_at(fd, q, end)
                if size >= 0:
                    nxt = q + 8 + size
                    if nxt == end or cls._valid_at(fd, nxt, end) >= 0:
                        return os.pread(fd, size, q + 4), q
                k = window.find(b"\x0a", k + 1)
            if len(window) <= 4 or p - start > 4 * MAX_FRAME:
                return None
            p += len(window) - 4
        return None


def _last_frame_end(fd: int, end: int) -> int:
    """Where the last whole frame of ``[0, end)`` ends, walking forward (a torn tail)."""
    pos = 0
    while pos + 8 <= end:
        size = int.from_bytes(os.pread(fd, 4, pos), "big")
        if pos + 8 + size > end:
            break
        pos += 8 + size
    return pos


class _Window:
    """Reads of one file going backwards, served from one cached block."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.start = self.stop = 0
        self.data = b""

    def get(self, start: int, stop: int) -> bytes:
        if not (self.start <= start and stop <= self.stop):
            if stop - start > BLOCK:
                return os.pread(self.fd, stop - start, start)
            self.start = max(0, stop - BLOCK)
            self.stop = stop
            self.data = os.pread(self.fd, stop - self.start, self.start)
        return self.data[start - self.start : stop - self.start]


FORMATS: dict[str, type[JSONFile] | type[LocalFile]] = {"json-file": JSONFile, "local": LocalFile}

# ----------------------------------------------------------------------------- locking


class DirLock:
    """flock on the directory holding a log's files (see the module's docstring)."""

    def __init__(self, directory: str, exclusive: bool) -> None:
        self.directory = directory
        self.op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        self.fd = -1

    def __enter__(self) -> DirLock:
        try:
            self.fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(self.fd, self.op)
        except OSError:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing releases the lock
            self.fd = -1


def rotated_files(path: str) -> list[tuple[int, str]]:
    """(index, file name) of the log's files, oldest first (index 0 is ``path``)."""
    directory, base = os.path.split(path)
    found: dict[int, str] = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    prefix = base + "."
    for name in names:
        if name == base:
            found[0] = name
        elif name.startswith(prefix):
            rest = name[len(prefix) :]
            gz = rest.endswith(".gz")
            digits = rest[:-3] if gz else rest
            if digits.isdigit() and digits[0] != "0":
                index = int(digits)
                # .N and .N.gz at once: a compression cut short; the plain one is whole.
                if index not in found or not gz:
                    found[index] = name
    return [(i, found[i]) for i in sorted(found, reverse=True)]


# ----------------------------------------------------------------------------- writing


class LogWriter:
    """What the monitor writes a container's output with (one per container)."""

    def __init__(
        self,
        path: str,
        *,
        driver: str = "json-file",
        max_size: int = 0,
        max_file: int = 1,
        compress: bool = False,
        attrs: str = "",
    ) -> None:
        self.path = path
        self.dir = os.path.dirname(path)
        self.format = FORMATS[driver]
        self.max_size = max_size
        self.max_file = max(1, max_file)
        self.compress = compress and self.max_file > 1
        self.attrs = (b',"attrs":' + attrs.encode()) if attrs else b""
        self.compressor = 0  # pid of the child gzipping PATH.1
        self.last_ns = 0
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size

    def _open(self) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        return os.open(self.path, flags, 0o640)

    def write(self, stream: str, lines: list[bytes]) -> None:
        """One record per line (a line without its newline is a partial record), each with
        its own time as Docker's copier gives them (``--until`` cuts between any two)."""
        if self.fd < 0:
            return
        src = stream.encode()
        encode = self.format.encode
        clock = time.time_ns
        out = bytearray()
        for line in lines:
            if self.max_size and self.size >= self.max_size:
                self._flush(out)  # moby rotates before the write that finds the file full
                self.rotate()
            ns = self.last_ns = clock()
            rec = encode(src, line, ns, self.attrs)
            out += rec
            self.size += len(rec)
        self._flush(out)

    def _flush(self, out: bytearray) -> None:
        if out and self.fd >= 0:
            try:
                os.write(self.fd, out)
            except OSError:
                pass  # a full disk must not stop the container
        out.clear()

    def rotate(self) -> None:
        self._wait_compressor()
        path, keep = self.path, self.max_file
        with DirLock(self.dir, exclusive=True):
            os.close(self.fd)
            self.fd = -1
            if keep > 1:
                for ext in ("", ".gz"):
                    _unlink(f"{path}.{keep - 1}{ext}")
                for i in range(keep - 1, 1, -1):
                    for ext in ("", ".gz"):
                        _rename(f"{path}.{i - 1}{ext}", f"{path}.{i}{ext}")
                _rename(path, f"{path}.1")
            else:
                _unlink(path)
            try:
                self.fd = self._open()
            except OSError:
                self.fd = -1
            self.size = 0
        if self.compress:
            self._spawn_compressor(f"{path}.1", self.last_ns)

    def _spawn_compressor(self, src: str, last_ns: int) -> None:
        """gzip ``src`` in a child, so the container's output keeps moving meanwhile."""
        try:
            pid = os.fork()
        except OSError:
            return
        if pid:
            self.compressor = pid
            return
        code = 1
        try:
            compress_file(src, last_ns, self.dir)
            code = 0
        finally:
            os._exit(code)

    def _wait_compressor(self) -> None:
        if self.compressor:
            try:
                os.waitpid(self.compressor, 0)
            except ChildProcessError:
                pass  # reaped by the monitor's loop already
            self.compressor = 0

    def close(self) -> None:
        self._wait_compressor()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _rename(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        pass


def compress_file(src: str, last_ns: int, lock_dir: str) -> None:
    """``src`` -> ``src.gz`` (Docker's gzip header Extra ``{"lastTime": ...}``), then
    ``src`` goes; the switch is made under the directory's lock."""
    import zlib

    tmp = f"{src}.gz.tmp"
    extra = b'{"lastTime":"' + _go_time(last_ns).encode() + b'"}'
    header = (
        b"\x1f\x8b\x08\x04" + int(time.time()).to_bytes(4, "little") + b"\x00\xff"
        + len(extra).to_bytes(2, "little") + extra
    )  # fmt: skip
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    crc = size = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
    with open(src, "rb") as fin, open(fd, "wb") as fout:
        fout.write(header)
        while chunk := fin.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            fout.write(deflate.compress(chunk))
        fout.write(deflate.flush())
        fout.write(crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little"))
    with DirLock(lock_dir, exclusive=True):
        if os.path.exists(src):
            os.rename(tmp, f"{src}.gz")
            os.unlink(src)
        else:
            os.unlink(tmp)  # rotated away meanwhile (a writer that did not wait)
