"""RunOptions -> an OCI runtime ``config.json`` (runtime-spec 1.0.2) with Docker's defaults.

What Docker does by default and this module reproduces:

* new pid, ipc, uts and mount namespaces, and a network namespace unless ``--network host``;
* a reduced capability set (:data:`DEFAULT_CAPS`) in the bounding, effective and permitted
  sets; inheritable and ambient stay empty;
* Docker's default seccomp profile (runtime/seccomp.py), evaluated against the container's
  capabilities; ``/proc`` paths masked or read-only; a device cgroup that denies everything
  except the usual character devices;
* ``/proc``, ``/dev``, ``/dev/pts``, ``/sys`` (read-only), ``/sys/fs/cgroup`` (read-only),
  ``/dev/mqueue`` and ``/dev/shm`` mounted fresh; ``/etc/hosts``, ``/etc/hostname`` and
  ``/etc/resolv.conf`` bind-mounted from the engine's files.

``--privileged`` lifts all of it: every capability, no seccomp, nothing masked, all devices.
"""

from __future__ import annotations

import _socket
import os
import stat

from dockyard.errors import InvalidArgument, Unavailable
from dockyard.model.container import MASKED_PATHS, READONLY_PATHS
from dockyard.model.devices import device_missing, parse_cgroup_rule
from dockyard.runtime import seccomp
from dockyard.runtime.options import Device as DeviceOpt
from dockyard.runtime.options import Mount, RunOptions, Ulimit
from dockyard.runtime.user import resolve_user

TYPE_CHECKING = False  # not typing's: `run` loads this module
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = [
    "ALL_CAPS",
    "DEFAULT_CAPS",
    "DEFAULT_PATH",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "build_spec",
    "capabilities_for",
]

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Every capability by number (linux/capability.h); the kernel's own list may be shorter
# (/proc/sys/kernel/cap_last_cap); ALL and --privileged grant those the engine itself holds.
ALL_CAPS: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
_CAP_NUMBER = {name: i for i, name in enumerate(ALL_CAPS)}

# Docker 20.10's default capability set (moby's oci/caps/defaults.go), NET_RAW included:
# `ping` works in a default container, as on Docker. Newer Docker drops NET_RAW and relies on
# the ping_group_range sysctl below alone; 20.10, the reference here, has both.
DEFAULT_CAPS: tuple[str, ...] = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# What Docker 20.10 sets in a network namespace of the container's own (not the host's, not
# one joined with --network container:X): ICMP echo sockets for every group, so `ping` works
# without CAP_NET_RAW, and every port bindable without CAP_NET_BIND_SERVICE. --sysctl wins.
OWN_NETNS_SYSCTLS: tuple[tuple[str, str], ...] = (
    ("net.ipv4.ping_group_range", "0 2147483647"),
    ("net.ipv4.ip_unprivileged_port_start", "0"),
)


# The device cgroup: deny everything, then allow what Docker (runc's AllowedDevices) allows.
_DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},  # mknod of any char device
    {"allow": True, "type": "b", "access": "m"},  # mknod of any block device
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # /dev/null
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # /dev/zero
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # /dev/full
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # /dev/random
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # /dev/urandom
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # /dev/tty
    {"allow": True, "type": "c", "major": 5, "minor": 1, "access": "rwm"},  # /dev/console
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # /dev/ptmx
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},  # /dev/pts/*
)

_RLIMITS = {
    "as": "RLIMIT_AS",
    "core": "RLIMIT_CORE",
    "cpu": "RLIMIT_CPU",
    "data": "RLIMIT_DATA",
    "fsize": "RLIMIT_FSIZE",
    "locks": "RLIMIT_LOCKS",
    "memlock": "RLIMIT_MEMLOCK",
    "msgqueue": "RLIMIT_MSGQUEUE",
    "nice": "RLIMIT_NICE",
    "nofile": "RLIMIT_NOFILE",
    "nproc": "RLIMIT_NPROC",
    "rss": "RLIMIT_RSS",
    "rtprio": "RLIMIT_RTPRIO",
    "rttime": "RLIMIT_RTTIME",
    "sigpending": "RLIMIT_SIGPENDING",
    "stack": "RLIMIT_STACK",
}

