"""Attach and wait: an HTTP client bridged to the container's monitor (runtime/attach.py).

The monitor already speaks Docker's stdcopy frames (1 stdout, 2 stderr), so for a container
without a TTY its frames go to the client as they are; with a TTY only the payload goes (the
raw stream Docker sends then). What the client writes becomes stdin frames, its EOF a stdin
EOF frame. Every monitor client gets the exit frame (3): ``wait`` is a client with no streams.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, BinaryIO

from dockyard.api.daemon import Pending
from dockyard.engine.containers.sessions import (
    FRAME_ERROR,
    FRAME_EXIT,
    FRAME_STDERR,
    FRAME_STDIN,
    FRAME_STDIN_EOF,
    FRAME_STDOUT,
    frame,
)
from dockyard.errors import Conflict, DockyardError, NotFound

if TYPE_CHECKING:
    from dockyard.api.http import Call
    from dockyard.model.container import Container

_POLL = 0.25  # how often a client waiting for a start looks at the container itself


def _await_start(
    call: Call, cid: str, pending: Pending, first: Container | None = None
) -> tuple[socket.socket | None, Container | None]:
    """Wait until the container runs with ``pending`` (registered with the daemon by the
    caller) connected to its monitor. Returns the connection, or (None, last state) when the
    container ended or went without one (started and finished by another front end between
    two looks, or removed)."""
    daemon, containers = call.daemon, call.engine.containers
    while not pending.ready.wait(_POLL):
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
                except NotFound:
                    return None, ctr
    return pending.sock, None


def _frames(sock: socket.socket) -> Any:
    """(kind, payload, raw bytes) for each frame the monitor sends, until it closes."""
    buf = bytearray()
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            return
        buf += data
        while len(buf) >= 8:
            size = int.from_bytes(buf[4:8], "big")
            if len(buf) < 8 + size:
                break
            raw = bytes(buf[: 8 + size])
            del buf[: 8 + size]
            yield raw[0], raw[8:], raw


def _pump_stdin(rfile: BinaryIO, sock: socket.socket) -> None:
    """Client -> container stdin, then its EOF (``docker run -i`` closes its write side)."""
    with contextlib.suppress(OSError, ValueError):
        while True:
            data = rfile.read1(65536)  # type: ignore[attr-defined]
            if not data:
                break
            sock.sendall(frame(FRAME_STDIN, data))
        sock.sendall(frame(FRAME_STDIN_EOF))


def attach(call: Call, ctr: Container, *, stdin: bool, stdout: bool, stderr: bool) -> None:
    """``POST /containers/{id}/attach``: hijack, then bridge until the container exits."""
    from dockyard.api.http import Done

    containers = call.engine.containers
    cid = ctr.id
    tty = ctr.spec.tty
    stdin = stdin and ctr.spec.open_stdin
    handler = call.handler
    sock: socket.socket | None = None
    pending: Pending | None = None
    # Connected, or registered for the next start, before the 101 goes out: `docker run`
    # starts the container as soon as its attach is upgraded, and must see the first byte.
    if ctr.running:
        with contextlib.suppress(Conflict):
            sock = containers.sessions.connect(cid, stdin=stdin, stdout=stdout, stderr=stderr)
    if sock is None:
        pending = Pending(stdin=stdin, stdout=stdout, stderr=stderr)
        call.daemon.expect_start(cid, pending)
    try:
        handler.hijack()
    except BaseException:
        if pending is not None:
            call.daemon.withdraw(cid, pending)
        if sock is not None:
            sock.close()
        raise
    conn = handler.connection
    try:
        if pending is not None:
            sock, _ = _await_start(call, cid, pending)
            if sock is None and pending.error:
                message = pending.error.encode() + b"\n"
                conn.sendall(message if tty else frame(FRAME_STDERR, message))
        if sock is None:
            raise Done
        if stdin:
            threading.Thread(target=_pump_stdin, args=(handler.rfile, sock), daemon=True).start()
        for kind, payload, raw in _frames(sock):
            if kind in (FRAME_STDOUT, FRAME_STDERR):
                conn.sendall(payload if tty else raw)
            elif kind == FRAME_ERROR:  # the start failed: say why on the stream, as Docker
                conn.sendall(payload if tty else frame(FRAME_STDERR, payload))
                break
            elif kind == FRAME_EXIT:
                break
    except OSError:
        pass  # the client went away; the container goes on
    finally:
        if sock is not None:
            sock.close()
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)
    raise Done


class ExitWaiter:
    """``POST /containers/{id}/wait``, in two steps: the waiter is connected to the monitor, or
    registered for the next start, before the reply's headers go out (``docker run`` starts
    the container as soon as it has them, so a waiter registered later could miss a short
    run's exit); then :meth:`result` waits, per Docker's conditions (not-running, next-exit,
    removed)."""

    def __init__(self, call: Call, cid: str, condition: str) -> None:
        self.call, self.cid, self.condition = call, cid, condition
        containers = call.engine.containers
        self.ctr = containers.get(cid)
        self.sock: socket.socket | None = None
        self.pending: Pending | None = None
        if not self.ctr.running and condition == "not-running":
            return
        if self.ctr.running:
            with contextlib.suppress(Conflict):
                self.sock = containers.sessions.connect(
                    cid, stdin=False, stdout=False, stderr=False
                )
        else:
            self.pending = Pending(stdin=False, stdout=False, stderr=False)
            call.daemon.expect_start(cid, self.pending)

    def result(self) -> int:
        containers = self.call.engine.containers
        ctr, cid = self.ctr, self.cid
        if not ctr.running and self.condition == "not-running":
            return ctr.state.exit_code
        sock = self.sock
        if self.pending is not None:
            sock, latest = _await_start(self.call, cid, self.pending, ctr)
            ctr = latest or ctr
        code = None
        if sock is not None:
            with sock:
                for kind, payload, _ in _frames(sock):
                    if kind == FRAME_EXIT:
                        code = int(payload or b"0")
                        break
        if code is None:
            try:
                ctr = containers.get(cid)
            except NotFound:
                pass
            code = ctr.state.exit_code
        if self.condition == "removed":
            while True:
                try:
                    containers.get(cid)
                except NotFound:
                    break
                except DockyardError:
                    pass
                time.sleep(0.05)
        return code
