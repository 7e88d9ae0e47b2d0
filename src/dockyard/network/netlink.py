"""A small rtnetlink client: pyroute2's message classes over a plain netlink socket.

``import pyroute2`` costs ~130 ms here (its ``__init__`` pulls in asyncio, multiprocessing and
every protocol it knows), which is most of a container start. The message classes alone
(``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``: pyroute2's encoders and decoders for links,
addresses and routes) load in ~25 ms once the package ``__init__`` is skipped, so we load
them under a bare package module and do the socket I/O ourselves: send a batch of requests,
read one acknowledgement per request.
"""

from __future__ import annotations

import _thread
import errno
import os
import socket
import struct
import sys
from collections.abc import Iterator
from typing import Any, Self

from dockyard.errors import DockyardError

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE = 24
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLMSG_ERROR, NLMSG_DONE = 2, 3
IFF_UP = 0x1
_HDR = struct.Struct("=IHHII")


class NetlinkError(DockyardError):
    def __init__(self, code: int, what: str):
        self.code = code
        super().__init__(f"{what}: {os.strerror(code)}")


_classes: dict[str, Any] = {}
# The loader below puts a bare package in sys.modules for a moment: two threads (parallel
# build stages) must not do that at once. _thread: a lock without threading's import.
_classes_lock = _thread.allocate_lock()


def _msg(name: str) -> Any:
    """pyroute2's message class ``name`` (ifinfmsg, ifaddrmsg, rtmsg), loaded cheaply."""
    if not _classes:
        with _classes_lock:
            if not _classes:
                _load_classes()
    return _classes[name]


def _load_classes() -> None:
    bare = "pyroute2" not in sys.modules
    if bare:
        import importlib.util
        import types

        spec = importlib.util.find_spec("pyroute2")
        if spec is None or not spec.submodule_search_locations:
            raise DockyardError("pyroute2 is not installed")
        pkg = types.ModuleType("pyroute2")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["pyroute2"] = pkg
    try:
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # type: ignore[import-untyped]
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg  # type: ignore[import-untyped]
        from pyroute2.netlink.rtnl.rtmsg import rtmsg  # type: ignore[import-untyped]
    finally:
        if bare:
            # A later full ``import pyroute2`` runs the real __init__ and reuses these.
            sys.modules.pop("pyroute2", None)
    _classes.update(ifinfmsg=ifinfmsg, ifaddrmsg=ifaddrmsg, rtmsg=rtmsg)


def ack_code(payload: bytes) -> int:
    """The errno an NLMSG_ERROR payload carries (0: a plain acknowledgement)."""
    return -int(struct.unpack_from("=i", payload)[0])


class NetlinkSocket:
    """A netlink socket of ``protocol`` in the network namespace of the thread that opened
    it, with the message framing every netlink family shares."""

    def __init__(self, protocol: int) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        self.sock.bind((0, 0))
        self.sock.settimeout(30.0)  # the kernel answers at once; never hang on a lost ack
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self) -> Iterator[tuple[int, int, bytes]]:
        """(type, sequence number, whole message) of each message one read returns."""
        data = self.sock.recv(1 << 20)
        off = 0
        while off + _HDR.size <= len(data):
            length, mtype, _flags, seq, _pid = _HDR.unpack_from(data, off)
            if length < _HDR.size:
                break
            yield mtype, seq, data[off : off + length]
            off += (length + 3) & ~3

    def replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        """(type, whole message) of each answer to request ``seq``, up to and with its DONE
        or ERROR message."""
        while True:
            for mtype, s, msg in self._read():
                if s == seq:
                    yield mtype, msg
                    if mtype in (NLMSG_DONE, NLMSG_ERROR):
                        return


