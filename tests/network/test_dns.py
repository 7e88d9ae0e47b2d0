"""--add-host, --dns, --dns-search and --dns-option: what the container's /etc/hosts and
/etc/resolv.conf hold, inspect's HostConfig, a real DNS server on a bridge the test made
answering the container, and Docker 20.10's errors for bad values (nothing created).

Servers listen only on the gateway address of the store's own bridge (conftest: dyt*,
10.213.128.0/17) or on 127.0.0.1; the ``ctr`` fixture removes containers and bridges.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Network

import pytest

from dockyard.engine import Engine
from dockyard.errors import InvalidArgument
from dockyard.model.container import ContainerSpec
from dockyard.network.hosts import (
    check_dns,
    check_dns_search,
    check_extra_host,
    extra_hosts,
    hosts_text,
    resolv_conf,
)
from tests.conftest import CLI, db_snapshot
from tests.network.test_containers import inspect, net_inspect
from tests.runtime.test_containers import wait_for


def gateway(dy: CLI, network: str = "bridge") -> str:
    return str(net_inspect(dy, network)["IPAM"]["Config"][0]["Gateway"])


# ---------------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    "value",
    ["foo:1.2.3.4", "a.b-c:10.0.0.1", "gw:host-gateway", "six:::1", "six:fe80::1:2", "x:0.0.0.0"],
)
def test_good_add_host(value: str) -> None:
    assert check_extra_host(value) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nocolon", 'bad format for add-host: "nocolon"'),
        (":1.2.3.4", 'bad format for add-host: ":1.2.3.4"'),
        ("foo=1.2.3.4", 'bad format for add-host: "foo=1.2.3.4"'),  # 20.10 knows only ":"
        ("foo:", 'invalid IP address in add-host: ""'),
        ("foo:bad", 'invalid IP address in add-host: "bad"'),
        ("foo:1.2.3", 'invalid IP address in add-host: "1.2.3"'),
        ("foo:1.2.3.256", 'invalid IP address in add-host: "1.2.3.256"'),
        ("foo:HOST-GATEWAY", 'invalid IP address in add-host: "HOST-GATEWAY"'),
    ],
)
def test_bad_add_host(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        check_extra_host(value)
    assert str(e.value) == message


def test_dns_values() -> None:
    assert check_dns("9.9.9.9") == "9.9.9.9"
    assert check_dns(" 2001:DB8::1 ") == "2001:db8::1"  # stored canonical, as Docker does
    for bad in ("bad", "1.2.3.4.5", "", "9.9.9.9:53", "01.2.3.4"):
        with pytest.raises(InvalidArgument) as e:
            check_dns(bad)
        assert str(e.value) == f"{bad} is not an ip address"


@pytest.mark.parametrize("value", ["example.com", "a", "x-1.example.", ".", "A1.b2"])
def test_good_dns_search(value: str) -> None:
    assert check_dns_search(value) == value


@pytest.mark.parametrize(
    "value", ["bad..x", "-a.com", "a-.com", "123.456", "a_b.com", "é.com", "a" * 255, ""]
)
def test_bad_dns_search(value: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        check_dns_search(value)
    assert str(e.value) == f"{value} is not a valid domain"


HOST = (
    "# from the host\nsearch corp.example\nnameserver 127.0.0.53\nnameserver 10.1.1.1\n"
    "options edns0\n"
)


def test_resolv_conf_without_flags_is_the_hosts_minus_loopback() -> None:
    assert resolv_conf(HOST) == (
        "# from the host\nsearch corp.example\nnameserver 10.1.1.1\noptions edns0\n"
    )
    assert resolv_conf("nameserver 127.0.0.1\n") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_resolv_conf_flags_replace_what_they_name() -> None:
    # Docker rebuilds the file: search, nameservers, options, each the flag's or the host's.
    assert resolv_conf(HOST, ["9.9.9.9", "1.1.1.1"]) == (
        "search corp.example\nnameserver 9.9.9.9\nnameserver 1.1.1.1\noptions edns0\n"
    )
    assert resolv_conf(HOST, (), ["a.example", "b.example"], ["ndots:2", "rotate"]) == (
        "search a.example b.example\nnameserver 10.1.1.1\noptions ndots:2 rotate\n"
    )
    assert resolv_conf(HOST, (), ["."]) == "nameserver 10.1.1.1\noptions edns0\n"
    assert resolv_conf("nameserver ::1\n", (), (), ["ndots:1"]) == (
        "nameserver 8.8.8.8\nnameserver 8.8.4.4\noptions ndots:1\n"
    )
    assert resolv_conf("nameserver 127.0.0.1\n", (), ["x.y"], drop_loopback=False) == (
        "search x.y\nnameserver 127.0.0.1\n"
    )


def test_hosts_text_order_and_host_gateway() -> None:
    asked: list[int] = []

    def gw() -> str:
        asked.append(1)
        return "10.0.0.1"

    assert extra_hosts(["a:1.2.3.4"], gw) == [("a", "1.2.3.4")] and asked == []
    extra = extra_hosts(["a:1.2.3.4", "g:host-gateway", "six:::1"], gw)
    assert extra == [("a", "1.2.3.4"), ("g", "10.0.0.1"), ("six", "::1")]
    text = hosts_text([("10.0.0.5", "me")], [("10.0.0.6", ["peer", "alias"])], extra)
    assert text.splitlines()[-5:] == [
        "1.2.3.4\ta",
        "10.0.0.1\tg",
        "::1\tsix",
        "10.0.0.5\tme",
        "10.0.0.6\tpeer alias",
    ]


def test_engine_refuses_bad_values_too(bb: CLI) -> None:
    """The engine checks what an API caller sends as the CLI does, before anything exists."""
    e = Engine(root=str(bb.root), run_root=str(bb.run_root))
    try:
        for opts, message in (
            (ContainerSpec("busybox", extra_hosts=("x",)), 'bad format for add-host: "x"'),
            (ContainerSpec("busybox", dns=("x",)), "x is not an ip address"),
            (ContainerSpec("busybox", dns_search=("-x",)), "-x is not a valid domain"),
        ):
            with pytest.raises(InvalidArgument) as exc:
                e.containers.create(opts)
            assert str(exc.value) == message
        assert e.store.db.query("SELECT id FROM containers") == []
    finally:
        e.close()


# ---------------------------------------------------------------------- containers


def test_default_bridge_hosts_resolv_and_inspect(ctr: CLI) -> None:
    ctr("create", "--name", "plain", "busybox")
    hc = inspect(ctr, "plain")["HostConfig"]
    assert (hc["Dns"], hc["DnsOptions"], hc["DnsSearch"], hc["ExtraHosts"]) == ([], [], [], None)
    ctr(
        "create",
        "--name",
        "cc",
        "--add-host",
        "foo:1.2.3.4",
        "--add-host",
        "gw:host-gateway",
        "--add-host",
        "six:::1",
        "--dns",
        "9.9.9.9",
        "--dns",
        "2001:DB8::1",
        "--dns-search",
        "example.com",
        "--dns-option",
        "ndots:2",
        "--dns-opt",
        "timeout:1",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts; echo; cat /etc/resolv.conf",
    )
    hc = inspect(ctr, "cc")["HostConfig"]
    assert hc["ExtraHosts"] == ["foo:1.2.3.4", "gw:host-gateway", "six:::1"]
    assert hc["Dns"] == ["9.9.9.9", "2001:db8::1"]
    assert hc["DnsSearch"] == ["example.com"] and hc["DnsOptions"] == ["ndots:2", "timeout:1"]
    hosts, resolv = ctr("start", "-a", "cc").stdout.split("\n\n")
    lines = hosts.splitlines()
    assert lines[:6] == [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]
    assert lines[6:9] == ["1.2.3.4\tfoo", f"{gateway(ctr)}\tgw", "::1\tsix"]
    own, hostname = lines[9].split("\t")
    subnet = IPv4Network(net_inspect(ctr, "bridge")["IPAM"]["Config"][0]["Subnet"])
    assert IPv4Address(own) in subnet and hostname == inspect(ctr, "cc")["Config"]["Hostname"]
    assert len(lines) == 10
    assert resolv == (
        "search example.com\nnameserver 9.9.9.9\nnameserver 2001:db8::1\n"
        "options ndots:2 timeout:1\n"
    )


@contextmanager
def dns_server(address: str, answer: str) -> Iterator[list[str]]:
    """A one-record DNS server on ``address``:53/udp: every A question gets ``answer``.
    Yields the names it was asked."""
    asked: list[str] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 53))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                query, peer = sock.recvfrom(512)
            except TimeoutError:
                continue
            qid, _flags, qdcount = struct.unpack("!HHH", query[:6])
            i, labels = 12, []
            while query[i]:
                labels.append(query[i + 1 : i + 1 + query[i]].decode())
                i += 1 + query[i]
            qtype = struct.unpack("!H", query[i + 1 : i + 3])[0]
            question = query[12 : i + 5]
            asked.append(".".join(labels))
            if qtype == 1:  # A
                rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(answer)
                reply = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + rr
            else:
                reply = struct.pack("!HHHHHH", qid, 0x8180, 1, 0, 0, 0) + question
            sock.sendto(reply, peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield asked
    finally:
        stop.set()
        t.join()
        sock.close()


def test_dns_server_answers_on_the_default_bridge(ctr: CLI) -> None:
    ctr("run", "--rm", "busybox", "true")  # makes the default bridge
    gw = gateway(ctr)
    with dns_server(gw, "10.213.77.77") as asked:
        out = ctr(
            "run",
            "--rm",
            "--dns",
            gw,
            "--dns-search",
            "example.test",
            "busybox",
            "nslookup",
            "-type=a",
            "svc",
        ).stdout
    assert "10.213.77.77" in out
    assert "svc.example.test" in asked


def test_user_network_peers_extra_hosts_and_dns(ctr: CLI) -> None:
    # Peers are in the hosts file and answered by the embedded DNS server (127.0.0.11), which
    # forwards the rest to the --dns servers: a peer's name never reaches them.
    ctr("network", "create", "--subnet", "10.213.45.0/24", "dnsnet")
    ctr(
        "run",
        "-d",
        "--network",
        "dnsnet",
        "--name",
        "first",
        "--add-host",
        "ext:10.9.8.7",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "sleep",
        "300",
    )
    ctr("run", "-d", "--network", "dnsnet", "--name", "peer", "busybox", "sleep", "300")
    hosts = ctr("exec", "first", "cat", "/etc/hosts").stdout.splitlines()
    b_ip = inspect(ctr, "peer")["NetworkSettings"]["Networks"]["dnsnet"]["IPAddress"]
    assert "10.9.8.7\text" in hosts and f"{gateway(ctr)}\tgw" in hosts  # kept by the refresh
    assert any(ln.split()[:2] == [b_ip, "peer"] for ln in hosts)
    assert hosts.index("10.9.8.7\text") < hosts.index(f"{gateway(ctr)}\tgw") < len(hosts) - 1
    with dns_server("10.213.45.1", "10.213.78.78") as asked:
        out = ctr(
            "run",
            "--rm",
            "--network",
            "dnsnet",
            "--dns",
            "10.213.45.1",
            "--dns-option",
            "ndots:0",
            "--cap-add",
            "NET_RAW",
            "busybox",
            "sh",
            "-c",
            "cat /etc/resolv.conf; nslookup -type=a far.example; ping -c1 -W5 peer",
        ).stdout
    assert out.startswith("nameserver 127.0.0.11\noptions ndots:0\n")
    assert "10.213.78.78" in out and "far.example" in asked
    assert f"PING peer ({b_ip})" in out and "1 packets received" in out
    assert not [n for n in asked if n.split(".")[0] == "peer"]


def test_host_gateway_reaches_a_server_on_the_host(ctr: CLI) -> None:
    ctr("run", "--rm", "busybox", "true")
    listener = socket.create_server((gateway(ctr), 0))  # the bridge's host side only
    listener.settimeout(60)
    port = listener.getsockname()[1]

    def greet() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"hello from the host\n")

    t = threading.Thread(target=greet, daemon=True)
    t.start()
    try:
        out = ctr(
            "run",
            "--rm",
            "--add-host",
            "host.docker.internal:host-gateway",
            "busybox",
            "nc",
            "-w",
            "10",
            "host.docker.internal",
            str(port),
        ).stdout
    finally:
        listener.close()
        t.join(timeout=30)
    assert out == "hello from the host\n"


def test_host_and_none_modes_get_extra_hosts_and_dns(ctr: CLI) -> None:
    out = ctr(
        "run",
        "--rm",
        "--network",
        "host",
        "--add-host",
        "x:10.1.2.3",
        "--dns",
        "10.3.3.3",
        "busybox",
        "sh",
        "-c",
        "cat /etc/hosts /etc/resolv.conf",
    ).stdout
    assert "10.1.2.3\tx\n" in out and "nameserver 10.3.3.3\n" in out
    out = ctr(
        "run",
        "--rm",
        "--network",
        "none",
        "--add-host",
        "x:10.1.2.3",
        "busybox",
        "cat",
        "/etc/hosts",
    ).stdout
    assert "10.1.2.3\tx\n" in out


@pytest.mark.parametrize("verb", ["run", "create"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--add-host", "nocolon"],
            'invalid argument "nocolon" for "--add-host" flag: bad format for add-host: "nocolon"',
        ),
        (
            ["--add-host", "ok:1.2.3.4", "--add-host", "foo:bad"],
            'invalid argument "foo:bad" for "--add-host" flag: invalid IP address in add-host: '
            '"bad"',
        ),
        (["--dns", "bad"], 'invalid argument "bad" for "--dns" flag: bad is not an ip address'),
        (
            ["--dns", "1.2.3.4.5"],
            'invalid argument "1.2.3.4.5" for "--dns" flag: 1.2.3.4.5 is not an ip address',
        ),
        (
            ["--dns-search", "bad..x"],
            'invalid argument "bad..x" for "--dns-search" flag: bad..x is not a valid domain',
        ),
    ],
)
def test_bad_values_create_nothing(ctr: CLI, verb: str, flags: list[str], message: str) -> None:
    before = db_snapshot(ctr.root)
    r = ctr(verb, "--name", "never", *flags, "busybox", "true", check=False)
    assert r.returncode == 125
    assert r.stderr == f"Error: {message}\nSee 'dockyard {verb} --help'.\n"
    assert r.stdout == ""
    assert db_snapshot(ctr.root) == before
    assert ctr("ps", "-aq").stdout == ""
    # a failed run's early monitor takes back the dir it made once it sees the cancel
    cdir = ctr.root / "containers"  # none yet in this store, unless a run's monitor made it
    wait_for(lambda: not cdir.exists() or not any(cdir.iterdir()))


def test_loopback_dns_warns_like_docker(ctr: CLI) -> None:
    r = ctr("create", "--dns", "127.0.0.1", "busybox")
    assert r.stderr == "WARNING: Localhost DNS setting (--dns=127.0.0.1) may fail in containers.\n"
    assert inspect(ctr, r.stdout.strip())["HostConfig"]["Dns"] == ["127.0.0.1"]
