"""``docker create``: a spec merged with its image, volumes named, the network address leased
and the container's directories made, recorded in one transaction.
"""

from __future__ import annotations

import os
import time

from dockyard.engine.containers.records import ETC_FILES, check_name
from dockyard.errors import InvalidArgument
from dockyard.model.container import (
    Container,
    ContainerSpec,
    Endpoint,
    Healthcheck,
    Mount,
    Resources,
    is_bridged,
    network_key,
    replace,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.engine.networks import NetworkService
    from dockyard.engine.volumes import VolumeService
    from dockyard.store.events import Events
    from dockyard.store.images import ImageStore

DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def merge_env(base: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """The image's env with ``overrides`` applied, as Docker does: "K=V" sets K, a bare "K"
    removes it (the CLI has already put the caller's value in if it had one)."""
    env: dict[str, str] = {}
    for e in base:
        k, _, v = e.partition("=")
        env[k] = v
    for e in overrides:
        k, eq, v = e.partition("=")
        if eq:
            env[k] = v
        else:
            env.pop(k, None)
    return [f"{k}={v}" for k, v in env.items()]


def container_env(image: Sequence[str], asked: Sequence[str]) -> list[str]:
    """Config.Env as Docker's create makes it: the caller's entries as given, then the
    image's whose name the caller did not use. A bare "NAME" stays (the runtime reads it as
    "unset NAME") and hides the image's NAME."""
    names = {e.partition("=")[0] for e in asked}
    return [*asked, *(e for e in image if e.partition("=")[0] not in names)]


def _merge_health(asked: Healthcheck | None, image: dict[str, Any] | None) -> Healthcheck | None:
    """Docker's merge: the container's healthcheck, its zero fields from the image's."""
    if not image:
        return asked
    base = Healthcheck(
        test=tuple(image.get("Test") or ()),
        interval=int(image.get("Interval") or 0),
        timeout=int(image.get("Timeout") or 0),
        start_period=int(image.get("StartPeriod") or 0),
        retries=int(image.get("Retries") or 0),
    )
    if asked is None:
        return base
    out: Healthcheck = replace(
        asked,
        test=asked.test or base.test,
        interval=asked.interval or base.interval,
        timeout=asked.timeout or base.timeout,
        start_period=asked.start_period or base.start_period,
        retries=asked.retries or base.retries,
    )
    return out


def check_healthcheck(h: Healthcheck) -> None:
    """Docker's daemon checks of a health check (moby: verifyContainerSettings)."""
    for what, value in (
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
    ):
        if value != 0 and value < 1_000_000:
            raise InvalidArgument(f"{what} in Healthcheck cannot be less than 1ms")
    if h.retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")


class Creator:
    def __init__(
        self,
        records: ContainerRecords,
        images: ImageStore,
        volumes: VolumeService,
        networks: Callable[[], NetworkService],
        load_container: Callable[[str], Container],
        events: Events,
    ) -> None:
        self.records = records
        self.images = images
        self.volumes = volumes
        self.networks = networks
        self.load_container = load_container  # for --volumes-from (reconciled)
        self.events = events

    def create(self, spec: ContainerSpec, *, container_id: str = "") -> str:
        """Record a new container; its ID."""
        from dockyard.model.docker import restart_policy_check

        if spec.name:
            check_name(spec.name)
        restart_policy_check(spec.restart_policy, spec.auto_remove)
        if spec.healthcheck is not None:
            check_healthcheck(spec.healthcheck)
        from dockyard.model.logopts import log_settings

        log_settings(spec.log_config)  # Docker's messages; here before anything is made
        if _has_host_options(spec):
            from dockyard.engine.containers.hostopts import check_host_options

            spec = check_host_options(spec, self.load_container)
        if spec.resources != _NO_LIMITS:
            from dockyard.engine.containers.hostopts import check_resources

            check_resources(spec)  # Docker refuses bad limits before creating anything
        image_id = self.images.resolve(spec.image)
        icfg = self.images.config(image_id).config
        cid = container_id or os.urandom(32).hex()
        spec = self._merge_image(spec, icfg, cid)
        if spec.extra_hosts or spec.dns or spec.dns_search:
            from dockyard.model.addresses import check_dns, check_dns_search, check_extra_host

            for h in spec.extra_hosts:
                check_extra_host(h)
            spec = replace(
                spec,
                dns=tuple(check_dns(d) for d in spec.dns),
                dns_search=tuple(check_dns_search(d) for d in spec.dns_search),
            )
        net_row = None
        network = spec.network_mode or "default"
        key = network_key(network)
        asked = spec.endpoint(key) or spec.endpoint(network)
        ip = asked.ipv4_address if asked else ""
        if is_bridged(network):
            net_row = self.networks().for_container(network)
        elif spec.ports or spec.publish_all:
            spec = replace(spec, ports=(), publish_all=False)  # host/none: nothing to publish
        if ip:
            from dockyard.engine.networks import check_ipv4

            ip = self.networks().static_address(net_row, check_ipv4(ip))
        elif asked and asked.aliases and key in ("bridge",):
            raise InvalidArgument(
                "network-scoped aliases are only supported for user-defined networks"
            )
        spec, volumes_used = self._plan_mounts(spec, icfg)
        created = _now()
        ctr = Container(cid, spec.name, created, image_id, spec)
        if not network.startswith("container:"):
            ctr = replace(ctr, endpoints=((key, Endpoint("")),))
        cdir = self.records.container_dir(cid)
        self._make_dirs(cid, ctr)
        try:
            ctr = self._insert(ctr, net_row, key, asked.aliases if asked else (), ip, volumes_used)
        except BaseException:
            import shutil

            shutil.rmtree(cdir, ignore_errors=True)
            raise
        self.events.container(ctr, "create")
        return cid

    def _insert(
        self,
        ctr: Container,
        net_row: Any,
        key: str,
        aliases: Sequence[str],
        ip: str,
        volumes_used: Sequence[str],
    ) -> Container:
        """Record the container (named, its address leased); what was recorded."""
        from dockyard.engine.names import random_name

        with self.records.db.transaction() as c:
            name = ctr.name
            if not name:
                for attempt in range(20):
                    name = random_name(attempt)
                    if not self.records.name_taken_in(c, name):
                        break
                ctr = replace(ctr, name=name, spec=replace(ctr.spec, name=name))
            if net_row is not None:
                # The address is leased with the container, in the same transaction:
                # parallel creates never get the same one, and a start costs no write.
                self.networks().lease_in(c, net_row, ctr.id, ip)
                words = () if key == "bridge" else (*aliases, ctr.id[:12])
                ctr = ctr.with_endpoint(key, Endpoint(str(net_row["id"]), tuple(words), ip))
            self.records.insert_in(c, ctr, time.time())
            c.executemany(
                "INSERT OR IGNORE INTO container_volumes (container_id, volume) VALUES (?, ?)",
                [(ctr.id, v) for v in volumes_used],
            )
        self.records.index_name(ctr.name, ctr.id)
        return ctr

    def _merge_image(self, spec: ContainerSpec, icfg: dict[str, Any], cid: str) -> ContainerSpec:
        """The spec with the image's defaults in: what inspect's Config shows."""
        entrypoint = tuple(icfg.get("Entrypoint") or ())
        cmd = tuple(icfg.get("Cmd") or ())
        if spec.entrypoint is not None:
            # --entrypoint replaces the image's and drops its CMD, as Docker does.
            entrypoint, cmd = spec.entrypoint, ()
        if spec.cmd:
            cmd = spec.cmd
        if not entrypoint and not cmd:
            raise InvalidArgument("No command specified")
        env = container_env(icfg.get("Env") or [], spec.env)
        if not any(e.partition("=")[0] == "PATH" for e in env):
            env.insert(0, DEFAULT_PATH_ENV)
        exposed = list(icfg.get("ExposedPorts") or {})
        if is_bridged(spec.network_mode or "default"):
            exposed += [p for p in spec.exposed_ports if p not in exposed]
            exposed += [b.key for b in spec.ports if b.key not in exposed]
        labels = dict(icfg.get("Labels") or {})
        labels.update(spec.labels)
        out: ContainerSpec = replace(
            spec,
            cmd=cmd or None,
            entrypoint=entrypoint or None,
            env=tuple(env),
            hostname=spec.hostname or cid[:12],
            user=spec.user or icfg.get("User", ""),
            working_dir=spec.working_dir or icfg.get("WorkingDir", ""),
            labels=tuple(labels.items()),
            exposed_ports=tuple(exposed),
            stop_signal=spec.stop_signal or icfg.get("StopSignal", ""),
            healthcheck=_merge_health(spec.healthcheck, icfg.get("Healthcheck")),
            network_mode=spec.network_mode or "default",
        )
        return out

    def _plan_mounts(
        self, spec: ContainerSpec, icfg: dict[str, Any]
    ) -> tuple[ContainerSpec, list[str]]:
        """Volumes named (and made), missing -v host dirs made, --volumes-from and the image's
        VOLUMEs added: the mounts the container will have."""
        mounts: list[Mount] = []
        used: list[str] = []
        seen: set[str] = set()
        from dockyard.model.docker import check_mount

        for m in spec.mounts:
            if m.origin == "mount":
                check_mount(m)
            if m.target in seen:
                raise InvalidArgument(f"Duplicate mount point: {m.target}")
            seen.add(m.target)
            if m.type == "volume":
                labels = dict(m.volume_labels) or None
                name = self.volumes.create(m.source, labels, anonymous=not m.source)
                m = replace(m, source=name)
                used.append(name)
            elif m.type == "bind" and not os.path.exists(m.source):
                if m.origin == "mount":
                    raise InvalidArgument(
                        f'invalid mount config for type "bind": bind source path does not '
                        f"exist: {m.source}"
                    )
                os.makedirs(m.source, exist_ok=True)  # -v creates a missing host dir
            mounts.append(m)
        for ref in spec.volumes_from:
            name, _, mode = ref.partition(":")
            if mode not in ("", "ro", "rw"):
                raise InvalidArgument(f"invalid mode for volumes-from: {mode}")
            other = self.load_container(name)
            for m in other.spec.mounts:
                if m.type == "tmpfs" or m.target in seen:
                    continue
                seen.add(m.target)
                read_only = m.read_only if not mode else mode == "ro"
                mounts.append(replace(m, read_only=read_only))
                if m.type == "volume":
                    used.append(m.source)
        for dest in sorted(icfg.get("Volumes") or {}):
            if dest in seen:
                continue
            name = self.volumes.create("", anonymous=True)
            used.append(name)
            mounts.append(Mount("volume", dest, name, origin="image"))
        return replace(spec, mounts=tuple(mounts)), used

    def _make_dirs(self, cid: str, ctr: Container) -> None:
        spec = ctr.spec
        cdir = self.records.container_dir(cid)
        for d in ("upper", "work", "rootfs", "init"):
            os.makedirs(os.path.join(cdir, d), mode=0o700 if d == "work" else 0o755)
        # The merged root takes the upper dir's mode: it is the container's "/", which every
        # user in the container must be able to traverse (the umask must not narrow it).
        os.chmod(os.path.join(cdir, "upper"), 0o755)
        os.chmod(cdir, 0o710)
        init = os.path.join(cdir, "init")
        # The init layer (Docker's "-init", moby's initlayer): mount points exist below the
        # upper dir, so the runtime never creates them there and commit/diff never see them;
        # and what Docker puts there too (/.dockerenv, /etc/mtab), so `export` has the same
        # files as Docker's. Files are 0755, as Docker makes them.
        for d in ("proc", "sys", "dev", "dev/pts", "dev/shm", "etc"):
            os.makedirs(os.path.join(init, d), exist_ok=True)
        for name in (*ETC_FILES, "/.dockerenv", "/dev/console"):
            path = os.path.join(init, name.lstrip("/"))
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o755))
            os.chmod(path, 0o755)
        os.symlink("/proc/mounts", os.path.join(init, "etc", "mtab"))
        for m in spec.mounts:
            if m.type == "tmpfs":
                # As with Docker, the runtime makes a missing tmpfs mount point itself (in the
                # writable layer: `diff` shows it): a point made here would lend the tmpfs its
                # own mode (runc applies an existing point's mode), not the one asked for.
                continue
            point = os.path.join(init, m.target.lstrip("/"))
            if m.type == "bind" and os.path.isfile(m.source):
                os.makedirs(os.path.dirname(point), exist_ok=True)
                if not os.path.exists(point):
                    open(point, "w").close()
            else:
                os.makedirs(point, exist_ok=True)
        with open(os.path.join(cdir, "hostname"), "w") as f:
            f.write(spec.hostname + "\n")
        from dockyard.network.hosts import (
            embedded_resolv_conf,
            extra_hosts,
            host_resolv_conf,
            hosts_text,
            resolv_conf,
        )

        host_net = spec.network_mode == "host"
        own = [] if host_net else [("127.0.1.1", spec.hostname)]
        extra = extra_hosts(list(spec.extra_hosts) or None, self.networks().host_gateway)
        with open(os.path.join(cdir, "hosts"), "w") as f:
            f.write(hosts_text(own, [], extra))
        host_resolv = host_resolv_conf()
        flags = (spec.dns, spec.dns_search, spec.dns_options)
        mode = spec.network_mode
        if is_bridged(mode) and network_key(mode) != "bridge":
            # A user network: the embedded DNS server (127.0.0.11) answers, as in Docker
            resolv = embedded_resolv_conf(host_resolv or "", *flags)[0]
        elif not any(flags) and (host_resolv is None or host_net):
            resolv = host_resolv or ""
        else:
            # The host's loopback resolvers are unreachable from the container's own network
            # namespace: Docker drops them.
            resolv = resolv_conf(
                host_resolv or "",
                list(spec.dns),
                list(spec.dns_search),
                list(spec.dns_options),
                drop_loopback=not host_net,
            )
        with open(os.path.join(cdir, "resolv.conf"), "w") as dst:
            dst.write(resolv)
        log = self.records.log_path(cid, spec.log_config.type or "json-file")
        if log:
            os.makedirs(os.path.dirname(log), mode=0o700, exist_ok=True)  # local-logs/
            os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o640))


_NO_LIMITS = Resources()


def _has_host_options(spec: ContainerSpec) -> bool:
    """Whether the spec asks for namespaces, devices, links, a MAC or storage options (only
    then is hostopts.py imported: `run` pays nothing for them)."""
    return bool(
        spec.pid_mode
        or spec.ipc_mode
        or spec.uts_mode
        or spec.cgroupns_mode
        or spec.devices
        or spec.device_cgroup_rules
        or spec.links
        or spec.storage_opt
        or spec.mac_address
        or spec.resources.cpuset_cpus
        or spec.resources.cpuset_mems
    )


def _now() -> str:
    from dockyard.image.config import now_rfc3339

    return now_rfc3339()
