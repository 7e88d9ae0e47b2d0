"""The embedded DNS server's parts on their own: its message handling and names table
(network/resolver.py), the table the engine writes (engine/endpoints.names_table), the
resolv.conf and upstreams Docker's rules give (network/hosts.embedded_resolv_conf), and the
server answering and forwarding over real UDP and TCP sockets on loopback addresses (its
upstreams are small servers this test runs on 127.0.0.113/114:53).
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dockyard.engine.endpoints import names_table
from dockyard.model.container import Container, ContainerSpec, ContainerState, Endpoint
from dockyard.network import resolver
from dockyard.network.embedded_dns import nat_rules
from dockyard.network.hosts import embedded_resolv_conf
from dockyard.network.resolver import Names, Server, local_answer, parse_question


def query(name: str, qtype: int = 1, qid: int = 0x1234, rd: bool = True) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p)
    flags = 0x0100 if rd else 0
    return (
        struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack("!HH", qtype, 1)
    )


def answers(msg: bytes) -> tuple[int, int, list[tuple[int, bytes]]]:
    """(flags, answer count, [(type, rdata)]) of a reply to one of our queries."""
    _, flags, _, ancount = struct.unpack("!HHHH", msg[:8])
    q = parse_question(struct.pack("!HH", 0, 0) + msg[4:])  # parse as if a query
    assert q is not None
    i, out = q.end, []
    for _ in range(ancount):
        assert msg[i : i + 2] == b"\xc0\x0c"  # owner: the question's name
        rtype, _, ttl, size = struct.unpack("!HHIH", msg[i + 2 : i + 12])
        assert ttl == 600
        out.append((rtype, msg[i + 12 : i + 12 + size]))
        i += 12 + size
    return flags, ancount, out


@pytest.fixture
def names(tmp_path: Path) -> Names:
    path = tmp_path / "dns-names"
    path.write_text(
        "a db 10.0.0.2\na db.net 10.0.0.2\na web 10.0.0.3 10.0.0.4\np 10.0.0.2 db.net\n"
    )
    return Names(str(path))


def test_answers_names_it_knows(names: Names) -> None:
    flags, count, records = answers(local_answer(query("DB"), names, False, udp=True) or b"")
    assert flags == 0x8180 and count == 1  # QR, RD as asked, RA; not authoritative (Docker)
    assert records == [(1, bytes([10, 0, 0, 2]))]
    _, _, records = answers(local_answer(query("web"), names, False, udp=True) or b"")
    assert sorted(r[1] for r in records) == [bytes([10, 0, 0, 3]), bytes([10, 0, 0, 4])]
    # known name, no IPv6 address: an empty answer, not a question for the upstreams
    flags, count, _ = answers(local_answer(query("db", 28), names, False, udp=True) or b"")
    assert (flags & 0xF, count) == (0, 0)
    _, _, records = answers(
        local_answer(query("2.0.0.10.in-addr.arpa", 12), names, False, udp=True) or b""
    )
    assert records == [(12, b"\x02db\x03net\x00")]
    flags, _, _ = answers(local_answer(query("db", rd=False), names, False, udp=True) or b"")
    assert flags == 0x8080


def test_leaves_the_rest_to_the_upstreams(names: Names) -> None:
    for q in (
        query("example.org"),
        query("nosuch"),
        query("db", 15),  # MX: Docker forwards what it does not serve
        query("9.0.0.10.in-addr.arpa", 12),
    ):
        assert local_answer(q, names, False, udp=True) is None
    # with ndots set by the user, a single-label name stays in (an empty answer)...
    flags, count, _ = answers(local_answer(query("nosuch"), names, True, udp=True) or b"")
    assert (flags & 0xF, count) == (0, 0)
    # ... but not a dotted one
    assert local_answer(query("example.org"), names, True, udp=True) is None


def test_bad_messages() -> None:
    names = Names("/nonexistent")
    reply = query("db")
    reply = reply[:2] + b"\x81\x80" + reply[4:]
    assert local_answer(reply, names, False, udp=True) == b""  # an answer: dropped
    assert local_answer(b"\x00\x01", names, False, udp=True) == b""
    cut = query("db")[:-3]  # the question runs off the message
    formerr = local_answer(cut, names, False, udp=True) or b""
    assert struct.unpack("!HH", formerr[:4]) == (0x1234, 0x8181)


def test_a_long_answer_is_truncated_over_udp(tmp_path: Path) -> None:
    path = tmp_path / "names"
    path.write_text("a many " + " ".join(f"10.0.{i // 250}.{i % 250 + 1}" for i in range(60)))
    names = Names(str(path))
    udp = local_answer(query("many"), names, False, udp=True) or b""
    assert len(udp) <= 512 and udp[2] & 0x02  # TC: ask again over TCP
    _, count, _ = answers(local_answer(query("many"), names, False, udp=False) or b"")
    assert count == 60


def test_the_table_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "names"
    path.write_text("a one 10.0.0.1\n")
    names = Names(str(path))
    assert names.current().a == {"one": ["10.0.0.1"]}
    tmp = tmp_path / "new"
    tmp.write_text("a two 10.0.0.2\n")
    os.replace(tmp, path)  # as the engine writes it
    assert names.current().a == {"two": ["10.0.0.2"]}
    path.unlink()
    assert names.current().a == {}


# --------------------------------------------------------------------------- the table


def _member(name: str, cid: str, eps: list[tuple[str, str, str, tuple[str, ...]]]) -> Container:
    return Container(
        id=cid,
        name=name,
        created="",
        image_id="",
        spec=ContainerSpec("busybox", name=name),
        state=ContainerState(status="running"),
        endpoints=tuple(
            (net, Endpoint(nid, aliases, ip_address=ip)) for net, nid, ip, aliases in eps
        ),
    )


def test_names_table_of_a_container_on_two_networks() -> None:
    me = _member("me", "a" * 64, [("front", "n1", "10.1.0.2", ("aaaaaaaaaaaa",))])
    me = me.with_endpoint("back", Endpoint("n2", ("aaaaaaaaaaaa",), ip_address="10.2.0.2"))
    db = _member("db", "b" * 64, [("back", "n2", "10.2.0.3", ("database", "bbbbbbbbbbbb"))])
    both = _member(
        "Both",
        "c" * 64,
        [("front", "n1", "10.1.0.9", ("x",)), ("back", "n2", "10.2.0.9", ("x",))],
    )
    members = {"n1": {"a": me, "c": both}, "n2": {"a": me, "b": db, "c": both}}
    text = names_table(me, {"n1": "front", "n2": "back"}, lambda nid: members[nid])
    lines = text.splitlines()
    # the first network that knows a name answers it (Docker resolves network by network)
    assert "a both 10.1.0.9" in lines and "a x 10.1.0.9" in lines
    assert "a both.back 10.2.0.9" in lines and "a x.back 10.2.0.9" in lines
    assert "a db 10.2.0.3" in lines and "a database.back 10.2.0.3" in lines
    assert "a bbbbbbbbbbbb 10.2.0.3" in lines and "a me 10.1.0.2" in lines
    assert "p 10.2.0.3 db.back" in lines and "p 10.1.0.9 Both.front" in lines
    # links on user networks: an alias for the linking container only
    linked = _member("me", "a" * 64, [("back", "n2", "10.2.0.2", ())])
    from dockyard.model.container import replace

    linked = replace(linked, spec=replace(linked.spec, links=(("db", "store"),)))
    text = names_table(linked, {"n2": "back"}, lambda nid: members[nid])
    assert "a store 10.2.0.3" in text.splitlines()
    assert names_table(linked, {}, lambda nid: members[nid]) == ""  # the default bridge


# --------------------------------------------------------------------------- resolv.conf


HOST = "# host\nsearch corp.example\nnameserver 127.0.0.53\nnameserver 10.1.1.1\noptions edns0\n"


def test_embedded_resolv_conf_like_docker() -> None:
    assert embedded_resolv_conf(HOST) == (
        "search corp.example\nnameserver 127.0.0.11\noptions edns0 ndots:0\n",
        ["10.1.1.1"],
        False,
    )
    text, upstreams, ndots = embedded_resolv_conf(
        HOST, ["10.9.9.9", "2001:db8::1"], ["a.example"], ["ndots:2", "timeout:1"]
    )
    assert text == (
        "search a.example\nnameserver 127.0.0.11\nnameserver 2001:db8::1\n"
        "options ndots:2 timeout:1\n"
    )
    assert (upstreams, ndots) == (["10.9.9.9"], True)
    # only loopback servers on the host: Docker's fallback upstreams
    assert embedded_resolv_conf("nameserver 127.0.0.1\n")[1] == ["8.8.8.8", "8.8.4.4"]
    assert embedded_resolv_conf(HOST, (), ["."])[0].startswith("nameserver 127.0.0.11\n")


def test_nat_rules() -> None:
    assert nat_rules(40000, 40001).splitlines() == [
        "*nat",
        ":OUTPUT ACCEPT [0:0]",
        "-A OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination "
        "127.0.0.11:40000",
        "-A OUTPUT -d 127.0.0.11/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination "
        "127.0.0.11:40001",
        "COMMIT",
    ]


# --------------------------------------------------------------------------- serving


UPSTREAM, DEAD = "127.0.0.113", "127.0.0.114"


@contextmanager
def upstream(answer: bytes) -> Iterator[list[str]]:
    """A DNS server on UPSTREAM:53 (UDP and TCP) answering every question with an A record
    ``answer``; yields the names it was asked."""
    asked: list[str] = []
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    udp.bind((UPSTREAM, 53))
    tcp.bind((UPSTREAM, 53))
    tcp.listen()
    stop = threading.Event()

    def respond(q: bytes) -> bytes:
        parsed = parse_question(q)
        assert parsed is not None
        asked.append(parsed.name)
        return resolver.reply(q, parsed, [resolver.a_record(socket.inet_ntoa(answer))])

    def serve_udp() -> None:
        udp.settimeout(0.1)
        while not stop.is_set():
            try:
                q, peer = udp.recvfrom(512)
            except TimeoutError:
                continue
            udp.sendto(respond(q), peer)

    def serve_tcp() -> None:
        tcp.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = tcp.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                (size,) = struct.unpack("!H", conn.recv(2))
                out = respond(conn.recv(size))
                conn.sendall(struct.pack("!H", len(out)) + out)

    threads = [threading.Thread(target=f, daemon=True) for f in (serve_udp, serve_tcp)]
    for t in threads:
        t.start()
    try:
        yield asked
    finally:
        stop.set()
        for t in threads:
            t.join()
        udp.close()
        tcp.close()


@pytest.fixture
def server(names: Names) -> Iterator[tuple[int, int]]:
    """The resolver serving ``names`` on 127.0.0.1 (UDP and TCP ports), forwarding to a dead
    server first and then to UPSTREAM; it stops when its "init" pipe closes."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp.bind(("127.0.0.1", 0))
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    ports = (udp.getsockname()[1], tcp.getsockname()[1])
    until_r, until_w = os.pipe()
    s = Server(udp, tcp, names, [DEAD, UPSTREAM], ndots_set=False)
    t = threading.Thread(target=s.serve, args=(until_r,), daemon=True)
    t.start()
    try:
        yield ports
    finally:
        os.close(until_w)  # as a pidfd turns readable when the init ends
        t.join(timeout=10)
        assert not t.is_alive()
        os.close(until_r)
        udp.close()
        tcp.close()


