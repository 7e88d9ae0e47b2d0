"""One request as a front end sees it: what was asked, its body, and the ways to answer.

A reply is either complete (``reply``: status, headers, body with Content-Length), written in
parts (``start`` + ``write`` [+ ``finish`` for chunked]), streamed (``stream``: chunked, each
chunk sent as it comes), or the connection is taken over (``hijack``: attach and exec).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from dockyard.httpd.errors import BodyTooLarge, ClientGone, HTTPError
from dockyard.httpd.jsonbody import JSONError, loads
from dockyard.httpd.wire import Body, Head, Headers, Reader

if TYPE_CHECKING:
    from dockyard.httpd.server import Connection

_NO_BODY = frozenset({204, 304})
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(now: float | None = None) -> str:
    """RFC 9110's IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), without the locale."""
    t = time.gmtime(now)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT"
    )


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class Request:
    def __init__(self, conn: Connection, head: Head) -> None:
        self.conn = conn
        self.method = head.method
        self.target = head.target
        self.version = head.version
        self.headers: Headers = head.headers
        self.line = head.line
        path, _, query = head.target.partition("?")
        self.path = path.partition("#")[0]  # raw: percent-escapes are the router's business
        self.query = query.partition("#")[0]
        self.max_body = conn.server.limits.body  # a route may set its own
        self.body = Body(conn.reader, head.headers, conn.server.limits)
        if self.body.present and self._expects_continue():
            self.body.before_read = self._send_continue
        self.status = 0  # sent, once the head is out
        self.sent = 0  # body bytes sent
        self.close = self._client_closes()
        self._chunked_out = False
        self._length_out: int | None = None
        self.hijacked = False

    # ------------------------------------------------------------ what was asked

    @property
    def started(self) -> bool:
        return self.status != 0

    def _client_closes(self) -> bool:
        tokens = {t.strip().lower() for t in self.headers.get("Connection").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" not in tokens
        return "close" in tokens

    def _expects_continue(self) -> bool:
        return self.headers.get("Expect").lower() == "100-continue" and (self.version == "HTTP/1.1")

    def _send_continue(self) -> None:
        self.conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def client_gone(self) -> bool:
        """True when the client has closed its side: a streaming reply can stop. (A client
        that only half-closes counts as gone, as for Go's servers; hijacked streams, where
        that is how stdin ends, do not ask.)"""
        sock = self.conn.sock
        try:
            p = select.poll()
            p.register(sock, select.POLLIN | select.POLLRDHUP)
            events = p.poll(0)
        except (OSError, ValueError):
            return True
        if not events:
            return False
        ev = events[0][1]
        if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL):
            return True
        if self.conn.tls:
            return False  # readable TLS records cannot be peeked at; RDHUP covers the close
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    # ------------------------------------------------------------ the body

    def iter_body(self, size: int = 1 << 20, limit: int | None = None) -> Iterator[bytes]:
        """The body in pieces of at most ``size``; BodyTooLarge past ``limit`` bytes."""
        body = self.body
        if limit is not None and body.length is not None and body.length > limit:
            raise BodyTooLarge(limit)
        while True:
            data = body.read1(size)
            if not data:
                return
            if limit is not None and body.received > limit:
                raise BodyTooLarge(limit)
            yield data

    def read(self, limit: int | None = None) -> bytes:
        """The whole body, at most ``limit`` (default: the route's ``max_body``) bytes."""
        return b"".join(self.iter_body(limit=self.max_body if limit is None else limit))

    def json(self, limit: int | None = None) -> Any:
        """The body as JSON (None when empty); HTTPError(400) when it is not JSON or nests
        deeper than the server's limit."""
        raw = self.read(limit)
        if not raw.strip():
            return None
        try:
            return loads(raw, self.conn.server.limits.json_depth)
        except JSONError as e:
            raise HTTPError(400, f"invalid JSON body: {e}") from None

    def _settle_body(self) -> None:
        """Before a reply: read what is left of a small body, so the client (perhaps still
        sending) sees the answer and the connection can carry the next request; otherwise
        the connection closes after the reply."""
        body = self.body
        if body.done and not body.broken:
            return
        if body.before_read is not None or body.broken:
            self.close = True  # "100 Continue" not sent: the client may not send it at all
            return
        if not body.drain(self.conn.server.limits.drain):
            self.close = True

    # ------------------------------------------------------------ replies

    def _head(self, status: int, headers: Iterable[tuple[str, str]], phrase: str = "") -> None:
        if self.started:
            raise RuntimeError("reply already started")
        self._settle_body()
        server = self.conn.server
        if server.stopping:
            self.close = True
        lines = [
            f"HTTP/1.1 {status} {phrase or reason(status)}",
            f"Server: {server.name}",
            f"Date: {http_date()}",
        ]
        lines += (f"{k}: {v}" for k, v in server.base_headers)
        lines += (f"{k}: {v}" for k, v in headers)
        if self._chunked_out:
            lines.append("Transfer-Encoding: chunked")
        elif self._length_out is not None:
            lines.append(f"Content-Length: {self._length_out}")
        if self.close and not self.hijacked:
            lines.append("Connection: close")
        self.status = status
        self.conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def reply(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        content_type: str | None = None,
    ) -> None:
        """A complete reply. Content-Type is sent when given and there is a body."""
        fields = list(headers)
        if content_type and body and status not in _NO_BODY:
            fields.append(("Content-Type", content_type))
        self.start(status, fields, length=0 if status in _NO_BODY else len(body))
        if body:
            self.write(body)

    def start(
        self, status: int, headers: Iterable[tuple[str, str]] = (), length: int | None = None
    ) -> None:
        """The head of a reply of ``length`` body bytes, or chunked when None."""
        if status in _NO_BODY or status < 200:
            length = None
        else:
            self._chunked_out = length is None
            self._length_out = length
        self._head(status, headers)

    def write(self, data: bytes | memoryview) -> None:
        """Body bytes (chunk-framed for a chunked reply; nothing for HEAD or 204/304)."""
        if not data or self.method == "HEAD" or self.status in _NO_BODY:
            return
        if self._chunked_out:
            self.conn.sendall(b"%x\r\n%s\r\n" % (len(data), bytes(data)))
        else:
            self.conn.sendall(data)
        self.sent += len(data)

    def finish(self) -> None:
        """The end of a chunked reply."""
        if self._chunked_out and self.method != "HEAD":
            self.conn.sendall(b"0\r\n\r\n")
            self._chunked_out = False

    def stream(
        self, chunks: Iterable[bytes], status: int = 200, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """A chunked reply, each chunk sent as it comes (progress, logs, wait). An empty chunk
        sends nothing: a producer yields it to have the client's presence checked, and the
        stream ends (ClientGone) once the client has left. The idle and body timeouts do not
        apply: a quiet stream may last as long as what it follows."""
        it = iter(chunks)
        first = next(it, None)  # an error before the first chunk still gets a proper status
        self.start(status, headers)
        self.conn.streaming()
        if first is not None:
            self.write(first)
            for data in it:
                if data:
                    self.write(data)
                elif self.client_gone():
                    raise ClientGone()
        self.finish()

    def hijack(
        self, status: int, headers: Iterable[tuple[str, str]] = (), phrase: str = ""
    ) -> tuple[socket.socket, Reader]:
        """Send the head, then hand the connection over: the socket and the reader (which may
        hold bytes the client sent right after its request). No timeouts apply any more; the
        server closes the connection when the handler returns."""
        self.hijacked = True
        self.close = True
        self._head(status, headers, phrase)
        self.conn.streaming()
        return self.conn.sock, self.conn.reader
