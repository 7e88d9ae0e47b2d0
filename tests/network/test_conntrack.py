"""Stale UDP conntrack entries of a published port are cleared when the container starts
(Docker does this), so a client that was sending before keeps reaching the container.

All traffic is on 127.0.0.1 and the store's own dyt* bridge (conftest); entries made here
are deleted by the code under test or at the end of each test.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dockyard.network.conntrack import IPPROTO_UDP, Conntrack, Flow, clear_udp
from tests.conftest import CLI
from tests.network.test_containers import free_port, inspect


def flows_between(sport: int, dport: int) -> list[Flow]:
    with Conntrack() as ct:
        return [
            f
            for f in ct.flows()
            if f.proto == IPPROTO_UDP and f.sport == sport and f.dport == dport
        ]


@pytest.fixture
def client() -> Iterator[socket.socket]:
    """A UDP client on 127.0.0.1; its entries are removed afterwards."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield s
    finally:
        sport = s.getsockname()[1]
        s.close()
        with Conntrack() as ct:
            for f in ct.flows():
                if f.proto == IPPROTO_UDP and f.sport == sport and f.src == "127.0.0.1":
                    ct.delete(f)


def test_clear_udp_deletes_only_the_ports_named(client: socket.socket) -> None:
    sport = client.getsockname()[1]
    p, q = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    for port in (p, q):
        client.sendto(b"x", ("127.0.0.1", port))
    assert len(flows_between(sport, p)) == 1 and len(flows_between(sport, q)) == 1
    assert clear_udp([("10.213.0.1", p)]) == 0  # another host address: not this flow
    assert clear_udp([]) == 0
    assert len(flows_between(sport, p)) == 1
    assert clear_udp([("127.0.0.1", p)]) == 1
    assert flows_between(sport, p) == [] and len(flows_between(sport, q)) == 1
    assert clear_udp([("0.0.0.0", q)]) == 1  # every address
    assert flows_between(sport, q) == []


# A UDP echo server run by the test inside the container's network namespace (busybox has
# no UDP server): it answers the first datagram and exits.
ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5353))
print("ready", flush=True)
data, peer = s.recvfrom(100)
s.sendto(b"pong " + data, peer)
"""


def test_stale_udp_flow_is_cleared_when_the_container_starts(
    ctr: CLI, client: socket.socket
) -> None:
    port = free_port(socket.SOCK_DGRAM)
    sport = client.getsockname()[1]
    # Sent before any rule exists: the kernel tracks it as a flow to the host itself.
    client.sendto(b"too early", ("127.0.0.1", port))
    (stale,) = flows_between(sport, port)
    assert stale.reply_src == "127.0.0.1"
    ctr("run", "-d", "--name", "udp", "-p", f"127.0.0.1:{port}:5353/udp", "busybox", "sleep", "300")
    assert flows_between(sport, port) == []
    pid = inspect(ctr, "udp")["State"]["Pid"]
    server = subprocess.Popen(
        ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-c", ECHO],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        # The same client socket's next datagram is a new flow, NATed to the container.
        client.settimeout(30)
        client.sendto(b"hello", ("127.0.0.1", port))
        assert client.recvfrom(100) == (b"pong hello", ("127.0.0.1", port))
        assert server.wait(timeout=30) == 0
    finally:
        server.kill()
        server.wait()
    ip = inspect(ctr, "udp")["NetworkSettings"]["IPAddress"]
    (flow,) = flows_between(sport, port)
    assert flow.reply_src == ip