# Sysctls that live in a namespace the container owns (the runtime refuses the rest).
_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)
_UTS_SYSCTLS = frozenset({"kernel.domainname", "kernel.hostname"})

_PROPAGATIONS = frozenset({"private", "rprivate", "shared", "rshared", "slave", "rslave"})
_MIN_MEMORY = 6 * 1024 * 1024  # Docker refuses less: the runtime itself needs a few MB
_CPU_PERIOD = 100_000


# --- capabilities -------------------------------------------------------------------------


def _kernel_caps() -> list[str]:
    """The capabilities the running kernel knows, in number order."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read().strip())
    except (OSError, ValueError):
        last = _CAP_NUMBER["CAP_AUDIT_READ"]  # every kernel since 4.x has at least these
    return list(ALL_CAPS[: last + 1])


def _engine_bounding_set() -> int | None:
    """Our own bounding set as a bit mask (None if unknown). The runtime inherits it and
    cannot grant a container anything outside it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _grantable_caps() -> list[str]:
    """The capabilities "ALL" and --privileged mean: those the kernel knows, limited to the
    ones the engine holds (a sandboxed host may withhold some, e.g. CAP_SYS_RESOURCE)."""
    kernel = _kernel_caps()
    bounding = _engine_bounding_set()
    if bounding is None:
        return kernel
    return [c for c in kernel if bounding >> _CAP_NUMBER[c] & 1]


def _normalize_cap(name: str) -> str:
    """``net_admin``, ``NET_ADMIN`` or ``cap_net_admin`` -> ``CAP_NET_ADMIN``; ``all`` -> ALL."""
    upper = name.strip().upper()
    if upper == "ALL":
        return "ALL"
    if not upper.startswith("CAP_"):
        upper = "CAP_" + upper
    if upper not in _CAP_NUMBER:
        raise InvalidArgument(f"unknown capability: {name!r}")
    return upper


def capabilities_for(opts: RunOptions) -> list[str]:
    """The container's capability set: Docker's default plus ``--cap-add`` minus
    ``--cap-drop`` (``ALL`` allowed in either), or every capability when privileged."""
    adds = [_normalize_cap(c) for c in opts.cap_add]
    drops = [_normalize_cap(c) for c in opts.cap_drop]
    known = set(_kernel_caps())
    for c in adds:
        if c != "ALL" and c not in known:
            raise InvalidArgument(f"unknown capability: {c!r} is not supported by this kernel")
    grantable = _grantable_caps()
    if opts.privileged:
        return grantable
    for c in adds:
        if c != "ALL" and c not in grantable:
            raise Unavailable(
                f"cannot add capability {c}: the engine itself does not hold it"
                " (it is missing from its bounding set)"
            )
    # Docker's precedence: --cap-add ALL wins over everything; --cap-drop ALL empties the
    # set before the adds; otherwise drops apply to the default set, then adds (an add of a
    # dropped capability keeps it).
    if "ALL" in adds:
        caps = {c for c in grantable if c not in drops}
    elif "ALL" in drops:
        caps = set(adds)
    else:
        caps = {c for c in DEFAULT_CAPS if c not in drops and c in grantable} | set(adds)
    return sorted(caps, key=_CAP_NUMBER.__getitem__)


# --- small pieces -------------------------------------------------------------------------


def _check_abs(path: str, what: str) -> str:
    if not path.startswith("/"):
        raise InvalidArgument(f"{what} {path!r} must be an absolute path")
    return os.path.normpath(path) if path != "/" else path


def _size_option(size: int) -> str:
    return f"size={size // 1024}k" if size % 1024 == 0 else f"size={size}"


def _env(opts: RunOptions, hostname: str, home: str) -> list[str]:
    """Docker's order: PATH, HOSTNAME, TERM (with a tty), then the container's env, whose
    values win; HOME from the user's passwd entry when the env has none."""
    merged: dict[str, str] = {}
    merged["PATH"] = f"PATH={DEFAULT_PATH}"
    merged["HOSTNAME"] = f"HOSTNAME={hostname}"
    if opts.tty:
        merged["TERM"] = "TERM=xterm"
    for entry in opts.env:
        key, eq, _ = entry.partition("=")
        if not key:
            raise InvalidArgument(f"invalid environment variable {entry!r}")
        if not eq:  # Docker: a bare NAME unsets it (PATH, HOSTNAME, TERM included)
            merged.pop(key, None)
            continue
        merged[key] = entry  # replaces a default (or an earlier value) where it stood
    if "HOME" not in merged:
        merged["HOME"] = f"HOME={home}"
    return list(merged.values())


