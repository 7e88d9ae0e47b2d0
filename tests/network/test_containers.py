"""Containers on bridge networks, through the real CLI: addresses, routes, published ports,
names, connect/disconnect, clean-up after death, and the bad inputs of the issue.

Traffic goes only to 127.0.0.1 and to the bridges and namespaces these tests create. Bridges
are named dyt* with subnets from 10.213.0.0/16 (conftest); the ``ctr`` fixture force-removes
the containers and deletes the store's bridges and iptables rules, also when a test fails.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from dockyard.network import bridge as br
from dockyard.network import firewall
from tests.conftest import CLI
from tests.helpers import wait_until


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def inspect(dy: CLI, name: str) -> dict[str, Any]:
    return dict(json.loads(dy("inspect", name).stdout)[0])


def net_inspect(dy: CLI, name: str) -> dict[str, Any]:
    return dict(json.loads(dy("network", "inspect", name).stdout)[0])


def bridge_of(dy: CLI, network: str = "bridge") -> str:
    from dockyard.engine.networks import bridge_name

    info = net_inspect(dy, network)
    if network == "bridge":
        return str(info["Options"]["com.docker.network.bridge.name"])
    return bridge_name(info["Id"])  # user networks show only the user's options


def our_rules(bridge: str) -> list[tuple[str, str]]:
    return firewall.rules(lambda c: c.startswith("dyc:") and c.endswith(":" + bridge))


def container_rules(cid: str) -> list[tuple[str, str]]:
    return firewall.rules(lambda c: c.startswith(f"dyc:{cid}:"))


def no_veths(bridge: str) -> bool:
    """Whether the bridge has no ports left; the kernel tears a dead namespace (and with it
    the veth pair) down in a work queue, so give it a moment."""
    deadline = time.monotonic() + 10
    while br.bridge_ports(bridge):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def leases(dy: CLI) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(dy.root / "metadata.db")
    try:
        return [tuple(r) for r in conn.execute("SELECT * FROM ip_leases")]
    finally:
        conn.close()


def get(url: str, timeout: float = 10) -> bytes:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1
                return bytes(r.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def www(tmp_path: Path) -> Path:
    d = tmp_path / "www"
    d.mkdir()
    (d / "index.html").write_text("hello from the container\n")
    return d


def httpd(dy: CLI, www: Path, *args: str) -> str:
    return dy(
        "run", "-d", "-v", f"{www}:/www", *args, "busybox", "httpd", "-f", "-p", "80", "-h", "/www"
    ).stdout.strip()


# ---------------------------------------------------------------------- default bridge


def test_default_bridge_address_route_and_resolv(ctr: CLI) -> None:
    out = ctr(
        "run", "--rm", "busybox", "sh", "-c", "ip addr show eth0; ip route; cat /etc/resolv.conf"
    ).stdout
    info = net_inspect(ctr, "bridge")
    subnet = IPv4Network(info["IPAM"]["Config"][0]["Subnet"])
    gateway = info["IPAM"]["Config"][0]["Gateway"]
    assert subnet.subnet_of(IPv4Network("10.213.0.0/16"))
    inet = [ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("inet ")]
    assert len(inet) == 1 and IPv4Address(inet[0].split("/")[0]) in subnet
    assert f"default via {gateway} dev eth0" in out
    assert "nameserver 127." not in out and "nameserver" in out
    dev = bridge_of(ctr)
    assert dev.startswith("dyt") and br.bridge_exists(dev)
    # --rm: the address went back, the veth died with the namespace
    assert leases(ctr) == []
    assert no_veths(dev)


def test_inspect_network_settings_like_docker(ctr: CLI) -> None:
    cid = ctr("run", "-d", "--name", "sleeper", "busybox", "sleep", "300").stdout.strip()
    ns = inspect(ctr, "sleeper")["NetworkSettings"]
    ep = ns["Networks"]["bridge"]
    net = net_inspect(ctr, "bridge")
    assert ep["NetworkID"] == net["Id"]
    assert ns["IPAddress"] == ep["IPAddress"] and ns["IPAddress"]
    assert ns["Gateway"] == ep["Gateway"] == net["IPAM"]["Config"][0]["Gateway"]
    assert ns["MacAddress"] == ep["MacAddress"]
    octets = [int(x, 16) for x in ns["MacAddress"].split(":")]
    assert octets[:2] == [2, 0x42] and ".".join(map(str, octets[2:])) == ns["IPAddress"]
    assert ns["IPPrefixLen"] == IPv4Network(net["IPAM"]["Config"][0]["Subnet"]).prefixlen
    assert len(ns["EndpointID"]) == 64 and ns["Ports"] == {}
    inside = ctr("exec", "sleeper", "cat", "/sys/class/net/eth0/address").stdout.strip()
    assert inside == ns["MacAddress"]
    assert net_inspect(ctr, "bridge")["Containers"][cid]["IPv4Address"].startswith(ns["IPAddress"])
    ctr("stop", "-t", "1", "sleeper")
    stopped = inspect(ctr, "sleeper")["NetworkSettings"]
    assert stopped["IPAddress"] == "" and stopped["Networks"]["bridge"]["IPAddress"] == ""
    assert stopped["Networks"]["bridge"]["NetworkID"] == net["Id"]
    assert net_inspect(ctr, "bridge")["Containers"] == {}


def test_none_host_and_container_modes_still_work(ctr: CLI) -> None:
    out = ctr("run", "--rm", "--network", "none", "busybox", "ip", "addr").stdout
    assert "eth0" not in out and "127.0.0.1" in out
    ctr("run", "-d", "--name", "web", "busybox", "sleep", "300")
    ip = inspect(ctr, "web")["NetworkSettings"]["IPAddress"]
    out = ctr(
        "run", "--rm", "--network", "container:web", "busybox", "ip", "addr", "show", "eth0"
    ).stdout
    assert f"inet {ip}/" in out
    shared = inspect(ctr, ctr("create", "--network", "container:web", "busybox").stdout.strip())
    assert shared["NetworkSettings"]["Networks"] == {}


def test_parallel_starts_get_distinct_addresses(ctr: CLI) -> None:
    ctr("network", "create", "--subnet", "10.213.40.0/24", "par")

    def one(i: int) -> str:
        ctr("run", "-d", "--network", "par", "--name", f"p{i}", "busybox", "sleep", "300")
        return str(ctr("exec", f"p{i}", "sh", "-c", "ip -o -4 addr show eth0").stdout.split()[3])

    with ThreadPoolExecutor(max_workers=8) as pool:
        addrs = list(pool.map(one, range(8)))
    assert len(set(addrs)) == 8
    assert all(a.startswith("10.213.40.") and a != "10.213.40.1/24" for a in addrs)
    assert len(leases(ctr)) == 8
    assert len(net_inspect(ctr, "par")["Containers"]) == 8


# ---------------------------------------------------------------------- published ports


def test_publish_tcp_udp_random_and_port_command(ctr: CLI, www: Path) -> None:
    p1, p2, pu = free_port(), free_port(), free_port(socket.SOCK_DGRAM)
    cid = httpd(
        ctr, www, "--name", "web", "-p", f"{p1}:80", "-p", f"127.0.0.1:{p2}:80/tcp", "-p", "80"
    )
    assert get(f"http://127.0.0.1:{p1}/") == b"hello from the container\n"
    assert get(f"http://127.0.0.1:{p2}/") == b"hello from the container\n"
    # the host's address on our bridge is a host address too
    gw = net_inspect(ctr, "bridge")["IPAM"]["Config"][0]["Gateway"]
    assert get(f"http://{gw}:{p1}/") == b"hello from the container\n"
    ports = inspect(ctr, "web")["NetworkSettings"]["Ports"]["80/tcp"]
    rnd = [b for b in ports if b["HostPort"] not in (str(p1), str(p2))]
    assert len(rnd) == 1 and rnd[0]["HostIp"] == "0.0.0.0"
    assert get(f"http://127.0.0.1:{rnd[0]['HostPort']}/") == b"hello from the container\n"
    out = ctr("port", "web").stdout.splitlines()
    assert out == [
        f"80/tcp -> 0.0.0.0:{p1}",
        f"80/tcp -> 127.0.0.1:{p2}",
        f"80/tcp -> 0.0.0.0:{rnd[0]['HostPort']}",
    ]
    assert ctr("port", "web", "80").stdout.splitlines()[0] == f"0.0.0.0:{p1}"
    assert f"127.0.0.1:{p2}->80/tcp" in ctr("ps").stdout
    assert len(container_rules(cid)) == 3 * 3  # DNAT, hairpin MASQUERADE, FORWARD each

    # UDP: busybox has no UDP server, so the host's python runs in the container (read-only
    # binds) and answers each datagram; the reply comes back through the same NAT.
    ctr(
        "run", "-d", "--name", "udp", "-p", f"{pu}:9000/udp",
        "-v", "/usr:/usr:ro", "-v", "/lib:/lib:ro", "-v", "/lib64:/lib64:ro",
        "busybox", "/usr/bin/python3", "-c", UDP_ECHO,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while True:
            assert time.monotonic() < deadline, "no UDP answer"
            s.sendto(b"ping-udp", ("127.0.0.1", pu))
            try:
                assert s.recvfrom(100)[0] == b"pong:ping-udp"
                break
            except TimeoutError:
                continue


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9000))
while True:
    data, peer = s.recvfrom(100)
    s.sendto(b"pong:" + data, peer)
"""