def ask_udp(port: int, q: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(30)
        s.connect(("127.0.0.1", port))
        s.send(q)
        return s.recv(65535)


def ask_tcp(port: int, qs: list[bytes]) -> list[bytes]:
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        for q in qs:
            s.sendall(struct.pack("!H", len(q)) + q)
            (size,) = struct.unpack("!H", s.recv(2))
            data = b""
            while len(data) < size:
                data += s.recv(size - len(data))
            out.append(data)
    return out


def test_server_answers_and_forwards_over_udp_and_tcp(server: tuple[int, int]) -> None:
    udp_port, tcp_port = server
    with upstream(bytes([10, 7, 7, 7])) as asked:
        _, _, records = answers(ask_udp(udp_port, query("db")))
        assert records == [(1, bytes([10, 0, 0, 2]))]
        _, _, records = answers(ask_udp(udp_port, query("far.example", qid=7)))
        assert records == [(1, bytes([10, 7, 7, 7]))]  # the dead server was skipped
        local, forwarded = ask_tcp(tcp_port, [query("db.net"), query("tcp.example")])
        assert answers(local)[2] == [(1, bytes([10, 0, 0, 2]))]
        assert answers(forwarded)[2] == [(1, bytes([10, 7, 7, 7]))]
    assert asked == ["far.example", "tcp.example"]  # never a container's name
    # no upstream answers: SERVFAIL, with the question's ID
    servfail = ask_udp(udp_port, query("gone.example", qid=9))
    assert struct.unpack("!HH", servfail[:4]) == (9, 0x8182)
