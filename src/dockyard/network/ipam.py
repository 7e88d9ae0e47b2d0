"""IPv4 address management: choosing, validating and filling subnets, as Docker's default IPAM.

Everything here is pure apart from :func:`host_routes`, which reads ``/proc/net/route``; the
callers pass its answer in, so tests can supply any routing table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from ipaddress import IPv4Address, IPv4Network

from dockyard.errors import Conflict, InvalidArgument

# Docker's docker0 lives in 172.17.0.0/16 on these hosts; never hand it out.
RESERVED = (IPv4Network("172.17.0.0/16"),)

OVERLAP = "Pool overlaps with other one on this address space"
FULL = "no available IPv4 addresses on this network's address pools"


def default_pools() -> Iterator[IPv4Network]:
    """Docker's default address pools in order: 172.17-31.0.0/16, then 192.168.0.0/16 in /20s.

    ``DOCKYARD_ADDRESS_POOL=10.213.128.0/17`` (tests) replaces them with that range in /24s,
    starting at a random one so that separate stores made at once rarely pick the same."""
    import os

    pool = os.environ.get("DOCKYARD_ADDRESS_POOL")
    if pool:
        nets = list(IPv4Network(pool).subnets(new_prefix=24))
        start = int.from_bytes(os.urandom(2), "big") % len(nets)
        yield from nets[start:] + nets[:start]
        return
    for second in range(17, 32):
        yield IPv4Network(f"172.{second}.0.0/16")
    yield from IPv4Network("192.168.0.0/16").subnets(new_prefix=20)


def host_routes(path: str = "/proc/net/route") -> list[IPv4Network]:
    """The host's IPv4 routes (destination/mask), without the default route."""
    out: list[IPv4Network] = []
    try:
        with open(path) as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = int.from_bytes(bytes.fromhex(fields[1]), "little")
            mask = int.from_bytes(bytes.fromhex(fields[7]), "little")
        except ValueError:
            continue
        if mask == 0:
            continue  # the default route (0.0.0.0/0)
        prefix = bin(mask).count("1")
        net = IPv4Network((dest & mask, prefix), strict=False)
        if net not in out:
            out.append(net)
    return out


def _overlaps(net: IPv4Network, others: Sequence[IPv4Network]) -> bool:
    return any(net.overlaps(o) for o in others)


def choose_subnet(taken: Sequence[IPv4Network], host: Sequence[IPv4Network]) -> IPv4Network:
    """The first default pool that overlaps no taken network, host route or 172.17.0.0/16."""
    avoid = [*RESERVED, *taken, *host]
    for net in default_pools():
        if not _overlaps(net, avoid):
            return net
    raise Conflict(
        "could not find an available, non-overlapping IPv4 address pool among the "
        "defaults to assign to the network"
    )


def parse_subnet(subnet: str) -> IPv4Network:
    """``"10.1.0.0/16"`` -> network; InvalidArgument for malformed text or host bits set."""
    text = subnet.strip()
    if "/" not in text:
        raise InvalidArgument(f"invalid CIDR address: {subnet}")
    try:
        loose = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid CIDR address: {subnet}")
    if not isinstance(loose, IPv4Network):
        raise InvalidArgument(f"IPv6 subnets are not supported: {subnet}")
    if loose.network_address != ipaddress.ip_interface(text).ip:
        raise InvalidArgument(f"invalid subnet {subnet}: it should be {loose}")
    if loose.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {subnet}: the prefix must be /30 or shorter")
    return loose


def validate_subnet(
    subnet: str, taken: Sequence[IPv4Network], host: Sequence[IPv4Network]
) -> IPv4Network:
    """A user's ``--subnet``: well formed, and overlapping no network or host route."""
    net = parse_subnet(subnet)
    if _overlaps(net, [*taken, *host]):
        raise Conflict(OVERLAP)
    return net


def gateway_of(subnet: IPv4Network) -> IPv4Address:
    """Docker's default gateway: the first host address."""
    return subnet.network_address + 1


def validate_gateway(subnet: IPv4Network, gateway: str) -> IPv4Address:
    try:
        gw = IPv4Address(gateway.strip())
    except ValueError:
        raise InvalidArgument(f"invalid gateway address: {gateway}")
    if gw not in subnet:
        raise InvalidArgument(f"no matching subnet for gateway {gateway}")
    if gw in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"invalid gateway {gateway}: not a host address of {subnet}")
    return gw


def next_address(subnet: IPv4Network, gateway: IPv4Address | str, leased: set[str]) -> str:
    """The lowest host address that is neither leased, the gateway, network nor broadcast."""
    gw = IPv4Address(str(gateway))
    first = int(subnet.network_address) + 1
    last = int(subnet.broadcast_address) - 1
    for n in range(first, last + 1):
        addr = IPv4Address(n)
        if addr != gw and str(addr) not in leased:
            return str(addr)
    raise Conflict(FULL)
