"""Attach and wait: an HTTP client bridged to the container's monitor (runtime/attach.py).

The monitor already speaks Docker's stdcopy frames (1 stdout, 2 stderr), so for a container
without a TTY its frames go to the client as they are; with a TTY only the payload goes (the
raw stream Docker sends then). What the client writes becomes stdin frames, its EOF a stdin
EOF frame. Every monitor client gets the exit frame (3): ``wait`` is a client with no streams.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dockyard.api.daemon import Pending
from dockyard.engine.containers.sessions import (
    FRAME_ERROR,
    FRAME_EXIT,
    FRAME_STDERR,
    FRAME_STDIN,
    FRAME_STDIN_EOF,
    FRAME_STDOUT,
    detach_matcher,
    frame,
    take_frames,
)
from dockyard.errors import Conflict, DockyardError, NotFound
from dockyard.httpd import ClientGone

if TYPE_CHECKING:
    from dockyard.api.http import Call
    from dockyard.engine.containers.sessions import DetachMatcher
    from dockyard.httpd import Reader
    from dockyard.model.container import Container

_POLL = 0.25  # how often a client waiting for a start looks at the container itself


def _await_start(
    call: Call,
    cid: str,
    pending: Pending,
    first: Container | None = None,
    gone: Callable[[], bool] | None = None,
    *,
    registered: bool = False,
) -> tuple[socket.socket | None, Container | None]:
    """Wait until the container runs with ``pending`` connected to its monitor. Returns the
    connection, or (None, last state) when the container ended or went without one (started
    and finished by another front end between two looks, or removed). ClientGone when
    ``gone()`` says the HTTP client left meanwhile."""
    daemon, containers = call.daemon, call.engine.containers
    if not registered:
        daemon.expect_start(cid, pending)
    while not pending.ready.wait(_POLL):
        if gone is not None and gone() and daemon.withdraw(cid, pending):
            raise ClientGone()
        try:
            ctr = containers.get(cid)
        except NotFound:
            if daemon.withdraw(cid, pending):
                return None, None
            continue
        first = first or ctr
        state, was = ctr.state, first.state
        ended = not state.running and state.finished_at != was.finished_at
        if (state.running or ended) and daemon.withdraw(cid, pending):
            # Started by someone else (the CLI): connect ourselves, or report its end.
            if ended:
                return None, ctr
            try:
                return containers.sessions.connect(cid, **pending.streams), ctr
            except Conflict:
                try:
                    return None, containers.get(cid)
                except NotFound:  # --rm: gone already
                    return None, ctr
    return pending.sock, None


def _frames(sock: socket.socket, call: Call | None = None) -> Any:
    """(kind, payload) for each frame the monitor sends, until it closes. With
    ``call``, ClientGone as soon as its HTTP client leaves (wait: nothing else would notice
    before the container exits)."""
    poller = None
    client = -1
    if call is not None:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        client = call.handler.connection.fileno()
        poller.register(client, select.POLLIN | select.POLLRDHUP)
    buf = bytearray()
    while True:
        if poller is not None and call is not None:
            events = dict(poller.poll())
            if client in events:
                if call.handler.client_gone():
                    raise ClientGone()
                poller.unregister(client)  # it sent something (a next request): stop asking
            if sock.fileno() not in events:
                continue
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            return
        buf += data
        yield from take_frames(buf)


def _pump_stdin(rfile: Reader, sock: socket.socket, detach: DetachMatcher | None) -> None:
    """Client -> container stdin, then its EOF (``docker run -i`` half-closes its side).
    With ``detach`` (a TTY), the detach keys end the session instead: the container and its
    stdin go on, and the client's stream ends (Docker's escape proxy)."""
    with contextlib.suppress(OSError, ValueError):
        while True:
            data = rfile.read1(65536)
            if not data:
                break
            if detach is not None:
                data, detached = detach.feed(data)
                if data:
                    sock.sendall(frame(FRAME_STDIN, data))
                if detached:
                    sock.shutdown(socket.SHUT_RDWR)  # the relay loop sees the end
                    return
                continue
            sock.sendall(frame(FRAME_STDIN, data))
        sock.sendall(frame(FRAME_STDIN_EOF))


def attach(
    call: Call,
    ctr: Container,
    *,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: str = "",
) -> None:
    """``POST /containers/{id}/attach``: hijack, then bridge until the container exits (or
    the client types the detach keys, with a TTY)."""
    from dockyard.api.http import Done

    containers = call.engine.containers
    containers.sessions.attached(ctr)
    cid = ctr.id
    tty = ctr.spec.tty
    stdin = stdin and ctr.spec.open_stdin
    # Checked before the hijack: bad keys are a 400 (Docker's "Invalid detach keys").
    detach = detach_matcher(detach_keys) if tty and stdin else None
    handler = call.handler
    pending: Pending | None = None
    if not ctr.running:
        # Registered before the client hears back: `docker run` sends its start as soon as
        # the attach is answered, and a start that finds no client waiting runs the process
        # without it (a short one's output was then lost).
        pending = Pending(stdin=stdin, stdout=stdout, stderr=stderr)
        call.daemon.expect_start(cid, pending)
    sock: socket.socket | None = None
    try:
        handler.hijack()
        conn = handler.connection
        if pending is None:
            with contextlib.suppress(Conflict):
                sock = containers.sessions.connect(cid, stdin=stdin, stdout=stdout, stderr=stderr)
        if sock is None:
            registered = pending is not None
            pending = pending or Pending(stdin=stdin, stdout=stdout, stderr=stderr)
            sock, _ = _await_start(call, cid, pending, registered=registered)
            if sock is None and pending.error:
                message = pending.error.encode() + b"\n"
                conn.sendall(message if tty else frame(FRAME_STDERR, message))
        if sock is None:
            raise Done
        if stdin:
            threading.Thread(
                target=_pump_stdin, args=(handler.rfile, sock, detach), daemon=True
            ).start()
        for kind, payload in _frames(sock):
            if kind in (FRAME_STDOUT, FRAME_STDERR):
                conn.sendall(payload if tty else frame(kind, payload))
            elif kind == FRAME_ERROR:  # the start failed: say why on the stream, as Docker
                conn.sendall(payload if tty else frame(FRAME_STDERR, payload))
                break
            elif kind == FRAME_EXIT:
                break
    except (OSError, ClientGone):
        pass  # the client went away; the container goes on
    finally:
        if pending is not None:
            call.daemon.withdraw(cid, pending)  # if no start took it
        if sock is not None:
            sock.close()
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)
    raise Done


class ExitWaiter:
    """``POST /containers/{id}/wait``: made before the reply's headers go out (``docker run``
    starts the container once it has them, so a waiter registered later could miss the exit,
    or, with ``--rm``, the container itself), then :meth:`wait` gives the exit code per
    Docker's conditions (not-running, next-exit, removed). A client that leaves ends the wait
    (ClientGone); :meth:`cancel` withdraws what was registered.

    The daemon records the exit (api/exits.py; a running container is watched from here
    on): once the exit frame comes, the waiter waits for that record rather than re-reading
    the row until it changes (``docker run --rm`` waited ~60 ms for the removal that way)."""

    def __init__(self, call: Call, name: str, condition: str) -> None:
        self.call = call
        self.condition = condition
        containers = call.engine.containers
        self.cid = containers.resolve(name)
        self.ctr = containers.get(self.cid)
        self.code: int | None = None
        self.sock: socket.socket | None = None
        self.pending: Pending | None = None
        state = self.ctr.state
        if not state.running and condition == "not-running":
            self.code = state.exit_code
        elif state.running:
            with contextlib.suppress(Conflict):
                call.daemon.exits.watch(containers.sessions, self.cid)
                self.sock = containers.sessions.connect(
                    self.cid, stdin=False, stdout=False, stderr=False
                )
        else:
            self.pending = Pending(stdin=False, stdout=False, stderr=False)
            call.daemon.expect_start(self.cid, self.pending)

    def cancel(self) -> None:
        if self.pending is not None and self.call.daemon.withdraw(self.cid, self.pending):
            self.pending = None
        for sock in (self.sock, self.pending.sock if self.pending else None):
            if sock is not None:
                sock.close()

    def wait(self) -> int:
        if self.code is not None:
            return self.code
        call, cid = self.call, self.cid
        containers = call.engine.containers
        ctr = self.ctr
        sock = self.sock
        while self.pending is not None:
            sock, latest = _await_start(
                call, cid, self.pending, ctr, call.handler.client_gone, registered=True
            )
            self.sock = sock
            ctr = latest or ctr
            if (
                sock is None
                and self.pending.exit_code is not None
                and (self.condition == "next-exit")
            ):
                # The start failed: nothing ran, so nothing exited. Docker's waiter waits
                # on for a later run (`docker run` without --rm gives up on it).
                self.pending = Pending(stdin=False, stdout=False, stderr=False)
                call.daemon.expect_start(cid, self.pending)
                continue
            break
        code = self.pending.exit_code if self.pending is not None else None
        if sock is not None:
            for kind, payload in _frames(sock, call):
                if kind == FRAME_EXIT:
                    code = int(payload or b"0")
                    call.daemon.exits.wait_recorded(cid)
                    break
        if code is None:
            try:
                ctr = containers.get(cid)
            except NotFound:
                pass
            code = ctr.state.exit_code
        if self.condition == "not-running":
            # A restart policy's next run keeps the container running (and "restarting"
            # between runs): Docker's wait returns only once it has stopped for good.
            while True:
                try:
                    ctr = containers.get(cid)
                except NotFound:
                    break
                if not ctr.running:
                    code = ctr.state.exit_code
                    break
                if call.handler.client_gone():
                    raise ClientGone()
                time.sleep(0.05)
        if self.condition == "removed":
            while True:
                try:
                    containers.get(cid)
                except NotFound:
                    break
                except DockyardError:
                    pass
                if call.handler.client_gone():
                    raise ClientGone()
                time.sleep(0.05)
        return code
