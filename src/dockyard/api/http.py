"""The Engine API's side of HTTP (the wire itself is dockyard.httpd): routes, replies,
Docker's error shape, streams and hijacking.

Three of Docker's habits matter here: paths may carry an API version
(``/v1.41/containers/json``), errors are ``{"message": ...}`` with the status the error class
maps to (errors.py), and attach/exec take the connection over ("hijack": ``101 UPGRADED``
then a raw byte stream both ways).
"""

from __future__ import annotations

import io
import json
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qs

from dockyard.errors import DockyardError, InvalidArgument
from dockyard.httpd import BodyTooLarge, ClientGone, HTTPError, JSONError, Reader, Router, loads

if TYPE_CHECKING:
    import socket

    from dockyard.api.daemon import Daemon
    from dockyard.engine import Engine
    from dockyard.httpd import Request

# The newest API version served (Docker 26.1's) and the oldest (Docker 25+ refuse older ones);
# unversioned paths mean the newest, as in moby's version middleware.
API_VERSION = "1.45"
MIN_API_VERSION = "1.24"
MAX_VERSION = (1, 45)
MIN_VERSION = (1, 24)
_VERSIONED = re.compile(r"^/v([0-9.]+)(/.*)$")
MAX_JSON_BODY = 16 << 20
# What every reply carries, errors included (Docker's client reads Api-Version from /_ping).
BASE_HEADERS = (("Api-Version", API_VERSION), ("Docker-Experimental", "false"), ("Ostype", "linux"))
SERVER_NAME = "Docker/20.10 (dockyard)"

__all__ = ["API_VERSION", "MIN_API_VERSION", "ApiApp", "Call", "Done", "Reply", "Router"]


def _json_object(text: str | bytes, what: str, not_object: str, depth: int) -> dict[str, Any]:
    """``text`` as a JSON object; InvalidArgument ("<what>: <why>") otherwise."""
    try:
        doc = loads(text, depth)
    except JSONError as e:
        raise InvalidArgument(f"{what}: {e}") from None
    if not isinstance(doc, dict):
        raise InvalidArgument(f"{what}: {not_object}")
    return doc


class Done(Exception):
    """Raised by a handler that has written its whole reply itself (stream, hijack)."""


class Reply:
    """A status and a body other than 200 + JSON: 201 Created, 204/304 without a body,
    text for /_ping."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []


class _ReplyBody(io.RawIOBase):
    """The reply's body as a file: what is written goes out as chunks."""

    def __init__(self, req: Request) -> None:
        self.req = req

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.req.write(bytes(data))
        return len(data)


