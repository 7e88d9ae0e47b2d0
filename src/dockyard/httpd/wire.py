"""HTTP/1.1 on the wire: a socket reader with deadlines, the request head, the body framing.

Every read is bounded twice: in size (request line, header bytes and count, chunk-size lines)
and in time (a deadline for the head, an inactivity timeout for the body), so a client that
sends garbage or half a request gets a 4xx or is dropped, and never holds a thread.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable
from typing import NamedTuple

from dockyard.httpd.errors import ClientGone, HTTPError

# RFC 9110 token characters: what a method and a header name may be made of.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
_CHUNK_LINE_MAX = 4096  # size, extensions and CRLF


# NamedTuples, not dataclasses: the dataclasses import (inspect, ast, dis) would be most of
# this package's share of the daemon's start-up.
class Limits(NamedTuple):
    """Sizes and timeouts of a server. Timeouts are seconds; tests make them short."""

    # Go's servers (so Docker's) allow 1 MiB of head: filters in a query, X-Registry-Config.
    request_line: int = 64 << 10  # longer: 414
    header_bytes: int = 1 << 20  # all header lines together; larger: 431
    header_count: int = 100  # more: 431
    body: int = 16 << 20  # what Request.read() accepts unless the route says otherwise
    drain: int = 16 << 20  # an unread body up to this size is read and dropped, to keep alive
    json_depth: int = 100  # nesting of a JSON body (Docker's bodies nest a handful of levels)
    idle_timeout: float = 120.0  # waiting for a request on an open connection
    header_timeout: float = 30.0  # from a request's first byte to the end of its head
    body_timeout: float = 60.0  # no byte of a body (or no progress sending a reply) for this
    # Open connections; more are answered 503 and closed. Capped by the open-file limit
    # (server.connection_limit): an idle one costs a descriptor, no thread.
    connections: int = 65536
    keep_waiting: float = 1.0  # a worker waits this long for a next request, then parks it
    worker_idle: float = 2.0  # a worker with nothing to serve for this long ends
    shutdown_grace: float = 5.0  # requests being handled get this long to finish on shutdown


class Reader:
    """Buffered reads from a socket. With ``deadline`` set, each recv waits at most until
    then (the whole head must arrive by it); else the socket's own timeout applies."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.deadline: float | None = None
        self._buf = bytearray()

    def buffered(self) -> int:
        return len(self._buf)

    def _recv(self, size: int) -> bytes:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("deadline passed")
            self.sock.settimeout(left)
        return self.sock.recv(size)

    def fill(self) -> bool:
        """One recv into the buffer; False at end of stream."""
        data = self._recv(65536)
        self._buf += data
        return bool(data)

    def readline(self, limit: int) -> bytes | None:
        """A line with its LF, or what came before EOF (b"" at EOF); None when no LF came
        within ``limit`` bytes (the caller answers 4xx)."""
        start = 0
        while True:
            i = self._buf.find(b"\n", start, limit)
            if i >= 0:
                line = bytes(self._buf[: i + 1])
                del self._buf[: i + 1]
                return line
            if len(self._buf) >= limit:
                return None
            start = len(self._buf)
            if not self.fill():
                line = bytes(self._buf)
                self._buf.clear()
                return line

    def read1(self, size: int = 65536) -> bytes:
        """Up to ``size`` bytes: what is buffered, else one recv (b"" at EOF)."""
        if self._buf:
            data = bytes(self._buf[:size])
            del self._buf[:size]
            return data
        return self._recv(size)