def _rlimits(ulimits: Sequence[Ulimit]) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for u in ulimits:
        kind = _RLIMITS.get(u.name.lower())
        if kind is None:
            raise InvalidArgument(f"invalid ulimit type: {u.name}")
        if u.soft > u.hard:
            raise InvalidArgument(
                f"ulimit soft limit must be less than or equal to hard limit: {u.soft} > {u.hard}"
            )
        out[kind] = {"type": kind, "hard": u.hard, "soft": u.soft}
    return list(out.values())


def _network_namespace(mode: str) -> dict[str, str] | None:
    """The network namespace entry for ``mode``; None for the host's network."""
    if mode == "host":
        return None
    if mode in ("none", "", "default", "bridge"):
        return {"type": "network"}
    kind, sep, ref = mode.partition(":")
    if sep and ref and kind in ("netns", "container"):
        if kind == "container" and ref.isdigit():
            ref = f"/proc/{ref}/ns/net"
        return {"type": "network", "path": _check_abs(ref, "network namespace path")}
    raise InvalidArgument(f"invalid network mode {mode!r}")


def _swap_accounting() -> bool:
    """Whether the memory cgroup can limit swap (cgroup v1 needs swapaccount)."""
    v1 = "/sys/fs/cgroup/memory"
    if os.path.isdir(v1) and os.path.exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        return os.path.exists(os.path.join(v1, "memory.memsw.limit_in_bytes"))
    return True


def _device_rules(opts: RunOptions, devices: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The device cgroup: Docker's defaults, then each --device with its permissions, then
    each --device-cgroup-rule (everything when privileged)."""
    if opts.privileged:
        return [{"allow": True, "access": "rwm"}]
    rules = [dict(rule) for rule in _DEFAULT_DEVICE_RULES]
    for dev in devices:
        rules.append(
            {
                "allow": True,
                "type": dev["type"],
                "major": dev["major"],
                "minor": dev["minor"],
                "access": dev.pop("_access"),
            }
        )
    for text in opts.device_cgroup_rules:
        kind, major, minor, access = parse_cgroup_rule(text)
        rule: dict[str, Any] = {"allow": True, "type": kind, "access": access}
        if major is not None:
            rule["major"] = major  # absent: any (the rule's "*")
        if minor is not None:
            rule["minor"] = minor
        rules.append(rule)
    return rules


def _device_node(host: str, container: str, access: str) -> dict[str, Any] | None:
    """The spec's entry for one device node (None if ``host`` is not one)."""
    try:
        st = os.stat(host)
    except FileNotFoundError:
        raise InvalidArgument(device_missing(host)) from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        return None
    return {
        "path": container,
        "type": kind,
        "major": os.major(st.st_rdev),
        "minor": os.minor(st.st_rdev),
        "fileMode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "_access": access,  # the cgroup rule's, taken out by _device_rules
    }


def _devices(opts: RunOptions) -> list[dict[str, Any]]:
    """--device nodes (a directory gives every node under it, as in Docker), and with
    --privileged every device of the host's /dev, as Docker gives them."""
    out: list[dict[str, Any]] = []
    wanted = list(opts.devices)
    if opts.privileged:
        wanted += [DeviceOpt(path, path, "rwm") for path in _host_devices()]
    seen: set[str] = set()
    for d in wanted:
        if os.path.isdir(d.host):
            for host in _host_devices(d.host):
                inside = os.path.join(d.container, os.path.relpath(host, d.host))
                node = _device_node(host, inside, d.permissions)
                if node is not None and inside not in seen:
                    seen.add(inside)
                    out.append(node)
            continue
        node = _device_node(d.host, d.container, d.permissions)
        if node is None:
            raise InvalidArgument(
                f'error gathering device information while adding custom device "{d.host}": '
                "not a device node"
            )
        if d.container not in seen:
            seen.add(d.container)
            out.append(node)
    return out


# /dev entries Docker's host device walk skips: mounts of their own, and links.
_SKIP_DEV_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".udev"})


