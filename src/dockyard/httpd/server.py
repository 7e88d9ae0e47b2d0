"""The listener and its connections: keep-alive, timeouts, shutdown; worker threads that
serve requests, and a poller that holds the connections waiting idle between them.

A request is served on a thread of its own rather than by a bounded pool: attach, exec,
logs --follow and wait hold theirs for as long as a container runs, so a pool of N would let
N such clients lock every other one out (what Docker avoids with a goroutine per
connection). Workers are started as requests need them and end when idle
(``Limits.worker_idle``).

A connection between requests holds no thread: after ``Limits.keep_waiting`` without a
request its worker hands it to the poller (``serve_forever``'s thread), which hands it back
to a worker when the next request comes. Clients keep many of those: docker-py keeps up to
10 per client, and drops (without closing) the connection of every log stream it has read
until its garbage collector runs, so 50 clients running containers held ~1000 open
connections. Go's server (Docker's) keeps them all; so do we, up to ``Limits.connections``
(capped by the open-file limit). Only there is one closed for a newcomer, and never one with
a request waiting in it.
"""

from __future__ import annotations

import os
import resource
import select
import selectors
import socket
import sys
import threading
import time
import traceback
from collections import deque
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


class Worker:
    """A thread that serves connections, one at a time. ``context``: the front end's values
    for this thread (things bound to a thread, as SQLite connections are, are made once per
    worker rather than once per connection); ``on_exit`` callbacks run when it ends."""

    def __init__(self) -> None:
        self.context: dict[str, Any] = {}
        self._on_exit: list[Callable[[], None]] = []

    def on_exit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` (in the worker's thread) when the worker ends."""
        self._on_exit.append(callback)

    def exit(self) -> None:
        for callback in self._on_exit:
            try:
                callback()
            except Exception:
                traceback.print_exc()
        self._on_exit.clear()


class Connection:
    def __init__(self, server: Server, sock: socket.socket, client: str) -> None:
        self.server = server
        self.sock = sock
        self.client = client
        self.tls = server.tls is not None
        self.reader = Reader(sock)
        self.state = _IDLE
        self.idle_since = time.monotonic()  # when it last began to wait for a request
        self.worker: Worker | None = None  # serving it now (None while parked)
        self.linger = False  # a reply went out while the client may still be sending
        self._handshaken = False

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

    # ------------------------------------------------------------ in a worker

    def serve(self, worker: Worker) -> None:
        """Serve requests until the connection ends or waits idle (then it is parked)."""
        self.worker = worker
        park = False
        try:
            if not self._handshaken:
                self._handshaken = True
                if not self._handshake():
                    return
            park = self._serve()
        except Exception:  # a bug in the layer: never let it pass silently
            traceback.print_exc()
        finally:
            self.worker = None
            if not park or not self.server._park(self):
                self.end()

    def end(self) -> None:
        self._close()
        self.server._forget(self)

    def _handshake(self) -> bool:
        if not self.tls:
            return True
        # The handshake happens here, in a worker, bounded by the head's timeout: a silent
        # client or a plain-HTTP request never holds up accept().
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

    def _waiting(self) -> bool:
        """Whether bytes of a next request are here already (ours, or TLS's decrypted)."""
        return bool(self.reader.buffered()) or (
            self.tls and bool(self.sock.pending())  # type: ignore[attr-defined]
        )

    def _next_request_comes(self) -> bool | None:
        """Wait (``keep_waiting``, within the idle timeout) for the next request's first
        bytes: True when they come (or the client closes: the read says so), None when the
        connection should be parked, False when its idle timeout has passed."""
        limits = self.server.limits
        left = self.idle_since + limits.idle_timeout - time.monotonic()
        if left <= 0:
            return False
        wait = min(left, limits.keep_waiting)
        if _readable(self.sock, wait):
            return True  # or closed under us (shutdown): the read tells
        return None if wait < left else False

    def _serve(self) -> bool:
        """True to park the connection (idle, nothing of a request in it)."""
        server, limits, reader = self.server, self.server.limits, self.reader
        while not server.stopping:
            self.state = _IDLE
            try:
                if not self._waiting():
                    comes = self._next_request_comes()
                    if comes is None:
                        return not server.stopping
                    if not comes:
                        return False  # the idle timeout
                    reader.deadline = time.monotonic() + limits.header_timeout
                    if not reader.fill():
                        return False  # closed between requests
                reader.deadline = time.monotonic() + limits.header_timeout
                head = read_head(reader, limits)
            except HTTPError as e:
                self._reply_error(None, e)
                return False
            except OSError:  # timeout (half a request), reset
                return False
            if head is None:
                return False
            self.state = _BUSY
            reader.deadline = None
            self.sock.settimeout(limits.body_timeout)
            try:
                req = Request(self, head)
            except HTTPError as e:  # the body's framing
                self._reply_error(None, e)
                return False
            if not self._handle(req):
                return False
            self.idle_since = time.monotonic()
        return False

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


class _Workers:
    """Threads that serve the connections handed to them, started when none is free, ended
    after ``idle`` seconds without work (and at shutdown)."""

    def __init__(self, idle: float) -> None:
        self.idle = idle
        self.stopping = False
        self._ready: deque[Connection] = deque()
        self._cond = threading.Condition()
        self._waiting = 0  # workers waiting for a connection
        self._threads: set[threading.Thread] = set()

    def submit(self, conn: Connection) -> None:
        with self._cond:
            self._ready.append(conn)
            if len(self._ready) <= self._waiting:
                self._cond.notify()
                return
            thread = threading.Thread(target=self._work, name="httpd worker", daemon=True)
            self._threads.add(thread)
        thread.start()

    def _work(self) -> None:
        worker = Worker()
        try:
            while True:
                with self._cond:
                    deadline = time.monotonic() + self.idle
                    while not self._ready:
                        left = deadline - time.monotonic()
                        if left <= 0 or self.stopping:
                            return
                        self._waiting += 1
                        try:
                            self._cond.wait(left)
                        finally:
                            self._waiting -= 1
                    conn = self._ready.popleft()
                conn.serve(worker)
        finally:
            worker.exit()
            with self._cond:
                self._threads.discard(threading.current_thread())

    def stop(self) -> None:
        """No more waiting for work: idle workers end now, busy ones after their connection."""
        with self._cond:
            self.stopping = True
            self._cond.notify_all()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            threads = list(self._threads)
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def count(self) -> int:
        with self._cond:
            return len(self._threads)


def connection_limit(wanted: int) -> int:
    """``wanted``, within half the process's open-file limit (the other half for what the
    requests open: logs, pipes, the store)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return min(wanted, max(16, soft // 2))


class Server:
    """Serves ``app`` on ``listener`` until :meth:`shutdown` (which a signal handler may
    call). ``tls``: accepted sockets are wrapped, and handshake in a worker."""

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
        self.max_connections = connection_limit(self.limits.connections)
        self.base_headers = base_headers
        self.tls = tls
        self.access_log = access_log
        self.stopping = False
        self._conns: set[Connection] = set()
        self._lock = threading.Lock()
        self._workers = _Workers(self.limits.worker_idle)
        # The poller's: connections parked (oldest first), and those workers hand over.
        self._parked: dict[Connection, None] = {}
        self._to_park: list[Connection] = []
        self._expiry = float("inf")  # when the first parked connection's idle timeout ends
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._done = threading.Event()

    @property
    def address(self) -> str | tuple[str, int]:
        addr: str | tuple[str, int] = self.listener.getsockname()
        return addr

    def connections(self) -> int:
        """Open connections (tests: one that ended has left this count)."""
        with self._lock:
            return len(self._conns)

    def workers(self) -> int:
        """Worker threads (tests: an idle one ends after ``limits.worker_idle``)."""
        return self._workers.count()

    def parked(self) -> int:
        """Connections waiting for a request without a thread (tests)."""
        return len(self._parked)

    def log(self, req: Request, client: str) -> None:
        if self.access_log is not None:
            self.access_log(f'{client} - "{req.line}" {req.status} {req.sent or "-"}')

    # ------------------------------------------------------------ the poller

    def serve_forever(self) -> None:
        """Accept until shutdown; then close the listener and the connections (requests in
        progress get ``limits.shutdown_grace`` to finish)."""
        self.listener.setblocking(False)
        sel = self._selector
        sel.register(self.listener, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self.stopping:
                # A signal's handler calls shutdown(), which wakes it.
                for key, _ in sel.select(self._next_expiry()):
                    if self.stopping:
                        break
                    if key.fileobj is self.listener:
                        self._accept_all()
                    elif key.fd == self._wake_r:
                        self._take_parked()
                    else:
                        conn: Connection = key.data
                        self._unpark(conn)
                        self._workers.submit(conn)
                if not self.stopping:
                    self._expire()
        finally:
            self._close_all()
            self._done.set()

    def _park(self, conn: Connection) -> bool:
        """A worker's idle connection, for the poller (False when the server is stopping)."""
        with self._lock:
            if self.stopping:
                return False
            self._to_park.append(conn)
        self._wake()
        return True

    def _take_parked(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            conns, self._to_park = self._to_park, []
        for conn in conns:
            try:
                self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            except (OSError, ValueError):  # closed meanwhile (evicted at the limit)
                conn.end()
                continue
            self._parked[conn] = None
            self._expiry = min(self._expiry, conn.idle_since + self.limits.idle_timeout)

    def _unpark(self, conn: Connection) -> None:
        self._selector.unregister(conn.sock)
        del self._parked[conn]

    def _next_expiry(self) -> float | None:
        if not self._parked:
            return None
        return max(0.0, self._expiry - time.monotonic()) + 0.01

    def _expire(self) -> None:
        """Parked connections past their idle timeout are closed (Go's IdleTimeout). All are
        looked at only when the first is due: there may be thousands."""
        now = time.monotonic()
        if not self._parked or now < self._expiry:
            return
        timeout, expiry = self.limits.idle_timeout, float("inf")
        for conn in list(self._parked):
            if now - conn.idle_since >= timeout:
                self._unpark(conn)
                conn.end()
            else:
                expiry = min(expiry, conn.idle_since + timeout)
        self._expiry = expiry

    # ------------------------------------------------------------ accept

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
                # No I/O here: the handshake runs in a worker.
                try:
                    sock = self.tls.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
                except OSError:
                    sock.close()
                    continue
            conn = Connection(self, sock, client)
            with self._lock:
                self._conns.add(conn)
            self._workers.submit(conn)

    def _make_room(self) -> bool:
        """Whether a new connection may be served. At the limit, a parked connection is
        closed for it, the one idle longest (pools hand out their most recently used
        connection first, urllib3's and Go's), and only one with no byte of a request in
        it: a client that sent one on it would see it fail (urllib3 does not retry a POST).
        Refused (503) only when no parked connection is quiet."""
        with self._lock:
            if len(self._conns) < self.max_connections:
                return True
        for conn in sorted(self._parked, key=lambda c: c.idle_since):
            if _readable(conn.sock):
                continue  # a request (or the client's close) is here: the poller's next
            self._unpark(conn)
            conn.end()
            return True
        return False

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    # ------------------------------------------------------------ stop

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def shutdown(self) -> None:
        """Stop accepting; serve_forever then closes everything and returns. Safe to call
        from a signal handler or another thread."""
        if self.stopping:
            return  # once: after serve_forever the pipe is closed, its number maybe reused
        self.stopping = True
        self._wake()

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _close_all(self) -> None:
        self.listener.close()
        with self._lock:
            self.stopping = True  # (again, under the lock: no worker parks from here on)
            parked, self._to_park = [*self._parked, *self._to_park], []
        self._parked.clear()
        self._selector.close()
        for c in parked:
            c.end()
        self._workers.stop()
        with self._lock:
            conns = list(self._conns)
        # Idle keep-alive connections and streams end now; a request being handled gets
        # the grace period to answer (its reply says "Connection: close").
        for c in conns:
            if c.state != _BUSY:
                c.abort()
        self._workers.join(self.limits.shutdown_grace)
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.abort()
        # Threads blocked elsewhere (a monitor's socket) are daemon threads: the process
        # may exit without them.
        self._workers.join(0.2)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)


def _readable(sock: socket.socket, timeout: float = 0.0) -> bool:
    """Bytes (or the peer's close) to read within ``timeout`` seconds. poll, not select:
    descriptors past 1024 are the rule with this many connections."""
    try:
        p = select.poll()
        p.register(sock, select.POLLIN)
        return bool(p.poll(int(timeout * 1000)))
    except (OSError, ValueError):
        return True


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
