"""``-p``/``--expose`` specs in Docker's grammar, and host port choice.

``-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`` where either port may be a range
(``8000-8002:80-82``); ``HOST_PORT`` empty or missing means "any free port".
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dockyard.errors import InvalidArgument

PROTOS = ("tcp", "udp", "sctp")


def _port_range(text: str, what: str) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    try:
        lo = int(lo_s)
        hi = int(hi_s) if dash else lo
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text}") from None
    if not (0 < lo <= 65535 and 0 < hi <= 65535) or hi < lo or not lo_s.isdigit():
        raise InvalidArgument(f"invalid {what}: {text}")
    return lo, hi


def _split_proto(text: str) -> tuple[str, str]:
    port, slash, proto = text.rpartition("/")
    if not slash:
        return text, "tcp"
    proto = proto.lower()
    if proto not in PROTOS:
        raise InvalidArgument(f"invalid proto: {proto}")
    return port, proto


def port_key(port: int, proto: str) -> str:
    return f"{port}/{proto}"


def parse_expose(spec: str) -> list[str]:
    """``--expose 80``, ``80/udp``, ``8000-8002`` -> ["80/tcp", ...]."""
    port, proto = _split_proto(spec.strip())
    lo, hi = _port_range(port, "range format for --expose specification")
    return [port_key(p, proto) for p in range(lo, hi + 1)]


def parse_publish(spec: str) -> list[tuple[str, str, str]]:
    """One ``-p`` spec -> [(container "port/proto", host ip, host port or "")]."""
    text = spec.strip()
    if not text:
        raise InvalidArgument("invalid publish spec: empty")
    if text.startswith("["):
        raise InvalidArgument(f"invalid publish spec {spec}: IPv6 addresses are not supported")
    rest, proto = _split_proto(text)
    parts = rest.split(":")
    if len(parts) == 1:
        ip, host, ctr = "", "", parts[0]
    elif len(parts) == 2:
        ip, host, ctr = "", parts[0], parts[1]
    elif len(parts) == 3:
        ip, host, ctr = parts
    else:
        raise InvalidArgument(f"invalid publish spec: {spec}: too many colons")
    if ip:
        import ipaddress

        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid ip address: {ip}") from None
    if not ctr:
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    c_lo, c_hi = _port_range(ctr, "containerPort")
    if host:
        h_lo, h_hi = _port_range(host, "hostPort")
        if h_hi - h_lo != c_hi - c_lo:
            raise InvalidArgument(f"invalid ranges specified for container and host Ports: {spec}")
    out = []
    for i, cport in enumerate(range(c_lo, c_hi + 1)):
        hport = str(h_lo + i) if host else ""
        out.append((port_key(cport, proto), ip, hport))
    return out


def port_bindings(specs: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    """HostConfig.PortBindings from ``-p`` specs (Docker's shape)."""
    out: dict[str, list[dict[str, str]]] = {}
    for spec in specs:
        for key, ip, hport in parse_publish(spec):
            out.setdefault(key, []).append({"HostIp": ip, "HostPort": hport})
    return out


def free_port(proto: str, ip: str) -> int:
    """A port the kernel considers free on ``ip`` (it picks from its ephemeral range)."""
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip or "0.0.0.0", 0))
        return int(s.getsockname()[1])


def resolve(
    bindings: Mapping[str, Sequence[Mapping[str, str]]],
    exposed: Iterable[str],
    publish_all: bool,
) -> list[tuple[str, str, int, int]]:
    """(proto, host ip, host port, container port) for every binding, random ports chosen;
    ``publish_all`` (-P) adds every exposed port without a binding on a random port."""
    out: list[tuple[str, str, int, int]] = []
    wanted: dict[str, list[Mapping[str, str]]] = {k: list(v) for k, v in bindings.items()}
    if publish_all:
        for key in exposed:
            wanted.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    for key, binds in wanted.items():
        port_s, _, proto = key.partition("/")
        proto = proto or "tcp"
        for b in binds:
            ip = b.get("HostIp") or "0.0.0.0"
            hport = int(b["HostPort"]) if b.get("HostPort") else free_port(proto, ip)
            out.append((proto, ip, hport, int(port_s)))
    return out


def ports_shape(
    exposed: Iterable[str], published: Iterable[tuple[str, str, int, int]]
) -> dict[str, Any]:
    """NetworkSettings.Ports: every exposed or published port, None when not published."""
    out: dict[str, Any] = {key: None for key in exposed}
    for proto, ip, hport, cport in published:
        out.setdefault(port_key(cport, proto), None)
        if out[port_key(cport, proto)] is None:
            out[port_key(cport, proto)] = []
        out[port_key(cport, proto)].append({"HostIp": ip, "HostPort": str(hport)})
    return out
