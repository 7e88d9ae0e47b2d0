"""A real dockyard.httpd server in this process, on a Unix socket in the test's temp dir, with
a small front end (items to create, streams, uploads) and short timeouts, driven by real
clients over real sockets."""

from __future__ import annotations

import errno
import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.httpd import HTTPError, Limits, Request, Router, Server, listen_unix

# Short enough for the tests to run in about a second; long enough for a loaded machine to
# send a whole request well within them.
LIMITS = Limits(
    idle_timeout=1.0,
    header_timeout=1.0,
    body_timeout=1.0,
    body=1 << 16,
    drain=1 << 16,
    json_depth=50,
    shutdown_grace=1.0,
    keep_waiting=0.1,  # idle connections go to the poller soon: both paths are tested
    worker_idle=1.0,
)


@dataclass
class ItemsApp:
    """The front end: POST /items creates what the JSON body says; streams for the
    disconnect tests; every connection it saw."""

    items: list[Any] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)
    stream_ended: threading.Event = field(default_factory=threading.Event)
    router: Router = field(default_factory=Router)

    def __post_init__(self) -> None:
        r = self.router
        r.add("GET", "/ping", lambda req: req.reply(200, b"pong", content_type="text/plain"))
        r.add("POST", "/items", self.create)
        r.add("GET", "/items", lambda req: self.json(req, 200, self.items))
        r.add("GET", "/items/{n}", lambda req, n: self.json(req, 200, self.items[int(n)]))
        r.add("POST", "/upload", self.upload, max_body=1 << 20)
        r.add("GET", "/stream", self.stream)
        r.add("GET", "/slow", self.slow)

    def handle(self, req: Request) -> None:
        self.connections.add(id(req.conn))
        found = self.router.match(req.method, req.path)
        if isinstance(found, int):
            raise HTTPError(found, "page not found" if found == 404 else "method not allowed")
        if found.max_body is not None:
            req.max_body = found.max_body
        found.func(req, **found.params)

    def render_error(self, err: HTTPError) -> tuple[bytes, str, list[tuple[str, str]]]:
        return json.dumps({"message": err.message}).encode(), "application/json", []

    def json(self, req: Request, status: int, doc: Any) -> None:
        req.reply(status, json.dumps(doc).encode(), content_type="application/json")

    def create(self, req: Request) -> None:
        doc = req.json()
        self.items.append(doc)
        self.json(req, 201, {"Id": len(self.items) - 1})

    def upload(self, req: Request) -> None:
        self.json(req, 200, {"size": len(req.read())})

    def slow(self, req: Request) -> None:
        time.sleep(0.01)
        req.reply(200, b"done")

    def stream(self, req: Request) -> None:
        """``?quiet``: a producer with nothing to say (``logs -f`` of a silent container), which
        yields b"" to let the layer see whether the client is still there."""
        quiet = "quiet" in req.query

        def chunks() -> Iterator[bytes]:
            try:
                yield b"first\n"
                while True:
                    time.sleep(0.01)
                    yield b"" if quiet else b"more\n"
            finally:
                self.stream_ended.set()

        req.stream(chunks(), headers=[("Content-Type", "text/plain")])


@dataclass
class Served:
    path: Path
    app: ItemsApp
    server: Server
    thread: threading.Thread

    def connect(self) -> socket.socket:
        """A connection opened as Go's net.Dial does (non-blocking connect: a full backlog is
        an immediate EAGAIN, "Resource temporarily unavailable", not a wait)."""
        return connect_nonblocking(str(self.path))

    def client(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("localhost", timeout=30)
        conn.sock = self.connect()
        return conn

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = self.client()
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def raw(self, data: bytes, timeout: float = 30) -> bytes:
        """Send ``data`` on a fresh connection; everything the server sends until it closes."""
        with self.connect() as s:
            s.settimeout(timeout)
            s.sendall(data)
            return read_to_close(s)

    def wait_idle(self) -> None:
        """Every connection's thread has ended."""
        wait_for(lambda: self.server.connections() == 0)


def connect_nonblocking(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect(path)
    except BlockingIOError as e:
        s.close()
        raise AssertionError(f"connection refused: {errno.errorcode[e.errno]}") from e
    s.setblocking(True)
    s.settimeout(30)
    return s


def recv_until(s: socket.socket, marker: bytes) -> bytes:
    out = b""
    while marker not in out:
        data = s.recv(65536)
        if not data:
            raise AssertionError(f"closed before {marker!r}: {out!r}")
        out += data
    return out


def read_to_close(s: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data


def wait_for(cond: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


def body_of(reply: bytes) -> Any:
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])


def make_server(path: Path, limits: Limits = LIMITS) -> tuple[ItemsApp, Server]:
    app = ItemsApp()
    return app, Server(listen_unix(str(path)), app, name="test", limits=limits)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    path = tmp_path / "s.sock"
    app, server = make_server(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(path, app, server, thread)
    finally:
        server.shutdown()
        thread.join(10)
        assert not thread.is_alive(), "the server did not stop"
