"""User-defined bridge networks: a row in ``networks``, a Linux bridge, and address leases.

The metadata database decides everything (names, subnets, addresses) inside one
``BEGIN IMMEDIATE`` transaction; the bridge device follows the row.
"""

from __future__ import annotations

import _thread
import os

from dockyard import fastjson as json  # the C codec: create and run import this module
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.lazy import cached_property
from dockyard.sqlite import sqlite3  # _sqlite3, loaded without functools

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see engine/containers.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from ipaddress import IPv4Network
    from typing import Any

    from dockyard.engine import Engine
    from dockyard.engine.endpoints import Endpoints, NetPlan
    from dockyard.engine.prune import PruneFilters
    from dockyard.model.container import Container

# ipaddress and ipam load only where subnets are chosen (network create): a container's
# create and start do their address arithmetic on integers (~1.5 ms less per run).

# Patterns, compiled on use: `network ls` loads this module, and re (with enum) is ~2 ms of
# its start-up.
_DEFAULT_CREATION = _thread.allocate_lock()  # see NetworkService.ensure_default
_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
_DEVICE = r"^[a-zA-Z0-9_.-]+$"
DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE_PREFIX = "dy-"
IFNAMSIZ = 15


def prefixlen(subnet: str) -> int:
    return int(str(subnet).rsplit("/", 1)[1])


def _span(subnet: str) -> tuple[int, int]:
    """(first address as an integer, number of addresses) of ``subnet`` ("a.b.c.d/n")."""
    import _socket  # not the socket module (its enums): create and run call this

    base_s, _, bits = subnet.partition("/")
    size = 1 << (32 - int(bits))
    return int.from_bytes(_socket.inet_aton(base_s), "big") & ~(size - 1) & 0xFFFFFFFF, size


def next_free(subnet: str, gateway: str, leased: set[str]) -> str:
    """:func:`dockyard.network.ipam.next_address` on integers: the lowest host address of
    ``subnet`` ("a.b.c.d/n") that is neither leased nor the gateway."""
    import _socket  # not the socket module (its enums): create and run call this

    base, size = _span(subnet)
    for n in range(base + 1, base + size - 1):
        addr = _socket.inet_ntoa(n.to_bytes(4, "big"))
        if addr != gateway and addr not in leased:
            return addr
    raise Conflict("no available IPv4 addresses on this network's address pools")


def check_ipv4(text: str) -> str:
    """A user's ``--ip``: a dotted-quad IPv4 address (canonical), else Docker's error."""
    from ipaddress import IPv4Address

    try:
        return str(IPv4Address(text))
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address: {text}") from None


def bridge_prefix() -> str:
    return os.environ.get("DOCKYARD_BRIDGE_PREFIX") or DEFAULT_BRIDGE_PREFIX


def bridge_name(network_id: str) -> str:
    prefix = bridge_prefix()
    return prefix + network_id[: IFNAMSIZ - len(prefix)]


DEFAULT_ROOT = "/var/lib/dockyard"
DEFAULT_BRIDGE = "dockyard0"


