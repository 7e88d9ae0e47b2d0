"""User-defined bridge networks: a row in ``networks``, a Linux bridge, and address leases.

The metadata database decides everything (names, subnets, addresses) inside one
``BEGIN IMMEDIATE`` transaction; the bridge device follows the row.
"""

from __future__ import annotations

import _sqlite3 as sqlite3  # not the sqlite3 package: its datetime import costs ~1.5 ms
import json
import os
import re
from collections.abc import Callable, Sequence

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see engine/containers.py)
if TYPE_CHECKING:
    from ipaddress import IPv4Network
    from typing import Any

    from dockyard.engine import Engine

# ipaddress and ipam load only where subnets are chosen (network create): a container's
# create and start do their address arithmetic on integers (~1.5 ms less per run).

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE_PREFIX = "dy-"
IFNAMSIZ = 15


def _prefixlen(subnet: str) -> int:
    return int(str(subnet).rsplit("/", 1)[1])


def _span(subnet: str) -> tuple[int, int]:
    """(first address as an integer, number of addresses) of ``subnet`` ("a.b.c.d/n")."""
    import socket

    base_s, _, bits = subnet.partition("/")
    size = 1 << (32 - int(bits))
    return int.from_bytes(socket.inet_aton(base_s), "big") & ~(size - 1) & 0xFFFFFFFF, size


def next_free(subnet: str, gateway: str, leased: set[str]) -> str:
    """:func:`dockyard.network.ipam.next_address` on integers: the lowest host address of
    ``subnet`` ("a.b.c.d/n") that is neither leased nor the gateway."""
    import socket

    base, size = _span(subnet)
    for n in range(base + 1, base + size - 1):
        addr = socket.inet_ntoa(n.to_bytes(4, "big"))
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


def is_bridged(mode: str) -> bool:
    """Whether NetworkMode ``mode`` puts the container on a bridge network of ours."""
    return mode not in ("none", "host") and not mode.startswith("container:")


def network_key(mode: str) -> str:
    """The NetworkSettings.Networks key for NetworkMode ``mode`` ("default" is "bridge")."""
    return DEFAULT_NETWORK if mode == "default" else mode


