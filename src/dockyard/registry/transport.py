"""HTTP for registry clients: keep-alive connections (one set per thread), streamed bodies,
and timeouts on every connection.

Built on ``http.client``: the distribution API needs nothing more than requests with
streamed request and response bodies, and the standard library keeps the CLI's imports light.
Retries, auth and redirects live in ``client.py``, which knows which requests may be repeated;
the client takes a ``Transport`` (STYLE 17), ``HTTPTransport`` unless a test wraps it.

Timeouts (``Timeouts``): a connection (TCP and the TLS handshake) must be up within
``connect`` seconds, Docker's dial timeout; after that no read or write may go ``stall``
seconds without a byte, for headers and bodies alike, so a registry that stops talking is
noticed (Docker and containerd's client wait forever; containerd's CRI gives up a pull after
minutes without progress). Request bodies go out in 64 KiB writes, so the stall timeout
measures progress, not the time a whole blob takes on a slow link.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any, Protocol
from urllib.parse import urlsplit

from dockyard.errors import CorruptData, InvalidArgument
from dockyard.registry import tls
from dockyard.registry.errors import CertificateError, TLSError

# Errors that mean "the connection failed" rather than "the server answered".
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)

USER_AGENT = "dockyard/0.1 (docker-compatible)"
READ_CHUNK = 1 << 20
SEND_PIECE = 64 << 10
TIMEOUT_ENV = "DOCKYARD_REGISTRY_TIMEOUT"
CONNECT_TIMEOUT_ENV = "DOCKYARD_REGISTRY_CONNECT_TIMEOUT"
DEFAULT_CONNECT = 30.0  # Docker's (and containerd's) dial timeout
DEFAULT_STALL = 30.0
# A request that completes an upload may be answered only after the registry hashed or copied
# the whole blob (distribution on S3 copies it): its answer may take this many stall periods.
COMMIT_FACTOR = 10


class Timeout(TimeoutError):
    """A connection that made no progress for too long; ``str()`` says where and how long."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float = DEFAULT_CONNECT
    stall: float = DEFAULT_STALL

    @property
    def commit(self) -> float:
        return self.stall * COMMIT_FACTOR

    @classmethod
    def from_env(cls) -> Timeouts:
        """``DOCKYARD_REGISTRY_TIMEOUT`` (the stall timeout) and
        ``DOCKYARD_REGISTRY_CONNECT_TIMEOUT``, in seconds (``30``, ``2.5``, ``30s``)."""
        return cls(
            _seconds(CONNECT_TIMEOUT_ENV, DEFAULT_CONNECT), _seconds(TIMEOUT_ENV, DEFAULT_STALL)
        )


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw.removesuffix("s"))
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise InvalidArgument(f"{name}: want a number of seconds above 0, got {raw!r}")
    return value


class Response:
    """A response whose body may still be on the wire; ``close()`` returns the connection to
    its thread's pool when the body was read to the end."""

    def __init__(self, raw: http.client.HTTPResponse, conn: _Connection, owner: HTTPTransport):
        self._raw = raw
        self._conn = conn
        self._owner = owner
        self.status = raw.status
        self.headers: Message = raw.headers
        self.url = ""
        self._data: bytes | None = None
        self._closed = False

    def header(self, name: str) -> str:
        return str(self.headers.get(name) or "")

    def read(self, limit: int | None = None, what: str = "response") -> bytes:
        """The whole body; CorruptData when it is longer than ``limit``. Read once: later
        calls return the same bytes."""
        if self._data is not None:
            return self._data
        try:
            with self._conn.reading():
                if limit is None:
                    data = self._raw.read()
                else:
                    # http.client's count, not the header: a HEAD's header tells the size
                    # of a body that never comes.
                    length = self._raw.length
                    if length is not None and length > limit:
                        raise CorruptData(f"{what} is larger than {limit} bytes")
                    data = self._raw.read(limit + 1)
                    if len(data) > limit:
                        raise CorruptData(f"{what} is larger than {limit} bytes")
        finally:
            self.close()
        self._data = data
        return data

    def iter_bytes(self, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        while True:
            with self._conn.reading():
                data = self._raw.read1(chunk)
            if not data:
                return
            yield data

    def close(self) -> None:
        if self._closed:
            return  # the connection may carry another request by now
        self._closed = True
        complete = self._raw.isclosed() or self._raw.length == 0
        if not complete:
            # Unread body: the connection cannot carry another request.
            self._conn.close()
        self._raw.close()
        pool = self._owner.pool()
        if complete and not self._raw.will_close:
            pool.setdefault(self._conn.key, self._conn)
        elif pool.get(self._conn.key) is self._conn:
            del pool[self._conn.key]

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport(Protocol):
    """What the registry client sends requests through."""

    timeouts: Timeouts

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        *,
        verify_tls: bool = True,
        wait: float | None = None,
    ) -> Response: ...

    def speaks_tls(self, netloc: str) -> bool: ...


