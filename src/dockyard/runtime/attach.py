"""The CLI side of the per-container monitor: start one, attach to one, signal through one.

The monitor (:mod:`dockyard.runtime.monitor`, run as a separate ``python -I -S`` program)
owns the container. Its attach socket speaks this protocol:

* the client sends one JSON line ``{"stdin": bool, "stdout": bool, "stderr": bool,
  "start": bool}``, then frames ``[type, 0, 0, 0, len (u32 big-endian)] + payload``:
  0 stdin data, 4 stdin EOF, 5 resize (``b"rows cols"``), 6 signal (``b"15"``), 7 start;
* the monitor sends Docker stdcopy frames: 1 stdout, 2 stderr (TTY output is 1), then
  3 exit (``b"137"``) and closes; 4 is an error message (a failed start) before closing.
"""

from __future__ import annotations

import _socket
import gc
import os
import select
import sys
import time

from dockyard import fastjson as json  # the C codec without json's re and enum
from dockyard.errors import (
    CommandNotExecutable,
    CommandNotFound,
    Conflict,
    DockyardError,
    Unavailable,
)
from dockyard.runtime import tty as ttyutil
from dockyard.runtime.paths import which as _which

# Not typing's, nor contextlib, socket or subprocess: every `run` loads this module (~5 ms of
# its start-up were these imports).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any, BinaryIO

__all__ = [
    "MONITOR_PATH",
    "MonitorLaunch",
    "attach",
    "connect_session",
    "launch_monitor",
    "release_starter",
    "request_start",
    "send_resize",
    "send_signal",
    "spawn_monitor",
    "take_frames",
]

# The monitor's program (it imports runtime/monitor.py, so that module's bytecode is cached).
MONITOR_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_monitor.py")

FRAME_STDIN = 0
FRAME_STDOUT = 1
FRAME_STDERR = 2
FRAME_EXIT = 3
FRAME_ERROR = 4
FRAME_STDIN_EOF = 4
FRAME_RESIZE = 5
FRAME_SIGNAL = 6
FRAME_START = 7

READY_TIMEOUT = 120.0  # runc create of a big bundle on a slow disk still fits
_PENDING_LIMIT = 256 * 1024  # stop reading our stdin while this much is unsent

# Run dir -> our end of its monitor's go pipe, held from the go until we have asked for the
# start: if this process dies in between, the monitor sees EOF and takes the created
# container down instead of waiting for a start forever.
_starters: dict[str, int] = {}


def frame(kind: int, payload: bytes = b"") -> bytes:
    """One attach frame: ``[kind, 0, 0, 0, len (big-endian u32)] + payload``."""
    return bytes((kind, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def take_frames(buf: bytearray) -> Iterator[tuple[int, bytes]]:
    """The whole frames at the head of ``buf`` (what a client read from its monitor), each
    taken out of it as it is handed out: (kind, payload). A partial frame stays for the next
    read. (The monitor reads its clients' frames itself, with a size limit.)"""
    while len(buf) >= 8:
        size = int.from_bytes(buf[4:8], "big")
        if len(buf) < 8 + size:
            return
        kind = buf[0]
        payload = bytes(buf[8 : 8 + size])
        del buf[: 8 + size]
        yield kind, payload


# --------------------------------------------------------------------------- spawn_monitor


class MonitorLaunch:
    """A monitor started early: its interpreter starts while the engine writes the bundle.

    ``go()`` lets it run ``runc create``; ``wait_ready()`` returns the container's init pid
    (or raises like :func:`spawn_monitor`); ``cancel()`` makes it exit without a container.
    """

    def __init__(self, argv: list[str], run_dir: str, go: bool) -> None:
        self.run_dir = run_dir
        self._ready_r, ready_w = os.pipe()
        self._go_w = -1
        fds = [ready_w]
        go_r = -1
        if go:
            go_r, self._go_w = os.pipe()
            argv = [*argv, "--go-fd", str(go_r)]
            fds.append(go_r)
        argv = [*argv, "--ready-fd", str(ready_w)]
        # posix_spawn (vfork and exec, safe in the daemon's threads), not subprocess: stdio on
        # /dev/null, our pipe ends passed on (dup2 onto themselves clears close-on-exec), a
        # session of its own. The monitor closes whatever else it inherited, leaves our cwd
        # and forks away (runtime/monitor.py ``_detach``), so this child exits at once.
        actions: list[tuple[Any, ...]] = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0)]
        actions += [(os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)]
        actions += [(os.POSIX_SPAWN_DUP2, fd, fd) for fd in fds]
        try:
            self._pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions, setsid=True)
        finally:
            for fd in fds:
                os.close(fd)

    def go(self) -> None:
        if self._go_w >= 0:
            os.write(self._go_w, b"g")
            release_starter(self.run_dir)  # a previous start's, if one was never let go
            _starters[os.path.abspath(self.run_dir)] = self._go_w
            self._go_w = -1

    def cancel(self) -> None:
        if self._go_w >= 0:
            os.close(self._go_w)  # EOF: the monitor leaves before creating anything
            self._go_w = -1
        self._reap()  # it forked the monitor and exited: no zombie left behind
        os.close(self._ready_r)
        self._ready_r = -1

    def _reap(self) -> None:
        if self._pid:
            try:
                os.waitpid(self._pid, 0)
            except ChildProcessError:
                pass  # reaped by someone else's wait(-1)
            self._pid = 0

    def wait_ready(self) -> int:
        self.go()
        try:
            try:
                line = _read_line(self._ready_r, READY_TIMEOUT)
            finally:
                self._reap()
        finally:
            os.close(self._ready_r)
            self._ready_r = -1
        try:
            return _ready_pid(line, self.run_dir)
        except BaseException:
            release_starter(self.run_dir)  # nothing was created: nothing to start
            raise


