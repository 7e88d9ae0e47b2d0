"""HTTP for registry clients: keep-alive connections (one set per thread), streamed bodies.

Built on ``http.client``: the distribution API needs nothing more than requests with
streamed request and response bodies, and the standard library keeps the CLI's imports light.
Retries, auth and redirects live in ``client.py``, which knows which requests may be repeated.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterable, Iterator
from email.message import Message
from urllib.parse import urlsplit

from dockyard.errors import CorruptData, InvalidArgument
from dockyard.registry import tls
from dockyard.registry.errors import CertificateError

# Errors that mean "the connection failed" rather than "the server answered".
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, http.client.HTTPException)

USER_AGENT = "dockyard/0.1 (docker-compatible)"
READ_CHUNK = 1 << 20


class Response:
    """A response whose body may still be on the wire; ``close()`` returns the connection to
    its thread's pool when the body was read to the end."""

    def __init__(self, raw: http.client.HTTPResponse, conn: http.client.HTTPConnection, key: str):
        self._raw = raw
        self._conn = conn
        self._key = key
        self.status = raw.status
        self.headers: Message = raw.headers
        self.url = ""

    def header(self, name: str) -> str:
        return str(self.headers.get(name) or "")

    def read(self, limit: int | None = None, what: str = "response") -> bytes:
        """The whole body; CorruptData when it is longer than ``limit``."""
        try:
            if limit is None:
                data = self._raw.read()
            else:
                length = self.header("Content-Length")
                if length.isdigit() and int(length) > limit:
                    raise CorruptData(f"{what} is larger than {limit} bytes")
                data = self._raw.read(limit + 1)
                if len(data) > limit:
                    raise CorruptData(f"{what} is larger than {limit} bytes")
        finally:
            self.close()
        return data

    def iter_bytes(self, chunk: int = READ_CHUNK) -> Iterator[bytes]:
        while True:
            data = self._raw.read1(chunk) if hasattr(self._raw, "read1") else self._raw.read(chunk)
            if not data:
                return
            yield data

    def close(self) -> None:
        complete = self._raw.isclosed() or self._raw.length == 0
        if not complete:
            # Unread body: the connection cannot carry another request.
            self._conn.close()
        self._raw.close()
        if complete and not self._raw.will_close:
            _pool().setdefault(self._key, self._conn)
        elif _pool().get(self._key) is self._conn:
            del _pool()[self._key]

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_local = threading.local()


def _pool() -> dict[str, http.client.HTTPConnection]:
    pool: dict[str, http.client.HTTPConnection] | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    return pool


def speaks_tls(netloc: str, timeout: float = 30.0) -> bool:
    """Whether ``netloc`` completes a TLS handshake (not verified: for loopback and insecure
    registries). A connection that does is kept for the first request, so the answer costs
    HTTPS registries nothing; a plain-HTTP server answers the ClientHello with a 400 at once.
    """
    conn = http.client.HTTPSConnection(
        netloc, timeout=timeout, context=tls.context(netloc, False), blocksize=READ_CHUNK
    )
    try:
        conn.connect()
    except NETWORK_ERRORS:
        conn.close()
        return False
    _pool()[_key("https", netloc, False)] = conn
    return True


def _key(scheme: str, netloc: str, verify: bool) -> str:
    return f"{scheme}://{netloc}/{verify}"


def request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    body: bytes | Iterable[bytes] | None = None,
    *,
    verify_tls: bool = True,
    timeout: float = 120.0,
) -> Response:
    """Send one request. An iterable body is sent with chunked transfer encoding unless the
    headers give a Content-Length."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidArgument(f"invalid registry URL {url!r}")
    key = _key(parts.scheme, parts.netloc, verify_tls)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    hdrs = {"User-Agent": USER_AGENT, **(headers or {})}
    chunked = body is not None and not isinstance(body, bytes) and "Content-Length" not in hdrs
    pool = _pool()
    for fresh in (False, True):
        conn = pool.pop(key, None) if not fresh else None
        reused = conn is not None
        if conn is None:
            if parts.scheme == "https":
                conn = http.client.HTTPSConnection(
                    parts.netloc,
                    timeout=timeout,
                    context=tls.context(parts.netloc, verify_tls),
                    blocksize=READ_CHUNK,
                )
            else:
                conn = http.client.HTTPConnection(
                    parts.netloc, timeout=timeout, blocksize=READ_CHUNK
                )
        try:
            conn.request(method, path, body=body, headers=hdrs, encode_chunked=chunked)
            raw = conn.getresponse()
        except ssl.SSLCertVerificationError as e:
            conn.close()
            # Not a network failure: retrying cannot help, so it is not in NETWORK_ERRORS.
            raise CertificateError(f'{method.capitalize()} "{url}": {tls.x509_message(e)}')
        except NETWORK_ERRORS:
            conn.close()
            # A kept-alive connection the server closed meanwhile: try once on a new one,
            # unless the body was a stream we cannot send twice.
            if reused and (body is None or isinstance(body, bytes)):
                continue
            raise
        resp = Response(raw, conn, key)
        resp.url = url
        return resp
    raise AssertionError("unreachable")  # pragma: no cover
