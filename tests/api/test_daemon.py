"""The daemon process: its socket, one daemon per socket, stale sockets, clean shutdown."""

from __future__ import annotations

import signal
import socket
import stat
import subprocess

from tests.api.conftest import start_daemon, stop_daemon
from tests.conftest import BIN, CLI


def test_socket_is_0660_and_goes_with_the_daemon(dy: CLI) -> None:
    proc = start_daemon(dy)
    try:
        path = dy.run_root / "dockyard.sock"
        st = path.stat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
    finally:
        code = stop_daemon(proc)
    assert code == 0
    assert not path.exists()


def test_sigint_also_stops_it_cleanly(dy: CLI) -> None:
    proc = start_daemon(dy)
    proc.send_signal(signal.SIGINT)
    assert stop_daemon(proc) == 0
    assert not (dy.run_root / "dockyard.sock").exists()


def test_second_daemon_on_the_same_socket_is_refused(dy: CLI) -> None:
    proc = start_daemon(dy)
    try:
        second = subprocess.run(
            [str(BIN), "--root", str(dy.root), "--run-root", str(dy.run_root), "daemon"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "another daemon is already serving" in second.stderr
        # The first one still serves.
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(dy.run_root / "dockyard.sock"))
    finally:
        stop_daemon(proc)


def test_stale_socket_is_replaced(dy: CLI) -> None:
    dy.run_root.mkdir(parents=True)
    path = dy.run_root / "dockyard.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # bound, never listening, then closed: what a killed daemon leaves
    proc = start_daemon(dy)
    stop_daemon(proc)
    assert not path.exists()


def test_host_flag_chooses_the_socket(dy: CLI) -> None:
    path = dy.root.parent / "elsewhere.sock"
    proc = start_daemon(dy, "-H", f"unix://{path}")
    try:
        assert path.exists()
        assert not (dy.run_root / "dockyard.sock").exists()
    finally:
        stop_daemon(proc)
    assert not path.exists()


def test_a_non_unix_host_is_refused(dy: CLI) -> None:
    r = dy("daemon", "-H", "tcp://127.0.0.1:2375", check=False)
    assert r.returncode == 125
    assert "only unix:// sockets are supported" in r.stderr