def release_starter(run_dir: str) -> None:
    """We asked for the start of the container of ``run_dir`` (or gave up on it): let go of
    its monitor's go pipe."""
    fd = _starters.pop(os.path.abspath(run_dir), -1)
    if fd >= 0:
        os.close(fd)


def launch_monitor(
    *,
    cid: str,
    bundle: str,
    runtime: str,
    runtime_root: str,
    run_dir: str,
    log_path: str,
    tty: bool,
    stdin: bool,
    start: bool,
    exit_command: list[str] | None,
    wait_for_go: bool = False,
    log_args: Sequence[str] = (),
) -> MonitorLaunch:
    """Start the monitor for container ``cid`` (see :class:`MonitorLaunch`). ``log_args``:
    the monitor's ``--log-*`` options (driver, rotation, attrs)."""
    binary = _which(runtime)
    if binary is None:
        raise Unavailable(f"OCI runtime {runtime!r} not found in PATH")
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    argv = [
        sys.executable,
        "-I",
        "-S",
        MONITOR_PATH,
        "--id",
        cid,
        "--bundle",
        os.path.abspath(bundle),
        "--runtime",
        binary,
        "--runtime-root",
        os.path.abspath(runtime_root),
        "--run-dir",
        os.path.abspath(run_dir),
        "--log-path",
        os.path.abspath(log_path) if log_path else "",
        *log_args,
    ]
    if tty:
        argv.append("--tty")
    if stdin:
        argv.append("--stdin")
    if start:
        argv.append("--start")
    if exit_command:
        argv += ["--exit-command", json.dumps(exit_command)]
    return MonitorLaunch(argv, run_dir, wait_for_go)


def spawn_monitor(**options: Any) -> int:
    """:func:`launch_monitor` and wait until ``runc create`` (and with ``start``, ``runc
    start``) is done; returns the container's init pid.

    The monitor detaches itself (fork + setsid), so the process we start exits at once and is
    reaped here; the monitor lives on in its own session. Raises CommandNotFound (127),
    CommandNotExecutable (126) or DockyardError (125) with the runtime's message.
    """
    return launch_monitor(**options).wait_ready()


def _ready_pid(line: str | None, run_dir: str) -> int:
    """The init pid from the monitor's ready line, or the error it reported."""
    if line is None:
        raise DockyardError(
            f"container monitor did not report within {READY_TIMEOUT:.0f}s"
            + _monitor_log_hint(run_dir)
        )
    word, _, rest = line.partition(" ")
    if word == "ok":
        try:
            return int(rest)
        except ValueError:
            raise DockyardError(f"container monitor sent a bad ready line: {line!r}")
    if word == "err":
        code_text, _, message = rest.partition(" ")
        code = int(code_text) if code_text.isdigit() else 125
        if code == 127:
            raise CommandNotFound(message)
        if code == 126:
            raise CommandNotExecutable(message)
        raise DockyardError(message or "container monitor failed")
    raise DockyardError(
        "container monitor exited before creating the container" + _monitor_log_hint(run_dir)
    )


def _read_line(fd: int, timeout: float) -> str | None:
    """One line from ``fd`` ("" at EOF without one), None on timeout."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        # poll, not select: a daemon serving many clients has descriptors above 1024
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        if not poller.poll(left * 1000):
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _monitor_log_hint(run_dir: str) -> str:
    try:
        with open(os.path.join(run_dir, "monitor.log"), encoding="utf-8") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return ""
    return f": {lines[-1]}" if lines else ""


# --------------------------------------------------------------------------- connecting


def _connect(run_dir: str) -> _socket.socket:
    """Connect to ``<run_dir>/attach.sock``; Conflict when no monitor listens there. (A
    ``_socket`` one: the ``socket`` module's enums cost ~2 ms of start-up.)"""
    path = os.path.join(run_dir, "attach.sock")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    dirfd: int | None = None
    try:
        if len(os.fsencode(path)) >= 100:  # sun_path is 108 bytes: go through the directory fd
            dirfd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY)
            path = f"/proc/self/fd/{dirfd}/attach.sock"
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        sock.close()
        raise Conflict("container is not running") from None
    except BaseException:
        sock.close()
        raise
    finally:
        if dirfd is not None:
            os.close(dirfd)
    return sock


