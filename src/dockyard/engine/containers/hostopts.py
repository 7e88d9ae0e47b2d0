"""What ``create`` checks of a container's namespaces, devices, links, MAC address and storage
options, whoever sends them (Docker's daemon messages; the CLI has checked its grammar
already): a value the engine cannot honour is refused before anything exists.

``container:NAME`` in ``--pid``/``--ipc`` is resolved to the container's full ID, as Docker
stores it, so a rename of the other container changes nothing.
"""

from __future__ import annotations

import os

from dockyard.errors import Conflict, InvalidArgument
from dockyard.model.container import is_bridged, network_key, replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from dockyard.model.container import Container, ContainerSpec, Resources

# What Docker's overlay2 driver says when the backing file system has no project quotas:
# dockyard's overlay store never has them (it does not set up quotas), so size= is refused.
DEFAULT_SHM_SIZE = 64 * 1024 * 1024
NO_QUOTA = "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"


def check_host_options(spec: ContainerSpec, lookup: Callable[[str], Container]) -> ContainerSpec:
    """``spec`` checked, with ``container:NAME`` modes resolved to IDs and devices' defaults
    filled in. ``lookup`` finds another container by name or ID (NotFound if none)."""
    from dockyard.model.devices import check_cgroup_rule, check_device, device_missing

    pid_mode = _join_mode(spec.pid_mode, ("host",), "PID", lookup)
    ipc_mode = _join_mode(
        spec.ipc_mode, ("private", "shareable", "host", "none"), "IPC", lookup, label="Invalid"
    )
    if spec.uts_mode not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {spec.uts_mode}")
    if spec.uts_mode == "host" and spec.hostname:
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    if spec.cgroupns_mode not in ("", "host", "private"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {spec.cgroupns_mode}")
    devices = tuple(check_device(d) for d in spec.devices)
    for d in devices:
        if not os.path.exists(d.path_on_host):
            raise InvalidArgument(device_missing(d.path_on_host))
    for rule in spec.device_cgroup_rules:
        check_cgroup_rule(rule)
    for key, _ in spec.storage_opt:
        if key.lower() == "size":
            raise InvalidArgument(NO_QUOTA)
        raise InvalidArgument(f"Unknown option {key}")
    res = spec.resources
    for value, what, online in (
        (res.cpuset_cpus, "CPUs", "/sys/devices/system/cpu/online"),
        (res.cpuset_mems, "memory nodes", "/sys/devices/system/node/online"),
    ):
        if value:
            _check_cpuset(value, what, online)
    mode = spec.network_mode or "default"
    if spec.mac_address:
        import re  # here: every create loads this module, few set a MAC address

        if not re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", spec.mac_address):
            raise InvalidArgument(f"{spec.mac_address} is not a valid mac address")
        if mode == "host" or mode.startswith("container:"):
            raise InvalidArgument("conflicting options: mac-address and the network mode")
    links = spec.links
    if links:
        if mode == "host":
            raise InvalidArgument(
                "conflicting options: host type networking can't be used with links. "
                "This would result in undefined behavior"
            )
        if mode.startswith("container:"):
            raise InvalidArgument(
                "conflicting options: container type network can't be used with links. "
                "This would result in undefined behavior"
            )
        if is_bridged(mode) and network_key(mode) == "bridge":
            # On the default bridge a link names a container that must exist (it must run
            # when this one starts); on user networks it is an alias resolved when asked.
            links = tuple((_linked(name, lookup), alias) for name, alias in links)
    out: ContainerSpec = replace(
        spec, pid_mode=pid_mode, ipc_mode=ipc_mode, devices=devices, links=links
    )
    return out


def resource_options(res: Resources) -> dict[str, Any]:
    """The RunOptions fields of the container's cgroup limits (ulimits aside)."""
    return {
        "memory": res.memory,
        "memory_swap": res.memory_swap,
        "memory_reservation": res.memory_reservation,
        "oom_kill_disable": res.oom_kill_disable,
        "cpus": res.nano_cpus / 1e9,
        "cpu_shares": res.cpu_shares,
        "cpu_period": res.cpu_period,
        "cpu_quota": res.cpu_quota,
        "cpuset_cpus": res.cpuset_cpus,
        "cpuset_mems": res.cpuset_mems,
        "pids_limit": res.pids_limit,
        "blkio_weight": res.blkio_weight,
    }


def check_resources(spec: ContainerSpec) -> None:
    """The cgroup limits checked at create, with Docker's messages, as Docker's daemon
    checks them then (the runtime's spec builder holds the rules)."""
    from dockyard.runtime.options import RunOptions
    from dockyard.runtime.spec import check_resources as check

    check(RunOptions(args=("true",), **resource_options(spec.resources)))


def parse_cpuset(text: str) -> set[int] | None:
    """Linux's list format ("0-2,4"); None if it is not one."""
    out: set[int] = set()
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            return None
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            return None
        out.update(range(first, last + 1))
    return out


def _check_cpuset(value: str, what: str, online_file: str) -> None:
    """--cpuset-cpus/--cpuset-mems: Docker's format check, then the host's CPUs or memory
    nodes (what the kernel reports online)."""
    wanted = parse_cpuset(value)
    if wanted is None:
        noun = "cpus" if what == "CPUs" else "mems"
        raise InvalidArgument(f"Invalid value {value} for cpuset {noun}: invalid format: {value}")
    try:
        with open(online_file) as f:
            online_text = f.read().strip()
    except OSError:
        online_text = "0"  # no NUMA information: one node
    online = parse_cpuset(online_text) or {0}
    if not wanted <= online:
        raise InvalidArgument(
            f"Requested {what} are not available - requested {value}, available: {online_text}"
        )


def _join_mode(
    value: str,
    allowed: tuple[str, ...],
    what: str,
    lookup: Callable[[str], Container],
    *,
    label: str = "invalid",
) -> str:
    if not value or value in allowed:
        return value
    if value.startswith("container:") and value != "container:":
        return "container:" + lookup(value.split(":", 1)[1]).id
    raise InvalidArgument(f"{label} {what} mode: {value}")


def _linked(name: str, lookup: Callable[[str], Container]) -> str:
    from dockyard.errors import NotFound

    try:
        return lookup(name).name
    except NotFound as e:
        reason = str(e) if name else 'invalid name or ID supplied: ""'
        raise NotFound(f"could not get container for {name}: {reason}") from None


def host_run_options(
    ctr: Container, get: Callable[[str], Container], container_dir: Callable[[str], str]
) -> dict[str, Any]:
    """The RunOptions fields of the container's namespaces, devices and cgroup limits,
    resolved for a start. Containers it joins must be running
    (Docker's messages); a shareable /dev/shm is mounted on the host (``<container
    dir>/shm``, released with the container) so that containers joining its IPC namespace
    share its files, as Docker does."""
    from dockyard.runtime.options import Device

    spec = ctr.spec
    out: dict[str, Any] = {
        "uts_host": spec.uts_mode == "host",
        "cgroup_ns": spec.cgroupns_mode == "private",
        "devices": tuple(
            Device(d.path_on_host, d.path_in_container or d.path_on_host, d.cgroup_permissions)
            for d in spec.devices
        ),
        "device_cgroup_rules": spec.device_cgroup_rules,
        **resource_options(spec.resources),
    }
    if spec.pid_mode == "host":
        out["pid_ns"] = "host"
    elif spec.pid_mode.startswith("container:"):
        other = _running(get, spec.pid_mode, "")
        out["pid_ns"] = f"/proc/{other.state.pid}/ns/pid"
    ipc = spec.ipc_mode
    if ipc == "host":
        out.update(ipc_ns="host", shm_source="/dev/shm")
    elif ipc == "none":
        out["ipc_ns"] = "none"
    elif ipc == "shareable":
        out["shm_source"] = _mount_shm(container_dir(ctr.id), spec.shm_size)
    elif ipc.startswith("container:"):
        other = _running(get, ipc, "can't join IPC of container {id}: ")
        shm = os.path.join(container_dir(other.id), "shm")
        if other.spec.ipc_mode not in ("shareable", "host"):
            raise Conflict(
                f"can't join IPC of container {other.id}: non-shareable IPC (hint: use "
                "IpcMode:shareable for the donor container)"
            )
        out["ipc_ns"] = f"/proc/{other.state.pid}/ns/ipc"
        out["shm_source"] = "/dev/shm" if other.spec.ipc_mode == "host" else shm
    return out


def _running(get: Callable[[str], Container], mode: str, prefix: str) -> Container:
    other = get(mode.split(":", 1)[1])
    if not other.running:
        raise Conflict(prefix.format(id=other.id) + f"container {other.id} is not running")
    return other


def _mount_shm(cdir: str, size: int) -> str:
    """A tmpfs at ``cdir``/shm of ``size`` bytes (64 MiB by default), mounted once."""
    from dockyard.runtime.rootfs import is_mounted, mount_tmpfs

    target = os.path.join(cdir, "shm")
    os.makedirs(target, mode=0o700, exist_ok=True)
    if not is_mounted(target):
        mount_tmpfs(target, f"mode=1777,size={size or DEFAULT_SHM_SIZE}")
    return target