class Netlink(NetlinkSocket):
    """An rtnetlink socket in the network namespace of the thread that opened it."""

    def __init__(self) -> None:
        super().__init__(NETLINK_ROUTE)
        self.pending: list[tuple[int, str, tuple[int, ...]]] = []

    # ------------------------------------------------------------ raw requests

    def _encode(
        self, kind: str, fields: dict[str, Any], attrs: list[Any], mtype: int, flags: int
    ) -> bytes:
        msg = _msg(kind)()
        for k, v in fields.items():
            msg[k] = v
        msg["attrs"] = attrs
        self.seq += 1
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        return bytes(msg.data)

    def queue(
        self,
        kind: str,
        mtype: int,
        fields: dict[str, Any],
        attrs: list[Any],
        *,
        flags: int = 0,
        what: str = "netlink request",
        ok: tuple[int, ...] = (),
    ) -> None:
        """Send one request now; :meth:`flush` collects its acknowledgement (errors in ``ok``
        are not failures, e.g. EEXIST for an idempotent add)."""
        data = self._encode(kind, fields, attrs, mtype, NLM_F_REQUEST | NLM_F_ACK | flags)
        self.sock.send(data)
        self.pending.append((self.seq, what, ok))

    def flush(self) -> None:
        """Wait for every queued request's acknowledgement; raise the first failure."""
        waiting = {seq: (what, ok) for seq, what, ok in self.pending}
        self.pending = []
        first: NetlinkError | None = None
        while waiting:
            for mtype, seq, msg in self._read():
                if mtype != NLMSG_ERROR or seq not in waiting:
                    continue
                what, ok = waiting.pop(seq)
                code = ack_code(msg[_HDR.size :])
                if code and code not in ok and first is None:
                    first = NetlinkError(code, what)
        if first is not None:
            raise first

    def request(self, *args: Any, **kw: Any) -> None:
        self.queue(*args, **kw)
        self.flush()

    def dump(self, kind: str, mtype: int, fields: dict[str, Any] | None = None) -> list[Any]:
        """Every object of a GET dump, decoded by pyroute2."""
        cls = _msg(kind)
        data = self._encode(kind, fields or {"family": 0}, [], mtype, NLM_F_REQUEST | NLM_F_DUMP)
        self.sock.send(data)
        out: list[Any] = []
        for t, msg in self.replies(self.seq):
            if t == NLMSG_ERROR:
                code = ack_code(msg[_HDR.size :])
                if code:
                    raise NetlinkError(code, "netlink dump")
            elif t != NLMSG_DONE:
                m = cls(msg)
                m.decode()
                out.append(m)
        return out

    # ------------------------------------------------------------ links

    def links(self) -> list[dict[str, Any]]:
        """Every link: {"index", "name", "kind", "master", "flags"}."""
        out = []
        for m in self.dump("ifinfmsg", RTM_GETLINK):
            info = m.get_attr("IFLA_LINKINFO")
            out.append(
                {
                    "index": int(m["index"]),
                    "name": str(m.get_attr("IFLA_IFNAME") or ""),
                    "kind": info.get_attr("IFLA_INFO_KIND") if info is not None else None,
                    "master": int(m.get_attr("IFLA_MASTER") or 0),
                    "flags": int(m["flags"]),
                    "alias": str(m.get_attr("IFLA_IFALIAS") or ""),
                }
            )
        return out

    def index(self, name: str) -> int | None:
        """The index of ``name`` in this socket's namespace."""
        for link in self.links():
            if link["name"] == name:
                return int(link["index"])
        return None

    def addresses(self, index: int) -> list[tuple[str, int]]:
        out = []
        for m in self.dump("ifaddrmsg", RTM_GETADDR, {"family": socket.AF_INET}):
            if int(m["index"]) == index:
                out.append((str(m.get_attr("IFA_ADDRESS")), int(m["prefixlen"])))
        return out

    def add_bridge(self, name: str) -> None:
        self.request(
            "ifinfmsg",
            RTM_NEWLINK,
            {"family": 0},
            [("IFLA_IFNAME", name), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})],
            flags=NLM_F_CREATE | NLM_F_EXCL,
            what=f"create bridge {name}",
            ok=(errno.EEXIST,),
        )

    def add_veth(self, host: str, peer: str, peer_netns_pid: int, *, master: int) -> None:
        """A veth pair: ``host`` here (enslaved to ``master``, up), ``peer`` created directly
        in the network namespace of process ``peer_netns_pid``."""
        peer_info = {"attrs": [("IFLA_IFNAME", peer), ("IFLA_NET_NS_PID", peer_netns_pid)]}
        self.queue(
            "ifinfmsg",
            RTM_NEWLINK,
            {"family": 0},
            [
                ("IFLA_IFNAME", host),
                ("IFLA_MASTER", master),
                (
                    "IFLA_LINKINFO",
                    {
                        "attrs": [
                            ("IFLA_INFO_KIND", "veth"),
                            ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer_info)]}),
                        ]
                    },
                ),
            ],
            flags=NLM_F_CREATE | NLM_F_EXCL,
            what=f"create veth {host}",
        )

    def set_link(
        self,
        index: int = 0,
        *,
        name: str = "",
        up: bool = True,
        mac: str = "",
        master: int | None = None,
        alias: str = "",
        what: str = "",
    ) -> None:
        attrs: list[Any] = []
        if name:
            attrs.append(("IFLA_IFNAME", name))
        if alias:
            attrs.append(("IFLA_IFALIAS", alias))
        if mac:
            attrs.append(("IFLA_ADDRESS", mac))
        if master is not None:
            attrs.append(("IFLA_MASTER", master))
        self.queue(
            "ifinfmsg",
            RTM_NEWLINK,
            {"family": 0, "index": index, "flags": IFF_UP if up else 0, "change": IFF_UP},
            attrs,
            what=what or f"set link {name or index}",
        )

    def delete_link(self, name: str = "", index: int = 0, *, missing_ok: bool = True) -> None:
        attrs = [("IFLA_IFNAME", name)] if name and not index else []
        self.request(
            "ifinfmsg",
            RTM_DELLINK,
            {"family": 0, "index": index},
            attrs,
            what=f"delete link {name or index}",
            ok=(errno.ENODEV,) if missing_ok else (),
        )

    # ------------------------------------------------------------ addresses and routes

    def add_address(self, index: int, address: str, prefixlen: int, broadcast: str) -> None:
        self.queue(
            "ifaddrmsg",
            RTM_NEWADDR,
            {"family": socket.AF_INET, "prefixlen": prefixlen, "index": index, "scope": 0},
            [("IFA_LOCAL", address), ("IFA_ADDRESS", address), ("IFA_BROADCAST", broadcast)],
            flags=NLM_F_CREATE | NLM_F_EXCL,
            what=f"add address {address}/{prefixlen}",
            ok=(errno.EEXIST,),
        )

    def add_default_route(self, gateway: str, index: int) -> None:
        self.queue(
            "rtmsg",
            RTM_NEWROUTE,
            {
                "family": socket.AF_INET,
                "dst_len": 0,
                "table": 254,  # main
                "proto": 3,  # boot, as `ip route add` marks it
                "scope": 0,  # universe
                "type": 1,  # unicast
            },
            [("RTA_GATEWAY", gateway), ("RTA_OIF", index)],
            flags=NLM_F_CREATE | NLM_F_EXCL,
            what=f"add default route via {gateway}",
            ok=(errno.EEXIST,),
        )


def link_index(name: str) -> int | None:
    """The index of link ``name`` in the calling process's network namespace (an ioctl)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None