def connect_session(
    run_dir: str, *, stdin: bool, stdout: bool, stderr: bool, handles_exit: bool = False
) -> socket.socket:
    """A connection to the monitor with the header sent, for a client that speaks the frames
    itself (the daemon bridges them to an HTTP connection). Conflict when none listens.
    ``handles_exit``: as :func:`attach`'s (the daemon's waiter records the exit)."""
    import socket

    sock = socket.socket(fileno=_connect(run_dir).detach())
    try:
        sock.sendall(_header(stdin=stdin, stdout=stdout, stderr=stderr, handles_exit=handles_exit))
    except (BrokenPipeError, ConnectionResetError):
        # The monitor closed its listener with us queued: the container has just ended. (In
        # the daemon these errors read as "the HTTP client left": a wait got no answer.)
        sock.close()
        raise Conflict("container is not running") from None
    except BaseException:
        sock.close()
        raise
    return sock


def _header(
    *, stdin: bool, stdout: bool, stderr: bool, start: bool = False, handles_exit: bool = False
) -> bytes:
    doc = {"stdin": stdin, "stdout": stdout, "stderr": stderr, "start": start}
    if handles_exit:
        doc["handles_exit"] = True
    return json.dumps(doc).encode() + b"\n"


def _writer(target: BinaryIO | int | None) -> Callable[[bytes], None]:
    if target is None:
        return lambda data: None
    if isinstance(target, int):
        fd = target
        return lambda data: ttyutil.write_all(fd, data)
    stream = target

    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()

    return write


def _fileno(target: BinaryIO | int | None) -> int | None:
    if target is None:
        return None
    if isinstance(target, int):
        return target
    try:
        return target.fileno()
    except (OSError, ValueError, AttributeError):
        return None