def test_publish_all_exposed(ctr: CLI, www: Path) -> None:
    httpd(ctr, www, "--name", "web", "--expose", "80", "--expose", "7000-7001/udp", "-P")
    ports = inspect(ctr, "web")["NetworkSettings"]["Ports"]
    assert set(ports) == {"80/tcp", "7000/udp", "7001/udp"}
    host = ports["80/tcp"][0]["HostPort"]
    assert get(f"http://127.0.0.1:{host}/") == b"hello from the container\n"
    assert inspect(ctr, "web")["HostConfig"]["PublishAllPorts"] is True


def test_ports_go_on_stop_and_when_the_monitor_is_killed(ctr: CLI, www: Path) -> None:
    port = free_port()
    cid = httpd(ctr, www, "--name", "web", "-p", f"{port}:80")
    assert get(f"http://127.0.0.1:{port}/")
    ctr("stop", "-t", "1", "web")
    assert container_rules(cid) == []
    assert inspect(ctr, "web")["NetworkSettings"]["Ports"] == {}
    with socket.socket() as s:
        s.bind(("0.0.0.0", port))  # free again
    ctr("start", "web")
    assert get(f"http://127.0.0.1:{port}/")
    monitor = int((ctr.run_root / "containers" / cid / "monitor.pid").read_text())
    os.kill(monitor, 9)
    time.sleep(0.2)
    assert "Exited (255)" in ctr("ps", "-a").stdout  # reconciliation ran
    assert container_rules(cid) == []
    assert no_veths(bridge_of(ctr))
    with socket.socket() as s:
        s.bind(("0.0.0.0", port))


