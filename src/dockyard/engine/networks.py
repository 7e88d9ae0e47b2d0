"""User-defined bridge networks: a row in ``networks``, a Linux bridge, and address leases.

The metadata database decides everything (names, subnets, addresses) inside one
``BEGIN IMMEDIATE`` transaction; the bridge device follows the row.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.network import ipam

if TYPE_CHECKING:
    from dockyard.engine import Engine

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
DEFAULT_NETWORK = "bridge"
DEFAULT_BRIDGE_PREFIX = "dy-"
IFNAMSIZ = 15


def bridge_prefix() -> str:
    return os.environ.get("DOCKYARD_BRIDGE_PREFIX") or DEFAULT_BRIDGE_PREFIX


def bridge_name(network_id: str) -> str:
    prefix = bridge_prefix()
    return prefix + network_id[: IFNAMSIZ - len(prefix)]


class NetworkService:
    def __init__(self, engine: Engine, routes: Callable[[], Sequence[IPv4Network]] | None = None):
        self.engine = engine
        self.db = engine.store.db
        self.routes = routes or ipam.host_routes

    # ------------------------------------------------------------------ create

    def create(
        self,
        name: str,
        *,
        subnet: str | None = None,
        gateway: str | None = None,
        labels: dict[str, str] | None = None,
        internal: bool = False,
    ) -> str:
        if not _NAME.match(name):
            raise InvalidArgument(
                f'invalid name "{name}": only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed'
            )
        if gateway and not subnet:
            raise InvalidArgument("every ip-range or gateway must have a corresponding subnet")
        from dockyard.image.config import now_rfc3339

        net_id = os.urandom(32).hex()
        bridge = bridge_name(net_id)
        data = {"labels": labels or {}, "internal": internal}
        with self.db.transaction() as c:
            if c.execute("SELECT 1 FROM networks WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"network with name {name} already exists")
            taken = [IPv4Network(r[0]) for r in c.execute("SELECT subnet FROM networks")]
            # Our own bridges' routes are the taken networks already; the rest is the host's.
            host = [r for r in self.routes() if r not in taken]
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

        try:
            br.ensure_bridge(bridge, str(gw), net.prefixlen)
        except BaseException:
            with self.db.transaction() as c:
                c.execute("DELETE FROM networks WHERE id = ?", (net_id,))
            try:
                br.delete_bridge(bridge)
            except DockyardError:
                pass
            raise
        return net_id

    def ensure_default(self) -> str:
        """The default ``bridge`` network, created on first use; returns its id."""
        r = self.db.one("SELECT id FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
        if r:
            return str(r["id"])
        try:
            return self.create(DEFAULT_NETWORK)
        except Conflict:
            r = self.db.one("SELECT id FROM networks WHERE name = ?", (DEFAULT_NETWORK,))
            if r:  # another process made it meanwhile
                return str(r["id"])
            raise

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
        prefix = IPv4Network(r["subnet"]).prefixlen
        containers: dict[str, Any] = {}
        for lease in self.db.query(
            "SELECT l.address, l.container_id, c.name FROM ip_leases l"
            " LEFT JOIN containers c ON c.id = l.container_id"
            " WHERE l.network_id = ? ORDER BY l.container_id",
            (r["id"],),
        ):
            containers[str(lease["container_id"])] = {
                "Name": str(lease["name"] or ""),
                "EndpointID": "",
                "MacAddress": "",
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
        with self.db.transaction() as c:
            r = self._find(c, ref)
            if r["name"] == DEFAULT_NETWORK:
                raise Conflict(f"{DEFAULT_NETWORK} is a pre-defined network and cannot be removed")
            if c.execute("SELECT 1 FROM ip_leases WHERE network_id = ?", (r["id"],)).fetchone():
                raise Conflict(
                    f"error while removing network: network {r['name']} id {r['id']} "
                    "has active endpoints"
                )
            c.execute("DELETE FROM networks WHERE id = ?", (r["id"],))
        from dockyard.network import bridge as br

        br.delete_bridge(str(r["bridge"]))

    def prune(self) -> list[str]:
        """Remove every user network without leases; return their names."""
        removed = []
        rows = self.db.query(
            "SELECT name FROM networks WHERE name != ? AND id NOT IN"
            " (SELECT DISTINCT network_id FROM ip_leases) ORDER BY name",
            (DEFAULT_NETWORK,),
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
            r = self._find(c, network)
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
            addr = ipam.next_address(IPv4Network(r["subnet"]), IPv4Address(r["gateway"]), leased)
            c.execute(
                "INSERT INTO ip_leases (network_id, address, container_id) VALUES (?, ?, ?)",
                (r["id"], addr, container_id),
            )
        return addr

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
