"""--ip on run/create and ``network connect --ip``: a static IPv4 on a user-defined network
with a user-configured subnet, Docker 20.10's errors (and nothing created or changed), the
address kept across stop/start and never handed to another container meanwhile.

Subnets lie in 10.213.0.0/16 and bridges are dyt* (conftest); the ``ctr`` fixture removes
the containers, bridges and rules, also when a test fails.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import CLI, db_snapshot
from tests.network.test_containers import inspect, leases
from tests.runtime.test_containers import wait_for


def addr_inside(ctr: CLI, name: str, dev: str = "eth0") -> str:
    out = ctr("exec", name, "ip", "-o", "-4", "addr", "show", dev).stdout
    return out.split()[3]


@pytest.fixture
def static(ctr: CLI) -> CLI:
    ctr("network", "create", "--subnet", "10.213.46.0/24", "fixed")
    ctr("network", "create", "auto")  # a subnet from the pool: no static addresses there
    return ctr


DEFAULT_ONLY = "user specified IP address is supported on user defined networks only"


@pytest.mark.parametrize("verb", ["run", "create"])
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--ip", "10.213.46.9"], DEFAULT_ONLY),
        (["--network", "bridge", "--ip", "10.213.46.9"], DEFAULT_ONLY),
        (["--network", "host", "--ip", "10.213.46.9"], DEFAULT_ONLY),
        (["--network", "none", "--ip", "10.213.46.9"], DEFAULT_ONLY),
        (
            ["--network", "auto", "--ip", "10.213.46.9"],
            "user specified IP address is supported only when connecting to networks with user"
            " configured subnets",
        ),
        (
            ["--network", "fixed", "--ip", "10.213.47.9"],
            "Invalid address 10.213.47.9: It does not belong to any of this network's subnets",
        ),
        (["--network", "fixed", "--ip", "bad"], "invalid IPv4 address: bad"),
        (["--network", "fixed", "--ip", "10.213.46"], "invalid IPv4 address: 10.213.46"),
        (["--network", "fixed", "--ip", "fe80::1"], "invalid IPv4 address: fe80::1"),
        (["--network", "fixed", "--ip", "10.213.46.1"], "Address already in use"),  # gateway
        (["--network", "fixed", "--ip", "10.213.46.0"], "Address already in use"),
        (["--network", "fixed", "--ip", "10.213.46.255"], "Address already in use"),
    ],
)
def test_bad_static_address_creates_nothing(
    static: CLI, verb: str, flags: list[str], message: str
) -> None:
    static("run", "--rm", "busybox", "true")  # the default bridge exists: nothing new is made
    before = db_snapshot(static.root)
    r = static(verb, "--name", "never", *flags, "busybox", "true", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (125, "", f"Error: {message}\n")
    assert db_snapshot(static.root) == before
    assert static("ps", "-aq").stdout == ""
    # a failed run's early monitor takes back the dir it made once it sees the cancel
    wait_for(lambda: not any((static.root / "containers").iterdir()))


def test_address_in_use_by_a_running_or_stopped_container(static: CLI) -> None:
    static("run", "-d", "--name", "holder", "--network", "fixed", "--ip", "10.213.46.50",
           "busybox", "sleep", "300")  # fmt: skip
    for state in ("running", "stopped"):
        before = db_snapshot(static.root)
        r = static("run", "--network", "fixed", "--ip", "10.213.46.50", "busybox", "true",
                   check=False)  # fmt: skip
        assert (r.returncode, r.stderr) == (125, "Error: Address already in use\n"), state
        assert db_snapshot(static.root) == before
        static("stop", "-t", "0", "holder")
    assert static("ps", "-aq").stdout.split() == [inspect(static, "holder")["Id"][:12]]


def test_static_address_survives_stop_start_and_is_never_handed_out(static: CLI) -> None:
    static("network", "create", "--subnet", "10.213.48.0/29", "tiny")  # hosts .2 - .6
    static("run", "-d", "--name", "pinned", "--network", "tiny", "--ip", "10.213.48.3",
           "busybox", "sleep", "300")  # fmt: skip
    assert addr_inside(static, "pinned") == "10.213.48.3/29"
    ep = inspect(static, "pinned")["NetworkSettings"]["Networks"]["tiny"]
    assert ep["IPAMConfig"] == {"IPv4Address": "10.213.48.3"} and ep["IPAddress"] == "10.213.48.3"
    static("stop", "-t", "0", "pinned")
    ep = inspect(static, "pinned")["NetworkSettings"]["Networks"]["tiny"]
    assert ep["IPAMConfig"] == {"IPv4Address": "10.213.48.3"} and ep["IPAddress"] == ""
    # every other address goes to others while it is stopped; its own never does
    got = []
    for i in range(4):
        static("run", "-d", "--name", f"dyn{i}", "--network", "tiny", "busybox", "sleep", "300")
        got.append(addr_inside(static, f"dyn{i}"))
    assert sorted(got) == [f"10.213.48.{n}/29" for n in (2, 4, 5, 6)]
    r = static("create", "--network", "tiny", "busybox", check=False)
    assert r.returncode == 125 and "no available IPv4 addresses" in r.stderr
    static("start", "pinned")
    assert addr_inside(static, "pinned") == "10.213.48.3/29"
    assert (
        "1 packets received"
        in static("exec", "--privileged", "dyn0", "ping", "-c1", "-W5", "pinned").stdout
    )
    assert "10.213.48.3\tpinned" in static("exec", "dyn0", "cat", "/etc/hosts").stdout
    out = static("run", "--rm", "--network", "tiny", "--ip", "10.213.48.3", "busybox", "true",
                 check=False)  # fmt: skip
    assert out.stderr == "Error: Address already in use\n"
    # rm frees it
    static("rm", "-f", "pinned")
    out = static("run", "--rm", "--network", "tiny", "--ip", "10.213.48.3", "busybox", "ip", "-o",
                 "-4", "addr", "show", "eth0").stdout  # fmt: skip
    assert "10.213.48.3/29" in out


def test_parallel_creates_of_one_address_one_wins(static: CLI) -> None:
    def create(i: int) -> int:
        return static("create", "--name", f"race{i}", "--network", "fixed", "--ip",
                      "10.213.46.77", "busybox", check=False).returncode  # fmt: skip

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(create, range(6)))
    assert sorted(codes) == [0, 125, 125, 125, 125, 125]
    assert [r[1] for r in leases(static)] == ["10.213.46.77"]
    assert len(static("ps", "-aq").stdout.split()) == 1


def test_connect_with_ip(static: CLI) -> None:
    static("run", "-d", "--name", "multi", "busybox", "sleep", "300")
    static("create", "--name", "onfixed", "--network", "fixed", "busybox")
    r = static("network", "connect", "--ip", "10.213.46.5", "bridge", "onfixed", check=False)
    assert (r.returncode, r.stderr) == (125, f"Error: {DEFAULT_ONLY}\n")
    for net, ip, message in (
        (
            "auto",
            "10.213.46.5",
            "user specified IP address is supported only when connecting to networks with user"
            " configured subnets",
        ),
        (
            "fixed",
            "10.213.1.5",
            "Invalid address 10.213.1.5: It does not belong to any of this network's subnets",
        ),
        ("fixed", "nope", "invalid IPv4 address: nope"),
        ("fixed", "10.213.46.1", "Address already in use"),
    ):
        before = db_snapshot(static.root)
        r = static("network", "connect", "--ip", ip, net, "multi", check=False)
        assert (r.returncode, r.stderr) == (125, f"Error: {message}\n"), (net, ip)
        assert db_snapshot(static.root) == before
        assert "eth1" not in static("exec", "multi", "ip", "-o", "link").stdout
    static("network", "connect", "--ip", "10.213.46.66", "fixed", "multi")
    assert addr_inside(static, "multi", "eth1") == "10.213.46.66/24"
    ep = inspect(static, "multi")["NetworkSettings"]["Networks"]["fixed"]
    assert ep["IPAMConfig"] == {"IPv4Address": "10.213.46.66"}
    # a stopped container is connected with its address now and wired at its start
    static("create", "--name", "later", "busybox", "sleep", "300")
    r = static("network", "connect", "--ip", "10.213.46.66", "fixed", "later", check=False)
    assert r.stderr == "Error: Address already in use\n"
    static("network", "connect", "--ip", "10.213.46.67", "fixed", "later")
    static("start", "later")
    assert addr_inside(static, "later", "eth1") == "10.213.46.67/24"
    static("stop", "-t", "0", "later")
    static("start", "later")
    assert addr_inside(static, "later", "eth1") == "10.213.46.67/24"
    # disconnect releases it
    static("network", "disconnect", "fixed", "multi")
    r = static("run", "--rm", "--network", "fixed", "--ip", "10.213.46.66", "busybox", "true")
    assert r.returncode == 0