def test_host_port_in_use_is_a_clear_error_and_nothing_half_started(ctr: CLI) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        r = ctr(
            "run",
            "-d",
            "--name",
            "clash",
            "-p",
            f"{port}:80",
            "busybox",
            "sleep",
            "300",
            check=False,
        )
        assert r.returncode == 125
        assert r.stderr.startswith("Error:") and "address already in use" in r.stderr
        assert str(port) in r.stderr
        data = inspect(ctr, "clash")
        assert data["State"]["Status"] == "created" and not data["State"]["Running"]
        assert container_rules(data["Id"]) == []
        assert no_veths(bridge_of(ctr))
        assert "Traceback" not in r.stderr
        # the listener that owned the port is untouched
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    # two containers cannot publish the same port either
    port2 = free_port()
    ctr("run", "-d", "--name", "first", "-p", f"{port2}:80", "busybox", "sleep", "300")
    r = ctr("run", "--rm", "-p", f"{port2}:80", "busybox", "true", check=False)
    assert r.returncode == 125 and "address already in use" in r.stderr


@pytest.mark.parametrize(
    "spec,message",
    [
        ("abc", "invalid containerPort: abc"),
        ("70000:80", "invalid hostPort: 70000"),
        ("8080:", "no port specified"),
        ("8080:80/xyz", "invalid proto: xyz"),
        ("300.1.1.1:80:80", "invalid IP address: 300.1.1.1"),
        ("8000-8001:80", "invalid ranges"),
        ("1:2:3:4", "invalid IP address: 1:2"),
    ],
)
def test_invalid_publish_spec(ctr: CLI, spec: str, message: str) -> None:
    r = ctr("run", "-d", "-p", spec, "busybox", "true", check=False)
    assert r.returncode == 125 and message in r.stderr and r.stderr.startswith("Error:")
    assert ctr("ps", "-aq").stdout == ""
    assert leases(ctr) == []