class NetworkService:
    def __init__(self, engine: Engine, routes: Callable[[], Sequence[IPv4Network]] | None = None):
        self.engine = engine
        self.db = engine.store.db
        self.routes = routes

    # ------------------------------------------------------------------ create

    def create(
        self,
        name: str,
        *,
        subnet: str | None = None,
        gateway: str | None = None,
        labels: dict[str, str] | None = None,
        internal: bool = False,
        device: str = "",
        options: dict[str, str] | None = None,
        attachable: bool = False,
    ) -> str:
        """A bridge network. ``options``: the driver options as the user gave them, reported
        by inspect as given; of them only ``com.docker.network.bridge.name`` (the device)
        changes anything here."""
        import re

        options = dict(options or {})
        chosen = options.get("com.docker.network.bridge.name", "")
        if chosen:
            if len(chosen) > 15 or not re.match(_DEVICE, chosen):
                raise InvalidArgument(
                    f"invalid bridge name {chosen!r}: at most 15 of [a-zA-Z0-9_.-]"
                )
            if os.path.exists(f"/sys/class/net/{chosen}"):
                # Never adopt a device someone else owns (docker0...): rm would delete it.
                raise Conflict(f"bridge name {chosen} is already in use on this host")
            device = chosen
        if not re.match(_NAME, name):
            raise InvalidArgument(
                f'invalid name "{name}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed'
            )
        if gateway and not subnet:
            raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
        from ipaddress import IPv4Network

        from dockyard.image.config import now_rfc3339
        from dockyard.network import ipam

        reclaim_orphans()  # frees the subnets of deleted stores' bridges
        net_id = os.urandom(32).hex()
        bridge = device or bridge_name(net_id)
        # user_subnet: only such networks take static addresses (--ip), as in Docker.
        data = {
            "labels": labels or {},
            "internal": internal,
            "user_subnet": bool(subnet),
            **({"options": options} if options else {}),
            **({"attachable": True} if attachable else {}),
        }
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM networks WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"network with name {name} already exists")
            taken = [IPv4Network(r[0]) for r in c.execute("SELECT subnet FROM networks")]
            # Our own bridges' routes are the taken networks already; the rest is the host's.
            host = [r for r in (self.routes or ipam.host_routes)() if r not in taken]
            if subnet:
                net = ipam.validate_subnet(subnet, taken, host)
            else:
                net = ipam.choose_subnet(taken, host)
            gw = ipam.validate_gateway(net, gateway) if gateway else ipam.gateway_of(net)
            c.execute(
                "INSERT INTO networks (id, name, driver, subnet, gateway, bridge, created, data)"
                " VALUES (?, ?, 'bridge', ?, ?, ?, ?, ?)",
                (net_id, name, str(net), str(gw), bridge, now_rfc3339(), json.dumps(data)),
            )
        from dockyard.network import bridge as br
        from dockyard.network import firewall

        try:
            br.ensure_bridge(bridge, str(gw), net.prefixlen, owner=os.path.abspath(self.db.path))
            firewall.setup_network(bridge, str(net))
        except BaseException:
            with self.db.transaction() as c:
                c.execute("DELETE FROM networks WHERE id = ?", (net_id,))
            try:
                br.delete_bridge(bridge)
                firewall.teardown_network(bridge)
            except DockyardError:
                pass
            raise
        if name != DEFAULT_NETWORK:  # Docker's own networks exist before any event
            self.engine.events.emit("network", "create", net_id, {"name": name, "type": "bridge"})
        return net_id

    def ensure_default(self) -> str:
        """The default ``bridge`` network, created on first use; returns its id."""
        r = self.db.one("SELECT id FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
        if r:
            return str(r["id"])
        # One thread of this process makes it, the others then read it: the daemon's first
        # runs from 50 docker-py clients made 18 attempts at once, each listing the host's
        # links and routes (2 s apiece) before all but one found the name taken.
        with _DEFAULT_CREATION:
            r = self.db.one("SELECT id FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
            if r:
                return str(r["id"])
            return self._create_default()

    def _create_default(self) -> str:
        device = ""
        if (
            os.path.realpath(self.engine.root) == DEFAULT_ROOT
            and "DOCKYARD_BRIDGE_PREFIX" not in os.environ
        ):
            device = DEFAULT_BRIDGE  # the host's one store gets Docker's style of name
        try:
            return self.create(DEFAULT_NETWORK, device=device)
        except Conflict:
            r = self.db.one("SELECT id FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
            if r:  # another process made it meanwhile
                return str(r["id"])
            raise

    def host_gateway(self) -> str:
        """What ``--add-host name:host-gateway`` stands for: the default bridge's gateway
        (Docker's is docker0's address), the network made if need be."""
        self.ensure_default()
        return str(self.find(None, DEFAULT_NETWORK)["gateway"])

    # ------------------------------------------------------------------ lookup

    def find(self, c: sqlite3.Connection | None, ref: str) -> sqlite3.Row:
        conn = c or self.db.conn
        for sql in ("SELECT * FROM networks WHERE id = ?", "SELECT * FROM networks WHERE name = ?"):
            row: sqlite3.Row | None = conn.execute(sql, (ref,)).fetchone()
            if row:
                return row
        if ref and all(ch in "0123456789abcdef" for ch in ref):
            rows: list[sqlite3.Row] = conn.execute(
                "SELECT * FROM networks WHERE id >= ? AND id < ?", (ref, ref + "g")
            ).fetchall()
            if len(rows) == 1:
                return rows[0]
            if len(rows) > 1:
                raise NotFound(
                    f"network {ref} is ambiguous ({len(rows)} matches found based on ID prefix)"
                )
        raise NotFound(f"network {ref} not found")

    def resolve(self, ref: str) -> str:
        """The id of the network named, id'd or id-prefixed ``ref``."""
        return str(self.find(None, ref)["id"])

    def inspect(self, ref: str) -> dict[str, Any]:
        return self._shape(self.find(None, ref))

    def _shape(self, r: sqlite3.Row) -> dict[str, Any]:
        from dockyard.model.codec import decode
        from dockyard.model.container import Endpoint

        data = json.loads(r["data"])
        prefix = prefixlen(r["subnet"])
        containers: dict[str, Any] = {}
        for lease in self.db.query(
            "SELECT l.address, l.container_id, c.name, c.data FROM ip_leases l"
            " JOIN containers c ON c.id = l.container_id"
            " WHERE l.network_id = ? ORDER BY l.container_id",
            (r["id"],),
        ):
            ctr = decode(lease["data"])
            if not ctr.running:
                continue  # Docker lists endpoints, and a stopped container has none
            ep = ctr.endpoint(str(r["name"])) or Endpoint("")
            containers[str(lease["container_id"])] = {
                "Name": str(lease["name"] or ""),
                "EndpointID": ep.endpoint_id,
                "MacAddress": ep.mac_address,
                "IPv4Address": f"{lease['address']}/{prefix}",
                "IPv6Address": "",
            }
        return {
            "Name": r["name"],
            "Id": r["id"],
            "Created": r["created"],
            "Scope": "local",
            "Driver": r["driver"],
            "EnableIPv6": False,
            "IPAM": {
                "Driver": "default",
                "Options": None,
                "Config": [{"Subnet": r["subnet"], "Gateway": r["gateway"]}],
            },
            "Internal": bool(data.get("internal", False)),
            "Attachable": bool(data.get("attachable", False)),
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": containers,
            # What the user set (Compose 1.29 recreates a network whose options differ
            # from its file's); the default network shows its device, as Docker's does.
            "Options": (
                {"com.docker.network.bridge.name": r["bridge"]}
                if r["name"] == DEFAULT_NETWORK
                else dict(data.get("options") or {})
            ),
            "Labels": data.get("labels") or {},
        }

    def list_networks(self) -> list[dict[str, Any]]:
        out = []
        for r in self.db.query("SELECT * FROM networks ORDER BY name"):
            data = json.loads(r["data"])
            labels = data.get("labels") or {}
            out.append(
                {
                    "ID": r["id"],
                    "Name": r["name"],
                    "Driver": r["driver"],
                    "Scope": "local",
                    "IPv6": "false",
                    "Internal": "true" if data.get("internal") else "false",
                    "CreatedAt": r["created"],
                    "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
                }
            )
        return out

    # ------------------------------------------------------------------ remove

    def remove(self, ref: str) -> None:
        """``network rm``. As in Docker, only running containers' endpoints block it: stopped
        containers keep the network in their settings (their leases go) and fail to start
        with "network <id> not found" until they are disconnected from it."""
        first = self.find(None, ref)
        if first["name"] == DEFAULT_NETWORK:
            raise Conflict(f"{DEFAULT_NETWORK} is a pre-defined network and cannot be removed")
        for row in self.db.query(
            "SELECT container_id FROM ip_leases WHERE network_id = ?", (first["id"],)
        ):
            try:
                self.engine.containers.get(str(row[0]))  # a dead one is recorded as stopped
            except NotFound:
                continue
        with self.db.transaction() as c:
            r = self.find(c, ref)
            if r["name"] == DEFAULT_NETWORK:
                raise Conflict(f"{DEFAULT_NETWORK} is a pre-defined network and cannot be removed")
            from dockyard.engine.endpoints import running_on

            if running_on(self.engine.containers.records, c, str(r["id"])):
                raise Conflict(
                    f"error while removing network: network {r['name']} id {r['id']} "
                    "has active endpoints"
                )
            c.execute("DELETE FROM networks WHERE id = ?", (r["id"],))  # leases cascade
        from dockyard.network import bridge as br
        from dockyard.network import firewall

        br.delete_bridge(str(r["bridge"]))
        firewall.teardown_network(str(r["bridge"]))
        attrs = {"name": str(r["name"]), "type": "bridge"}
        self.engine.events.emit("network", "destroy", str(r["id"]), attrs)

    def prune(self, filters: PruneFilters | None = None) -> list[str]:
        """Remove every user network no running container is on and the filters (``until``,
        ``label``, ``label!``) do not protect; return their names."""
        from dockyard.units import parse_time

        removed = []
        rows = self.db.query(
            "SELECT name, created, data FROM networks WHERE name != ? ORDER BY name",
            (DEFAULT_NETWORK,),
        )
        for r in rows:
            labels = json.loads(r["data"]).get("labels") or {}
            if filters is not None and filters.keeps(labels, parse_time(str(r["created"]))):
                continue
            try:
                self.remove(str(r["name"]))
            except (Conflict, NotFound):
                continue  # in use or gone meanwhile
            removed.append(str(r["name"]))
        return removed

    # ------------------------------------------------------------------ leases

    def lease(self, network: str, container_id: str) -> str:
        """An address on ``network`` for ``container_id`` (the same one if it has one)."""
        with self.db.transaction() as c:
            return self.lease_in(c, self.find(c, network), container_id)

    def lease_in(
        self, c: sqlite3.Connection, r: sqlite3.Row, container_id: str, want: str = ""
    ) -> str:
        """:meth:`lease` inside the caller's transaction (``r``: the network's row); ``want``:
        the static address (checked by :meth:`static_address`) the container asked for."""
        have = c.execute(
            "SELECT address FROM ip_leases WHERE network_id = ? AND container_id = ?",
            (r["id"], container_id),
        ).fetchone()
        if have:
            return str(have[0])
        leased = {
            str(x[0])
            for x in c.execute("SELECT address FROM ip_leases WHERE network_id = ?", (r["id"],))
        }
        if want:
            import _socket  # not the socket module (its enums): create and run call this

            base, size = _span(str(r["subnet"]))
            n = int.from_bytes(_socket.inet_aton(want), "big")
            # Docker's IPAM holds the gateway, network and broadcast addresses too. A static
            # address stays leased while its container exists, running or not.
            if want in leased or want == str(r["gateway"]) or n in (base, base + size - 1):
                raise Conflict("Address already in use")
        addr = want or next_free(str(r["subnet"]), str(r["gateway"]), leased)
        c.execute(
            "INSERT INTO ip_leases (network_id, address, container_id) VALUES (?, ?, ?)",
            (r["id"], addr, container_id),
        )
        return addr

    def static_address(self, r: sqlite3.Row | None, ip: str) -> str:
        """Check a user's ``--ip`` (canonical IPv4, see :func:`check_ipv4`) for network ``r``
        (None: the container is on no bridge network) as Docker does; whether it is free is
        :meth:`lease_in`'s question."""
        if r is None or r["name"] == DEFAULT_NETWORK:
            raise InvalidArgument(
                "user specified IP address is supported on user defined networks only"
            )
        if not json.loads(r["data"]).get("user_subnet"):
            raise InvalidArgument(
                "user specified IP address is supported only when connecting to networks with"
                " user configured subnets"
            )
        import _socket  # not the socket module (its enums): create and run call this

        base, size = _span(str(r["subnet"]))
        if not base <= int.from_bytes(_socket.inet_aton(ip), "big") < base + size:
            raise InvalidArgument(
                f"Invalid address {ip}: It does not belong to any of this network's subnets"
            )
        return ip

    def release(self, network: str, container_id: str) -> None:
        """Free ``container_id``'s address on ``network`` (nothing to free is fine)."""
        with self.db.transaction() as c:
            try:
                r = self.find(c, network)
            except NotFound:
                return
            c.execute(
                "DELETE FROM ip_leases WHERE network_id = ? AND container_id = ?",
                (r["id"], container_id),
            )

    # ------------------------------------------------------------------ containers

    def for_container(self, mode: str) -> sqlite3.Row:
        """The network a container created with NetworkMode ``mode`` joins (the default
        ``bridge`` network is made on first use)."""
        if mode in ("default", DEFAULT_NETWORK):
            self.ensure_default()
            return self.find(None, DEFAULT_NETWORK)
        return self.find(None, mode)

    def ensure_device(self, r: sqlite3.Row) -> None:
        """Bring back a network's bridge and rules when the host lost them (a reboot)."""
        from dockyard.network import bridge as br

        if br.bridge_exists(str(r["bridge"])):
            return
        from dockyard.network import firewall

        br.ensure_bridge(
            str(r["bridge"]),
            str(r["gateway"]),
            prefixlen(r["subnet"]),
            os.path.abspath(self.db.path),
        )
        firewall.setup_network(str(r["bridge"]), str(r["subnet"]))

    # ------------------------------------------------ containers on networks: engine/endpoints.py

    def netd_socket(self) -> str:
        """The run root's netd socket ("" when netd is off: DOCKYARD_NETD=0, or a run root
        whose path is too long for a Unix socket)."""
        if os.environ.get("DOCKYARD_NETD") == "0":
            return ""
        path = os.path.join(self.engine.run_root, "netd.sock")
        return path if len(path.encode()) < 100 else ""

    @cached_property
    def endpoints(self) -> Endpoints:
        from dockyard.engine.endpoints import Endpoints

        containers = self.engine.containers
        return Endpoints(self, containers.records, lambda: containers.lifecycle)

    def prepare(self, ctr: Container, run_dir: str) -> NetPlan:
        return self.endpoints.prepare(ctr, run_dir)

    def attached_ids(self, ctr: Container) -> set[str]:
        return self.endpoints.attached_ids(ctr)

    def after_exit(self, cid: str, before: Container) -> None:
        self.endpoints.after_exit(cid, before)

    def refresh_hosts(self, network_ids: set[str]) -> None:
        self.endpoints.refresh_hosts(network_ids)

    def connect(
        self, network: str, container: str, aliases: Sequence[str] = (), ip: str = ""
    ) -> None:
        self.endpoints.connect(network, container, aliases, ip)

    def disconnect(self, network: str, container: str, force: bool = False) -> None:
        self.endpoints.disconnect(network, container, force)


def check_leftovers(service: NetworkService, *, repair: bool) -> list[str]:
    """What ``system check`` reports for networking: IP leases of containers that no longer
    exist, veths on our bridges that no running container owns, and published-port rules on
    our bridges of containers that are not running. ``repair`` removes them."""
    from dockyard.model.codec import decode
    from dockyard.network import bridge as br
    from dockyard.network import firewall

    db = service.db
    nets = {str(r["id"]): r for r in db.query("SELECT * FROM networks")}
    bridges = {str(r["bridge"]) for r in nets.values()}
    running: dict[str, Container] = {}
    existing: set[str] = set()
    for r in db.query("SELECT id, data FROM containers"):
        existing.add(str(r["id"]))
        ctr = decode(r["data"])
        if ctr.running:
            running[str(r["id"])] = ctr
    out: list[str] = []
    from dockyard.runtime.cleanup import builder_alive

    # A running build step holds a lease and a veth with no container row: its own.
    building = {
        str(r["container_id"])
        for r in db.query("SELECT container_id FROM ip_leases")
        if builder_alive(str(r["container_id"]))
    }
    stale_leases = [
        (str(r["network_id"]), str(r["address"]), str(r["container_id"]))
        for r in db.query("SELECT * FROM ip_leases")
        if str(r["container_id"]) not in existing and str(r["container_id"]) not in building
    ]
    for nid, addr, cid in stale_leases:
        name = nets[nid]["name"] if nid in nets else nid[:12]
        out.append(f"IP lease {addr} on network {name} of missing container {cid[:12]}")
    owned = {ep.host_veth for ctr in running.values() for _, ep in ctr.endpoints if ep.host_veth}
    owned |= {f"veth{cid[-8:]}0" for cid in building}  # builder/run.py's BridgeAttachment
    stray_veths = [
        (b, port) for b in sorted(bridges) for port in br.bridge_ports(b) if port not in owned
    ]
    for b, port in stray_veths:
        out.append(f"veth {port} on bridge {b} with no running container")
    publishing = {cid for cid, ctr in running.items() if ctr.published}

    def stale_rule(comment: str) -> bool:
        parts = comment.split(":")
        if not os.path.exists(f"/sys/class/net/{parts[-1]}") and parts[-1] not in bridges:
            return True  # the rules of a bridge gone from the host (any store's) are dead
        return (
            comment.startswith(firewall.CTR_TAG)
            and len(parts) == 3
            and parts[2] in bridges
            and parts[1] not in publishing
        )

    orphan_bridges = br.orphans()
    for name in orphan_bridges:
        out.append(f"bridge {name} of a store that no longer exists")
    stale_rules = firewall.rules(stale_rule)
    for table, line in stale_rules:
        parts = firewall.comment_of(line).split(":")
        if parts[0] + ":" == firewall.NET_TAG:
            out.append(f"iptables rule ({table}) of bridge {parts[1]}, which no longer exists")
        else:
            out.append(f"iptables rule ({table}) for container {parts[1][:12]} that is not running")
    if repair and out:
        with db.transaction() as c:
            c.executemany(
                "DELETE FROM ip_leases WHERE network_id = ? AND address = ? AND container_id = ?",
                stale_leases,
            )
        if stray_veths:
            from dockyard.network.netlink import Netlink

            with Netlink() as nl:
                for _, port in stray_veths:
                    nl.delete_link(name=port)
        if stale_rules:
            firewall.remove(stale_rule)
        if orphan_bridges:
            reclaim_orphans()
    return out


def reclaim_orphans() -> list[str]:
    """Delete the bridges (and their rules) of stores that no longer exist; their names."""
    from dockyard.network import bridge as br
    from dockyard.network import firewall

    gone = br.orphans()
    for name in gone:
        try:
            br.delete_bridge(name)
            firewall.teardown_network(name)
        except DockyardError:
            continue
    return gone


def stop_helpers() -> None:
    """Stop the network helper processes (netd) this process started: a long-lived front end
    (the API daemon) calls it when it stops. Containers keep their namespaces."""
    import sys

    if "dockyard.network.netd" in sys.modules:  # never imported: never started
        from dockyard.network.netd import stop_started

        stop_started()
