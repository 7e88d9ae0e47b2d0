"""Containers on bridge networks: wiring at start (addresses, veths, published ports), the
hosts files of peers, ``network connect``/``disconnect``, and what an exit undoes.

The network rows, leases and devices themselves are engine/networks.py's.
"""

from __future__ import annotations

import os

from dockyard import fastjson as json  # the C codec without json's re and enum
from dockyard.errors import Conflict, NotFound
from dockyard.model.container import Endpoint, PublishedPort, is_bridged, network_key, replace
from dockyard.sqlite import sqlite3  # _sqlite3, loaded without functools

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see engine/containers)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.engine.networks import NetworkService
    from dockyard.model.container import Container
    from dockyard.network.embedded_dns import DNSConfig
    from dockyard.network.sandbox import Endpoint as Link

DEFAULT_NETWORK = "bridge"
NAMES_FILE = "dns-names"  # in a container's run dir: what its embedded DNS server answers


class Endpoints:
    def __init__(
        self,
        networks: NetworkService,
        records: ContainerRecords,
        lifecycle: Callable[[], Lifecycle],
    ) -> None:
        self.networks = networks
        self.db = networks.db
        self.records = records
        self.lifecycle = lifecycle  # containers are reconciled before they are changed

    def _links(self, ctr: Container, names: Sequence[str] | None = None) -> list[tuple[str, Link]]:
        """(network name, veth plan) for the container's networks (or just ``names``), leasing
        an address where it has none, interfaces numbered as recorded or first free."""
        from dockyard.engine.networks import prefixlen
        from dockyard.network.sandbox import Endpoint as Link
        from dockyard.network.sandbox import mac_for

        taken = {
            ep.ifname
            for name, ep in ctr.endpoints
            if ep.ifname and (names is None or name not in names)
        }
        out: list[tuple[str, Link]] = []
        primary = network_key(ctr.spec.network_mode)
        for name, ep in ctr.endpoints:
            if names is not None and name not in names:
                continue
            r = self.db.one("SELECT * FROM networks WHERE id = ?", (ep.network_id,))
            if r is None:
                # Removed while the container was stopped. Docker names the network by the
                # ID it recorded at the first start, by name before that.
                started = ctr.state.ever_started
                raise NotFound(f"network {ep.network_id if started else name} not found")
            self.networks.ensure_device(r)
            row = self.db.one(
                "SELECT address FROM ip_leases WHERE network_id = ? AND container_id = ?",
                (r["id"], ctr.id),
            )
            if row:
                addr = str(row["address"])
            else:
                with self.db.transaction() as c:
                    addr = self.networks.lease_in(c, r, ctr.id, ep.ipv4_address)
            n = 0
            while f"eth{n}" in taken:
                n += 1
            taken.add(f"eth{n}")
            link = Link(
                ifname=f"eth{n}",
                host_veth=f"veth{ctr.id[:8]}{n:x}",
                bridge=str(r["bridge"]),
                address=addr,
                prefixlen=prefixlen(r["subnet"]),
                gateway=str(r["gateway"]),
                mac=_mac(ctr, name, primary) or mac_for(addr),
            )
            out.append((name, link))
        return out

    def prepare(self, ctr: Container, run_dir: str) -> NetPlan:
        """Start wiring a container's network for a start: address, veth pairs and
        published ports, in a sandbox process (see network/sandbox.py)."""
        from dockyard.network import firewall, ports
        from dockyard.network.hosts import extra_hosts, hosts_text, write_in_place
        from dockyard.network.sandbox import Sandbox

        spec = ctr.spec
        links = self._links(ctr)
        bindings: dict[str, list[dict[str, str]]] = {}
        for b in spec.ports:
            bindings.setdefault(b.key, []).append({"HostIp": b.host_ip, "HostPort": b.host_port})
        published = ports.resolve(bindings, list(spec.exposed_ports), spec.publish_all)
        batch = ""
        if published and links:
            first = links[0][1]
            batch = firewall.container_batch(
                ctr.id, first.bridge, first.address, [firewall.Publish(*p) for p in published]
            )
            with open(os.path.join(run_dir, "ports.json"), "w") as f:
                f.write(json.dumps([[p[0], p[1], p[2]] for p in published]))
        link_env: list[str] = []
        if links:
            extra = extra_hosts(list(spec.extra_hosts), self.networks.host_gateway)
            if spec.links and ctr.endpoint(DEFAULT_NETWORK) is not None:
                link_env = self._legacy_links(ctr, extra)
            # Docker's hosts file names the container at its address; user networks get
            # their peers written after the start is recorded (refresh_hosts).
            write_in_place(
                self.records.hosts_path(ctr.id),
                hosts_text([(links[0][1].address, spec.hostname)], [], extra),
            )
        dns = self._embedded_dns(ctr, run_dir) if self.attached_ids(ctr) else None
        sandbox = Sandbox([e for _, e in links], batch, self.networks.netd_socket(), dns)
        return NetPlan(ctr.id, links, published, sandbox, tuple(link_env))

    def _legacy_links(self, ctr: Container, extra: list[tuple[str, str]]) -> list[str]:
        """``--link`` on the default bridge, as Docker: each linked container must run; its
        hosts entry joins ``extra`` (after --add-host's), and the variables describing it
        are returned for the container's environment."""
        from dockyard.model.links import link_alias, link_env, link_hosts_names

        env: list[str] = []
        for name, alias in ctr.spec.links:
            if not link_alias(alias):
                continue  # Docker makes nothing of "name:" either
            try:
                child = self.lifecycle().get(name)
            except NotFound:
                child = None
            if child is None or not child.running:
                raise Conflict(
                    f"Cannot link to a non running container: /{name} AS /{ctr.name}/{alias}"
                )
            ep = child.endpoint(DEFAULT_NETWORK)
            ip = ep.ip_address if ep is not None else ""
            if not ip:
                continue  # not on the default bridge: nothing to point at
            words = link_hosts_names(alias, child.spec.hostname, child.name)
            extra.append((words, ip))
            env += link_env(alias, ctr.name, ip, child.spec.exposed_ports, child.spec.env)
        return env

    def _embedded_dns(self, ctr: Container, run_dir: str) -> DNSConfig:
        """The embedded DNS server a container on a user network gets (Docker's 127.0.0.11):
        its upstream servers, and resolv.conf pointing at it unless it does already (a
        container created on a user network has it from create, and keeps the user's edits;
        one connected to its first user network later gets it now)."""
        from dockyard.network.embedded_dns import DNSConfig
        from dockyard.network.hosts import (
            EMBEDDED_NAMESERVER,
            embedded_resolv_conf,
            host_resolv_conf,
            write_in_place,
        )

        spec = ctr.spec
        text, upstreams, ndots_set = embedded_resolv_conf(
            host_resolv_conf() or "", spec.dns, spec.dns_search, spec.dns_options
        )
        path = self.records.etc_file(ctr.id, "/etc/resolv.conf")
        try:
            with open(path) as f:
                current = f.read()
        except OSError:
            current = ""
        if f"nameserver {EMBEDDED_NAMESERVER}\n" not in current:
            write_in_place(path, text)
        names = os.path.join(run_dir, NAMES_FILE)
        _write_atomic(names, "")  # filled in once the start is recorded (refresh_hosts)
        return DNSConfig(names, tuple(upstreams), ndots_set)

    def attached_ids(self, ctr: Container) -> set[str]:
        """The user-defined networks the container is on (the default bridge has no name
        resolution, as in Docker, so its members' hosts files never change)."""
        return {
            ep.network_id for name, ep in ctr.endpoints if ep.network_id and name != DEFAULT_NETWORK
        }

    def after_exit(self, cid: str, before: Container) -> None:
        """Undo what a start set up outside the container's namespace (the veth pairs went
        with it): published ports' rules, the peers' hosts files."""
        if not any(ep.host_veth for _, ep in before.endpoints):
            return
        if before.published:
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
            members: dict[str, dict[str, Container]] = {}

            def running_on(nid: str) -> dict[str, Container]:
                if nid not in members:
                    members[nid] = {
                        m.id: m for m in self.records.on_network_in(c, nid) if m.running
                    }
                return members[nid]

            affected: dict[str, Container] = {}
            for nid in network_ids:
                if nid in names:
                    affected.update(running_on(nid))
            for xid, x in affected.items():
                peers: list[tuple[str, list[str]]] = []
                own: list[tuple[str, str]] = []
                for net_name, ep in x.endpoints:
                    if ep.ip_address and not own:
                        own.append((ep.ip_address, x.spec.hostname))
                    if ep.network_id not in names:
                        continue
                    for pid_, peer in running_on(ep.network_id).items():
                        if pid_ == xid:
                            continue
                        pep = peer.endpoint(net_name)
                        if pep is None or not pep.ip_address:
                            continue
                        words = [peer.name]
                        for a in pep.aliases:
                            if a not in words:
                                words.append(a)
                        peers.append((pep.ip_address, words))
                extra = extra_hosts(list(x.spec.extra_hosts), host_gateway)
                write_in_place(self.records.hosts_path(xid), hosts_text(own, peers, extra))
                table = os.path.join(self.records.run_dir_of(xid), NAMES_FILE)
                if os.path.exists(table):  # it has an embedded DNS server
                    _write_atomic(table, names_table(x, names, running_on))

    # ------------------------------------------------------------------ connect

    def connect(
        self, network: str, container: str, aliases: Sequence[str] = (), ip: str = ""
    ) -> None:
        """``network connect``: record the network (and lease its address, ``ip`` if given);
        wire it now if the container runs."""
        from dockyard.engine.networks import check_ipv4
        from dockyard.network.sandbox import attach

        cid = self.records.resolve(container)
        ctr = self.lifecycle().refresh(cid)
        mode = ctr.spec.network_mode
        if not is_bridged(mode):
            raise Conflict(
                f"container {ctr.name} uses network mode {mode!r}: "
                "it cannot be connected to other networks"
            )
        if ip:
            ip = check_ipv4(ip)
        r = self.networks.find(None, network)
        name = str(r["name"])
        if ctr.endpoint(name) is not None:
            raise Conflict(f"endpoint with name {ctr.name} already exists in network {name}")
        if ip:
            self.networks.static_address(r, ip)
        words = (*aliases, cid[:12]) if name != DEFAULT_NETWORK else tuple(aliases)
        with self.db.transaction() as c:
            now = self.records.load_in(c, cid)
            if now is None:
                raise NotFound(f"No such container: {container}")
            if now.endpoint(name) is not None:
                raise Conflict(f"endpoint with name {now.name} already exists in network {name}")
            self.networks.lease_in(c, r, cid, ip)
            ctr = now.with_endpoint(name, Endpoint(str(r["id"]), tuple(words), ip))
            self.records.save_in(c, ctr)
        if not ctr.running:
            return
        dns = None
        run_dir = self.records.run_dir_of(cid)
        if name != DEFAULT_NETWORK and not os.path.exists(os.path.join(run_dir, NAMES_FILE)):
            dns = self._embedded_dns(ctr, run_dir)  # its first user network: Docker starts one
        try:
            ((_, link),) = self._links(ctr, [name])
            attach(ctr.state.pid, [link], dns)
        except BaseException:
            self._forget(cid, name, str(r["id"]))
            raise

        def wired(now: Container) -> Container:
            return _record_link(now, name, link)

        ctr = self.records.update(cid, wired) or ctr
        self.refresh_hosts(self.attached_ids(ctr))
        self._event("connect", str(r["id"]), cid, name)

    def _event(self, action: str, network_id: str, cid: str, name: str) -> None:
        """Docker's connect/disconnect events (a stopped container's come at its start)."""
        attrs = {"container": cid, "name": name, "type": "bridge"}
        self.networks.engine.events.emit("network", action, network_id, attrs)

    def _forget(self, cid: str, name: str, network_id: str) -> None:
        with self.db.transaction() as c:
            c.execute(
                "DELETE FROM ip_leases WHERE network_id = ? AND container_id = ?",
                (network_id, cid),
            )
            ctr = self.records.load_in(c, cid)
            if ctr is not None:
                self.records.save_in(c, ctr.with_endpoint(name, None))

    def disconnect(self, network: str, container: str, force: bool = False) -> None:
        """``network disconnect``: unwire (if running), release the address, forget."""
        from dockyard.network.sandbox import Endpoint as Link
        from dockyard.network.sandbox import detach

        cid = self.records.resolve(container)
        ctr = self.lifecycle().refresh(cid)
        try:
            r = self.networks.find(None, network)
        except NotFound:
            if ctr.running:
                if not force:
                    raise
                return
            # A network removed while the container was stopped stays in its settings (and
            # blocks its start) until disconnected by name, as in Docker.
            if ctr.endpoint(network) is None:
                raise Conflict(f"container {cid} is not connected to the network {network}")
            self._forget(cid, network, "")
            return
        name = str(r["name"])
        ep = ctr.endpoint(name)
        if ep is None:
            raise Conflict(f"container {cid} is not connected to network {name}")
        if ctr.running and ep.host_veth:
            detach([Link("", ep.host_veth, "", "", 0, "", "")])
        self._forget(cid, name, str(r["id"]))
        if ctr.running:
            self.refresh_hosts(self.attached_ids(ctr) | {str(r["id"])})
            self._event("disconnect", str(r["id"]), cid, name)


