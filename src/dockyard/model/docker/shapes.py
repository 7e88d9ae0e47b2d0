"""The model -> Docker's JSON: the inspect document (``docker inspect``, ``GET
/containers/{id}/json``), the list entry (``GET /containers/json``) and the STATUS text both
front ends show. Field order and zero values follow Docker 20.10's output, so clients that
read inspect (docker-py, Compose) find every key they look for."""

from __future__ import annotations

from dockyard.errors import InvalidArgument
from dockyard.model.container import (
    MASKED_PATHS,
    READONLY_PATHS,
    Container,
    ContainerSpec,
    ContainerState,
    Endpoint,
    Mount,
    Security,
)
from dockyard.model.links import link_text
from dockyard.model.mounts import bind_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

DEFAULT_SHM_SIZE = 64 * 1024 * 1024
DEFAULT_RUNTIME = "runc"


def port_key(text: str) -> tuple[int, str]:
    """ "80/tcp" or "80" -> (80, "tcp"); Docker's error otherwise. Both directions read the
    keys (here, not in reading.py: ``ps`` and ``inspect`` load only this module)."""

    port, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if not port.isdigit() or not 0 < int(port) <= 65535 or proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid port specification: {text!r}")
    return int(port), proto


# ---------------------------------------------------------------------------- writing JSON


def _none_if_empty(values: Any) -> Any:
    return list(values) if values else None


def config_shape(spec: ContainerSpec) -> dict[str, Any]:
    """``Config`` as Docker 20.10 shows it (omitempty fields left out when empty)."""
    out: dict[str, Any] = {
        "Hostname": spec.hostname,
        "Domainname": spec.domainname,
        "User": spec.user,
        "AttachStdin": spec.attach_stdin,
        "AttachStdout": spec.attach_stdout,
        "AttachStderr": spec.attach_stderr,
    }
    exposed: dict[str, Any] = {p: {} for p in spec.exposed_ports}
    for b in spec.ports:
        exposed.setdefault(b.key, {})
    if exposed:
        out["ExposedPorts"] = exposed
    out.update(
        {
            "Tty": spec.tty,
            "OpenStdin": spec.open_stdin,
            "StdinOnce": spec.stdin_once,
            "Env": _none_if_empty(spec.env),
            "Cmd": list(spec.cmd) if spec.cmd else None,
        }
    )
    if spec.healthcheck is not None:
        h = spec.healthcheck
        hd: dict[str, Any] = {"Test": list(h.test)}
        for key, value in (
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
            ("Retries", h.retries),
        ):
            if value:
                hd[key] = value
        out["Healthcheck"] = hd
    volumes: dict[str, Any] = {
        m.target: {} for m in spec.mounts if m.origin in ("anonymous", "image")
    }
    out.update(
        {
            "Image": spec.image,
            "Volumes": volumes or None,
            "WorkingDir": spec.working_dir,
            "Entrypoint": list(spec.entrypoint) if spec.entrypoint else None,
        }
    )
    if spec.mac_address:
        out["MacAddress"] = spec.mac_address
    out["OnBuild"] = None
    out["Labels"] = dict(spec.labels)
    if spec.stop_signal:
        out["StopSignal"] = spec.stop_signal
    if spec.stop_timeout is not None:
        out["StopTimeout"] = spec.stop_timeout
    return out


def security_opt_shape(sec: Security) -> list[str] | None:
    out = []
    if sec.seccomp:
        out.append(f"seccomp={sec.seccomp}")
    if sec.no_new_privileges:
        out.append("no-new-privileges")
    if sec.apparmor:
        out.append(f"apparmor={sec.apparmor}")
    out.extend(f"label={v}" for v in sec.label)
    return out or None


