"""Terminal helpers for attach and ``exec -it``: raw mode, window sizes, detach keys, receiving
a pty master over a console socket, and copying between a pty master and our stdio."""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import select
import signal
import socket
import struct
import termios
import threading
from collections.abc import Iterator
from typing import Any

from dockyard.errors import DockyardError, InvalidArgument

__all__ = [
    "DEFAULT_DETACH_KEYS",
    "DetachMatcher",
    "get_winsize",
    "parse_detach_keys",
    "proxy_pty",
    "raw_terminal",
    "recv_fd",
    "set_winsize",
    "winch_notifier",
]

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

_CTRL_SPECIAL = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(spec: str) -> bytes:
    """Docker's detach-keys syntax -> the byte sequence: ``"ctrl-p,ctrl-q"`` -> ``b"\\x10\\x11"``.

    Keys are separated by commas; each is one character or ``ctrl-<x>`` with ``x`` in a-z, @,
    [, \\, ], ^ or _. An empty string disables detaching (returns ``b""``).
    """
    if spec == "":
        return b""
    out = bytearray()
    for key in spec.split(","):
        low = key.lower()
        if len(key) == 1:
            code = ord(key)
            if code > 0x7F:
                raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
            out.append(code)
        elif low.startswith("ctrl-") and len(key) == 6:
            c = low[5]
            if "a" <= c <= "z":
                out.append(ord(c) - ord("a") + 1)
            elif c in _CTRL_SPECIAL:
                out.append(_CTRL_SPECIAL[c])
            else:
                raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
        else:
            raise InvalidArgument(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachMatcher:
    """Watches an input stream for the detach sequence, like Docker's escape proxy: bytes that
    could start the sequence are held back; if the sequence breaks they are passed on."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.pos = 0

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """``(bytes to pass on, detached)``. After a detach the rest of ``data`` is dropped."""
        keys = self.keys
        if not keys or (self.pos == 0 and keys[0] not in data):
            return data, False
        out = bytearray()
        for b in data:
            if b == keys[self.pos]:
                self.pos += 1
                if self.pos == len(keys):
                    self.pos = 0
                    return bytes(out), True
                continue
            out += keys[: self.pos]
            self.pos = 0
            if b == keys[0]:
                self.pos = 1
                if len(keys) == 1:
                    return bytes(out), True
            else:
                out.append(b)
        return bytes(out), False


def _make_raw(mode: list[Any]) -> list[Any]:
    """cfmakeraw(3) on a ``termios.tcgetattr`` list (what Docker's MakeRaw does)."""
    new = list(mode)
    iflag, oflag, cflag, lflag = (int(x) for x in new[:4])
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB)
    cflag |= termios.CS8
    cc = list(new[6])
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    new[0:4] = [iflag, oflag, cflag, lflag]
    new[6] = cc
    return new


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put terminal ``fd`` in raw mode for the block and restore its settings on any exit.
    A no-op when ``fd`` is not a terminal."""
    try:
        old = termios.tcgetattr(fd)
    except (termios.error, OSError):
        yield
        return
    termios.tcsetattr(fd, termios.TCSANOW, _make_raw(old))
    try:
        yield
    finally:
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(fd, termios.TCSADRAIN, old)


def get_winsize(fd: int) -> tuple[int, int]:
    """``(rows, cols)`` of terminal ``fd``; raises OSError when it is not a terminal."""
    buf = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    rows, cols, _, _ = struct.unpack("HHHH", buf)
    return rows, cols


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ: the kernel tells the terminal's foreground process group with SIGWINCH."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def recv_fd(sock: socket.socket) -> int:
    """Receive one file descriptor sent with SCM_RIGHTS (what runc sends on a console socket:
    the pty master, with the terminal's name as the message).

    ``sock`` is a connected socket, or a listening one: then one connection is accepted first.
    Extra descriptors are closed. Raises DockyardError if none arrives."""
    conn = sock
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        conn, _ = sock.accept()
    try:
        fds = array.array("i")
        _, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4 * fds.itemsize))
    finally:
        if conn is not sock:
            conn.close()
    received: list[int] = []
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            received.extend(fds)
    if not received:
        raise DockyardError("the OCI runtime sent no terminal on the console socket")
    for extra in received[1:]:
        os.close(extra)
    os.set_inheritable(received[0], False)
    return received[0]


@contextlib.contextmanager
def winch_notifier() -> Iterator[int | None]:
    """A pipe fd that becomes readable on SIGWINCH (None when we cannot install a handler, e.g.
    outside the main thread). The previous handler is restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)

    def handler(signum: int, frame: object) -> None:
        with contextlib.suppress(OSError):
            os.write(w, b"\0")

    try:
        old = signal.signal(signal.SIGWINCH, handler)
    except (ValueError, OSError):
        os.close(r)
        os.close(w)
        yield None
        return
    try:
        yield r
    finally:
        signal.signal(signal.SIGWINCH, old)
        os.close(r)
        os.close(w)


def drain(fd: int) -> None:
    """Read a non-blocking notification pipe empty."""
    with contextlib.suppress(BlockingIOError):
        while os.read(fd, 512):
            pass


def terminal_size(*fds: int) -> tuple[int, int] | None:
    """The size of the first of ``fds`` that is a terminal."""
    for fd in fds:
        try:
            return get_winsize(fd)
        except OSError:
            continue
    return None


def write_all(fd: int, data: bytes) -> None:
    """Write everything to ``fd``, waiting for it if it is non-blocking."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def proxy_pty(
    master_fd: int, stdin_fd: int, stdout_fd: int, detach_keys: bytes | str = DEFAULT_DETACH_KEYS
) -> bool:
    """Copy between a pty master (from ``runc exec --tty --console-socket``) and our stdio
    until the terminal's last user closes it (returns False) or the detach keys are typed
    (returns True). A negative ``stdin_fd`` means no input.

    Our terminal's size is copied to the pty at the start and on SIGWINCH. Put ``stdin_fd``
    in raw mode around the call (:func:`raw_terminal`). Stdin EOF just stops reading stdin.
    """
    keys = parse_detach_keys(detach_keys) if isinstance(detach_keys, str) else detach_keys
    matcher = DetachMatcher(keys)
    pending = bytearray()  # for the pty's input side
    reading_stdin = stdin_fd >= 0
    blocking = os.get_blocking(master_fd)
    os.set_blocking(master_fd, False)

    def copy_size() -> None:
        size = terminal_size(*(fd for fd in (stdout_fd, stdin_fd) if fd >= 0))
        if size is not None:
            with contextlib.suppress(OSError):
                set_winsize(master_fd, *size)

    try:
        with winch_notifier() as winch:
            copy_size()
            while True:
                poller = select.poll()
                poller.register(master_fd, select.POLLIN | (select.POLLOUT if pending else 0))
                if reading_stdin and len(pending) < 65536:
                    poller.register(stdin_fd, select.POLLIN)
                if winch is not None:
                    poller.register(winch, select.POLLIN)
                for fd, ev in poller.poll():
                    if fd == winch:
                        drain(winch)
                        copy_size()
                    elif fd == master_fd:
                        if ev & select.POLLOUT and pending:
                            try:
                                n = os.write(master_fd, pending)
                                del pending[:n]
                            except BlockingIOError:
                                pass
                            except OSError:
                                pending.clear()
                        if ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                            try:
                                data = os.read(master_fd, 65536)
                            except BlockingIOError:
                                continue
                            except OSError as exc:
                                if exc.errno != errno.EIO:
                                    raise
                                data = b""
                            if not data:
                                return False
                            write_all(stdout_fd, data)
                    elif fd == stdin_fd:
                        data = os.read(stdin_fd, 32768)
                        if not data:
                            reading_stdin = False
                            continue
                        data, detached = matcher.feed(data)
                        pending += data
                        if detached:
                            with contextlib.suppress(OSError):
                                os.write(master_fd, pending)
                            return True
    finally:
        with contextlib.suppress(OSError):
            os.set_blocking(master_fd, blocking)
