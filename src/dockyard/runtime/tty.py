"""Terminal helpers for attach: raw mode, window sizes, detach keys, the SIGWINCH pipe.

Imported by every ``run``: only what a session without a terminal needs is loaded at the top
(termios, struct, signal and threading when a terminal is in play)."""

from __future__ import annotations

import os
import select

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False  # not typing's: `run` loads this module
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DEFAULT_DETACH_KEYS",
    "DetachMatcher",
    "get_winsize",
    "parse_detach_keys",
    "raw_terminal",
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
    import termios

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


class raw_terminal:  # noqa: N801 - used as a function: ``with raw_terminal(fd):``
    """Put terminal ``fd`` in raw mode for the block and restore its settings on any exit.
    A no-op when ``fd`` is not a terminal."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.old: list[Any] | None = None

    def __enter__(self) -> None:
        import termios

        try:
            self.old = termios.tcgetattr(self.fd)
        except (termios.error, OSError):
            return
        termios.tcsetattr(self.fd, termios.TCSANOW, _make_raw(self.old))

    def __exit__(self, *exc: object) -> None:
        import termios

        if self.old is not None:
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.old)
            except (termios.error, OSError):
                pass


def get_winsize(fd: int) -> tuple[int, int]:
    """``(rows, cols)`` of terminal ``fd``; raises OSError when it is not a terminal."""
    import fcntl
    import struct
    import termios

    buf = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    rows, cols, _, _ = struct.unpack("HHHH", buf)
    return rows, cols


def set_winsize(fd: int, rows: int, cols: int) -> None:
    """TIOCSWINSZ: the kernel tells the terminal's foreground process group with SIGWINCH."""
    import fcntl
    import struct
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class winch_notifier:  # noqa: N801 - used as a function: ``with winch_notifier() as fd:``
    """A pipe fd that becomes readable on SIGWINCH (None when we cannot install a handler, e.g.
    outside the main thread). The previous handler is restored afterwards."""

    def __init__(self) -> None:
        self.pipe: tuple[int, int] | None = None
        self.old: Any = None

    def __enter__(self) -> int | None:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return None
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)

        def handler(signum: int, frame: object) -> None:
            try:
                os.write(w, b"\0")
            except OSError:
                pass

        try:
            self.old = signal.signal(signal.SIGWINCH, handler)
        except (ValueError, OSError):
            os.close(r)
            os.close(w)
            return None
        self.pipe = (r, w)
        return r

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.pipe is not None:
            signal.signal(signal.SIGWINCH, self.old)
            for fd in self.pipe:
                os.close(fd)
            self.pipe = None


def drain(fd: int) -> None:
    """Read a non-blocking notification pipe empty."""
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
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
