"""HTTP/1.1 on the daemon's socket: requests, routing, JSON and streamed replies, hijacking.

The Engine API is plain HTTP/1.1 with keep-alive; three of Docker's habits matter here:
paths may carry an API version (``/v1.41/containers/json``), errors are ``{"message": ...}``
with the status the error class maps to (errors.py), and attach/exec take the connection
over ("hijack": ``101 UPGRADED`` then a raw byte stream both ways).
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from dockyard.errors import DockyardError, InvalidArgument

if TYPE_CHECKING:
    from dockyard.api.daemon import Daemon
    from dockyard.engine import Engine

API_VERSION = "1.41"  # Docker 20.10
MIN_API_VERSION = "1.12"
_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
_MAX_JSON_BODY = 16 << 20


def _json_object(text: str | bytes, what: str, not_object: str) -> dict[str, Any]:
    """``text`` as a JSON object; InvalidArgument ("<what>: <why>") otherwise."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise InvalidArgument(f"{what}: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what}: {not_object}")
    return doc


class Done(Exception):
    """Raised by a handler that has written its whole reply itself (stream, hijack)."""


class Reply:
    """A status and a body other than 200 + JSON: 201 Created, 204/304 without a body,
    text for /_ping."""

    def __init__(self, status: int, body: Any = None, content_type: str = "application/json"):
        self.status = status
        self.body = body
        self.content_type = content_type


class Call:
    """One request as a route sees it: path parameters, query, body, the connection's engine."""

    def __init__(self, handler: ApiHandler, params: dict[str, str], query: dict[str, list[str]]):
        self.handler = handler
        self.params = params
        self.query = query
        self.daemon: Daemon = handler.server.daemon  # type: ignore[attr-defined]

    @property
    def engine(self) -> Engine:
        return self.handler.engine

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        """Docker's boolean query values: 1/true/True/yes are true, 0/false/"" false."""
        return self.arg(name).lower() in ("1", "true", "yes")

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        text = self.arg(name)
        if text == "":
            return default
        try:
            return int(text)
        except ValueError:
            raise InvalidArgument(f"invalid value for {name}: {text!r}") from None

    def filters(self) -> dict[str, list[str]]:
        """``filters={"status": ["running"]}`` (or the old ``{"status": {"running": true}}``)."""
        text = self.arg("filters")
        if not text:
            return {}
        doc = _json_object(text, "invalid filter", "not an object")
        out: dict[str, list[str]] = {}
        for k, v in doc.items():
            out[str(k)] = [str(x) for x in (v if isinstance(v, list) else list(v or {}))]
        return out

    def body(self) -> bytes:
        return self.handler.read_body()

    def json(self, *, required: bool = False) -> dict[str, Any]:
        """The request body as a JSON object ({} when empty and not ``required``)."""
        raw = self.body()
        if not raw.strip():
            if required:
                raise InvalidArgument("request body is empty: a JSON object is required")
            return {}
        return _json_object(raw, "invalid JSON body", "expected an object")


Route = Callable[[Call], Any]