# ---------------------------------------------------------------------- user networks


def test_names_and_aliases_resolve_on_user_networks(ctr: CLI, www: Path) -> None:
    ctr("network", "create", "appnet")
    httpd(ctr, www, "--network", "appnet", "--name", "db", "--network-alias", "database")
    for host in ("db", "database"):
        out = ctr(
            "run",
            "--rm",
            "--network",
            "appnet",
            "busybox",
            "wget",
            "-q",
            "-O",
            "-",
            f"http://{host}/",
        )
        assert out.stdout == "hello from the container\n"
    ping = ctr(
        "run",
        "--rm",
        "--network",
        "appnet",
        "--cap-add",
        "NET_RAW",
        "busybox",
        "ping",
        "-c1",
        "-W5",
        "db",
    )
    assert "1 packets received" in ping.stdout
    # a container started later is known to the earlier one, and forgotten when it goes
    ctr("run", "-d", "--network", "appnet", "--name", "late", "busybox", "sleep", "300")
    db_hosts = ctr("exec", "db", "cat", "/etc/hosts").stdout
    late_ip = inspect(ctr, "late")["NetworkSettings"]["Networks"]["appnet"]["IPAddress"]
    assert any(ln.split()[:2] == [late_ip, "late"] for ln in db_hosts.splitlines())
    ctr("rm", "-f", "late")
    assert "late" not in ctr("exec", "db", "cat", "/etc/hosts").stdout
    # the default bridge has no name resolution, as in Docker
    r = ctr("run", "--rm", "busybox", "wget", "-q", "-T", "2", "-O", "-", "http://db/", check=False)
    assert r.returncode != 0