def host_config_shape(spec: ContainerSpec) -> dict[str, Any]:
    """``HostConfig`` with Docker 20.10's full key set."""
    r, sec = spec.resources, spec.security
    bindings: dict[str, list[dict[str, str]]] = {}
    for b in spec.ports:
        bindings.setdefault(b.key, []).append({"HostIp": b.host_ip, "HostPort": b.host_port})
    binds = [bind_text(m) for m in spec.mounts if m.origin == "bind"]
    mounts = [_mount_field(m) for m in spec.mounts if m.origin == "mount"]
    tmpfs = {m.target: m.mode for m in spec.mounts if m.origin == "tmpfs"}
    out: dict[str, Any] = {
        "Binds": binds or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": spec.log_config.type, "Config": dict(spec.log_config.config)},
        "NetworkMode": spec.network_mode,
        "PortBindings": bindings,
        "RestartPolicy": {
            "Name": spec.restart_policy.name,
            "MaximumRetryCount": spec.restart_policy.maximum_retry_count,
        },
        "AutoRemove": spec.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": _none_if_empty(spec.volumes_from),
        "CapAdd": _none_if_empty(sec.cap_add),
        "CapDrop": _none_if_empty(sec.cap_drop),
        "CgroupnsMode": spec.cgroupns_mode or "host",
        "Dns": list(spec.dns),
        "DnsOptions": list(spec.dns_options),
        "DnsSearch": list(spec.dns_search),
        "ExtraHosts": _none_if_empty(spec.extra_hosts),
        "GroupAdd": _none_if_empty(spec.group_add),
        "IpcMode": spec.ipc_mode or "private",
        "Cgroup": "",
        "Links": [link_text(child, spec.name, alias) for child, alias in spec.links] or None,
        "OomScoreAdj": 0,
        "PidMode": spec.pid_mode,
        "Privileged": sec.privileged,
        "PublishAllPorts": spec.publish_all,
        "ReadonlyRootfs": spec.read_only,
        "SecurityOpt": security_opt_shape(sec),
        "Tmpfs": tmpfs or None,
        "UTSMode": spec.uts_mode,
        "UsernsMode": "",
        "ShmSize": spec.shm_size or DEFAULT_SHM_SIZE,
        "Runtime": spec.runtime or DEFAULT_RUNTIME,
        "ConsoleSize": [0, 0],
        "Isolation": "",
        "CpuShares": r.cpu_shares,
        "Memory": r.memory,
        "NanoCpus": r.nano_cpus,
        "CgroupParent": "",
        "BlkioWeight": r.blkio_weight,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": r.cpu_period,
        "CpuQuota": r.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": r.cpuset_cpus,
        "CpusetMems": r.cpuset_mems,
        "Devices": [
            {
                "PathOnHost": d.path_on_host,
                "PathInContainer": d.path_in_container,
                "CgroupPermissions": d.cgroup_permissions,
            }
            for d in spec.devices
        ],
        "DeviceCgroupRules": _none_if_empty(spec.device_cgroup_rules),
        "DeviceRequests": None,
        "KernelMemory": 0,
        "KernelMemoryTCP": 0,
        "MemoryReservation": r.memory_reservation,
        "MemorySwap": r.memory_swap,
        "MemorySwappiness": None,
        "OomKillDisable": r.oom_kill_disable,
        "PidsLimit": r.pids_limit or None,
        "Ulimits": [{"Name": u.name, "Hard": u.hard, "Soft": u.soft} for u in r.ulimits] or None,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
    }
    if mounts:
        out["Mounts"] = mounts
    if spec.storage_opt:
        out["StorageOpt"] = dict(spec.storage_opt)
    if spec.init:
        out["Init"] = True
    if spec.sysctls:
        out["Sysctls"] = dict(spec.sysctls)
    if not sec.privileged:
        out["MaskedPaths"] = list(
            sec.masked_paths if sec.masked_paths is not None else MASKED_PATHS
        )
        out["ReadonlyPaths"] = list(
            sec.readonly_paths if sec.readonly_paths is not None else READONLY_PATHS
        )
    return out


def _mount_field(m: Mount) -> dict[str, Any]:
    """One ``HostConfig.Mounts`` entry, as ``--mount`` sent it."""
    out: dict[str, Any] = {"Type": m.type}
    if m.source:
        out["Source"] = m.source
    out["Target"] = m.target
    if m.read_only:
        out["ReadOnly"] = True
    if m.type == "bind" and m.propagation not in ("", "rprivate"):
        out["BindOptions"] = {"Propagation": m.propagation}
    if m.type == "volume" and (m.no_copy or m.volume_labels):
        vo: dict[str, Any] = {}
        if m.no_copy:
            vo["NoCopy"] = True
        if m.volume_labels:
            vo["Labels"] = dict(m.volume_labels)
        out["VolumeOptions"] = vo
    if m.type == "tmpfs" and (m.tmpfs_size or m.tmpfs_mode):
        to: dict[str, Any] = {}
        if m.tmpfs_size:
            to["SizeBytes"] = m.tmpfs_size
        if m.tmpfs_mode:
            to["Mode"] = m.tmpfs_mode
        out["TmpfsOptions"] = to
    return out


