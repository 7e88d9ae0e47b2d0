"""Interactive containers on a real pseudo-terminal: -it, Ctrl-C, resize, detach keys."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time

from tests.conftest import BIN, CLI


class Terminal:
    """Runs the CLI with a pty as its controlling terminal, like a user's shell would."""

    def __init__(self, cli: CLI, *args: str, rows: int = 30, cols: int = 100):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            [str(BIN), "--root", str(cli.root), "--run-root", str(cli.run_root), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.buf = b""

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, needle: bytes, timeout: float = 20) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; got {self.buf[-500:]!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {needle!r}; got {self.buf[-500:]!r}")
                self.buf += chunk
        out, _, self.buf = self.buf.partition(needle)
        return out + needle

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.killpg(self.proc.pid, 28)  # SIGWINCH, as the terminal would send

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            os.close(self.master)


def test_run_it_shell(ctr: CLI) -> None:
    t = Terminal(ctr, "run", "-it", "--name", "tty", "busybox", "sh", rows=33, cols=111)
    try:
        t.expect(b"# ")
        t.send(b"tty; stty size\n")
        out = t.expect(b"# ")
        assert b"/dev/pts/" in out and b"33 111" in out
        t.resize(40, 120)
        time.sleep(0.3)
        t.send(b"stty size\n")
        t.expect(b"40 120")  # the shell may redraw its prompt on SIGWINCH first
        t.expect(b"# ")
        t.send(b"sleep 100\n")
        time.sleep(0.5)
        t.send(b"\x03")  # Ctrl-C reaches the container's foreground process
        t.expect(b"# ", timeout=10)
        t.send(b"exit 5\n")
        assert t.close() == 5
    finally:
        if t.proc.poll() is None:
            t.proc.kill()


def test_detach_keys_and_attach(ctr: CLI) -> None:
    t = Terminal(ctr, "run", "-it", "--name", "det", "busybox", "sh")
    try:
        t.expect(b"# ")
        t.send(b"\x10\x11")  # ctrl-p ctrl-q
        assert t.close() == 0
    finally:
        if t.proc.poll() is None:
            t.proc.kill()
    assert "Up" in ctr("ps", "--filter", "name=det").stdout
    t = Terminal(ctr, "attach", "det")
    try:
        t.send(b"echo back-again\n")
        t.expect(b"back-again\r\n")
        t.send(b"exit 2\n")
        assert t.close() == 2
    finally:
        if t.proc.poll() is None:
            t.proc.kill()


def test_exec_it(ctr: CLI) -> None:
    ctr("run", "-d", "--name", "ex", "busybox", "sleep", "1000")
    t = Terminal(ctr, "exec", "-it", "ex", "sh", rows=20, cols=70)
    try:
        t.expect(b"# ")
        t.send(b"stty size; echo $((6*7))\n")
        out = t.expect(b"# ")
        assert b"20 70" in out and b"42" in out
        t.send(b"exit 3\n")
        assert t.close() == 3
    finally:
        if t.proc.poll() is None:
            t.proc.kill()


def test_start_attach_interactive(ctr: CLI) -> None:
    ctr("create", "-i", "--name", "cat", "busybox", "cat")
    r = subprocess.run(
        [
            str(BIN),
            "--root",
            str(ctr.root),
            "--run-root",
            str(ctr.run_root),
            "start",
            "-a",
            "-i",
            "cat",
        ],
        input=b"hello through stdin\n",
        capture_output=True,
        timeout=30,
    )
    assert r.returncode == 0 and r.stdout == b"hello through stdin\n"
