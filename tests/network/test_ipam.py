"""Address management: pool order, overlap checks, address allocation (no I/O but a file)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.engine.networks import next_free
from dockyard.errors import Conflict, InvalidArgument
from dockyard.network import ipam

N = IPv4Network


@pytest.fixture(autouse=True)
def docker_pools(monkeypatch: pytest.MonkeyPatch) -> None:
    """Docker's own pools, not the test range conftest sets for real stores."""
    monkeypatch.delenv("DOCKYARD_ADDRESS_POOL", raising=False)


def test_test_pool_is_a_shuffled_range_of_24s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_ADDRESS_POOL", "10.213.128.0/17")
    pools = list(ipam.default_pools())
    assert sorted(pools) == list(N("10.213.128.0/17").subnets(new_prefix=24))
    assert ipam.choose_subnet(pools[:-1], []) == pools[-1]


def test_pool_order_starts_after_docker0() -> None:
    pools = list(ipam.default_pools())
    assert pools[0] == N("172.17.0.0/16")
    assert pools[14] == N("172.31.0.0/16")
    assert pools[15] == N("192.168.0.0/20")
    assert pools[16] == N("192.168.16.0/20")
    assert len(pools) == 15 + 16


def test_choose_skips_172_17_always() -> None:
    assert ipam.choose_subnet([], []) == N("172.18.0.0/16")


def test_choose_skips_taken_and_host_routes() -> None:
    taken = [N("172.18.0.0/16"), N("172.20.5.0/24")]
    host = [N("172.19.0.0/16"), N("10.0.0.0/8")]
    assert ipam.choose_subnet(taken, host) == N("172.21.0.0/16")


def test_choose_skips_a_covering_host_route() -> None:
    # 172.16.0.0/12 covers every 172 pool: the next one is in 192.168.
    assert ipam.choose_subnet([], [N("172.16.0.0/12")]) == N("192.168.0.0/20")
    host = [N("172.16.0.0/12"), N("192.168.0.0/24")]
    assert ipam.choose_subnet([], host) == N("192.168.16.0/20")


def test_choose_exhausted() -> None:
    with pytest.raises(Conflict):
        ipam.choose_subnet([N("172.16.0.0/12"), N("192.168.0.0/16")], [])


def test_validate_ok() -> None:
    assert ipam.validate_subnet("10.213.1.0/24", [N("10.213.2.0/24")], []) == N("10.213.1.0/24")


@pytest.mark.parametrize("text", ["foo", "10.213.1.0", "10.213.1.0/33", "", "10.213.1.300/24"])
def test_validate_malformed(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid CIDR address"):
        ipam.validate_subnet(text, [], [])


def test_validate_host_bits() -> None:
    with pytest.raises(
        InvalidArgument, match=r"invalid subnet 10.213.1.5/24: it should be 10.213.1.0/24"
    ):
        ipam.validate_subnet("10.213.1.5/24", [], [])


def test_validate_ipv6_refused() -> None:
    with pytest.raises(InvalidArgument):
        ipam.validate_subnet("fd00::/64", [], [])


@pytest.mark.parametrize(
    "taken,host",
    [
        ([N("10.213.0.0/16")], []),
        ([N("10.213.1.128/25")], []),
        ([], [N("10.213.1.0/24")]),
        ([], [N("10.0.0.0/8")]),
    ],
)
def test_validate_overlap(taken: list[IPv4Network], host: list[IPv4Network]) -> None:
    with pytest.raises(Conflict, match="Pool overlaps with other one on this address space"):
        ipam.validate_subnet("10.213.1.0/24", taken, host)


def test_gateway_of() -> None:
    assert ipam.gateway_of(N("10.213.1.0/24")) == IPv4Address("10.213.1.1")
    assert ipam.gateway_of(N("172.18.0.0/16")) == IPv4Address("172.18.0.1")


def test_validate_gateway() -> None:
    net = N("10.213.1.0/24")
    assert ipam.validate_gateway(net, "10.213.1.254") == IPv4Address("10.213.1.254")
    for bad in ("10.213.2.1", "10.213.1.0", "10.213.1.255", "nope"):
        with pytest.raises(InvalidArgument):
            ipam.validate_gateway(net, bad)


def test_next_address_lowest_free() -> None:
    net = N("10.213.1.0/24")
    gw = IPv4Address("10.213.1.1")
    assert ipam.next_address(net, gw, set()) == "10.213.1.2"
    assert ipam.next_address(net, gw, {"10.213.1.2", "10.213.1.4"}) == "10.213.1.3"
    # a custom gateway in the middle is skipped, the low addresses used
    assert ipam.next_address(net, IPv4Address("10.213.1.2"), {"10.213.1.1"}) == "10.213.1.3"


def test_next_address_full() -> None:
    net = N("10.213.1.0/29")  # .1 gateway, .2-.6 hosts, .7 broadcast
    leased = {f"10.213.1.{i}" for i in range(2, 7)}
    with pytest.raises(
        Conflict, match="no available IPv4 addresses on this network's address pools"
    ):
        ipam.next_address(net, ipam.gateway_of(net), leased)


def test_next_address_smallest_subnet() -> None:
    net = N("10.213.1.0/30")
    assert ipam.next_address(net, "10.213.1.1", set()) == "10.213.1.2"
    with pytest.raises(Conflict):
        ipam.next_address(net, "10.213.1.1", {"10.213.1.2"})


@settings(max_examples=60, deadline=None)
@given(
    prefix=st.integers(min_value=24, max_value=30),
    gw_offset=st.integers(min_value=1, max_value=2),
    pre_leased=st.sets(st.integers(min_value=1, max_value=254), max_size=20),
)
def test_next_address_property(prefix: int, gw_offset: int, pre_leased: set[int]) -> None:
    """Repeated allocation hands out distinct host addresses, never the gateway, network or
    broadcast, until the pool is exactly full."""
    net = N(f"10.213.7.0/{prefix}")
    gw = net.network_address + gw_offset
    hosts = {str(h) for h in net.hosts()}
    leased = {str(net.network_address + i) for i in pre_leased} & hosts - {str(gw)}
    start = set(leased)
    got: list[str] = []
    while True:
        try:
            addr = ipam.next_address(net, gw, leased)
        except Conflict:
            with pytest.raises(Conflict):
                next_free(str(net), str(gw), leased)
            break
        # the engine's integer version (no ipaddress on the run path) agrees
        assert next_free(str(net), str(gw), leased) == addr
        assert addr in hosts
        assert addr != str(gw)
        assert addr not in leased
        # the lowest free address
        free = sorted((h for h in hosts - leased - {str(gw)}), key=IPv4Address)
        assert addr == free[0]
        leased.add(addr)
        got.append(addr)
    assert len(got) == len(set(got))
    assert leased == hosts - {str(gw)}
    assert len(got) == len(hosts) - 1 - len(start)


def test_host_routes_parses_proc_format(tmp_path: Path) -> None:
    f = tmp_path / "route"
    f.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert ipam.host_routes(str(f)) == [N("172.17.0.0/16"), N("192.0.2.0/24")]
    assert ipam.host_routes(str(tmp_path / "missing")) == []


def test_host_routes_real() -> None:
    routes = ipam.host_routes()
    assert all(isinstance(r, IPv4Network) for r in routes)
    assert N("0.0.0.0/0") not in routes