class NetPlan:
    """A container's network while it starts: see :meth:`Endpoints.prepare`.
    ``link_env``: what --link on the default bridge adds to the container's environment."""

    def __init__(
        self,
        cid: str,
        links: list[tuple[str, Link]],
        published: list[tuple[str, str, int, int]],
        sandbox: Any,
        link_env: tuple[str, ...] = (),
    ):
        self.cid = cid
        self.links = links
        self.published = published
        self.sandbox = sandbox
        self.link_env = link_env

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
        from dockyard.errors import DockyardError
        from dockyard.network.conntrack import clear_udp

        try:
            clear_udp(udp)
        except (OSError, DockyardError):
            pass

    def record(self, ctr: Container, pid: int) -> Container:
        """The container's network settings as Docker shows a running container's."""
        out: Container = replace(
            ctr,
            sandbox_key=f"/proc/{pid}/ns/net",
            published=tuple(PublishedPort(*p) for p in self.published),
        )
        for name, link in self.links:
            out = _record_link(out, name, link)
        return out


def _mac(ctr: Container, network: str, primary: str) -> str:
    """The MAC address asked for on ``network``: the endpoint's own, or --mac-address
    (Config.MacAddress) on the network the container was created on, as in Docker."""
    asked = ctr.spec.endpoint(network)
    mac = asked.mac_address if asked else ""
    if not mac and network == primary:
        mac = ctr.spec.mac_address
    return mac.lower()