def _host_devices(top: str = "/dev") -> list[str]:
    """The device nodes under ``top`` (symlinks not followed)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath == top and top == "/dev":
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DEV_DIRS]
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                out.append(path)
    return out


def _cgroup_file(controller: str, name: str) -> bool:
    """Whether cgroup v1's ``controller`` hierarchy has the file ``name`` (a kernel feature)."""
    return os.path.exists(os.path.join("/sys/fs/cgroup", controller, name))


def _resources(opts: RunOptions, devices: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    res: dict[str, Any] = {"devices": _device_rules(opts, devices)}

    if opts.memory < 0:
        raise InvalidArgument("invalid memory limit: must not be negative")
    if opts.memory_swap and not opts.memory:
        raise InvalidArgument(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    memory: dict[str, Any] = {}
    if opts.memory_reservation:
        if opts.memory_reservation < _MIN_MEMORY:
            raise InvalidArgument("Minimum memory reservation allowed is 6MB")
        if opts.memory and opts.memory < opts.memory_reservation:
            raise InvalidArgument(
                "Minimum memory limit can not be less than memory reservation limit, see usage"
            )
        memory["reservation"] = opts.memory_reservation
    if opts.oom_kill_disable and _cgroup_file("memory", "memory.oom_control"):
        memory["disableOOMKiller"] = True  # cgroup v2 has no such switch: Docker drops it too
    if opts.memory:
        if opts.memory < _MIN_MEMORY:
            raise InvalidArgument("Minimum memory limit allowed is 6MB")
        memory["limit"] = opts.memory
        if opts.memory_swap == -1:
            swap = -1
        elif opts.memory_swap == 0:
            swap = 2 * opts.memory  # Docker: as much swap as memory
        elif opts.memory_swap < opts.memory:
            raise InvalidArgument(
                "Minimum memoryswap limit should be larger than memory limit, see usage"
            )
        else:
            swap = opts.memory_swap
        if _swap_accounting():
            memory["swap"] = swap
    if memory:
        res["memory"] = memory

    cpu: dict[str, Any] = {}
    if opts.cpus < 0:
        raise InvalidArgument("invalid --cpus: must not be negative")
    if opts.cpus:
        ncpu = os.cpu_count() or 1
        if opts.cpus < 0.01 or opts.cpus > ncpu:
            raise InvalidArgument(
                f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )
        cpu["quota"] = round(opts.cpus * _CPU_PERIOD)
        cpu["period"] = _CPU_PERIOD
    if opts.cpu_period or opts.cpu_quota:
        if opts.cpus:
            raise InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set"
                if opts.cpu_period
                else "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
            )
        if opts.cpu_period and not 1000 <= opts.cpu_period <= 1_000_000:
            raise InvalidArgument(
                "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                "(i.e. 1000000)"
            )
        if 0 < opts.cpu_quota < 1000:  # -1: no limit
            raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
        if opts.cpu_period:
            cpu["period"] = opts.cpu_period
        if opts.cpu_quota:
            cpu["quota"] = opts.cpu_quota
    if opts.cpuset_cpus:
        cpu["cpus"] = opts.cpuset_cpus
    if opts.cpuset_mems:
        cpu["mems"] = opts.cpuset_mems
    if opts.cpu_shares < 0:
        raise InvalidArgument("invalid --cpu-shares: must not be negative")
    if opts.cpu_shares:
        cpu["shares"] = opts.cpu_shares
    if cpu:
        res["cpu"] = cpu

    if opts.pids_limit > 0:
        res["pids"] = {"limit": opts.pids_limit}
    # Docker drops the weight, with a warning, where the kernel has no blkio weight (no CFQ
    # or BFQ scheduler: these VMs); where it has one, Docker's range applies.
    if opts.blkio_weight and (
        _cgroup_file("blkio", "blkio.weight") or _cgroup_file("blkio", "blkio.bfq.weight")
    ):
        if not 10 <= opts.blkio_weight <= 1000:
            raise InvalidArgument("Range of blkio weight is from 10 to 1000")
        res["blockIO"] = {"weight": opts.blkio_weight}
    return res


def check_resources(opts: RunOptions) -> None:
    """Docker's checks of the cgroup limits, for ``create`` (the start makes them again)."""
    _resources(opts)


def _sysctls(opts: RunOptions, host_network: bool, own_netns: bool) -> dict[str, str]:
    out: dict[str, str] = dict(OWN_NETNS_SYSCTLS) if own_netns else {}
    for key, value in opts.sysctls:
        name = key.replace("/", ".")
        if name.startswith("net."):
            if host_network:
                raise InvalidArgument(
                    f"sysctl {key!r} is not allowed with the host's network namespace"
                )
        elif not (name in _IPC_SYSCTLS or name in _UTS_SYSCTLS or name.startswith("fs.mqueue.")):
            raise InvalidArgument(f"sysctl {key!r} is not allowed: it is not namespaced")
        out[name] = value
    return out


def _user_mount(m: Mount) -> dict[str, Any]:
    dest = _check_abs(m.destination, "mount destination")
    if dest == "/":
        raise InvalidArgument("invalid mount destination '/': cannot mount over the root")
    if m.type in ("bind", "volume"):
        if not m.source:
            raise InvalidArgument(f"{m.type} mount at {dest} has no source")
        if m.propagation not in _PROPAGATIONS:
            raise InvalidArgument(f"invalid mount propagation {m.propagation!r} for {dest}")
        options = ["rbind", m.propagation]
        if m.read_only:
            options.append("ro")
        return {"destination": dest, "type": "bind", "source": m.source, "options": options}
    if m.type == "tmpfs":
        # As Docker mounts --tmpfs and --mount type=tmpfs: nosuid,nodev,noexec unless the
        # options say "exec"; the rest (size=, mode=, uid=...) as given.
        options = ["nosuid", "nodev"]
        if "exec" not in m.options:
            options.append("noexec")
        options += [o for o in m.options if o not in ("exec", "noexec")]
        if m.read_only:
            options.append("ro")
        return {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options}
    raise InvalidArgument(f"invalid mount type {m.type!r} for {dest}")


def _mounts(
    opts: RunOptions, etc_files: Mapping[str, str], init_path: str | None, host_network: bool
) -> list[dict[str, Any]]:
    if host_network:
        # No network namespace of our own: bind the host's /sys (read-only) rather than
        # mounting a sysfs whose net/ would describe a namespace we don't own.
        sys_mount = {
            "destination": "/sys",
            "type": "bind",
            "source": "/sys",
            "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
        }
    else:
        sys_mount = {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        }
    defaults: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        sys_mount,
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]
    if opts.shm_source:
        # --ipc host|shareable|container:X: a /dev/shm others share, bound from the host
        defaults.append(
            {
                "destination": "/dev/shm",
                "type": "bind",
                "source": opts.shm_source,
                "options": ["rbind"],  # the source mount's own flags, as in Docker
            }
        )
    elif opts.ipc_ns != "none":  # --ipc none: no /dev/shm at all, as in Docker
        defaults.append(
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", _size_option(opts.shm_size)],
            }
        )
    if opts.privileged:
        # Docker: a privileged container may write /sys and its cgroups.
        for m in defaults:
            if m["destination"] in ("/sys", "/sys/fs/cgroup"):
                m["options"] = [o for o in m["options"] if o != "ro"]
    if opts.shm_size <= 0:
        raise InvalidArgument("invalid --shm-size: must be greater than 0")

    extra: list[dict[str, Any]] = []
    for dest, source in etc_files.items():
        dest = _check_abs(dest, "file destination")
        # Kept writable even with --read-only, as Docker does.
        options = ["rbind", "rprivate"]
        extra.append({"destination": dest, "type": "bind", "source": source, "options": options})
    extra.extend(_user_mount(m) for m in opts.mounts)
    if opts.init:
        if not init_path:
            raise Unavailable("--init requested but no init binary is available")
        extra.append(
            {
                "destination": "/dev/init",
                "type": "bind",
                "source": init_path,
                "options": ["bind", "ro", "nosuid", "nodev"],
            }
        )
    # A mount the user or the engine gives for a default destination replaces the default.
    taken = {m["destination"] for m in extra}
    return [m for m in defaults if m["destination"] not in taken] + extra