class _Timed:
    """Connect within ``timeouts.connect``, then allow ``timeouts.stall`` per read and write.
    (A base after http.client's connection class, whose ``sock`` and ``close`` it uses.)"""

    netloc: str
    timeouts: Timeouts
    key: str
    sock: Any

    def _connect_timed(self, connect: Callable[[], None], close: Callable[[], None]) -> None:
        try:
            connect()
        except TimeoutError:
            handshake = self.sock is not None  # TCP is up: the TLS handshake stalled
            close()
            if handshake:
                raise Timeout(
                    f"TLS handshake timeout: no answer from {self.netloc} "
                    f"for {self.timeouts.connect:g}s"
                ) from None
            raise Timeout(
                f"dial tcp {self.netloc}: i/o timeout (no answer for {self.timeouts.connect:g}s)"
            ) from None
        self.sock.settimeout(self.timeouts.stall)

    def reading(self, seconds: float | None = None) -> _Stall:
        return _Stall(self, f"no data from {self.netloc}", seconds)

    def writing(self) -> _Stall:
        return _Stall(self, f"{self.netloc} took no data", None)


class _HTTP(http.client.HTTPConnection, _Timed):
    def __init__(self, netloc: str, timeouts: Timeouts, key: str):
        super().__init__(netloc, timeout=timeouts.connect, blocksize=SEND_PIECE)
        self.netloc, self.timeouts, self.key = netloc, timeouts, key

    def connect(self) -> None:
        self._connect_timed(super().connect, self.close)


class _HTTPS(http.client.HTTPSConnection, _Timed):
    def __init__(self, netloc: str, timeouts: Timeouts, key: str, context: ssl.SSLContext):
        super().__init__(netloc, timeout=timeouts.connect, context=context, blocksize=SEND_PIECE)
        self.netloc, self.timeouts, self.key = netloc, timeouts, key

    def connect(self) -> None:
        self._connect_timed(super().connect, self.close)


_Connection = _HTTP | _HTTPS


class _Stall:
    """Turns a socket timeout into a ``Timeout`` that names the peer; ``seconds`` stretches
    the allowance for one wait (the answer to a commit)."""

    def __init__(self, conn: _Timed, what: str, seconds: float | None):
        self.conn, self.what, self.seconds = conn, what, seconds

    def __enter__(self) -> None:
        if self.seconds is not None and self.conn.sock is not None:
            self.conn.sock.settimeout(self.seconds)

    def __exit__(self, kind: type[BaseException] | None, exc: object, tb: object) -> None:
        seconds = self.seconds or self.conn.timeouts.stall
        if self.seconds is not None and self.conn.sock is not None:
            self.conn.sock.settimeout(self.conn.timeouts.stall)
        if kind is not None and issubclass(kind, TimeoutError) and not isinstance(exc, Timeout):
            raise Timeout(f"{self.what} for {seconds:g}s") from None