def mount_points(c: Container, volume_source: Callable[[str], str]) -> list[dict[str, Any]]:
    """inspect's ``Mounts``: binds and volumes (``--tmpfs`` mounts are not listed, as in
    Docker; ``--mount type=tmpfs`` ones are)."""
    out: list[dict[str, Any]] = []
    for m in c.spec.mounts:
        if m.type == "bind":
            out.append(
                {
                    "Type": "bind",
                    "Source": m.source,
                    "Destination": m.target,
                    "Mode": m.mode,
                    "RW": not m.read_only,
                    "Propagation": m.propagation or "rprivate",
                }
            )
        elif m.type == "volume":
            out.append(
                {
                    "Type": "volume",
                    "Name": m.source,
                    "Source": volume_source(m.source),
                    "Destination": m.target,
                    "Driver": "local",
                    "Mode": m.mode,
                    "RW": not m.read_only,
                    "Propagation": "",
                }
            )
        elif m.origin == "mount":
            out.append(
                {
                    "Type": "tmpfs",
                    "Source": "",
                    "Destination": m.target,
                    "Mode": "",
                    "RW": not m.read_only,
                    "Propagation": "",
                }
            )
    return out


def state_shape(st: ContainerState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Status": st.status,
        "Running": st.running,
        "Paused": st.paused,
        "Restarting": st.restarting,
        "OOMKilled": st.oom_killed,
        "Dead": st.dead,
        "Pid": st.pid,
        "ExitCode": st.exit_code,
        "Error": st.error,
        "StartedAt": st.started_at,
        "FinishedAt": st.finished_at,
    }
    if st.health is not None:  # omitempty: only once a container with a check has started
        h = st.health
        out["Health"] = {
            "Status": h.status,
            "FailingStreak": h.failing_streak,
            "Log": [
                {"Start": r.start, "End": r.end, "ExitCode": r.exit_code, "Output": r.output}
                for r in h.log
            ],
        }
    return out


def ports_shape(c: Container) -> dict[str, Any]:
    """NetworkSettings.Ports: exposed and published ports, with host bindings while running."""
    if not c.running:
        return {}
    out: dict[str, Any] = {p: None for p in c.spec.exposed_ports}
    for b in c.spec.ports:
        out.setdefault(b.key, None)
    for p in c.published:
        key = f"{p.container_port}/{p.protocol}"
        if out.get(key) is None:
            out[key] = []
        out[key].append({"HostIp": p.host_ip, "HostPort": str(p.host_port)})
    return out


def _endpoint_shape(ep: Endpoint) -> dict[str, Any]:
    return {
        "IPAMConfig": {"IPv4Address": ep.ipv4_address} if ep.ipv4_address else None,
        "Links": None,
        "Aliases": list(ep.aliases) or None,
        "NetworkID": ep.network_id,
        "EndpointID": ep.endpoint_id,
        "Gateway": ep.gateway,
        "IPAddress": ep.ip_address,
        "IPPrefixLen": ep.prefix_len,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": ep.mac_address,
        "DriverOpts": None,
    }


def network_settings_shape(c: Container) -> dict[str, Any]:
    bridge = c.endpoint("bridge") or Endpoint("")  # Docker fills the top level for it only
    return {
        "Bridge": "",
        "SandboxID": c.id if c.running and c.sandbox_key else "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": ports_shape(c),
        "SandboxKey": c.sandbox_key if c.running else "",
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": bridge.endpoint_id,
        "Gateway": bridge.gateway,
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": bridge.ip_address,
        "IPPrefixLen": bridge.prefix_len,
        "IPv6Gateway": "",
        "MacAddress": bridge.mac_address,
        "Networks": {name: _endpoint_shape(ep) for name, ep in c.endpoints},
    }


