"""A published host port that another program used a moment ago: its closed connections
wait in TIME_WAIT, and the port is publishable at once (the monitor binds it with
SO_REUSEADDR, as Docker's proxy does), while it stays the container's alone.

Everything listens on 127.0.0.1; the ``ctr`` fixture removes containers and bridges.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI
from tests.helpers import needs_docker
from tests.network.test_containers import get, httpd, www  # noqa: F401 - a fixture
from tests.runtime.test_seccomp_profile import docker


def _in_time_wait(port: int) -> bool:
    """Whether a TCP socket of 127.0.0.1:``port`` is in TIME_WAIT (state 06)."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return any(r[1] == f"0100007F:{port:04X}" and r[3] == "06" for r in rows)


def closed_by_server() -> int:
    """A port of 127.0.0.1 whose server closed its last connection first and went away:
    only TIME_WAIT holds it. (The server sets SO_REUSEADDR, as servers do; its accepted
    connections inherit it.)"""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = int(server.getsockname()[1])
    with socket.create_connection(("127.0.0.1", port)) as client:
        conn, _ = server.accept()
        conn.close()  # the active close: this side waits in TIME_WAIT
        assert client.recv(1) == b""
    server.close()
    assert _in_time_wait(port)
    with socket.socket() as plain, pytest.raises(OSError) as e:
        plain.bind(("127.0.0.1", port))  # what the monitor's bind met before
    assert "Address already in use" in str(e.value)
    return port


def test_a_port_in_time_wait_is_published_at_once(ctr: CLI, www: Path) -> None:  # noqa: F811
    port = closed_by_server()
    httpd(ctr, www, "--name", "web", "-p", f"127.0.0.1:{port}:80")
    assert get(f"http://127.0.0.1:{port}/") == b"hello from the container\n"
    # Still the container's alone: neither another container nor a program can take it.
    r = ctr("run", "--rm", "-p", f"127.0.0.1:{port}:80", "busybox", "true", check=False)
    assert r.returncode == 125 and "address already in use" in r.stderr
    for reuse in (0, 1):
        with socket.socket() as other, pytest.raises(OSError):
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, reuse)
            other.bind(("127.0.0.1", port))


@needs_docker
def test_docker_publishes_a_port_in_time_wait_too() -> None:
    port = closed_by_server()
    name = "dockyard-test-time-wait"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    try:
        r = docker(
            "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "60"
        )
        assert r.returncode == 0, r.stderr
    finally:
        docker("rm", "-f", name)