def _record_link(ctr: Container, name: str, link: Link) -> Container:
    ep = ctr.endpoint(name) or Endpoint("")
    ep = replace(
        ep,
        endpoint_id=os.urandom(32).hex(),
        gateway=link.gateway,
        ip_address=link.address,
        prefix_len=link.prefixlen,
        mac_address=link.mac,
        ifname=link.ifname,
        host_veth=link.host_veth,
    )
    return ctr.with_endpoint(name, ep)


def names_table(
    x: Container, user_networks: dict[str, str], members: Callable[[str], dict[str, Container]]
) -> str:
    """What ``x``'s embedded DNS server answers (network/resolver.py reads it): on each of
    its user networks (``user_networks``: id -> name), in the order it joined them, the
    running members' names, aliases (short IDs among them) and ``name.network``, and their
    addresses' PTR names; a name the first network knows is not taken from a later one, as
    Docker resolves network by network. ``--link NAME:ALIAS`` (on user networks) makes ALIAS
    answer what NAME answers, for ``x`` alone."""
    a: dict[str, list[str]] = {}
    ptr: dict[str, str] = {}
    for net_name, ep in x.endpoints:
        if ep.network_id not in user_networks:
            continue
        here: dict[str, list[str]] = {}
        for peer in members(ep.network_id).values():
            pep = peer.endpoint(net_name)
            if pep is None or not pep.ip_address:
                continue
            for word in (peer.name, *pep.aliases):
                word = word.lower()
                if not word or any(c.isspace() for c in word):
                    continue
                for key in (word, f"{word}.{net_name.lower()}"):
                    ips = here.setdefault(key, [])
                    if pep.ip_address not in ips:
                        ips.append(pep.ip_address)
            ptr.setdefault(pep.ip_address, f"{peer.name}.{net_name}")
        for key, ips in here.items():
            a.setdefault(key, ips)
    from dockyard.model.links import link_alias

    for name, alias in x.spec.links:
        target = a.get(name.lower())
        if target and link_alias(alias):
            a[link_alias(alias).lower()] = target
    lines = [f"a {k} {' '.join(v)}" for k, v in a.items()]
    lines += [f"p {ip} {name}" for ip, name in ptr.items()]
    return "".join(line + "\n" for line in lines)


def _write_atomic(path: str, text: str) -> None:
    """Replace ``path`` whole (a reader sees the old file or the new one)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def running_on(records: ContainerRecords, c: sqlite3.Connection, network_id: str) -> bool:
    """Whether a container recorded as running holds an address on the network."""
    return any(m.running for m in records.on_network_in(c, network_id))