def inspect_shape(
    c: Container, *, container_dir: str, volume_source: Callable[[str], str]
) -> dict[str, Any]:
    """``docker inspect CONTAINER`` / ``GET /containers/{id}/json``."""
    d = container_dir
    return {
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": list(c.args),
        "State": state_shape(c.state),
        "Image": c.image_id,
        "ResolvConfPath": f"{d}/resolv.conf",
        "HostnamePath": f"{d}/hostname",
        "HostsPath": f"{d}/hosts",
        # Docker names only json-file's log (local's is its own business; none has none).
        "LogPath": f"{d}/{c.id}-json.log" if c.spec.log_config.type == "json-file" else "",
        "Name": "/" + c.name,
        "RestartCount": c.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config_shape(c.spec),
        "GraphDriver": {
            "Data": {
                "LowerDir": f"{d}/init",
                "MergedDir": f"{d}/rootfs",
                "UpperDir": f"{d}/upper",
                "WorkDir": f"{d}/work",
            },
            "Name": "overlay",
        },
        "Mounts": mount_points(c, volume_source),
        "Config": config_shape(c.spec),
        "NetworkSettings": network_settings_shape(c),
    }


def status_text(st: ContainerState, now: float) -> str:
    """The STATUS of ``docker ps`` and of ``GET /containers/json`` (listing.py)."""
    from dockyard.model.docker.listing import status_line

    health = st.health.status if st.health is not None else ""
    return status_line(st.status, st.exit_code, st.started_at, st.finished_at, health, now)


def list_shape(c: Container, volume_source: Callable[[str], str], now: float) -> dict[str, Any]:
    """One entry of ``GET /containers/json``."""
    from dockyard.model.docker.listing import finish

    return finish(list_entry(c, volume_source), now)


def list_entry(c: Container, volume_source: Callable[[str], str]) -> dict[str, Any]:
    """One entry of ``GET /containers/json`` as the store keeps it with the row (listing.py):
    the STATUS text left for :func:`listing.finish` to write, from the state fields kept in
    its place."""
    from dockyard.model.docker.listing import STATE, VERSION
    from dockyard.units import unix_time

    ports: list[dict[str, Any]] = []
    for key, hosts in ports_shape(c).items():
        port, proto = port_key(key)
        if not hosts:
            ports.append({"PrivatePort": port, "Type": proto})
        for h in hosts or []:
            ports.append(
                {
                    "IP": h["HostIp"],
                    "PrivatePort": port,
                    "PublicPort": int(h["HostPort"]),
                    "Type": proto,
                }
            )
    st = c.state
    return {
        "Id": c.id,
        "Names": ["/" + c.name],
        "Image": c.spec.image,
        "ImageID": c.image_id,
        "Command": list_command(c.spec.args),
        "Created": unix_time(c.created),
        "Ports": ports,
        "Labels": dict(c.spec.labels),
        "State": st.status,
        "Status": "",
        "HostConfig": {"NetworkMode": c.spec.network_mode},
        "NetworkSettings": {"Networks": {name: _endpoint_shape(ep) for name, ep in c.endpoints}},
        "Mounts": mount_points(c, volume_source),
        STATE: {
            "v": VERSION,
            "exit_code": st.exit_code,
            "started_at": st.started_at,
            "finished_at": st.finished_at,
            "health": st.health.status if st.health is not None else "",
            "monitor_pid": st.monitor_pid,
            "monitor_start": st.monitor_start,
        },
    }


def start_error_text(err: Exception) -> str:
    """What Docker 20.10's daemon says when a start fails because of the command (exit 127 or
    126): runc's words wrapped by containerd's shim, which clients show verbatim and Docker's
    CLI reads to choose its exit code. Other failures are ours as they are."""
    from dockyard.errors import CommandNotExecutable, CommandNotFound

    text = str(err)
    if isinstance(err, CommandNotFound | CommandNotExecutable) and text.startswith("exec: "):
        return (
            "failed to create shim task: OCI runtime create failed: runc create failed: "
            f"unable to start container process: {text}: unknown"
        )
    return text


def list_command(args: tuple[str, ...] | list[str]) -> str:
    """The list entry's Command as Docker 20.10 writes it: the path, then the arguments, each
    one that holds a space in single quotes (``sh -c 'echo a b'``); `docker ps` and Compose
    show it."""
    if not args:
        return ""
    rest = [f"'{a}'" if " " in a else a for a in args[1:]]
    return " ".join([args[0], *rest])
