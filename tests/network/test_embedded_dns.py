"""The embedded DNS server on user networks, as a user meets it: ``nslookup`` (which reads no
hosts file) of a peer by name, alias, short ID, ``name.network`` and address; names that
only DNS knows; questions forwarded to the ``--dns`` servers; port 53 left to the container;
``network connect``; the server ending with its container. Each compared with Docker where
the reference Docker runs.

No question leaves this machine: every container that may forward one is given ``--dns``
pointing at a server this test runs on its network's gateway (tests/network/test_dns.py's
``dns_server``). The ``ctr`` fixture removes containers and bridges.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import CLI
from tests.helpers import needs_docker, reference_docker, wait_until
from tests.network.test_containers import inspect, net_inspect
from tests.network.test_dns import dns_server
from tests.runtime.test_seccomp_profile import docker

NET = "dockyard-test-dns"  # the same name on both engines: answers name it
FAR = "10.213.78.78"  # what the test's upstream server answers


def gateway_of(dy: CLI, network: str) -> str:
    return str(net_inspect(dy, network)["IPAM"]["Config"][0]["Gateway"])


def normalized(text: str) -> str:
    """Output with addresses, reverse names and short IDs replaced by tokens numbered in
    order of appearance (127.0.0.11 and the test's own addresses kept), so two engines'
    outputs compare. busybox's nslookup asks for A and AAAA at once and prints the answers
    as they come: each lookup's answers are sorted first."""
    paragraphs: list[str] = []
    answers: list[str] = []
    for p in text.split("\n\n"):
        if p.startswith("Non-authoritative answer:"):
            answers.append(p)
            continue
        paragraphs += sorted(answers) + [p]
        answers = []
    text = "\n\n".join(paragraphs + sorted(answers))
    seen: dict[str, str] = {}

    def token(kind: str, value: str) -> str:
        if value not in seen:
            seen[value] = f"<{kind}{len([k for k in seen.values() if k.startswith('<' + kind)])}>"
        return seen[value]

    text = re.sub(r"\b(?:\d+\.){4}in-addr\.arpa\b", lambda m: token("ptr", m.group()), text)
    text = re.sub(
        r"\b(?:\d+\.){3}\d+\b",
        lambda m: m.group() if m.group() in ("127.0.0.11", FAR) else token("ip", m.group()),
        text,
    )
    return re.sub(r"\b[0-9a-f]{12}\b", lambda m: token("id", m.group()), text)


# What a user runs in a container beside ``db`` (an alias ``database``, ``nc`` answering
# "hi" on port 80): every lookup a resolver that skips /etc/hosts makes, then the hosts
# file emptied, so that only DNS knows ``db``.
SCRIPT = """cat /etc/resolv.conf
nslookup db 127.0.0.11
nslookup database
nslookup db.{net}
nslookup {short}
nslookup -type=aaaa db
nslookup {ip}
nslookup DB
nslookup $(hostname)
echo > /etc/hosts
nslookup db
nc db 80
"""


def dockyard_lookups(ctr: CLI) -> tuple[str, list[str]]:
    ctr("network", "create", NET)
    gw = gateway_of(ctr, NET)
    peer = ["--network", NET, "--network-alias", "database"]
    ctr("run", "-d", "--name", "db", *peer, "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "hi")
    info = inspect(ctr, "db")
    script = SCRIPT.format(
        net=NET, short=info["Id"][:12], ip=info["NetworkSettings"]["Networks"][NET]["IPAddress"]
    )
    with dns_server(gw, FAR) as asked:
        out = ctr("run", "--rm", "--network", NET, "--dns", gw, "busybox", "sh", "-c", script)
    return out.stdout, asked


def test_peers_resolve_through_the_embedded_dns_server(ctr: CLI) -> None:
    out, asked = dockyard_lookups(ctr)
    assert out.startswith("nameserver 127.0.0.11\noptions ndots:0\n")
    assert out.count("Server:\t\t127.0.0.11\nAddress:\t127.0.0.11:53\n") == 9
    assert out.endswith("\nhi\n")  # `nc db 80` with an empty /etc/hosts
    assert "name = db." + NET in out
    assert "can't find" not in out and "timed out" not in out
    assert asked == []  # every name is a container's: nothing went to the --dns server


@needs_docker
def test_docker_answers_the_same(ctr: CLI) -> None:
    ours, _ = dockyard_lookups(ctr)
    names = ["dockyard-test-dns-db"]
    docker("rm", "-f", *names)
    docker("network", "rm", NET)
    try:
        assert docker("network", "create", NET).returncode == 0
        gw = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", NET)
        gw_ip = gw.stdout.strip()
        r = docker(
            "run", "-d", "--name", names[0], "--network", NET, "--network-alias", "database",
            "--network-alias", "db", "busybox", "nc", "-ll", "-p", "80", "-e", "echo", "hi",
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        fmt = '{{.Id}} {{(index .NetworkSettings.Networks "' + NET + '").IPAddress}}'
        cid, ip = docker("inspect", "-f", fmt, names[0]).stdout.split()
        script = SCRIPT.format(net=NET, short=cid[:12], ip=ip)
        with dns_server(gw_ip, FAR) as asked:
            theirs = docker(
                "run", "--rm", "--network", NET, "--dns", gw_ip, "busybox", "sh", "-c", script
            )
        assert theirs.returncode == 0, theirs.stderr
        assert asked == []
    finally:
        docker("rm", "-f", *names)
        docker("network", "rm", NET)
    # Docker's peer is named dockyard-test-dns-db (Docker's names are global) with an alias
    # "db": its PTR answer names it so.
    theirs_out = theirs.stdout.replace("dockyard-test-dns-db." + NET, "db." + NET)
    assert normalized(ours) == normalized(theirs_out)


@contextmanager
def docker_network(name: str) -> Iterator[str]:
    """A Docker network (Docker picks its subnet); yields its gateway."""
    docker("network", "rm", name)
    assert docker("network", "create", name).returncode == 0
    try:
        gw = docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", name)
        yield gw.stdout.strip()
    finally:
        docker("network", "rm", name)


FORWARDED = """nslookup -type=a far.example
nslookup -type=a single
"""


def test_other_names_go_to_the_dns_servers(ctr: CLI) -> None:
    ctr("network", "create", "fwd")
    gw = gateway_of(ctr, "fwd")
    with dns_server(gw, FAR) as asked:
        plain = ctr(
            "run", "--rm", "--network", "fwd", "--dns", gw, "busybox", "sh", "-c", FORWARDED
        )
        assert asked == ["far.example", "single"]
        asked.clear()
        # ndots set by the user: single-label names are not forwarded (Docker's rule)
        ndots = ctr(
            "run", "--rm", "--network", "fwd", "--dns", gw, "--dns-option", "ndots:1",
            "busybox", "sh", "-c", "cat /etc/resolv.conf; " + FORWARDED,
        )  # fmt: skip
        assert asked == ["far.example"]
    assert plain.stdout.count(f"Address: {FAR}") == 2
    assert ndots.stdout.startswith("nameserver 127.0.0.11\noptions ndots:1\n")
    assert ndots.stdout.count(f"Address: {FAR}") == 1
    if reference_docker():
        with docker_network("dockyard-test-fwd") as dgw, dns_server(dgw, FAR) as dasked:
            r = docker(
                "run", "--rm", "--network", "dockyard-test-fwd", "--dns", dgw,
                "--dns-option", "ndots:1", "busybox", "sh", "-c",
                "cat /etc/resolv.conf; " + FORWARDED,
            )  # fmt: skip
            assert dasked == ["far.example"]
        assert normalized(r.stdout) == normalized(ndots.stdout)


def test_port_53_stays_free_for_the_container(ctr: CLI) -> None:
    """A DNS server in a container on a user network binds port 53: the embedded server
    listens elsewhere (the namespace's nat rules send 127.0.0.11:53 to it)."""
    ctr("network", "create", "own53")
    gw = gateway_of(ctr, "own53")
    with dns_server(gw, FAR):
        out = ctr(
            "run", "--rm", "--network", "own53", "--name", "dns", "--dns", gw, "busybox",
            "sh", "-c", "nc -l -p 53 & sleep 0.5; netstat -lnt | grep ':53 '; nslookup dns",
        )  # fmt: skip
    assert ":::53" in out.stdout and "LISTEN" in out.stdout and "Name:\tdns" in out.stdout


def resolver_of(ctr: CLI, cid: str) -> list[int]:
    """The processes of the embedded DNS server of container ``cid``."""
    table = str(ctr.run_root / "containers" / cid / "dns-names")
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if table.encode() in argv:
                out.append(int(pid))
    return out


def test_a_later_peer_is_known_and_forgotten_and_the_server_ends_with_its_container(
    ctr: CLI,
) -> None:
    ctr("network", "create", "later")
    gw = gateway_of(ctr, "later")
    first = ctr(
        "run", "-d", "--network", "later", "--dns", gw, "--name", "first", "busybox", "sleep", "300"
    ).stdout.strip()
    assert len(resolver_of(ctr, first)) == 1
    with dns_server(gw, FAR) as asked:
        before = ctr("exec", "first", "nslookup", "-type=a", "late").stdout
        ctr("run", "-d", "--network", "later", "--name", "late", "busybox", "sleep", "300")
        late_ip = inspect(ctr, "late")["NetworkSettings"]["Networks"]["later"]["IPAddress"]
        during = ctr("exec", "first", "nslookup", "-type=a", "late").stdout
        ctr("rm", "-f", "late")
        after = ctr("exec", "first", "nslookup", "-type=a", "late").stdout
    assert FAR in before and f"Address: {late_ip}" in during and FAR in after
    assert asked == ["late", "late"]  # before it ran and after it went
    ctr("stop", "-t", "1", "first")
    wait_until(lambda: resolver_of(ctr, first) == [], what="the DNS server to end")
    ctr("start", "first")
    assert len(resolver_of(ctr, first)) == 1  # a new one for the new run
    pid = resolver_of(ctr, first)[0]
    subprocess.run(["kill", "-KILL", str(inspect(ctr, "first")["State"]["Pid"])], check=True)
    wait_until(lambda: not os.path.exists(f"/proc/{pid}"), what="the DNS server to end")


def test_network_connect_brings_the_dns_server(ctr: CLI) -> None:
    """Docker starts the embedded server when a running container joins its first user
    network, and points resolv.conf at it."""
    ctr("network", "create", "joined")
    gw = gateway_of(ctr, "joined")
    ctr("run", "-d", "--network", "joined", "--name", "db", "busybox", "sleep", "300")
    ctr("run", "-d", "--dns", gw, "--name", "c1", "busybox", "sleep", "300")
    assert "127.0.0.11" not in ctr("exec", "c1", "cat", "/etc/resolv.conf").stdout
    ctr("network", "connect", "joined", "c1")
    resolv = ctr("exec", "c1", "cat", "/etc/resolv.conf").stdout
    assert resolv == "nameserver 127.0.0.11\noptions ndots:0\n"
    db_ip = inspect(ctr, "db")["NetworkSettings"]["Networks"]["joined"]["IPAddress"]
    with dns_server(gw, FAR) as asked:
        out = ctr("exec", "c1", "nslookup", "db").stdout
    assert f"Address: {db_ip}" in out and asked == []


def test_a_link_on_a_user_network_is_an_alias_for_its_container_alone(ctr: CLI) -> None:
    """Docker: ``--link db:store`` on a user network adds no variables and no hosts entry;
    the linking container's DNS server answers ``store`` with db's address."""
    ctr("network", "create", "linked")
    gw = gateway_of(ctr, "linked")
    ctr("run", "-d", "--network", "linked", "--name", "db", "busybox", "sleep", "300")
    db_ip = inspect(ctr, "db")["NetworkSettings"]["Networks"]["linked"]["IPAddress"]
    script = "env | grep -c STORE_; grep -c store /etc/hosts; nslookup -type=a store"
    with dns_server(gw, FAR) as asked:
        out = ctr(
            "run", "--rm", "--network", "linked", "--dns", gw, "--link", "db:store", "busybox",
            "sh", "-c", script,
        ).stdout  # fmt: skip
        other = ctr(
            "run", "--rm", "--network", "linked", "--dns", gw, "busybox",
            "nslookup", "-type=a", "store",
        ).stdout  # fmt: skip
    assert out.startswith("0\n0\n") and f"Address: {db_ip}" in out
    assert FAR in other and asked == ["store"]  # another container does not know it