def test_connect_disconnect_and_connect_twice(ctr: CLI, www: Path) -> None:
    ctr("network", "create", "--subnet", "10.213.41.0/24", "extra")
    ctr("run", "-d", "--name", "c1", "busybox", "sleep", "300")
    httpd(ctr, www, "--network", "extra", "--name", "peer")
    ctr("network", "connect", "--alias", "one", "extra", "c1")
    out = ctr("exec", "c1", "ip", "-o", "-4", "addr").stdout
    assert "eth1" in out and "10.213.41." in out
    assert ctr("exec", "c1", "wget", "-q", "-O", "-", "http://peer/").stdout.startswith("hello")
    assert "one" in ctr("exec", "peer", "cat", "/etc/hosts").stdout
    r = ctr("network", "connect", "extra", "c1", check=False)
    assert r.returncode == 125
    assert r.stderr.strip() == "Error: endpoint with name c1 already exists in network extra"
    assert "eth2" not in ctr("exec", "c1", "ip", "-o", "link").stdout
    nets = inspect(ctr, "c1")["NetworkSettings"]["Networks"]
    assert set(nets) == {"bridge", "extra"} and nets["extra"]["IPAddress"].startswith("10.213.41.")
    ctr("network", "disconnect", "extra", "c1")
    assert "eth1" not in ctr("exec", "c1", "ip", "-o", "link").stdout
    assert set(inspect(ctr, "c1")["NetworkSettings"]["Networks"]) == {"bridge"}
    # No hosts entry names c1 (a word of the file: "c1" can be part of peer's own hex ID)
    assert "c1" not in ctr("exec", "peer", "cat", "/etc/hosts").stdout.split()
    r = ctr("network", "disconnect", "extra", "c1", check=False)
    assert r.returncode == 125 and "is not connected to network extra" in r.stderr
    # a stopped container is connected now and wired at its next start
    ctr("stop", "-t", "1", "c1")
    ctr("network", "connect", "extra", "c1")
    ctr("start", "c1")
    assert "10.213.41." in ctr("exec", "c1", "ip", "-o", "-4", "addr").stdout


def test_rm_network_with_containers_is_refused(ctr: CLI) -> None:
    nid = ctr("network", "create", "--subnet", "10.213.42.0/24", "busy").stdout.strip()
    ctr("run", "-d", "--network", "busy", "--name", "user", "busybox", "sleep", "300")
    r = ctr("network", "rm", "busy", check=False)
    assert r.returncode == 1
    assert f"network busy id {nid} has active endpoints" in r.stderr
    assert br.bridge_exists(bridge_of(ctr, "busy"))
    assert ctr("exec", "user", "true").returncode == 0
    ctr("rm", "-f", "user")
    ctr("network", "rm", "busy")
    assert "busy" not in ctr("network", "ls").stdout


def test_rm_network_with_only_stopped_containers(ctr: CLI) -> None:
    # Docker 20.10: only running containers' endpoints block "network rm"; the stopped ones
    # keep the network in their settings and fail to start until disconnected from it.
    nid = ctr("network", "create", "--subnet", "10.213.43.0/24", "gone").stdout.strip()
    dev = bridge_of(ctr, "gone")
    was = ctr(
        "run", "--network", "gone", "--name", "was", "busybox", "sh", "-c", "ip -o -4 addr"
    ).stdout
    assert "10.213.43." in was
    ctr("create", "--network", "gone", "--name", "never", "busybox", "true")
    assert len(leases(ctr)) == 2
    assert ctr("network", "rm", "gone").stdout == "gone\n"
    assert not br.bridge_exists(dev) and leases(ctr) == []
    assert "gone" not in ctr("network", "ls").stdout
    ep = inspect(ctr, "was")["NetworkSettings"]["Networks"]["gone"]
    assert ep["NetworkID"] == nid and ep["IPAddress"] == ""
    r = ctr("start", "was", check=False)
    assert r.returncode == 1 and r.stderr == f"Error: network {nid} not found\n"
    r = ctr("start", "never", check=False)  # never started: Docker names it
    assert r.returncode == 1 and r.stderr == "Error: network gone not found\n"
    assert inspect(ctr, "never")["State"]["Status"] == "created"
    assert inspect(ctr, "was")["State"]["Status"] == "exited"
    was_id = inspect(ctr, "was")["Id"]
    assert leases(ctr) == []
    assert not [d for d in os.listdir("/sys/class/net") if d.startswith(f"veth{was_id[:8]}")]
    # the name unhooks a stopped container from the removed network; an unknown name does not
    r = ctr("network", "disconnect", "nosuch", "never", check=False)
    assert r.returncode == 125 and "is not connected to the network nosuch" in r.stderr
    ctr("network", "disconnect", "gone", "never")
    assert inspect(ctr, "never")["NetworkSettings"]["Networks"] == {}
    ctr("start", "-a", "never")
    # a new network of the same name is another network: the old ID still fails the start
    ctr("network", "create", "--subnet", "10.213.44.0/24", "gone")
    r = ctr("start", "was", check=False)
    assert r.returncode == 1 and r.stderr == f"Error: network {nid} not found\n"
    ctr("network", "disconnect", "gone", "was")
    ctr("network", "connect", "gone", "was")
    assert "10.213.44." in ctr("start", "-a", "was").stdout
    # a running container still blocks, and so does nothing else
    ctr("run", "-d", "--network", "gone", "--name", "up", "busybox", "sleep", "300")
    assert ctr("network", "rm", "gone", check=False).returncode == 1
    assert ctr("network", "prune", "-f").stdout == ""
    ctr("stop", "-t", "0", "up")
    assert ctr("network", "prune", "-f").stdout == "Deleted Networks:\ngone\n\n"
    assert ctr("start", "up", check=False).returncode == 1


