"""Routes: exec instances (create, start, inspect, resize).

Docker splits ``docker exec`` in two: create an instance (what to run), then start it on a
hijacked connection. The process is ``runc exec`` as the daemon's child, as the CLI's
``run_exec`` does: its stdout and stderr on pipes become stdcopy frames, or with a TTY it
gets a pty of ours whose master is the raw stream (runc sizes the container's terminal from
it on SIGWINCH).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import selectors
import signal
import socket
import subprocess
import termios
import threading
from typing import TYPE_CHECKING, Any

from dockyard.api.containers import STDERR, STDOUT, stdcopy
from dockyard.api.http import Call, Done, Reply, Router
from dockyard.engine.containers.sessions import detach_matcher
from dockyard.errors import Conflict, InvalidArgument, NotFound

if TYPE_CHECKING:
    from dockyard.engine.containers.execs import Execs, ExecSpec
    from dockyard.engine.containers.sessions import DetachMatcher
    from dockyard.httpd import Reader

routes = Router()
_KEEP_FINISHED = 256  # finished instances kept for inspection (Docker keeps them per container)


class ExecInstance:
    def __init__(self, exec_id: str, container_id: str, body: dict[str, Any]) -> None:
        # Go decodes struct fields case-insensitively (docker-py sends "detachKeys").
        body = {**{k[:1].upper() + k[1:]: v for k, v in body.items()}, **body}
        self.id = exec_id
        self.container_id = container_id
        self.cmd = _cmd(body.get("Cmd"))
        self.tty = bool(body.get("Tty"))
        self.stdin = bool(body.get("AttachStdin"))
        self.stdout = bool(body.get("AttachStdout"))
        self.stderr = bool(body.get("AttachStderr"))
        self.env = [str(e) for e in body.get("Env") or []]
        self.user = str(body.get("User") or "")
        self.workdir = str(body.get("WorkingDir") or "")
        self.privileged = bool(body.get("Privileged"))
        self.detach_keys = str(body.get("DetachKeys") or "")
        self.detach_bytes = detach_matcher(self.detach_keys).keys  # bad keys: a 400 here
        self.started = False
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        self.master = -1
        self.size: tuple[int, int] | None = None
        self.lock = threading.Lock()

    def shape(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd[0],
                "arguments": self.cmd[1:],
                "privileged": self.privileged,
                "user": self.user,
            },
            "OpenStdin": self.stdin,
            "OpenStderr": self.stderr,
            "OpenStdout": self.stdout,
            "CanRemove": False,
            "ContainerID": self.container_id,
            # Docker keeps the parsed bytes, which Go's JSON shows in base64 ("GQ==" for
            # ctrl-y); "" when none were asked for.
            "DetachKeys": base64.b64encode(self.detach_bytes).decode() if self.detach_keys else "",
            "Pid": self.pid,
        }

    def apply_size(self) -> None:
        with self.lock:
            if self.master < 0 or self.size is None:
                return
            rows, cols = self.size
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, _winsize(rows, cols))
            if self.pid:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGWINCH)  # runc copies the size inside


def _winsize(rows: int, cols: int) -> bytes:
    return b"".join(v.to_bytes(2, "little") for v in (rows, cols, 0, 0))


def _cmd(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidArgument("No exec command specified")
    return list(value)


def _instance(call: Call) -> ExecInstance:
    inst = call.daemon.execs.get(call.params["id"])
    if inst is None:
        raise NotFound(f"No such exec instance: {call.params['id']}")
    return inst


@routes.route("POST", "/containers/{id}/exec")
def exec_create(call: Call) -> Reply:
    body = call.json(required=True)
    ctr = call.engine.containers.active(call.params["id"])
    inst = ExecInstance(os.urandom(32).hex(), ctr.id, body)
    execs = call.daemon.execs
    with call.daemon.lock:
        finished = [k for k, v in execs.items() if v.started and not v.running]
        for k in finished[: max(0, len(finished) - _KEEP_FINISHED)]:
            del execs[k]
        execs[inst.id] = inst
    return Reply(201, {"Id": inst.id})


@routes.route("GET", "/exec/{id}/json")
def exec_inspect(call: Call) -> dict[str, Any]:
    return _instance(call).shape()


@routes.route("POST", "/exec/{id}/resize")
def exec_resize(call: Call) -> Reply:
    inst = _instance(call)
    inst.size = (call.int_arg("h", 0) or 0, call.int_arg("w", 0) or 0)
    inst.apply_size()
    return Reply(201)


@routes.route("POST", "/exec/{id}/start")
def exec_start(call: Call) -> Reply:
    inst = _instance(call)
    body = call.json()
    with call.daemon.lock:
        if inst.started:
            raise Conflict(f"Error: Exec command {inst.id} is already running")
        inst.started = True
    execs = call.engine.containers.execs
    try:
        ex = execs.spec(
            inst.container_id,
            inst.cmd,
            tty=inst.tty,
            env=inst.env,
            user=inst.user,
            workdir=inst.workdir,
            privileged=inst.privileged,
        )
    except BaseException:
        inst.started = False
        raise
    if body.get("Detach"):
        execs.start_detached(ex)
        return Reply(200)
    # Docker frames the stream by the Tty sent here, not the one the instance was created
    # with (which chose whether the process gets a terminal): docker-py's exec_start() sends
    # Tty=false for a TTY exec and reads stdcopy frames of the terminal's output.
    raw = bool(body.get("Tty"))
    call.handler.hijack()
    try:
        _run_attached(call, inst, execs, ex, raw=raw)
    finally:
        with contextlib.suppress(OSError):
            call.handler.connection.shutdown(socket.SHUT_RDWR)
    raise Done


def _feed(
    rfile: Reader,
    write: Any,
    close: Any,
    detach: DetachMatcher | None = None,
    on_detach: Any = None,
) -> None:
    """Client -> the process's stdin, then ``close()`` at the client's half-close. With
    ``detach`` (a TTY), the detach keys end the session: the client's stream closes, the
    process goes on (Docker's escape proxy)."""
    with contextlib.suppress(OSError, ValueError):
        while data := rfile.read1(65536):
            if detach is not None:
                data, detached = detach.feed(data)
                if data:
                    write(data)
                if detached:
                    on_detach()
                    return
                continue
            write(data)
    with contextlib.suppress(OSError):
        close()


def _run_attached(call: Call, inst: ExecInstance, execs: Execs, ex: ExecSpec, *, raw: bool) -> None:
    conn = call.handler.connection
    rfile = call.handler.rfile

    def send(kind: int, data: bytes) -> None:
        with contextlib.suppress(OSError):  # the client left: the process still runs out
            conn.sendall(data if raw else stdcopy(kind, data))

    def hang_up() -> None:  # detached: the client's stream ends, the process goes on
        # Docker 20.10 ends the stream with the error its escape proxy returned.
        send(STDOUT, b"exec attach failed: error on attach stdin: read escape sequence\r\n")
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_RDWR)

    if inst.tty:
        master, slave = os.openpty()
        try:
            p = execs.spawn(ex, stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        with inst.lock:
            inst.master, inst.pid, inst.running = master, p.pid, True
        inst.apply_size()
        if inst.stdin:

            def write_master(data: bytes) -> None:
                os.write(master, data)

            threading.Thread(
                target=_feed,
                args=(rfile, write_master, lambda: None, detach_matcher(inst.detach_keys), hang_up),
                daemon=True,
            ).start()
        try:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: runc and the process closed the terminal
                    break
                if not data:
                    break
                send(STDOUT, data)
        finally:
            with inst.lock:
                inst.master = -1
            os.close(master)
    else:
        p = execs.spawn(
            ex,
            stdin=subprocess.PIPE if inst.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        inst.pid, inst.running = p.pid, True
        if p.stdin is not None:
            pipe = p.stdin

            def write_pipe(data: bytes) -> None:
                pipe.write(data)
                pipe.flush()

            threading.Thread(
                target=_feed, args=(rfile, write_pipe, pipe.close), daemon=True
            ).start()
        streams = {p.stdout: STDOUT, p.stderr: STDERR}
        sel = selectors.DefaultSelector()
        for stream in streams:
            assert stream is not None
            sel.register(stream, selectors.EVENT_READ)
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                kind = streams[key.fileobj]
                if (inst.stdout, inst.stderr)[kind - 1]:
                    send(kind, data)
        sel.close()
    inst.exit_code, inst.running = p.wait(), False