class Headers:
    """Request header fields in order; lookups are case-insensitive and give the first."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        self._first: dict[str, str] = {}
        for name, value in fields:
            self._first.setdefault(name.lower(), value)

    def get(self, name: str, default: str = "") -> str:
        return self._first.get(name.lower(), default)

    def get_all(self, name: str) -> list[str]:
        key = name.lower()
        return [v for k, v in self.fields if k.lower() == key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first


class Head(NamedTuple):
    method: str
    target: str
    version: str  # "HTTP/1.1" or "HTTP/1.0"
    headers: Headers
    line: str  # the request line as sent, for the access log


def read_head(reader: Reader, limits: Limits) -> Head | None:
    """The next request's head, or None when the client closed between requests.
    The caller has set ``reader.deadline``. Raises HTTPError (400, 414, 431, 505)."""
    line = reader.readline(limits.request_line + 2)
    if line in (b"\r\n", b"\n"):  # RFC 9112 2.2: one empty line before a request is allowed
        line = reader.readline(limits.request_line + 2)
    if line is None:
        raise HTTPError(414, "request line too long", close=True)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise HTTPError(400, "request ended in its request line", close=True)
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:
        raise HTTPError(400, "malformed request line", close=True)
    version = parts[2].decode("latin-1")
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            raise HTTPError(505, f"HTTP version not supported: {version[:20]}", close=True)
        raise HTTPError(400, "malformed request line", close=True)
    fields: list[tuple[str, str]] = []
    left = limits.header_bytes
    while True:
        raw = reader.readline(left + 2)
        if raw is None or (len(fields) >= limits.header_count and raw not in (b"\r\n", b"\n")):
            raise HTTPError(431, "request header fields too large", close=True)
        if not raw.endswith(b"\n"):
            raise HTTPError(400, "request ended in its header", close=True)
        if raw in (b"\r\n", b"\n"):
            break
        left -= len(raw)
        name, colon, value = raw.partition(b":")
        # No space before the colon, no obsolete line folding (RFC 9112 5.1, 5.2).
        if not colon or not _TOKEN.fullmatch(name):
            raise HTTPError(400, "malformed header field", close=True)
        fields.append((name.decode("latin-1"), value.strip(b" \t\r\n").decode("latin-1")))
    return Head(
        parts[0].decode("latin-1"),
        parts[1].decode("latin-1"),
        version,
        Headers(fields),
        line.rstrip(b"\r\n").decode("latin-1"),
    )


class Body:
    """The request body as its framing says (Content-Length or chunked). ``read1`` gives the
    next piece (b"" at the end). Broken framing raises HTTPError(400) and leaves the body
    ``broken``: the connection cannot be read any further."""

    def __init__(self, reader: Reader, headers: Headers, limits: Limits) -> None:
        self._reader = reader
        self._limits = limits
        self.before_read: Callable[[], None] | None = None  # sends "100 Continue"
        self.chunked = False
        self.length: int | None = None  # declared, for Content-Length bodies
        self.received = 0
        self.broken = False
        self._left = 0  # of the body (length) or of the current chunk
        self._state = "data"  # chunked: "size", "data", "crlf"; "done" at the end
        te = headers.get("Transfer-Encoding")
        lengths = headers.get_all("Content-Length")
        if "Transfer-Encoding" in headers:
            if [c.strip().lower() for c in te.split(",")] != ["chunked"]:
                raise HTTPError(501, f"unsupported transfer encoding: {te[:40]!r}", close=True)
            if lengths:  # RFC 9112 6.3: a request smuggling vector; refuse it
                raise HTTPError(400, "both Transfer-Encoding and Content-Length", close=True)
            self.chunked = True
            self._state = "size"
            return
        if lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit() or len(lengths[0]) > 18:
                raise HTTPError(400, "bad Content-Length", close=True)
            self.length = self._left = int(lengths[0])
        if self._left == 0:
            self._state = "done"

    @property
    def done(self) -> bool:
        return self._state == "done"

    @property
    def present(self) -> bool:
        """The request has a body (possibly still unread)."""
        return self.chunked or bool(self.length)

    def remaining(self) -> int | None:
        """Bytes still to come, when known."""
        if self.done:
            return 0
        return None if self.chunked else self._left

    def _fail(self, message: str) -> HTTPError:
        self.broken = True
        self._state = "done"
        return HTTPError(400, message, close=True)

    def read1(self, size: int = 1 << 20) -> bytes:
        if self._state == "done":
            return b""
        if self.before_read is not None:
            hook, self.before_read = self.before_read, None
            hook()
        try:
            return self._read1(size)
        except OSError as e:  # the body timeout (a client that stalls), a reset
            self.broken = True
            self._state = "done"
            raise ClientGone() from e

    def _read1(self, size: int) -> bytes:
        if self.chunked and self._state != "data":
            self._next_chunk()
            if self._state == "done":
                return b""
        data = self._reader.read1(min(size, self._left))
        if not data:
            self.broken = True
            self._state = "done"
            raise HTTPError(400, "request body ended early", close=True)
        self._left -= len(data)
        self.received += len(data)
        if self._left == 0:
            self._state = "crlf" if self.chunked else "done"
        return data

    def _next_chunk(self) -> None:
        r = self._reader
        if self._state == "crlf" and r.readline(3) not in (b"\r\n", b"\n"):
            raise self._fail("malformed chunked body: no CRLF after a chunk")
        line = r.readline(_CHUNK_LINE_MAX)
        if line is None or not line.endswith(b"\n"):
            raise self._fail("malformed chunked body: bad chunk size line")
        size = line.split(b";", 1)[0].strip(b" \t\r\n")
        if not _CHUNK_SIZE.fullmatch(size):
            raise self._fail("malformed chunked body: bad chunk size")
        self._left = int(size, 16)
        if self._left:
            self._state = "data"
            return
        # The last chunk: trailer fields (ignored) up to the empty line, within the header limit.
        left = self._limits.header_bytes
        while True:
            trailer = r.readline(left + 2)
            if trailer is None or not trailer.endswith(b"\n"):
                raise self._fail("malformed chunked body: bad trailer")
            if trailer in (b"\r\n", b"\n"):
                break
            left -= len(trailer)
        self._state = "done"

    def drain(self, limit: int) -> bool:
        """Read and drop the rest, up to ``limit`` bytes; True when the body ended."""
        try:
            while not self.done:
                if self.chunked is False and self._left > limit:
                    return False
                data = self.read1(1 << 20)
                limit -= len(data)
                if limit < 0:
                    return False
        except (HTTPError, ClientGone):
            return False
        return not self.broken
