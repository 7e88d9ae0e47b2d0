"""What a container runs with: the values ``run``/``create`` resolve from flags and image.

NamedTuples rather than dataclasses: immutable values all the same, without the ~5 ms that
importing dataclasses (and with it inspect and ast) adds to every ``run``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: `run` loads this module
if TYPE_CHECKING:
    from typing import NamedTuple
else:
    from dockyard.model.values import NamedTuple


class Mount(NamedTuple):
    """A bind mount, a named/anonymous volume (already resolved to a host dir) or a tmpfs."""

    type: str  # "bind" | "volume" | "tmpfs"
    source: str  # host path ("" for tmpfs)
    destination: str  # absolute path inside the container
    read_only: bool = False
    name: str = ""  # volume name, for inspect's Mounts
    propagation: str = "rprivate"
    options: tuple[str, ...] = ()  # tmpfs: size=, mode=, exec, uid=... as mount(8) takes them


class Ulimit(NamedTuple):
    name: str  # "nofile", "nproc", ...
    soft: int
    hard: int


class Device(NamedTuple):
    """A host device (or a directory of them) made in the container (``--device``)."""

    host: str
    container: str
    permissions: str = "rwm"  # what the device cgroup allows


class RunOptions(NamedTuple):
    args: tuple[str, ...]  # the process: entrypoint + cmd, already combined
    env: tuple[str, ...] = ()  # image env merged with -e; PATH present
    cwd: str = "/"
    user: str = ""  # "", "uid", "uid:gid", "name", "name:group" (resolved in the rootfs)
    group_add: tuple[str, ...] = ()
    tty: bool = False
    open_stdin: bool = False
    hostname: str = ""
    domainname: str = ""
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    seccomp_profile: str = ""  # "" = default profile, "unconfined", or a profile's JSON text
    memory: int = 0  # bytes, 0 = unlimited
    memory_swap: int = 0  # bytes, 0 = unset, -1 = unlimited
    cpus: float = 0.0  # --cpus
    cpu_shares: int = 0
    pids_limit: int = 0  # 0 = unlimited
    ulimits: tuple[Ulimit, ...] = ()
    network_mode: str = "none"  # "none" | "host" | "netns:<path>" | "container:<pid path>"
    mounts: tuple[Mount, ...] = ()
    init: bool = False  # --init: a tiny init as PID 1 that reaps zombies and forwards signals
    sysctls: tuple[tuple[str, str], ...] = ()
    shm_size: int = 64 * 1024 * 1024
    labels: tuple[tuple[str, str], ...] = ()
    masked_paths: tuple[str, ...] | None = None  # None: Docker's defaults (model.container)
    readonly_paths: tuple[str, ...] | None = None
    # namespaces other than the network's: "" a new one, "host" the host's, or the path of
    # another container's to join (/proc/<pid>/ns/...)
    pid_ns: str = ""
    ipc_ns: str = ""  # also "none": a new one without /dev/shm
    uts_host: bool = False
    cgroup_ns: bool = False  # a private cgroup namespace (--cgroupns private)
    shm_source: str = ""  # a host dir bound at /dev/shm (--ipc host|shareable|container:)
    devices: tuple[Device, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()
    memory_reservation: int = 0  # bytes, 0 = none
    oom_kill_disable: bool = False
    cpu_period: int = 0  # µs; --cpu-period/--cpu-quota (--cpus sets both itself)
    cpu_quota: int = 0  # µs, 0 = none
    cpuset_cpus: str = ""  # "0-1"
    cpuset_mems: str = ""
    blkio_weight: int = 0
