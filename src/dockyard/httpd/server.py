"""The listener and its connections: a thread per connection, keep-alive, timeouts, shutdown.

A thread per connection rather than a bounded pool: attach, exec, logs --follow and wait
hold their connection for as long as a container runs, so a pool of N would let N such
clients lock every other one out (what Docker avoids with a goroutine per connection). The
number of open connections is capped instead (``Limits.connections``).
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from dockyard.httpd.errors import ClientGone, HTTPError
from dockyard.httpd.request import Request, http_date, reason
from dockyard.httpd.wire import Limits, Reader, read_head

if TYPE_CHECKING:
    import ssl


class App(Protocol):
    """A front end: answers each request, and renders the errors the layer answers itself
    (malformed requests, unknown routes, bodies too large, JSON too deep)."""

    def handle(self, req: Request) -> None: ...

    def render_error(self, err: HTTPError) -> tuple[bytes, str, list[tuple[str, str]]]:
        """(body, content type, extra headers) for ``err.status``."""
        ...


def listen_unix(path: str) -> socket.socket:
    """A listening Unix socket at ``path`` (the caller sets the umask for its mode)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # Docker's backlog: Python's default of 5 refused clients as soon as a few arrived
        # together ("Resource temporarily unavailable" from a non-blocking connect).
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_tcp(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except BaseException:
        sock.close()
        raise
    return sock


_IDLE, _BUSY, _STREAMING = "idle", "busy", "streaming"


class Connection:
    def __init__(self, server: Server, sock: socket.socket, client: str) -> None:
        self.server = server
        self.sock = sock
        self.client = client
        self.tls = server.tls is not None
        self.reader = Reader(sock)
        self.state = _IDLE
        self.idle_since = time.monotonic()  # when it last began to wait for a request
        self.thread: threading.Thread | None = None
        self.linger = False  # a reply went out while the client may still be sending
        self.context: dict[str, Any] = {}  # the front end's per-connection values
        self._on_close: list[Callable[[], None]] = []

    def on_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (in the connection's thread) when the connection ends."""
        self._on_close.append(callback)

    def sendall(self, data: bytes | memoryview) -> None:
        try:
            self.sock.sendall(data)
        except (OSError, ValueError) as e:  # reset, broken pipe, timeout, closed
            raise ClientGone() from e

    def streaming(self) -> None:
        """A stream or a hijacked connection from now on: no timeouts, and a shutdown ends
        it at once."""
        self.state = _STREAMING
        self.reader.deadline = None
        self.sock.settimeout(None)

    def abort(self) -> None:
        """Wake whatever the thread is blocked on in this socket (shutdown)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ------------------------------------------------------------ the thread

    def run(self) -> None:
        try:
            if self._handshake():
                self._serve()
        except Exception:  # a bug in the layer: never let it pass silently
            traceback.print_exc()
        finally:
            for callback in self._on_close:
                try:
                    callback()
                except Exception:
                    traceback.print_exc()
            self._close()
            self.server._forget(self)

    def _handshake(self) -> bool:
        if not self.tls:
            return True
        # The handshake happens here, in the connection's own thread, bounded by the head's
        # timeout: a silent client or a plain-HTTP request never holds up accept().
        self.sock.settimeout(self.server.limits.header_timeout)
        try:
            self.sock.do_handshake()  # type: ignore[attr-defined]
        except (OSError, ValueError):
            # Plain HTTP, a client refusing our certificate, a scanner: nothing to answer in
            # TLS. Whatever it sent stays unread: end our side first, so it sees a close
            # rather than a reset.
            self.linger = True
            return False
        return True

    def _serve(self) -> None:
        server, limits, reader = self.server, self.server.limits, self.reader
        while not server.stopping:
            self.state = _IDLE
            self.idle_since = time.monotonic()
            try:
                if not reader.buffered():
                    reader.deadline = time.monotonic() + limits.idle_timeout
                    if not reader.fill():
                        return  # closed between requests
                reader.deadline = time.monotonic() + limits.header_timeout
                head = read_head(reader, limits)
            except HTTPError as e:
                self._reply_error(None, e)
                return
            except OSError:  # timeout (idle, or half a request), reset
                return
            if head is None:
                return
            self.state = _BUSY
            reader.deadline = None
            self.sock.settimeout(limits.body_timeout)
            try:
                req = Request(self, head)
            except HTTPError as e:  # the body's framing
                self._reply_error(None, e)
                return
            if not self._handle(req):
                return

    def _handle(self, req: Request) -> bool:
        """Run the front end on ``req``; False when the connection must close after it."""
        keep = self._run_app(req)
        if not keep and req.started and not req.hijacked:
            self.linger = not req.body.done or req.body.broken
        return keep

    def _run_app(self, req: Request) -> bool:
        server = self.server
        try:
            server.app.handle(req)
            if req.started and not req.hijacked:
                req.finish()
        except HTTPError as e:
            if req.started:
                return False
            self._reply_error(req, e)
            if e.close:
                return False
        except ClientGone:
            return False
        except Exception:
            traceback.print_exc()
            if req.started:
                return False
            self._reply_error(req, HTTPError(500, "internal server error"))
        if req.hijacked:
            return False
        if not req.started:  # a front end that forgot to answer: still an answer
            self._reply_error(req, HTTPError(500, "no reply"))
        server.log(req, self.client)
        if req.close or server.stopping:
            return False
        # Whatever the handler left of the body after its reply.
        if not req.body.done and not req.body.drain(server.limits.drain):
            return False
        return not req.body.broken

    def _reply_error(self, req: Request | None, err: HTTPError) -> None:
        body, ctype, extra = self.server.app.render_error(err)
        if req is not None and not req.started:
            if err.close:
                req.close = True
            try:
                req.reply(err.status, body, extra, ctype)
            except ClientGone:
                pass
            return
        # No request to speak of (its head was malformed): a bare reply, then close.
        self.linger = True
        fields = [
            f"HTTP/1.1 {err.status} {reason(err.status)}",
            f"Server: {self.server.name}",
            f"Date: {http_date()}",
            *(f"{k}: {v}" for k, v in self.server.base_headers),
            *(f"{k}: {v}" for k, v in extra),
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        try:
            self.sock.settimeout(self.server.limits.body_timeout)
            self.sock.sendall(("\r\n".join(fields) + "\r\n\r\n").encode("latin-1") + body)
        except OSError:
            pass

    def _close(self) -> None:
        """Close without losing the last reply: a close with unread bytes in the socket makes
        the kernel send a reset, which can destroy the reply before the client reads it. So:
        end our side, read (briefly) what the client still sends, then close."""
        sock = self.sock
        if not self.linger:
            sock.close()
            return
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.5)
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and sock.recv(65536):
                pass
        except (OSError, ValueError):
            pass
        finally:
            sock.close()


class Server:
    """Serves ``app`` on ``listener`` until :meth:`shutdown` (which a signal handler may
    call). ``tls``: accepted sockets are wrapped, and handshake in their own thread."""

    def __init__(
        self,
        listener: socket.socket,
        app: App,
        *,
        name: str,
        limits: Limits | None = None,
        base_headers: tuple[tuple[str, str], ...] = (),
        tls: ssl.SSLContext | None = None,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        self.listener = listener
        self.app = app
        self.name = name
        self.limits = limits or Limits()
        self.base_headers = base_headers
        self.tls = tls
        self.access_log = access_log
        self.stopping = False
        self._conns: set[Connection] = set()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._done = threading.Event()

    @property
    def address(self) -> str | tuple[str, int]:
        addr: str | tuple[str, int] = self.listener.getsockname()
        return addr

    def connections(self) -> int:
        """Open connections (tests: a thread that ended has left this count)."""
        with self._lock:
            return len(self._conns)

    def log(self, req: Request, client: str) -> None:
        if self.access_log is not None:
            self.access_log(f'{client} - "{req.line}" {req.status} {req.sent or "-"}')

    # ------------------------------------------------------------ accept

    def serve_forever(self) -> None:
        """Accept until shutdown; then close the listener and the connections (requests in
        progress get ``limits.shutdown_grace`` to finish)."""
        self.listener.setblocking(False)
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self.stopping:
                poller.poll()  # a signal's handler calls shutdown(), which wakes it
                if not self.stopping:
                    self._accept_all()
        finally:
            self._close_all()
            self._done.set()

    def _accept_all(self) -> None:
        while True:
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE, ECONNABORTED...: try again on the next wake-up
                time.sleep(0.01)
                return
            client = f"{addr[0]}:{addr[1]}" if isinstance(addr, tuple) else "unix"
            if not self._make_room():
                _refuse(sock)
                continue
            sock.setblocking(True)
            if self.tls is not None:
                # No I/O here: the handshake runs in the connection's thread.
                try:
                    sock = self.tls.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                except OSError:
                    sock.close()
                    continue
            conn = Connection(self, sock, client)
            thread = threading.Thread(target=conn.run, name=f"httpd {client}", daemon=True)
            conn.thread = thread
            with self._lock:
                self._conns.add(conn)
            thread.start()

    def _make_room(self) -> bool:
        """Whether a new connection may be served. At the limit, a connection waiting idle
        between requests is closed for it (clients open a new one for their next request, as
        they do after a server's keep-alive timeout): busy clients with pools of keep-alive
        connections (docker-py keeps up to 10 each) are not refused for connections they do
        not use. Refused (503) only when every connection is in a request."""
        with self._lock:
            if len(self._conns) < self.limits.connections:
                return True
            idle_ones = [c for c in self._conns if c.state == _IDLE and not c.reader.buffered()]
            if not idle_ones:
                return False
            # The one idle longest: pools hand out their most recently used connection
            # first (urllib3, Go's), so it is the least likely to carry a request now.
            idle = min(idle_ones, key=lambda c: c.idle_since)
            self._conns.discard(idle)  # its slot is the new one's from now on
        idle.abort()
        return True

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    # ------------------------------------------------------------ stop

    def shutdown(self) -> None:
        """Stop accepting; serve_forever then closes everything and returns. Safe to call
        from a signal handler or another thread."""
        if self.stopping:
            return  # once: after serve_forever the pipe is closed, its number maybe reused
        self.stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _close_all(self) -> None:
        self.listener.close()
        with self._lock:
            conns = list(self._conns)
        # Idle keep-alive connections and streams end now; a request being handled gets
        # the grace period to answer (its reply says "Connection: close").
        for c in conns:
            if c.state != _BUSY:
                c.abort()
        deadline = time.monotonic() + self.limits.shutdown_grace
        for c in conns:
            if c.thread is not None:
                c.thread.join(max(0.0, deadline - time.monotonic()))
        for c in conns:
            c.abort()
        # Threads blocked elsewhere (a monitor's socket) are daemon threads: the process
        # may exit without them.
        for c in conns:
            if c.thread is not None:
                c.thread.join(0.2)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)


def _refuse(sock: socket.socket) -> None:
    body = b"too many connections\n"
    try:
        sock.setblocking(False)
        sock.send(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
    except OSError:
        pass
    finally:
        sock.close()


def log_to_stderr(prefix: str) -> Callable[[str], None]:
    def write(line: str) -> None:
        sys.stderr.write(f"{prefix}{line}\n")

    return write