class HTTPTransport:
    """The real network. Connections are kept alive per thread and per (scheme, host, TLS
    verification), so the threads of a pull each reuse their own."""

    def __init__(self, timeouts: Timeouts | None = None):
        self.timeouts = timeouts or Timeouts.from_env()
        self._local = threading.local()

    def pool(self) -> dict[str, _Connection]:
        pool: dict[str, _Connection] | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = self._local.pool = {}
        return pool

    def _new(self, scheme: str, netloc: str, verify: bool) -> _Connection:
        key = f"{scheme}://{netloc}/{verify}"
        if scheme == "https":
            return _HTTPS(netloc, self.timeouts, key, tls.context(netloc, verify))
        return _HTTP(netloc, self.timeouts, key)

    def speaks_tls(self, netloc: str) -> bool:
        """Whether ``netloc`` completes a TLS handshake (not verified: for loopback and
        insecure registries). A connection that does is kept for the first request, so the
        answer costs HTTPS registries nothing; a plain-HTTP server answers the ClientHello
        with a 400 at once."""
        conn = self._new("https", netloc, False)
        try:
            conn.connect()
        except NETWORK_ERRORS:
            conn.close()
            return False
        self.pool()[conn.key] = conn
        return True

    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        *,
        verify_tls: bool = True,
        wait: float | None = None,
    ) -> Response:
        """Send one request. An iterable body is sent with chunked transfer encoding unless
        the headers give a Content-Length. ``wait``: seconds the answer may take to start,
        when that is longer than the stall timeout."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgument(f"invalid registry URL {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
        if isinstance(body, bytes):
            hdrs.setdefault("Content-Length", str(len(body)))
        chunked = body is not None and "Content-Length" not in hdrs
        pool = self.pool()
        key = f"{parts.scheme}://{parts.netloc}/{verify_tls}"
        for fresh in (False, True):
            conn = pool.pop(key, None) if not fresh else None
            reused = conn is not None
            if conn is None:
                conn = self._new(parts.scheme, parts.netloc, verify_tls)
            try:
                if conn.sock is None:
                    conn.connect()
                with conn.writing():
                    conn.request(
                        method, path, body=_pieces(body), headers=hdrs, encode_chunked=chunked
                    )
                with conn.reading(wait):
                    raw = conn.getresponse()
            except ssl.SSLCertVerificationError as e:
                conn.close()
                # Not a network failure: retrying cannot help, so it is not in NETWORK_ERRORS.
                raise CertificateError(f'{go_op(method)} "{url}": {tls.x509_message(e)}') from None
            except NETWORK_ERRORS as e:
                conn.close()
                # A kept-alive connection the server closed meanwhile: try once on a new one,
                # unless the body was a stream we cannot send twice.
                if reused and not isinstance(e, Timeout) and _resendable(body):
                    continue
                if isinstance(e, ssl.SSLError) and "ALERT" in str(e.reason or ""):
                    # The server refused the handshake (a client certificate it does not
                    # accept, say): Go's words, and no retry.
                    alert = str(e.reason).split("ALERT_", 1)[-1].lower().replace("_", " ")
                    raise TLSError(f'{go_op(method)} "{url}": remote error: tls: {alert}') from None
                raise
            resp = Response(raw, conn, self)
            resp.url = url
            return resp
        raise AssertionError("unreachable")  # pragma: no cover


def go_op(method: str) -> str:
    """Go's url.Error names the method so: ``Get``, ``Patch``."""
    return method[:1].upper() + method[1:].lower()


def _resendable(body: bytes | Iterable[bytes] | None) -> bool:
    return body is None or isinstance(body, bytes)


def _pieces(body: bytes | Iterable[bytes] | None) -> Iterator[bytes | memoryview] | None:
    """The body in writes of at most ``SEND_PIECE`` bytes: a socket timeout then bounds one
    write, which a slow link still finishes, where a whole blob in one ``sendall`` would not."""
    if body is None:
        return None
    parts: Iterable[bytes] = (body,) if isinstance(body, bytes) else body

    def gen() -> Iterator[bytes | memoryview]:
        for part in parts:
            view = memoryview(part)
            for start in range(0, len(view), SEND_PIECE):
                yield view[start : start + SEND_PIECE]

    return gen()
