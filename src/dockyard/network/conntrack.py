"""The host's connection tracking table through ctnetlink (NETLINK_NETFILTER).

Docker clears the conntrack entries of a container's published UDP ports when the container
starts: a client that kept sending to the host port before the DNAT rule existed has an
entry without NAT, and as long as it keeps sending (UDP entries live 30-180 s and every
datagram renews them) its datagrams follow that entry past the new rule and never reach the
container. Deleting the entries makes the next datagram look new, so it is NATed.

pyroute2's conntrack socket pulls in its asyncio-based socket layer, so, as netlink.py does
for rtnetlink, we speak the protocol over a plain socket: one IPv4 dump, then one delete per
matching entry, naming it by the original-direction tuple exactly as the kernel sent it.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from dockyard.network.netlink import (
    _HDR,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    NetlinkError,
    NetlinkSocket,
    ack_code,
)

NETLINK_NETFILTER = 12
_CT_GET = (1 << 8) | 1  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
_CT_DELETE = (1 << 8) | 2  # ... | IPCTNL_MSG_CT_DELETE
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_ZONE = 1, 2, 18
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
NLA_F_NESTED = 0x8000
_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
_NLA = struct.Struct("=HH")
IPPROTO_UDP = 17


class Flow(NamedTuple):
    """One conntrack entry: its original direction, and where replies come from (a NATed
    flow's reply source is the DNAT target)."""

    proto: int
    src: str
    dst: str
    sport: int
    dport: int
    reply_src: str
    orig: bytes  # the CTA_TUPLE_ORIG payload as the kernel sent it
    zone: bytes  # the CTA_ZONE payload, or b""


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    off = 0
    while off + _NLA.size <= len(data):
        length, kind = _NLA.unpack_from(data, off)
        if length < _NLA.size:
            break
        out[kind & _TYPE_MASK] = data[off + _NLA.size : off + length]
        off += (length + 3) & ~3
    return out


def _attr(kind: int, payload: bytes) -> bytes:
    raw = _NLA.pack(_NLA.size + len(payload), kind) + payload
    return raw + b"\0" * (-len(raw) % 4)


def _tuple(payload: bytes) -> tuple[int, str, str, int, int]:
    """(protocol, source, destination, source port, destination port) of a CTA_TUPLE_*."""
    t = _attrs(payload)
    ip = _attrs(t.get(CTA_TUPLE_IP, b""))
    proto = _attrs(t.get(CTA_TUPLE_PROTO, b""))

    def addr(kind: int) -> str:
        raw = ip.get(kind, b"")
        return socket.inet_ntoa(raw) if len(raw) == 4 else ""

    def port(kind: int) -> int:
        raw = proto.get(kind, b"")
        return int.from_bytes(raw, "big") if len(raw) == 2 else 0

    num = proto.get(CTA_PROTO_NUM, b"\0")[0]
    return (
        num,
        addr(CTA_IP_V4_SRC),
        addr(CTA_IP_V4_DST),
        port(CTA_PROTO_SRC_PORT),
        port(CTA_PROTO_DST_PORT),
    )


class Conntrack(NetlinkSocket):
    """A ctnetlink socket in the network namespace of the thread that opened it."""

    def __init__(self) -> None:
        super().__init__(NETLINK_NETFILTER)

    def _send(self, mtype: int, flags: int, attrs: bytes = b"") -> int:
        self.seq += 1
        body = struct.pack("=BBH", socket.AF_INET, 0, 0) + attrs  # nfgenmsg: family, v0, res 0
        self.sock.send(_HDR.pack(_HDR.size + len(body), mtype, flags, self.seq, 0) + body)
        return self.seq

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """(type, payload) of the answers to request ``seq``, until its DONE or ERROR."""
        for mtype, msg in self.replies(seq):
            yield mtype, msg[_HDR.size :]

    def flows(self) -> list[Flow]:
        """Every IPv4 entry of the table."""
        out = []
        for mtype, payload in self._replies(self._send(_CT_GET, NLM_F_REQUEST | NLM_F_DUMP)):
            if mtype == NLMSG_ERROR:
                code = ack_code(payload)
                if code:
                    raise NetlinkError(code, "conntrack dump")
                continue
            if mtype != _CT_GET and mtype != (1 << 8):  # IPCTNL_MSG_CT_NEW answers a dump
                continue
            a = _attrs(payload[4:])  # past the nfgenmsg
            orig = a.get(CTA_TUPLE_ORIG)
            if orig is None:
                continue
            proto, src, dst, sport, dport = _tuple(orig)
            reply_src = _tuple(a.get(CTA_TUPLE_REPLY, b""))[1]
            out.append(Flow(proto, src, dst, sport, dport, reply_src, orig, a.get(CTA_ZONE, b"")))
        return out

    def delete(self, flow: Flow) -> bool:
        """Delete one entry; False if it was gone already."""
        attrs = _attr(CTA_TUPLE_ORIG | NLA_F_NESTED, flow.orig)
        if flow.zone:
            attrs += _attr(CTA_ZONE, flow.zone)
        seq = self._send(_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, attrs)
        for mtype, payload in self._replies(seq):
            if mtype == NLMSG_ERROR:
                code = ack_code(payload)
                if code == errno.ENOENT:
                    return False
                if code:
                    raise NetlinkError(code, "conntrack delete")
        return True


def clear_udp(ports: Iterable[tuple[str, int]]) -> int:
    """Delete the host's UDP entries whose original destination is one of ``ports``
    ((host address, port); "0.0.0.0" or "" is any address). Returns how many went."""
    wanted = list(ports)
    if not wanted:
        return 0
    gone = 0
    with Conntrack() as ct:
        for f in ct.flows():
            if f.proto != IPPROTO_UDP:
                continue
            if any(f.dport == p and ip in ("", "0.0.0.0", f.dst) for ip, p in wanted):
                gone += ct.delete(f)
    return gone