class _RequestBody(io.RawIOBase):
    """The request's body as a file, read as it arrives (a tar of any size)."""

    def __init__(self, req: Request) -> None:
        self.req = req

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.req.body.read1(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class Exchange:
    """The request's connection as routes use it for what is not a plain reply: the body in
    pieces, streamed replies, hijacking."""

    def __init__(self, req: Request) -> None:
        self.req = req

    @property
    def connection(self) -> socket.socket:
        return self.req.conn.sock

    @property
    def rfile(self) -> Reader:
        """After ``hijack``: what the client sends (``read1``)."""
        return self.req.conn.reader

    def client_gone(self) -> bool:
        return self.req.client_gone()

    def iter_body(self, limit: int | None = None) -> Iterator[bytes]:
        try:
            yield from self.req.iter_body(limit=limit)
        except BodyTooLarge:
            raise InvalidArgument("request body too large") from None

    def body_file(self) -> BinaryIO:
        """The body as a binary file, unbounded: for archives, streamed, never held whole."""
        return io.BufferedReader(_RequestBody(self.req), 1 << 17)

    def read_body(self, limit: int = MAX_JSON_BODY) -> bytes:
        return b"".join(self.iter_body(limit))

    def stream(self, chunks: Iterable[bytes], content_type: str, status: int = 200) -> None:
        """A chunked reply of ``chunks``, each sent as it comes (progress, follow)."""
        self.req.stream(chunks, status, [("Content-Type", content_type)])
        raise Done

    def write_stream(
        self,
        write: Callable[[BinaryIO], None],
        content_type: str,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        """A chunked reply written by ``write(out)`` (a tar being made), in 256 KiB pieces."""
        self.req.start(200, [("Content-Type", content_type), *headers])
        out = io.BufferedWriter(_ReplyBody(self.req), 1 << 18)
        write(out)
        out.flush()
        self.req.finish()
        raise Done

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
        fields = [("Content-Type", "application/vnd.docker.raw-stream")]
        if "upgrade" in self.req.headers.get("Connection").lower():
            upgrade = [("Connection", "Upgrade"), ("Upgrade", "tcp")]
            self.req.hijack(101, [*upgrade, *fields], "UPGRADED")
        else:
            self.req.hijack(200, fields)


def parse_version(text: str) -> tuple[int, ...] | None:
    """``1.41`` -> (1, 41); None when it is not dotted numbers."""
    try:
        return tuple(int(p) for p in text.split("."))
    except ValueError:
        return None


class Call:
    """One request as a route sees it: path parameters, query, body, the connection's engine,
    and the API version the client asked for (what some answers depend on)."""

    def __init__(
        self,
        req: Request,
        daemon: Daemon,
        params: dict[str, str],
        query: dict[str, list[str]],
        version: tuple[int, ...] = MAX_VERSION,
    ):
        self.req = req
        self.version = version
        self._body: bytes | None = None
        self.handler = Exchange(req)
        self.params = params
        self.query = query
        self.daemon = daemon

    @property
    def engine(self) -> Engine:
        """The worker thread's engine (one SQLite connection per server thread: they are
        thread-bound, and every front end sees the store through the same WAL). Per thread,
        not per client connection: docker-py opens a connection for every log stream it
        reads, and an engine's start-up was a share of each ``containers.run``."""
        worker = self.req.conn.worker
        assert worker is not None  # a request is served in a worker
        engine: Engine | None = worker.context.get("engine")
        if engine is None:
            from dockyard.engine import Engine

            engine = Engine(
                root=self.daemon.root,
                run_root=self.daemon.run_root,
                exit_recorder=self.daemon.exits.recorded_here,
            )
            worker.context["engine"] = engine
            worker.on_exit(engine.close)
        return engine

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

    def timestamp(self, name: str) -> int:
        """A Docker API time (``since=1700000000.5``: seconds[.nanoseconds], what Docker's
        client sends for ``--since``/``--until``) in nanoseconds; 0 when absent or "0"."""
        from dockyard.units import ts_ns

        text = self.arg(name)
        if not text:
            return 0
        try:
            return ts_ns(text)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None

    def filters(self) -> dict[str, list[str]]:
        """``filters={"status": ["running"]}`` (or the old ``{"status": {"running": true}}``)."""
        text = self.arg("filters")
        if not text:
            return {}
        doc = _json_object(text, "invalid filter", "not an object", self._depth)
        out: dict[str, list[str]] = {}
        for k, v in doc.items():
            out[str(k)] = [str(x) for x in (v if isinstance(v, list) else list(v or {}))]
        return out

    @property
    def _depth(self) -> int:
        return self.req.conn.server.limits.json_depth

    def body(self) -> bytes:
        """The whole body (read once, kept: a route may look at it before decoding it)."""
        if self._body is None:
            self._body = self.handler.read_body(self.req.max_body)
        return self._body

    def json(self, *, required: bool = False) -> dict[str, Any]:
        """The request body as a JSON object ({} when empty and not ``required``)."""
        raw = self.body()
        if not raw.strip():
            if required:
                raise InvalidArgument("request body is empty: a JSON object is required")
            return {}
        return _json_object(raw, "invalid JSON body", "expected an object", self._depth)


Route = Callable[[Call], Any]


def error_body(message: str) -> bytes:
    return json.dumps({"message": message}).encode() + b"\n"


class ApiApp:
    """The Engine API as a front end of the server layer."""

    def __init__(self, router: Router, daemon: Daemon) -> None:
        self.router = router
        self.daemon = daemon

    def render_error(self, err: HTTPError) -> tuple[bytes, str, list[tuple[str, str]]]:
        return error_body(err.message), "application/json", []

    def handle(self, req: Request) -> None:
        path = req.path
        version: tuple[int, ...] = MAX_VERSION
        m = _VERSIONED.match(path)
        if m:
            path = m[2]
            asked = parse_version(m[1])
            if asked is None:
                raise HTTPError(404, "page not found")
            version = asked
            # moby's version middleware, word for word.
            if version < MIN_VERSION:
                raise HTTPError(
                    400,
                    f"client version {m[1]} is too old. Minimum supported API version is "
                    f"{MIN_API_VERSION}, please upgrade your client to a newer version",
                )
            if version > MAX_VERSION:
                raise HTTPError(
                    400,
                    f"client version {m[1]} is too new. Maximum supported API version "
                    f"is {API_VERSION}",
                )
        found = self.router.match(req.method, path.rstrip("/") or "/")
        if isinstance(found, int):
            raise HTTPError(found, "page not found" if found == 404 else "method not allowed")
        if found.max_body is not None:
            req.max_body = found.max_body
        query = parse_qs(req.query, keep_blank_values=True)
        call = Call(req, self.daemon, found.params, query, version)
        try:
            result = found.func(call)
        except Done:
            return
        except DockyardError as e:
            if req.started:
                raise _cut_short(req) from e
            result = Reply(e.http_status, {"message": str(e)})
        except (HTTPError, ClientGone):
            raise
        except (BrokenPipeError, ConnectionResetError):
            raise ClientGone() from None
        except Exception as e:  # a bug: the client gets a 500, the log the traceback
            traceback.print_exc()
            if req.started:
                raise _cut_short(req) from e
            result = Reply(500, {"message": f"{type(e).__name__}: {e}"})
        if req.hijacked or req.started:
            return
        if not isinstance(result, Reply):
            result = Reply(200, result)
        _send(req, result)


def _cut_short(req: Request) -> ClientGone:
    """A reply that failed after its head went out (a tar stream whose file vanished): the
    connection is closed without the chunked body's end, so the client sees an error rather
    than a complete-looking, truncated body."""
    req.close = True
    return ClientGone()


def _send(req: Request, reply: Reply) -> None:
    if reply.body is None:
        body = b""
    elif isinstance(reply.body, bytes):
        body = reply.body
    elif isinstance(reply.body, str):
        body = reply.body.encode()
    else:
        body = json.dumps(reply.body).encode() + b"\n"
    if reply.status in (204, 304):
        req.reply(reply.status, headers=reply.headers)
    else:
        # Content-Type even on an empty body, as before (docker-py looks at it on errors).
        fields = [("Content-Type", reply.content_type), *reply.headers]
        req.start(reply.status, fields, length=len(body))
        req.write(body)


def labels_match(labels: Mapping[str, str] | None, wanted: Sequence[str]) -> bool:
    """Docker's ``label`` filter: every ``key`` present, every ``key=value`` equal."""
    labels = labels or {}
    for want in wanted:
        key, eq, value = want.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True
