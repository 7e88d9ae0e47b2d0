"""Docker's JSON -> the model: the Engine API's create body (``Config`` fields,
``HostConfig``, ``NetworkingConfig``) -> ``ContainerSpec``, with Docker's 400s for bodies of
the wrong shape; and the inspect documents dockyard stored before the typed model ->
``Container`` (model/codec.py reads old rows through it)."""

from __future__ import annotations

from dockyard.errors import InvalidArgument
from dockyard.model.container import (
    ZERO_TIME,
    Container,
    ContainerSpec,
    ContainerState,
    ContainerUpdate,
    Device,
    Endpoint,
    EndpointSpec,
    Healthcheck,
    LogConfig,
    Mount,
    PortBinding,
    PublishedPort,
    Resources,
    RestartPolicy,
    Security,
    Ulimit,
)
from dockyard.model.docker.checks import parse_security_opts
from dockyard.model.docker.shapes import port_key
from dockyard.model.mounts import parse_bind, parse_tmpfs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


# ---------------------------------------------------------------------------- reading JSON

_GO_TYPES = {str: "string", list: "array", dict: "object", bool: "bool"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return _GO_TYPES.get(type(value), "value")


class _Obj:
    """A JSON object of a Go struct: typed getters whose errors read like Go's decoder's."""

    def __init__(self, doc: Any, struct: str) -> None:
        if doc is None:
            doc = {}
        if not isinstance(doc, dict):
            raise InvalidArgument(
                f"json: cannot unmarshal {_json_type(doc)} into Go value of type {struct}"
            )
        self.doc: dict[str, Any] = doc
        self.struct = struct

    def _wrong(self, key: str, value: Any, go_type: str) -> InvalidArgument:
        return InvalidArgument(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field "
            f"{self.struct}.{key} of type {go_type}"
        )

    def text(self, key: str) -> str:
        v = self.doc.get(key)
        if v is None:
            return ""
        if not isinstance(v, str):
            raise self._wrong(key, v, "string")
        return v

    def flag(self, key: str) -> bool:
        v = self.doc.get(key)
        if v is None:
            return False
        if not isinstance(v, bool):
            raise self._wrong(key, v, "bool")
        return v

    def number(self, key: str, go_type: str = "int64") -> int:
        v = self.doc.get(key)
        if v is None:
            return 0
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
            raise self._wrong(key, v, go_type)
        return int(v)

    def opt_number(self, key: str) -> int | None:
        return None if self.doc.get(key) is None else self.number(key)

    def strings(self, key: str, *, str_slice: bool = False) -> tuple[str, ...] | None:
        """A list of strings (None when absent); ``str_slice``: Docker's StrSlice, where a
        bare string counts as a one-element list."""
        v = self.doc.get(key)
        if v is None:
            return None
        if str_slice and isinstance(v, str):
            return (v,)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self._wrong(key, v, "[]string" if not str_slice else "strslice.StrSlice")
        return tuple(v)

    def string_map(self, key: str) -> dict[str, str]:
        v = self.doc.get(key)
        if v is None:
            return {}
        if not isinstance(v, dict) or not all(isinstance(x, str) for x in v.values()):
            raise self._wrong(key, v, "map[string]string")
        return v

    def set_keys(self, key: str) -> tuple[str, ...]:
        """The keys of a set-like object (``ExposedPorts``, ``Volumes``)."""
        v = self.doc.get(key)
        if v is None:
            return ()
        if not isinstance(v, dict):
            raise self._wrong(key, v, "map[string]struct {}")
        return tuple(v)

    def sub(self, key: str, struct: str) -> _Obj:
        v = self.doc.get(key)
        if v is not None and not isinstance(v, dict):
            raise self._wrong(key, v, struct)
        return _Obj(v, struct)

    def subs(self, key: str, struct: str) -> list[_Obj]:
        v = self.doc.get(key)
        if v is None:
            return []
        if not isinstance(v, list):
            raise self._wrong(key, v, f"[]{struct}")
        return [_Obj(x, struct) for x in v]


def _pairs(m: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((str(k), str(v)) for k, v in m.items())


def _port_text(key: str) -> str:
    port, proto = port_key(key)
    return f"{port}/{proto}"


def _host_port(text: str) -> str:
    lo, dash, hi = text.partition("-")
    if text and not (
        lo.isdigit() and 0 < int(lo) <= 65535 and (not dash or (hi.isdigit() and lo <= hi))
    ):
        raise InvalidArgument(f"invalid hostPort: {text}")
    return text


def _mounts_field(hc: _Obj) -> list[Mount]:
    """HostConfig.Mounts (``--mount``) -> Mounts (checked at create: check_mount)."""
    out = []
    for m in hc.subs("Mounts", "mount.Mount"):
        kind = m.text("Type")
        bind, vol, tmp = (
            m.sub("BindOptions", "mount.BindOptions"),
            m.sub("VolumeOptions", "mount.VolumeOptions"),
            m.sub("TmpfsOptions", "mount.TmpfsOptions"),
        )
        for opts, name, owner in (
            (bind, "BindOptions", "bind"),
            (vol, "VolumeOptions", "volume"),
            (tmp, "TmpfsOptions", "tmpfs"),
        ):
            if opts.doc and kind != owner:
                raise InvalidArgument(
                    f'invalid mount config for type "{kind}": field {name} must not be specified'
                )
        out.append(
            Mount(
                kind,
                m.text("Target"),
                m.text("Source"),
                m.flag("ReadOnly"),
                origin="mount",
                propagation=bind.text("Propagation") or ("rprivate" if kind == "bind" else ""),
                no_copy=vol.flag("NoCopy"),
                volume_labels=_pairs(vol.string_map("Labels")),
                tmpfs_size=tmp.number("SizeBytes"),
                tmpfs_mode=tmp.number("Mode", "os.FileMode"),
            )
        )
    return out


def spec_from_body(body: Mapping[str, Any], name: str = "") -> ContainerSpec:
    """``POST /containers/create``'s body -> the spec (InvalidArgument for Docker's 400s)."""
    cfg = _Obj(dict(body), "Config")
    image = cfg.text("Image")
    if not image:
        raise InvalidArgument("Config cannot be empty in order to create a container")
    hc = cfg.sub("HostConfig", "container.HostConfig")
    hc.struct = "HostConfig"
    networking = cfg.sub("NetworkingConfig", "network.NetworkingConfig")

    mounts: list[Mount] = []
    targets: set[str] = set()
    for spec in hc.strings("Binds") or ():
        m = parse_bind(spec)
        mounts.append(m)
        targets.add(m.target)
    for m in _mounts_field(hc):
        mounts.append(m)
        targets.add(m.target)
    for path, opts in hc.string_map("Tmpfs").items():
        m = parse_tmpfs(path, opts)
        mounts.append(m)
        targets.add(m.target)
    # Config.Volumes also names the targets of Binds (docker-py sends both): those are binds.
    for path in cfg.set_keys("Volumes"):
        if path not in targets:
            if not path.startswith("/"):
                raise InvalidArgument(
                    f"invalid volume specification: '{path}': invalid mount config for type "
                    f"\"volume\": invalid mount path: '{path}' mount path must be absolute"
                )
            mounts.append(Mount("volume", path, origin="anonymous"))

    ports: list[PortBinding] = []
    bindings = hc.sub("PortBindings", "nat.PortMap")
    for key, hosts in bindings.doc.items():
        port, proto = port_key(key)
        if hosts is not None and not isinstance(hosts, list):
            raise InvalidArgument(
                f"json: cannot unmarshal {_json_type(hosts)} into Go struct field "
                "HostConfig.PortBindings of type []nat.PortBinding"
            )
        for h in hosts or [{}]:
            b = _Obj(h, "nat.PortBinding")
            ports.append(PortBinding(port, proto, b.text("HostIp"), _host_port(b.text("HostPort"))))

    entrypoint = cfg.strings("Entrypoint", str_slice=True)
    if entrypoint is not None:
        # `--entrypoint ""` arrives as [""]: no entrypoint at all (the image's is dropped).
        entrypoint = tuple(e for e in entrypoint if e)

    nano_cpus = hc.number("NanoCpus")
    quota, period = hc.number("CpuQuota"), hc.number("CpuPeriod")
    ulimits = []
    for u in hc.subs("Ulimits", "units.Ulimit"):
        soft = u.number("Soft")
        hard = u.number("Hard") if u.doc.get("Hard") is not None else soft
        ulimits.append(Ulimit(u.text("Name"), soft, hard))
    pids = hc.opt_number("PidsLimit")
    resources = Resources(
        memory=hc.number("Memory"),
        memory_swap=hc.number("MemorySwap"),
        memory_reservation=hc.number("MemoryReservation"),
        nano_cpus=nano_cpus,
        cpu_shares=hc.number("CpuShares"),
        cpu_period=period,
        cpu_quota=quota,
        cpuset_cpus=hc.text("CpusetCpus"),
        cpuset_mems=hc.text("CpusetMems"),
        pids_limit=max(pids or 0, 0),
        blkio_weight=hc.number("BlkioWeight", "uint16"),
        oom_kill_disable=hc.flag("OomKillDisable"),
        ulimits=tuple(ulimits),
    )
    security = parse_security_opts(hc.strings("SecurityOpt") or ())
    masked = hc.strings("MaskedPaths")
    readonly = hc.strings("ReadonlyPaths")
    security = Security(
        privileged=hc.flag("Privileged"),
        cap_add=hc.strings("CapAdd", str_slice=True) or (),
        cap_drop=hc.strings("CapDrop", str_slice=True) or (),
        seccomp=security.seccomp,
        no_new_privileges=security.no_new_privileges,
        apparmor=security.apparmor,
        label=security.label,
        masked_paths=masked,
        readonly_paths=readonly,
    )

    restart = hc.sub("RestartPolicy", "container.RestartPolicy")
    log = hc.sub("LogConfig", "container.LogConfig")
    health = None
    if cfg.doc.get("Healthcheck") is not None:
        h = cfg.sub("Healthcheck", "container.HealthConfig")
        health = Healthcheck(
            test=h.strings("Test") or (),
            interval=h.number("Interval"),
            timeout=h.number("Timeout"),
            start_period=h.number("StartPeriod"),
            retries=h.number("Retries", "int"),
        )

    network_mode = hc.text("NetworkMode") or "default"
    endpoints = []
    for net, ep_doc in networking.sub("EndpointsConfig", "map").doc.items():
        ep = _Obj(ep_doc, "network.EndpointSettings")
        ipam = ep.sub("IPAMConfig", "network.EndpointIPAMConfig")
        endpoints.append(
            EndpointSpec(
                net,
                aliases=ep.strings("Aliases") or (),
                ipv4_address=ipam.text("IPv4Address"),
                mac_address=ep.text("MacAddress"),
            )
        )

    devices = tuple(
        Device(
            d.text("PathOnHost"),
            d.text("PathInContainer"),
            d.text("CgroupPermissions"),
        )
        for d in hc.subs("Devices", "container.DeviceMapping")
    )
    links = []
    for text in hc.strings("Links") or ():
        from dockyard.model.links import parse_link

        links.append(parse_link(text))

    stop_timeout = cfg.doc.get("StopTimeout")
    if stop_timeout is not None:
        stop_timeout = cfg.number("StopTimeout", "int")
    init = hc.doc.get("Init")
    return ContainerSpec(
        image=image,
        name=name,
        cmd=cfg.strings("Cmd", str_slice=True) or None,
        entrypoint=entrypoint,
        env=cfg.strings("Env") or (),
        working_dir=cfg.text("WorkingDir"),
        user=cfg.text("User"),
        group_add=hc.strings("GroupAdd") or (),
        hostname=cfg.text("Hostname"),
        domainname=cfg.text("Domainname"),
        tty=cfg.flag("Tty"),
        open_stdin=cfg.flag("OpenStdin"),
        stdin_once=cfg.flag("StdinOnce"),
        attach_stdin=cfg.flag("AttachStdin"),
        attach_stdout=cfg.flag("AttachStdout"),
        attach_stderr=cfg.flag("AttachStderr"),
        labels=_pairs(cfg.string_map("Labels")),
        exposed_ports=tuple(_port_text(k) for k in cfg.set_keys("ExposedPorts")),
        stop_signal=cfg.text("StopSignal"),
        stop_timeout=stop_timeout,
        healthcheck=health,
        mounts=tuple(mounts),
        volumes_from=hc.strings("VolumesFrom") or (),
        read_only=hc.flag("ReadonlyRootfs"),
        network_mode=network_mode,
        networks=tuple(endpoints),
        ports=tuple(ports),
        publish_all=hc.flag("PublishAllPorts"),
        dns=hc.strings("Dns") or (),
        dns_search=hc.strings("DnsSearch") or (),
        dns_options=hc.strings("DnsOptions") or (),
        extra_hosts=hc.strings("ExtraHosts") or (),
        mac_address=cfg.text("MacAddress"),
        pid_mode=hc.text("PidMode"),
        ipc_mode=hc.text("IpcMode"),
        uts_mode=hc.text("UTSMode"),
        cgroupns_mode=hc.text("CgroupnsMode"),
        resources=resources,
        security=security,
        # As sent: Docker shows {"Name": ""} for a body without a policy (docker-py's).
        restart_policy=RestartPolicy(
            restart.text("Name"), restart.number("MaximumRetryCount", "int")
        ),
        log_config=LogConfig(log.text("Type") or "json-file", _pairs(log.string_map("Config"))),
        auto_remove=hc.flag("AutoRemove"),
        init=bool(init) if isinstance(init, bool) else False,
        shm_size=hc.number("ShmSize"),
        sysctls=_pairs(hc.string_map("Sysctls")),
        runtime=hc.text("Runtime"),
        devices=devices,  # checked (and defaults filled) at create
        device_cgroup_rules=hc.strings("DeviceCgroupRules") or (),
        links=tuple(links),
        storage_opt=_pairs(hc.string_map("StorageOpt")),
    )


def update_from_body(body: Mapping[str, Any]) -> ContainerUpdate:
    """``POST /containers/{id}/update``'s body (Docker's UpdateConfig: the resources and
    RestartPolicy of a HostConfig) -> what changes; zero values change nothing, as in
    Docker, and PidsLimit null neither."""
    b = _Obj(dict(body), "container.UpdateConfig")

    def nonzero(key: str) -> int | None:
        return b.number(key) or None

    restart = None
    if body.get("RestartPolicy") is not None:
        r = b.sub("RestartPolicy", "container.RestartPolicy")
        if r.text("Name"):
            restart = RestartPolicy(r.text("Name"), r.number("MaximumRetryCount", "int"))
    return ContainerUpdate(
        memory=nonzero("Memory"),
        memory_swap=nonzero("MemorySwap"),
        memory_reservation=nonzero("MemoryReservation"),
        nano_cpus=nonzero("NanoCpus"),
        cpu_shares=nonzero("CpuShares"),
        cpu_period=nonzero("CpuPeriod"),
        cpu_quota=nonzero("CpuQuota"),
        cpuset_cpus=b.text("CpusetCpus") or None,
        cpuset_mems=b.text("CpusetMems") or None,
        pids_limit=b.opt_number("PidsLimit"),
        restart_policy=restart,
    )


def container_from_inspect(doc: Mapping[str, Any]) -> Container:
    """A container row written before the typed model (Docker's inspect JSON plus a
    "Dockyard" section) -> Container. Every stored field is kept; paths are not (they are
    derived from the store's root, so a moved store keeps working)."""
    d = _Obj(dict(doc), "ContainerJSON")
    cfg = d.sub("Config", "container.Config")
    hc = d.sub("HostConfig", "container.HostConfig")
    body = dict(cfg.doc)
    # The stored HostConfig is the create body's, minus what the old engine resolved.
    body["HostConfig"] = {k: v for k, v in hc.doc.items() if k not in ("Binds", "Tmpfs")}
    spec = spec_from_body(body, d.text("Name").lstrip("/"))
    mounts: list[Mount] = []
    for m in d.subs("Mounts", "types.MountPoint"):
        kind = m.text("Type")
        mode = m.text("Mode")
        if kind == "bind":
            mounts.append(
                Mount(
                    "bind",
                    m.text("Destination"),
                    m.text("Source"),
                    not m.flag("RW"),
                    origin="bind",
                    mode=mode,
                    propagation=m.text("Propagation") or "rprivate",
                )
            )
        else:
            anonymous = len(m.text("Name")) == 64 and m.text("Name") not in {
                b.split(":")[0] for b in hc.strings("Binds") or ()
            }
            image_volume = m.text("Destination") in (cfg.set_keys("Volumes") or ())
            origin = "image" if anonymous and image_volume else "anonymous" if anonymous else "bind"
            mounts.append(
                Mount(
                    "volume",
                    m.text("Destination"),
                    m.text("Name"),
                    not m.flag("RW"),
                    origin=origin,
                    mode=mode,
                )
            )
    for path, opts in hc.string_map("Tmpfs").items():
        mounts.append(parse_tmpfs(path, opts))
    spec = _replace_spec(spec, mounts=tuple(mounts))
    st = d.sub("State", "container.State")
    dy = d.sub("Dockyard", "dockyard")
    state = ContainerState(
        status=st.text("Status") or "created",
        pid=st.number("Pid"),
        exit_code=st.number("ExitCode"),
        error=st.text("Error"),
        oom_killed=st.flag("OOMKilled"),
        started_at=st.text("StartedAt") or ZERO_TIME,
        finished_at=st.text("FinishedAt") or ZERO_TIME,
        monitor_pid=dy.number("MonitorPid"),
        monitor_start=dy.text("MonitorStart"),
    )
    ns = d.sub("NetworkSettings", "NetworkSettings")
    ifaces = dy.sub("Interfaces", "map").doc
    endpoints = []
    for net, ep_doc in ns.sub("Networks", "map").doc.items():
        ep = _Obj(ep_doc, "network.EndpointSettings")
        iface = _Obj(ifaces.get(net), "iface")
        endpoints.append(
            (
                str(net),
                Endpoint(
                    network_id=ep.text("NetworkID"),
                    aliases=ep.strings("Aliases") or (),
                    ipv4_address=ep.sub("IPAMConfig", "ipam").text("IPv4Address"),
                    endpoint_id=ep.text("EndpointID"),
                    ip_address=ep.text("IPAddress"),
                    prefix_len=ep.number("IPPrefixLen"),
                    gateway=ep.text("Gateway"),
                    mac_address=ep.text("MacAddress"),
                    ifname=iface.text("ifname"),
                    host_veth=iface.text("veth"),
                ),
            )
        )
    published = []
    for key, hosts in ns.sub("Ports", "nat.PortMap").doc.items():
        port, proto = port_key(key)
        for h in hosts or []:
            b = _Obj(h, "nat.PortBinding")
            published.append(PublishedPort(proto, b.text("HostIp"), int(b.text("HostPort")), port))
    return Container(
        id=d.text("Id"),
        name=d.text("Name").lstrip("/"),
        created=d.text("Created"),
        image_id=d.text("Image"),
        spec=spec,
        state=state,
        endpoints=tuple(endpoints),
        published=tuple(published),
        sandbox_key=ns.text("SandboxKey"),
        restart_count=d.number("RestartCount"),
    )


def _replace_spec(spec: ContainerSpec, **changes: Any) -> ContainerSpec:
    from dockyard.model.container import replace

    out: ContainerSpec = replace(spec, **changes)
    return out