class Router:
    """Routes by method and a path pattern; ``{name}`` matches one segment, ``{name*}`` any
    (image names hold slashes: ``/images/localhost:5000/a/b:1/json``)."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Route]] = []

    def add(self, method: str, pattern: str, func: Route) -> None:
        rx = re.sub(
            r"\{(\w+)(\*?)\}",
            lambda m: f"(?P<{m[1]}>.+)" if m[2] else f"(?P<{m[1]}>[^/]+)",
            pattern,
        )
        self.routes.append((method, re.compile(f"^{rx}$"), func))

    def route(self, method: str, pattern: str) -> Callable[[Route], Route]:
        def register(func: Route) -> Route:
            for m in method.split("|"):
                self.add(m, pattern, func)
            return func

        return register

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | int:
        """The route and its (percent-decoded) parameters, or 404/405."""
        other_method = False
        for m, rx, func in self.routes:
            found = rx.match(path)
            if found is None:
                continue
            if m != method:
                other_method = True
                continue
            return func, {k: unquote(v) for k, v in found.groupdict().items()}
        return 405 if other_method else 404


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode() + b"\n"


class ApiHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Docker/20.10 (dockyard)"
    sys_version = ""
    router: Router  # set by the daemon
    engine: Engine

    def setup(self) -> None:
        super().setup()
        from dockyard.engine import Engine

        d = self.server.daemon  # type: ignore[attr-defined]
        # One engine (one SQLite connection) per client connection: connections are
        # thread-bound, and every front end sees the store through the same WAL.
        self.engine = Engine(root=d.root, run_root=d.run_root)
        self._body_left = 0
        self._chunked = False
        self._hijacked = False

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.engine.close()

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        if self.server.daemon.debug:  # type: ignore[attr-defined]
            sys.stderr.write(f"dockyard daemon: {format % args}\n")

    # ------------------------------------------------------------ request body

    def read_body(self) -> bytes:
        """The whole body (Content-Length or chunked), up to 16 MiB for JSON routes."""
        return b"".join(self.iter_body(limit=_MAX_JSON_BODY))

    def iter_body(self, limit: int | None = None) -> Iterator[bytes]:
        total = 0
        while True:
            chunk = self._read_chunk()
            if not chunk:
                return
            total += len(chunk)
            if limit is not None and total > limit:
                raise InvalidArgument("request body too large")
            yield chunk

    def _read_chunk(self) -> bytes:
        if self._chunked:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise InvalidArgument("bad chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                self._chunked = False
                return b""
            data = self.rfile.read(size)
            self.rfile.readline(8)
            if len(data) < size:
                raise InvalidArgument("request body ended early")
            return data
        if self._body_left <= 0:
            return b""
        data = self.rfile.read(min(self._body_left, 1 << 20))
        if not data:
            self._body_left = 0
            raise InvalidArgument("request body ended early")
        self._body_left -= len(data)
        return data

    def _drain_body(self) -> None:
        try:
            for _ in self.iter_body():
                pass
        except (DockyardError, OSError):
            self.close_connection = True

    # ------------------------------------------------------------ dispatch

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_DELETE = do_PUT = do_HEAD = do_GET

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        m = _VERSIONED.match(path)
        if m:
            path = m[3]
            if (int(m[1]), int(m[2])) > (1, 41):
                return self._error(
                    400,
                    f"client version {m[1]}.{m[2]} is too new. Maximum supported API version "
                    f"is {API_VERSION}",
                )
        self._chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        try:
            self._body_left = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._body_left = 0
            self.close_connection = True
            return self._error(400, "bad Content-Length")
        found = self.router.match(self.command, path.rstrip("/") or "/")
        if isinstance(found, int):
            self._drain_body()
            return self._error(found, "page not found" if found == 404 else "method not allowed")
        func, params = found
        call = Call(self, params, parse_qs(url.query, keep_blank_values=True))
        try:
            result = func(call)
        except Done:
            return
        except DockyardError as e:
            result = Reply(e.http_status, {"message": str(e)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return
        except Exception as e:  # a bug: the client gets a 500, the log the traceback
            traceback.print_exc()
            result = Reply(500, {"message": f"{type(e).__name__}: {e}"})
        if self._hijacked:
            return
        self._drain_body()
        if not isinstance(result, Reply):
            result = Reply(200, result)
        self._send(result)

    def _error(self, status: int, message: str) -> None:
        self._send(Reply(status, {"message": message}))

    def _common_headers(self) -> None:
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")

    def _send(self, reply: Reply) -> None:
        if reply.body is None:
            body = b""
        elif isinstance(reply.body, bytes):
            body = reply.body
        elif isinstance(reply.body, str):
            body = reply.body.encode()
        else:
            body = json.dumps(reply.body).encode() + b"\n"
        self.send_response(reply.status)
        self._common_headers()
        if reply.status not in (204, 304):
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and reply.status not in (204, 304):
            self.wfile.write(body)

    # ------------------------------------------------------------ streams

    def stream(self, chunks: Iterable[bytes], content_type: str, status: int = 200) -> None:
        """A chunked reply of ``chunks`` (each flushed as it comes: progress, follow)."""
        it = iter(chunks)
        first = next(it, None)  # an error before the first chunk is still a proper status
        self._drain_body()
        self.send_response(status)
        self._common_headers()
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            if first is not None:
                self._chunk(first)
                for data in it:
                    self._chunk(data)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        raise Done

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def json_stream(self, messages: Iterable[dict[str, Any]]) -> None:
        """Docker's JSON progress stream; an error after the first message becomes an
        ``{"error": ..., "errorDetail": ...}`` message, as the clients expect."""

        def lines() -> Iterator[bytes]:
            started = False
            try:
                for msg in messages:
                    started = True
                    yield json.dumps(msg).encode() + b"\r\n"
            except DockyardError as e:
                if not started:
                    raise
                yield json.dumps({"errorDetail": {"message": str(e)}, "error": str(e)}).encode()

        self.stream(lines(), "application/json")

    def hijack(self) -> None:
        """Take the connection over for a raw stream (attach, exec). Docker answers 101 when
        the client asked to upgrade, else 200, then the stream; the connection ends with it."""
        self._drain_body()
        upgrade = "upgrade" in self.headers.get("Connection", "").lower()
        if upgrade:
            self.send_response(101, "UPGRADED")
            self.send_header("Connection", "Upgrade")
            self.send_header("Upgrade", "tcp")
        else:
            self.send_response(200)
        self._common_headers()
        self.send_header("Content-Type", "application/vnd.docker.raw-stream")
        self.end_headers()
        self.wfile.flush()
        self._hijacked = True
        self.close_connection = True