def blank_endpoint(network_id: str = "", aliases: Sequence[str] = ()) -> dict[str, Any]:
    """Docker's EndpointSettings before the container runs: no address, no gateway."""
    return {
        "IPAMConfig": None,
        "Links": None,
        "Aliases": list(aliases) or None,
        "NetworkID": network_id,
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": "",
        "DriverOpts": None,
    }


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
    ) -> str:
        if not _NAME.match(name):
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
        data = {"labels": labels or {}, "internal": internal, "user_subnet": bool(subnet)}
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
        return net_id

    def ensure_default(self) -> str:
        """The default ``bridge`` network, created on first use; returns its id."""
        r = self.db.one("SELECT id FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
        if r:
            return str(r["id"])
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
        return str(self._find(None, DEFAULT_NETWORK)["gateway"])

    # ------------------------------------------------------------------ lookup

    def _find(self, c: sqlite3.Connection | None, ref: str) -> sqlite3.Row:
        conn = c or self.db.conn
        for sql in ("SELECT * FROM networks WHERE id = ?", "SELECT * FROM networks WHERE name = ?"):
            row: sqlite3.Row | None = conn.execute(sql, (ref,)).fetchone()
            if row:
                return row
        if ref and re.fullmatch(r"[0-9a-f]+", ref):
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
        return str(self._find(None, ref)["id"])

    def inspect(self, ref: str) -> dict[str, Any]:
        return self._shape(self._find(None, ref))

    def _shape(self, r: sqlite3.Row) -> dict[str, Any]:
        data = json.loads(r["data"])
        prefix = _prefixlen(r["subnet"])
        containers: dict[str, Any] = {}
        for lease in self.db.query(
            "SELECT l.address, l.container_id, c.name, c.data FROM ip_leases l"
            " JOIN containers c ON c.id = l.container_id"
            " WHERE l.network_id = ? ORDER BY l.container_id",
            (r["id"],),
        ):
            cdata = json.loads(lease["data"])
            if not cdata["State"]["Running"]:
                continue  # Docker lists endpoints, and a stopped container has none
            ep = cdata["NetworkSettings"]["Networks"].get(r["name"]) or {}
            containers[str(lease["container_id"])] = {
                "Name": str(lease["name"] or ""),
                "EndpointID": ep.get("EndpointID", ""),
                "MacAddress": ep.get("MacAddress", ""),
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
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": containers,
            "Options": {"com.docker.network.bridge.name": r["bridge"]},
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
        first = self._find(None, ref)
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
            r = self._find(c, ref)
            if r["name"] == DEFAULT_NETWORK:
                raise Conflict(f"{DEFAULT_NETWORK} is a pre-defined network and cannot be removed")
            if _running_on(c, str(r["id"])):
                raise Conflict(
                    f"error while removing network: network {r['name']} id {r['id']} "
                    "has active endpoints"
                )
            c.execute("DELETE FROM networks WHERE id = ?", (r["id"],))  # leases cascade
        from dockyard.network import bridge as br
        from dockyard.network import firewall

        br.delete_bridge(str(r["bridge"]))
        firewall.teardown_network(str(r["bridge"]))

    def prune(self) -> list[str]:
        """Remove every user network no running container is on; return their names."""
        removed = []
        rows = self.db.query(
            "SELECT name FROM networks WHERE name != ? ORDER BY name", (DEFAULT_NETWORK,)
        )
        for r in rows:
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
            return self.lease_in(c, self._find(c, network), container_id)

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
            import socket

            base, size = _span(str(r["subnet"]))
            n = int.from_bytes(socket.inet_aton(want), "big")
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
        import socket

        base, size = _span(str(r["subnet"]))
        if not base <= int.from_bytes(socket.inet_aton(ip), "big") < base + size:
            raise InvalidArgument(
                f"Invalid address {ip}: It does not belong to any of this network's subnets"
            )
        return ip

    def release(self, network: str, container_id: str) -> None:
        """Free ``container_id``'s address on ``network`` (nothing to free is fine)."""
        with self.db.transaction() as c:
            try:
                r = self._find(c, network)
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
            return self._find(None, DEFAULT_NETWORK)
        return self._find(None, mode)

    def _ensure_device(self, r: sqlite3.Row) -> None:
        """Bring back a network's bridge and rules when the host lost them (a reboot)."""
        from dockyard.network import bridge as br

        if br.bridge_exists(str(r["bridge"])):
            return
        from dockyard.network import firewall

        br.ensure_bridge(
            str(r["bridge"]),
            str(r["gateway"]),
            _prefixlen(r["subnet"]),
            os.path.abspath(self.db.path),
        )
        firewall.setup_network(str(r["bridge"]), str(r["subnet"]))

    def _endpoints(
        self, cid: str, data: dict[str, Any], names: Sequence[str] | None = None
    ) -> list[tuple[str, Any]]:
        """(network name, Endpoint) for the container's networks (or just ``names``), leasing
        an address where it has none, interfaces numbered as recorded or first free."""
        from dockyard.network.sandbox import Endpoint, mac_for

        nets = data["NetworkSettings"]["Networks"]
        ifaces: dict[str, Any] = dict((data.get("Dockyard") or {}).get("Interfaces") or {})
        taken = {v["ifname"] for k, v in ifaces.items() if names is None or k not in names}
        out: list[tuple[str, Any]] = []
        for name, ep in nets.items():
            if names is not None and name not in names:
                continue
            r = self.db.one("SELECT * FROM networks WHERE id = ?", (ep.get("NetworkID", ""),))
            if r is None:
                # Removed while the container was stopped. Docker names the network by the
                # ID it recorded at the first start, by name before that.
                started = not data["State"].get("StartedAt", "0001-").startswith("0001-")
                raise NotFound(f"network {ep.get('NetworkID') if started else name} not found")
            self._ensure_device(r)
            row = self.db.one(
                "SELECT address FROM ip_leases WHERE network_id = ? AND container_id = ?",
                (r["id"], cid),
            )
            if row:
                addr = str(row["address"])
            else:
                with self.db.transaction() as c:
                    want = (ep.get("IPAMConfig") or {}).get("IPv4Address") or ""
                    addr = self.lease_in(c, r, cid, want)
            n = 0
            while f"eth{n}" in taken:
                n += 1
            taken.add(f"eth{n}")
            endpoint = Endpoint(
                ifname=f"eth{n}",
                host_veth=f"veth{cid[:8]}{n:x}",
                bridge=str(r["bridge"]),
                address=addr,
                prefixlen=_prefixlen(r["subnet"]),
                gateway=str(r["gateway"]),
                mac=mac_for(addr),
            )
            out.append((name, endpoint))
        return out

    def prepare(self, cid: str, data: dict[str, Any], run_dir: str) -> NetPlan:
        """Start wiring a container's network for :meth:`ContainerService.start`: address,
        veth pairs and published ports, in a sandbox process (see network/sandbox.py)."""
        from dockyard.network import firewall, ports
        from dockyard.network.hosts import extra_hosts, hosts_text, write_in_place
        from dockyard.network.sandbox import Sandbox

        hc = data["HostConfig"]
        endpoints = self._endpoints(cid, data)
        exposed = list((data["Config"].get("ExposedPorts") or {}).keys())
        published = ports.resolve(
            hc.get("PortBindings") or {}, exposed, bool(hc.get("PublishAllPorts"))
        )
        batch = ""
        if published and endpoints:
            first = endpoints[0][1]
            batch = firewall.container_batch(
                cid, first.bridge, first.address, [firewall.Publish(*p) for p in published]
            )
            with open(os.path.join(run_dir, "ports.json"), "w") as f:
                json.dump([[p[0], p[1], p[2]] for p in published], f)
        if endpoints:
            # Docker's hosts file names the container at its address; user networks get
            # their peers written after the start is recorded (refresh_hosts).
            write_in_place(
                data["HostsPath"],
                hosts_text(
                    [(endpoints[0][1].address, data["Config"]["Hostname"])],
                    [],
                    extra_hosts(hc.get("ExtraHosts"), self.host_gateway),
                ),
            )
        sandbox = Sandbox([e for _, e in endpoints], batch, netd=self._netd_socket())
        return NetPlan(self, cid, endpoints, published, exposed, sandbox)

    def _netd_socket(self) -> str:
        """The run root's netd socket ("" when netd is off: DOCKYARD_NETD=0, or a run root
        whose path is too long for a Unix socket)."""
        if os.environ.get("DOCKYARD_NETD") == "0":
            return ""
        path = os.path.join(self.engine.run_root, "netd.sock")
        return path if len(path.encode()) < 100 else ""

    def attached_ids(self, data: dict[str, Any]) -> set[str]:
        """The user-defined networks the container is on (the default bridge has no name
        resolution, as in Docker, so its members' hosts files never change)."""
        return {
            str(ep.get("NetworkID"))
            for name, ep in data["NetworkSettings"].get("Networks", {}).items()
            if ep.get("NetworkID") and name != DEFAULT_NETWORK
        }

    def after_exit(self, cid: str, before: dict[str, Any]) -> None:
        """Undo what a start set up outside the container's namespace (the veth pairs went
        with it): published ports' rules, the peers' hosts files."""
        info = (before.get("Dockyard") or {}).get("Interfaces")
        if not info:
            return
        if before["NetworkSettings"].get("Ports") and any(
            v for v in before["NetworkSettings"]["Ports"].values()
        ):
            from dockyard.network import firewall

            firewall.remove_container(cid)
        self.refresh_hosts(self.attached_ids(before))

    def refresh_hosts(self, network_ids: set[str]) -> None:
        """Rewrite the hosts files of every running container on the user networks
        ``network_ids`` (and of their other user networks' peers: each file is whole)."""
        from dockyard.network.hosts import extra_hosts, hosts_text, write_in_place

        if not network_ids:
            return
        with self.db.transaction() as c:

            def host_gateway() -> str:  # the default bridge exists: the start asked for it
                row = c.execute(
                    "SELECT gateway FROM networks WHERE name = ?", (DEFAULT_NETWORK,)
                ).fetchone()
                return str(row[0]) if row else ""

            names = {
                str(r[0]): str(r[1])
                for r in c.execute(
                    "SELECT id, name FROM networks WHERE name != ?", (DEFAULT_NETWORK,)
                )
            }
            members: dict[str, dict[str, dict[str, Any]]] = {}

            def running_on(nid: str) -> dict[str, dict[str, Any]]:
                if nid not in members:
                    members[nid] = {}
                    for r in c.execute(
                        "SELECT c.id, c.data FROM ip_leases l JOIN containers c"
                        " ON c.id = l.container_id WHERE l.network_id = ?",
                        (nid,),
                    ):
                        d = json.loads(r[1])
                        if d["State"]["Running"]:
                            members[nid][str(r[0])] = d
                return members[nid]

            affected: dict[str, dict[str, Any]] = {}
            for nid in network_ids:
                if nid in names:
                    affected.update(running_on(nid))
            for xid, xdata in affected.items():
                peers: list[tuple[str, list[str]]] = []
                own: list[tuple[str, str]] = []
                for net_name, ep in xdata["NetworkSettings"]["Networks"].items():
                    if ep.get("IPAddress") and not own:
                        own.append((ep["IPAddress"], xdata["Config"]["Hostname"]))
                    nid = str(ep.get("NetworkID", ""))
                    if nid not in names:
                        continue
                    for pid_, pdata in running_on(nid).items():
                        if pid_ == xid:
                            continue
                        pep = pdata["NetworkSettings"]["Networks"].get(net_name) or {}
                        if not pep.get("IPAddress"):
                            continue
                        words = [pdata["Name"].lstrip("/")]
                        for a in pep.get("Aliases") or []:
                            if a not in words:
                                words.append(a)
                        peers.append((pep["IPAddress"], words))
                extra = extra_hosts(xdata["HostConfig"].get("ExtraHosts"), host_gateway)
                write_in_place(xdata["HostsPath"], hosts_text(own, peers, extra))

    def endpoint_settings(
        self, r: sqlite3.Row, aliases: Sequence[str], ip: str = ""
    ) -> dict[str, Any]:
        """Docker's EndpointSettings for a container on network ``r`` (not yet running);
        ``ip``: its static address."""
        ep = blank_endpoint(str(r["id"]), aliases)
        if ip:
            ep["IPAMConfig"] = {"IPv4Address": ip}
        return ep

    # ------------------------------------------------------------------ connect

    def connect(
        self, network: str, container: str, aliases: Sequence[str] = (), ip: str = ""
    ) -> None:
        """``network connect``: record the network (and lease its address, ``ip`` if given);
        wire it now if the container runs."""
        from dockyard.network.sandbox import attach

        svc = self.engine.containers
        cid = svc.resolve(container)
        data = svc.get(cid)
        mode = data["HostConfig"]["NetworkMode"]
        if not is_bridged(mode):
            raise Conflict(
                f"container {data['Name'].lstrip('/')} uses network mode {mode!r}: "
                "it cannot be connected to other networks"
            )
        if ip:
            ip = check_ipv4(ip)
        r = self._find(None, network)
        name = str(r["name"])
        if name in data["NetworkSettings"]["Networks"]:
            raise Conflict(
                f"endpoint with name {data['Name'].lstrip('/')} already exists in network {name}"
            )
        if ip:
            self.static_address(r, ip)
        short = cid[:12]
        words = [*aliases, short] if name != DEFAULT_NETWORK else list(aliases)
        with self.db.transaction() as c:
            row = c.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
            data = json.loads(row[0])
            if name in data["NetworkSettings"]["Networks"]:
                raise Conflict(
                    f"endpoint with name {data['Name'].lstrip('/')} already exists in "
                    f"network {name}"
                )
            self.lease_in(c, r, cid, ip)
            data["NetworkSettings"]["Networks"][name] = self.endpoint_settings(r, words, ip)
            c.execute("UPDATE containers SET data = ? WHERE id = ?", (json.dumps(data), cid))
        if not data["State"]["Running"]:
            return
        try:
            ((_, ep),) = self._endpoints(cid, data, [name])
            attach(int(data["State"]["Pid"]), [ep])
        except BaseException:
            self._forget(cid, name, str(r["id"]))
            raise
        with self.db.transaction() as c:
            data = json.loads(
                c.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()[0]
            )
            _record_endpoint(data, name, ep)
            c.execute("UPDATE containers SET data = ? WHERE id = ?", (json.dumps(data), cid))
        self.refresh_hosts(self.attached_ids(data))

    def _forget(self, cid: str, name: str, network_id: str) -> None:
        with self.db.transaction() as c:
            row = c.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
            c.execute(
                "DELETE FROM ip_leases WHERE network_id = ? AND container_id = ?",
                (network_id, cid),
            )
            if row:
                data = json.loads(row[0])
                data["NetworkSettings"]["Networks"].pop(name, None)
                (data.get("Dockyard") or {}).get("Interfaces", {}).pop(name, None)
                c.execute("UPDATE containers SET data = ? WHERE id = ?", (json.dumps(data), cid))

    def disconnect(self, network: str, container: str, force: bool = False) -> None:
        """``network disconnect``: unwire (if running), release the address, forget."""
        from dockyard.network.sandbox import Endpoint, detach

        svc = self.engine.containers
        cid = svc.resolve(container)
        data = svc.get(cid)
        try:
            r = self._find(None, network)
        except NotFound:
            if data["State"]["Running"]:
                if not force:
                    raise
                return
            # A network removed while the container was stopped stays in its settings (and
            # blocks its start) until disconnected by name, as in Docker.
            if network not in data["NetworkSettings"]["Networks"]:
                raise Conflict(f"container {cid} is not connected to the network {network}")
            self._forget(cid, network, "")
            return
        name = str(r["name"])
        if name not in data["NetworkSettings"]["Networks"]:
            raise Conflict(f"container {cid} is not connected to network {name}")
        iface = ((data.get("Dockyard") or {}).get("Interfaces") or {}).get(name)
        if data["State"]["Running"] and iface:
            detach([Endpoint("", iface["veth"], "", "", 0, "", "")])
        self._forget(cid, name, str(r["id"]))
        if data["State"]["Running"]:
            self.refresh_hosts(self.attached_ids(data) | {str(r["id"])})


class NetPlan:
    """A container's network while it starts: see :meth:`NetworkService.prepare`."""

    def __init__(
        self,
        service: NetworkService,
        cid: str,
        endpoints: list[tuple[str, Any]],
        published: list[tuple[str, str, int, int]],
        exposed: list[str],
        sandbox: Any,
    ):
        self.service = service
        self.cid = cid
        self.endpoints = endpoints
        self.published = published
        self.exposed = exposed
        self.sandbox = sandbox

    @property
    def netns_path(self) -> str:
        return str(self.sandbox.netns_path)

    def abort(self) -> None:
        """The start failed: the helper goes (and with it the namespace and veths), and so do
        any published ports' rules."""
        self.sandbox.close()
        if self.published:
            from dockyard.network import firewall

            firewall.remove_container(self.cid)

    def clear_udp_flows(self) -> None:
        """Once the published ports' rules are in: forget the host's conntrack entries of the
        UDP ones, as Docker does, so clients that kept sending to a port before the container
        started reach it (see network/conntrack.py). Best effort, as in Docker."""
        udp = [(ip, hport) for proto, ip, hport, _ in self.published if proto == "udp"]
        if not udp:
            return
        from dockyard.network.conntrack import clear_udp

        try:
            clear_udp(udp)
        except (OSError, DockyardError):
            pass

    def record(self, data: dict[str, Any], pid: int) -> None:
        """Fill the container's NetworkSettings as Docker shows a running container's."""
        from dockyard.network.ports import ports_shape

        ns = data["NetworkSettings"]
        ns["SandboxID"] = self.cid
        ns["SandboxKey"] = f"/proc/{pid}/ns/net"
        ns["Ports"] = ports_shape(self.exposed, self.published)
        for name, ep in self.endpoints:
            _record_endpoint(data, name, ep)


def _running_on(c: sqlite3.Connection, network_id: str) -> bool:
    """Whether a container recorded as running holds an address on the network."""
    return any(
        json.loads(r[0])["State"]["Running"]
        for r in c.execute(
            "SELECT c.data FROM ip_leases l JOIN containers c ON c.id = l.container_id"
            " WHERE l.network_id = ?",
            (network_id,),
        )
    )


def _record_endpoint(data: dict[str, Any], name: str, ep: Any) -> None:
    ns = data["NetworkSettings"]
    settings = ns["Networks"].setdefault(name, {})
    settings.update(
        {
            "EndpointID": os.urandom(32).hex(),
            "Gateway": ep.gateway,
            "IPAddress": ep.address,
            "IPPrefixLen": ep.prefixlen,
            "MacAddress": ep.mac,
        }
    )
    if name == DEFAULT_NETWORK:  # Docker fills the top-level fields for "bridge" only
        ns.update(
            {
                "EndpointID": settings["EndpointID"],
                "Gateway": ep.gateway,
                "IPAddress": ep.address,
                "IPPrefixLen": ep.prefixlen,
                "MacAddress": ep.mac,
            }
        )
    dy = data.setdefault("Dockyard", {})
    dy.setdefault("Interfaces", {})[name] = {"ifname": ep.ifname, "veth": ep.host_veth}


def clear_runtime(data: dict[str, Any]) -> None:
    """What a stopped container shows: no addresses, no published ports (Docker's shape)."""
    ns = data.get("NetworkSettings") or {}
    if not ns:
        return
    for key in ("EndpointID", "Gateway", "IPAddress", "MacAddress", "SandboxID", "SandboxKey"):
        if key in ns:
            ns[key] = ""
    ns["IPPrefixLen"] = 0
    ns["Ports"] = {}
    for ep in (ns.get("Networks") or {}).values():
        ep.update(
            {"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}
        )
    (data.get("Dockyard") or {}).pop("Interfaces", None)


def check_leftovers(service: NetworkService, *, repair: bool) -> list[str]:
    """What ``system check`` reports for networking: IP leases of containers that no longer
    exist, veths on our bridges that no running container owns, and published-port rules on
    our bridges of containers that are not running. ``repair`` removes them."""
    from dockyard.network import bridge as br
    from dockyard.network import firewall

    db = service.db
    nets = {str(r["id"]): r for r in db.query("SELECT * FROM networks")}
    bridges = {str(r["bridge"]) for r in nets.values()}
    running: dict[str, dict[str, Any]] = {}
    existing: set[str] = set()
    for r in db.query("SELECT id, data FROM containers"):
        existing.add(str(r["id"]))
        d = json.loads(r["data"])
        if d["State"]["Running"]:
            running[str(r["id"])] = d
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
    owned = {
        str(iface["veth"])
        for d in running.values()
        for iface in ((d.get("Dockyard") or {}).get("Interfaces") or {}).values()
    } | {f"veth{cid[-8:]}0" for cid in building}  # builder/run.py's BridgeAttachment
    stray_veths = [
        (b, port) for b in sorted(bridges) for port in br.bridge_ports(b) if port not in owned
    ]
    for b, port in stray_veths:
        out.append(f"veth {port} on bridge {b} with no running container")
    publishing = {
        cid
        for cid, d in running.items()
        if any(v for v in (d["NetworkSettings"].get("Ports") or {}).values())
    }

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