def test_unknown_network_is_a_clear_error(ctr: CLI) -> None:
    r = ctr("run", "--rm", "--network", "nosuch", "busybox", "true", check=False)
    assert r.returncode == 125 and r.stderr.strip() == "Error: network nosuch not found"
    assert ctr("ps", "-aq").stdout == ""


# ---------------------------------------------------------------------- outbound NAT


@pytest.fixture
def outside() -> Iterator[str]:
    """A namespace reached through the host's routing (a veth pair we create), standing in
    for "the outside": 10.213.250.2, the host's end 10.213.250.1."""
    ns = f"dytout{os.getpid()}"
    host_end = f"dyto{os.getpid() % 100000}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    try:
        ip("netns", "add", ns)
        ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("addr", "add", "10.213.250.1/30", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("-n", ns, "addr", "add", "10.213.250.2/30", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        ip("-n", ns, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_outbound_nat_under_a_forward_drop_policy(ctr: CLI, outside: str) -> None:
    # What Docker does to the host: FORWARD policy DROP. Our own chain must let us out.
    policy = [ln for ln in firewall.save("filter") if ln.startswith(":FORWARD ")][0].split()[1]
    subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            outside,
            "python3",
            "-c",
            "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
            "s.bind(('10.213.250.2',8000));s.listen();c,a=s.accept();c.sendall(a[0].encode()+b'\\n');c.close()",
        ],
    )
    try:
        time.sleep(0.3)
        out = ctr("run", "--rm", "busybox", "nc", "-w", "5", "10.213.250.2", "8000").stdout
        assert out.strip() == "10.213.250.1"  # masqueraded to the host's address
    finally:
        server.kill()
        server.wait()
        subprocess.run(["iptables", "-P", "FORWARD", policy], check=True)


# ---------------------------------------------------------------------- leaks and check


def _count(dy: CLI) -> tuple[int, int, int]:
    dev = bridge_of(dy)
    no_veths(dev)
    return len(br.bridge_ports(dev)), len(our_rules(dev)), len(leases(dy))


def test_200_run_rm_cycles_leak_nothing(ctr: CLI) -> None:
    ctr("run", "--rm", "busybox", "true")
    before = _count(ctr)
    assert before == (0, 0, 0)
    for i in range(200):
        args = ["-p", "80"] if i % 20 == 0 else []
        ctr("run", "--rm", *args, "busybox", "true")
    assert _count(ctr) == (0, 0, 0)
    report = ctr("system", "check").stdout
    assert "IP lease" not in report and "veth" not in report and bridge_of(ctr) not in report


def test_system_check_repairs_network_leftovers(ctr: CLI) -> None:
    ctr("run", "--rm", "busybox", "true")
    dev = bridge_of(ctr)
    net_id = net_inspect(ctr, "bridge")["Id"]
    ghost = "a" * 64
    conn = sqlite3.connect(ctr.root / "metadata.db")
    conn.execute("INSERT INTO ip_leases VALUES (?, '10.213.255.250', ?)", (net_id, ghost))
    conn.commit()
    conn.close()
    stray = f"veth{ghost[:8]}0"
    subprocess.run(
        ["ip", "link", "add", stray, "type", "veth", "peer", "name", stray + "p"], check=True
    )
    try:
        subprocess.run(["ip", "link", "set", stray, "master", dev], check=True)
        firewall.restore(
            firewall.container_batch(
                ghost, dev, "10.213.255.250", [firewall.Publish("tcp", "0.0.0.0", 1, 80)]
            )
        )
        out = ctr("system", "check").stdout
        assert "10.213.255.250" in out and stray in out and "rule" in out
        ctr("system", "check", "--repair")
        assert leases(ctr) == []
        assert container_rules(ghost) == []
        assert stray not in os.listdir("/sys/class/net")
        after = ctr("system", "check").stdout
        assert stray not in after and "10.213.255.250" not in after and ghost[:12] not in after
    finally:
        subprocess.run(["ip", "link", "del", stray], capture_output=True)
        firewall.remove_container(ghost)


# ---------------------------------------------------------------------- netd


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d))
    return out