def _exit_code_from_file(run_dir: str) -> int | None:
    try:
        with open(os.path.join(run_dir, "exit.json"), encoding="utf-8") as f:
            return int(json.load(f)["ExitCode"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------- attach


def attach(
    run_dir: str,
    *,
    stdin: bool,
    tty: bool,
    start: bool = False,
    detach_keys: str = ttyutil.DEFAULT_DETACH_KEYS,
    stdout: BinaryIO | int | None = 1,
    stderr: BinaryIO | int | None = 2,
    stdin_fd: int = 0,
    handles_exit: bool = False,
) -> int | None:
    """Attach to the container whose monitor lives in ``run_dir``.

    ``handles_exit`` promises that we record the exit ourselves once we have the exit code,
    so the monitor can skip its exit command (one process less at the end of ``run``).

    Copies container output to ``stdout``/``stderr`` (None: do not attach that stream) and,
    with ``stdin``, our ``stdin_fd`` to the container (EOF is passed on). With ``tty``: our
    terminal is put in raw mode while attached (if ``stdin_fd`` is one), its size is sent at
    the start and on SIGWINCH, and the detach keys end the session. ``start`` asks the
    monitor to start a created container (after our size is applied, so the first output
    already sees it).

    Returns the container's exit code, or None when we detached. Raises Conflict when no
    monitor is listening (the container is not running) and DockyardError when the start
    failed or the monitor went away without an exit code.
    """
    keys = ttyutil.parse_detach_keys(detach_keys) if (tty and stdin) else b""
    sock = _connect(run_dir)
    raw: ttyutil.raw_terminal | None = None
    notifier: ttyutil.winch_notifier | None = None
    try:
        pending = bytearray(
            _header(
                stdin=stdin,
                stdout=stdout is not None,
                stderr=stderr is not None,
                handles_exit=handles_exit,
            )
        )
        winch: int | None = None
        size_fds = [fd for fd in (_fileno(stdout), stdin_fd) if fd is not None]
        if tty:
            size = ttyutil.terminal_size(*size_fds)
            if size is not None:
                pending += frame(FRAME_RESIZE, f"{size[0]} {size[1]}".encode())
            notifier = ttyutil.winch_notifier()
            winch = notifier.__enter__()
            if stdin:
                raw = ttyutil.raw_terminal(stdin_fd)
                raw.__enter__()
        if start:
            pending += frame(FRAME_START)
        return _pump(
            sock,
            pending,
            run_dir=run_dir,
            stdin_fd=stdin_fd if stdin else None,
            write_out=_writer(stdout),
            write_err=_writer(stderr),
            matcher=ttyutil.DetachMatcher(keys),
            winch=winch,
            size_fds=size_fds,
        )
    finally:
        # In the order a with-block would undo them: the terminal's mode first.
        if raw is not None:
            raw.__exit__(None, None, None)
        if notifier is not None:
            notifier.__exit__(None, None, None)
        sock.close()


def _pump(
    sock: _socket.socket,
    pending: bytearray,
    *,
    run_dir: str,
    stdin_fd: int | None,
    write_out: Callable[[bytes], None],
    write_err: Callable[[bytes], None],
    matcher: ttyutil.DetachMatcher,
    winch: int | None,
    size_fds: list[int],
) -> int | None:
    # A session may last for hours: the collector comes back on here if the CLI's entry
    # script kept it off through start-up (main.py's _SHORT commands).
    gc.enable()
    sock.setblocking(False)
    inbuf = bytearray()
    sock_fd = sock.fileno()
    while True:
        poller = select.poll()
        poller.register(sock_fd, select.POLLIN | (select.POLLOUT if pending else 0))
        if stdin_fd is not None and len(pending) < _PENDING_LIMIT:
            poller.register(stdin_fd, select.POLLIN)
        if winch is not None:
            poller.register(winch, select.POLLIN)
        for fd, ev in poller.poll():
            if fd == sock_fd:
                if ev & select.POLLOUT and pending:
                    try:
                        n = sock.send(pending)
                        del pending[:n]
                    except BlockingIOError:
                        pass
                    except OSError:
                        pending.clear()  # the monitor is gone; its EOF tells us below
                if not ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    continue
                try:
                    data = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    code = _exit_code_from_file(run_dir)
                    if code is None:
                        raise DockyardError("lost the connection to the container monitor")
                    return code
                inbuf += data
                for kind, payload in take_frames(inbuf):
                    if kind == FRAME_STDOUT:
                        write_out(payload)
                    elif kind == FRAME_STDERR:
                        write_err(payload)
                    elif kind == FRAME_EXIT:
                        return int(payload or b"0")
                    elif kind == FRAME_ERROR:
                        raise DockyardError(payload.decode("utf-8", "replace"))
            elif fd == winch:
                ttyutil.drain(winch)
                winsize = ttyutil.terminal_size(*size_fds)
                if winsize is not None:
                    pending += frame(FRAME_RESIZE, f"{winsize[0]} {winsize[1]}".encode())
            elif fd == stdin_fd:
                try:
                    data = os.read(stdin_fd, 32768)
                except OSError:
                    data = b""
                if not data:
                    pending += frame(FRAME_STDIN_EOF)
                    stdin_fd = None
                    continue
                data, detached = matcher.feed(data)
                if data:
                    pending += frame(FRAME_STDIN, data)
                if detached:
                    _flush(sock, pending)
                    return None


def _flush(sock: _socket.socket, pending: bytearray, timeout: float = 1.0) -> None:
    """Best effort: send what is queued before we go (the bytes typed before the detach)."""
    try:
        sock.settimeout(timeout)
        sock.sendall(pending)
    except OSError:
        pass


# --------------------------------------------------------------------------- signals


def _one_shot(run_dir: str, payload: bytes) -> None:
    """Connect, send ``payload`` after a header that attaches no stream, and wait until the
    monitor has handled it (it closes the connection after our EOF)."""
    sock = _connect(run_dir)
    try:
        sock.settimeout(30.0)
        sock.sendall(_header(stdin=False, stdout=False, stderr=False) + payload)
        sock.shutdown(_socket.SHUT_WR)
        inbuf = bytearray()
        try:
            while chunk := sock.recv(4096):
                inbuf += chunk
        except OSError:
            pass
    finally:
        sock.close()
    for kind, payload in take_frames(inbuf):
        if kind == FRAME_ERROR:
            raise DockyardError(payload.decode("utf-8", "replace"))


def send_signal(run_dir: str, sig: int) -> None:
    """Have the monitor send ``sig`` to the container's init process (kill(2), so it reaches
    the process even when the runtime's state is unavailable). Returns once the monitor has
    read the request. Conflict when the container is not running."""
    _one_shot(run_dir, frame(FRAME_SIGNAL, str(int(sig)).encode()))


def send_resize(run_dir: str, rows: int, cols: int) -> None:
    """Set the size of a TTY container's terminal. Conflict when it is not running."""
    _one_shot(run_dir, frame(FRAME_RESIZE, f"{int(rows)} {int(cols)}".encode()))


def request_start(run_dir: str) -> None:
    """Ask the monitor of a created container (spawned with ``start=False``) to start it,
    without attaching. Returns once ``runc start`` is done; DockyardError if it failed,
    Conflict when there is no monitor."""
    try:
        _one_shot(run_dir, frame(FRAME_START))
    finally:
        release_starter(run_dir)