def _namespaces(opts: RunOptions) -> list[dict[str, str]]:
    """pid, ipc, uts, mount and (--cgroupns private) cgroup: new, joined (a path), or left
    out for the host's."""
    out: list[dict[str, str]] = []
    for kind, mode in (("pid", opts.pid_ns), ("ipc", opts.ipc_ns)):
        if mode == "host":
            continue
        if mode.startswith("/"):
            out.append({"type": kind, "path": mode})
        else:
            out.append({"type": kind})
    if not opts.uts_host:
        out.append({"type": "uts"})
    out.append({"type": "mount"})
    if opts.cgroup_ns:
        out.append({"type": "cgroup"})
    return out


# --- the spec -----------------------------------------------------------------------------


def build_spec(
    opts: RunOptions,
    *,
    rootfs: str,
    container_id: str,
    cgroups_path: str,
    etc_files: Mapping[str, str] = {},  # noqa: B006 - read-only default, never mutated
    init_path: str | None = None,
    rootfs_dir: str | None = None,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """The OCI ``config.json`` content for running ``opts``.

    ``rootfs`` is written to ``root.path`` as given (relative to the bundle or absolute);
    ``rootfs_dir`` is where this process can read that directory (default ``rootfs``), for
    resolving the user against the image's /etc/passwd and /etc/group. ``cache_dir`` (the
    engine's run root) keeps what the seccomp conversion asks libseccomp between processes.
    """
    if not opts.args:
        raise InvalidArgument("no command specified")
    if not container_id:
        raise InvalidArgument("container id must not be empty")
    cwd = _check_abs(opts.cwd or "/", "working directory")

    user = resolve_user(rootfs_dir if rootfs_dir is not None else rootfs, opts.user, opts.group_add)
    caps = capabilities_for(opts)

    net_ns = _network_namespace(opts.network_mode)
    host_network = net_ns is None
    hostname = opts.hostname
    if not hostname:
        hostname = _socket.gethostname() if host_network or opts.uts_host else container_id[:12]

    args = list(opts.args)
    if opts.init:
        args = ["/dev/init", "--", *args]

    process: dict[str, Any] = {
        "terminal": opts.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": args,
        "env": _env(opts, hostname, user.home),
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": list(caps), "permitted": list(caps)},
        "noNewPrivileges": opts.no_new_privileges,
    }
    if user.additional_gids:
        process["user"]["additionalGids"] = list(user.additional_gids)
    if opts.ulimits:
        # Only when asked: raising a limit above the engine's own is refused on some hosts.
        process["rlimits"] = _rlimits(opts.ulimits)

    namespaces = _namespaces(opts)
    if net_ns is not None:
        namespaces.append(net_ns)

    devices = _devices(opts)
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "cgroupsPath": cgroups_path,
        "resources": _resources(opts, devices),
    }
    if devices:
        linux["devices"] = devices
    # "netns:" is a namespace made for this container (its network sandbox); "container:"
    # is another container's, whose settings are not ours to change.
    own_netns = not host_network and not opts.network_mode.startswith("container:")
    sysctl = _sysctls(opts, host_network, own_netns)
    if sysctl:
        linux["sysctl"] = sysctl
    if opts.privileged:
        linux["maskedPaths"] = []
        linux["readonlyPaths"] = []
    else:
        linux["maskedPaths"] = list(
            MASKED_PATHS if opts.masked_paths is None else opts.masked_paths
        )
        linux["readonlyPaths"] = list(
            READONLY_PATHS if opts.readonly_paths is None else opts.readonly_paths
        )
        if opts.seccomp_profile != "unconfined":
            # "builtin" names the default profile (newer Docker's CLI sends it as such).
            text = "" if opts.seccomp_profile == "builtin" else opts.seccomp_profile
            profile = seccomp.load_profile(text, caps, os.uname().machine, cache_dir=cache_dir)
            if profile is not None:
                linux["seccomp"] = profile

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": opts.read_only},
    }
    if not opts.uts_host:  # the host's UTS namespace: its names are the host's
        spec["hostname"] = hostname
        if opts.domainname:
            spec["domainname"] = opts.domainname
    spec["mounts"] = _mounts(opts, etc_files, init_path, host_network)
    spec["linux"] = linux
    return spec