def test_netd_serves_later_starts_and_is_optional(ctr: CLI) -> None:
    from dockyard.network import netd

    sock, _, pid_file = netd.paths(str(ctr.run_root))
    ctr("run", "--rm", "busybox", "true")  # forks its own helper, starts netd
    wait_until(lambda: os.path.exists(sock) and os.path.exists(pid_file), 20, "netd to come up")
    pid = int(Path(pid_file).read_text())
    for _ in range(3):
        out = ctr("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0").stdout
        assert "inet 10.213." in out
    assert _children(pid) == []  # every helper it forked is gone
    netd.stop(str(ctr.run_root))
    wait_until(lambda: not _alive(pid), 10, "netd to stop")
    assert not os.path.exists(sock)
    out = ctr("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0").stdout
    assert "inet 10.213." in out  # without netd, a start forks its own helper


def test_subnet_overlapping_a_real_host_route_or_network_is_refused(ctr: CLI) -> None:
    from dockyard.network import ipam

    routes = [r for r in ipam.host_routes() if not r.subnet_of(IPv4Network("10.213.0.0/16"))]
    if not routes:
        pytest.skip("the host has no route outside the test range")
    before = ctr("network", "ls", "-q").stdout
    r = ctr("network", "create", "--subnet", str(routes[0]), "clash", check=False)
    assert r.returncode == 125
    assert r.stderr.strip() == "Error: Pool overlaps with other one on this address space"
    ctr("network", "create", "--subnet", "10.213.43.0/24", "first")
    r = ctr("network", "create", "--subnet", "10.213.43.128/25", "second", check=False)
    assert r.returncode == 125 and "Pool overlaps" in r.stderr
    after = ctr("network", "ls", "--format", "{{.Name}}").stdout.split()
    assert "clash" not in after and "second" not in after and "first" in after
    assert before == "" or set(before.split()) <= set(ctr("network", "ls", "-q").stdout.split())


def test_check_removes_container_dirs_a_killed_remover_left(ctr: CLI) -> None:
    """rm renames a container's dirs to .rm-<id> and deletes them in a detached process that
    holds a lock on each; check reports (and --repair removes) only unlocked ones."""
    import fcntl

    cid = ctr("run", "-d", "busybox", "true").stdout.strip()
    ctr("rm", "-f", cid)
    assert not (ctr.root / "containers" / cid).exists()
    wait_until(lambda: not any((ctr.root / "containers").iterdir()), 20, "the remover")
    left = ctr.root / "containers" / ".rm-deadbeef"
    (left / "upper" / "x").mkdir(parents=True)
    busy = ctr.root / "containers" / ".rm-busy"
    busy.mkdir()
    fd = os.open(busy, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        out = ctr("system", "check").stdout
        assert ".rm-deadbeef" in out and ".rm-busy" not in out
        ctr("system", "check", "--repair")
        assert not left.exists() and busy.exists()
    finally:
        os.close(fd)
        busy.rmdir()
