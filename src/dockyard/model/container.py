"""What a container is asked to be (``ContainerSpec``) and what it is (``Container``).

Values, not flag strings: a port binding, a mount, a ulimit are small typed objects. The front
ends build a spec from CLI flags (cli/flags.py) or from Docker's JSON (model/docker.py); the
engine merges it with the image at create time and keeps the result, with the container's
state, as a ``Container`` (stored by model/codec.py). Field names follow Docker's, in
snake_case; units are Docker's API units (bytes, nanoseconds, nano-CPUs).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms of every command
if TYPE_CHECKING:
    from dataclasses import dataclass, field, replace
else:
    from dockyard.model.values import dataclass, field, replace

__all__ = [
    "ZERO_TIME",
    "Container",
    "ContainerSpec",
    "ContainerState",
    "ContainerUpdate",
    "Device",
    "Endpoint",
    "EndpointSpec",
    "Health",
    "HealthResult",
    "Healthcheck",
    "LogConfig",
    "Mount",
    "PortBinding",
    "PublishedPort",
    "Resources",
    "RestartPolicy",
    "Security",
    "Ulimit",
    "replace",
]

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time, as Docker shows "never"

Pairs = tuple[tuple[str, str], ...]  # an ordered string map (labels, sysctls, options)

# Docker's defaults for HostConfig.MaskedPaths / ReadonlyPaths (what a container gets unless
# it asks otherwise, or is privileged).
MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True, slots=True)
class PortBinding:
    """One published port (``-p``, ``PortBindings``): the container's port on the host."""

    container_port: int
    protocol: str = "tcp"  # tcp | udp | sctp
    host_ip: str = ""  # "" = every address
    host_port: str = ""  # "" = a free port; Docker keeps it a string (it may be a range)

    @property
    def key(self) -> str:
        """Docker's map key: "80/tcp"."""
        return f"{self.container_port}/{self.protocol}"


@dataclass(frozen=True, slots=True)
class Mount:
    """A bind mount, a volume (named, or anonymous until create names it) or a tmpfs.

    ``origin`` keeps how it was asked for, because Docker renders and checks each kind its
    own way: "bind" (``-v``/``Binds``: a missing host dir is created), "mount" (``--mount``/
    ``Mounts``: a missing source is an error), "tmpfs" (``--tmpfs``/``Tmpfs``), "image" (the
    image's ``VOLUME``), "anonymous" (``-v /path``: ``Config.Volumes``)."""

    type: str  # bind | volume | tmpfs
    target: str  # absolute path in the container
    source: str = ""  # bind: host path; volume: name ("" until named)
    read_only: bool = False
    origin: str = "mount"
    mode: str = ""  # -v's option text as given ("ro,z"): inspect's Mode
    propagation: str = ""  # bind: rprivate (default), private, rshared, shared, rslave, slave
    no_copy: bool = False  # volume: do not copy the image's content into a new volume
    tmpfs_size: int = 0  # bytes; 0: the kernel's default
    tmpfs_mode: int = 0  # permission bits; 0: 1777
    tmpfs_options: tuple[str, ...] = ()  # other tmpfs options as given (exec, noexec, ...)
    volume_labels: Pairs = ()  # --mount volume-label=k=v: labels of a volume created for it

    @property
    def anonymous(self) -> bool:
        return self.type == "volume" and len(self.source) == 64 and _is_hex(self.source)


@dataclass(frozen=True, slots=True)
class Ulimit:
    name: str  # nofile, nproc, ...
    soft: int
    hard: int


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    name: str = "no"  # no | always | unless-stopped | on-failure
    maximum_retry_count: int = 0


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """The image's HEALTHCHECK or ``--health-*``: ("NONE",), ("CMD", ...) or
    ("CMD-SHELL", "cmd"); durations in nanoseconds (0: the default)."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class HealthResult:
    """One run of the health check (an entry of Docker's ``State.Health.Log``); times are
    RFC 3339, ``exit_code`` -1 when the check could not run or ran out of time."""

    start: str
    end: str
    exit_code: int
    output: str = ""


@dataclass(frozen=True, slots=True)
class Health:
    """Docker's ``State.Health``: what the health checks of the container found so far."""

    status: str = "starting"  # starting | healthy | unhealthy
    failing_streak: int = 0
    log: tuple[HealthResult, ...] = ()  # the last 5 results, oldest first


@dataclass(frozen=True, slots=True)
class LogConfig:
    type: str = "json-file"
    config: Pairs = ()  # --log-opt k=v


@dataclass(frozen=True, slots=True)
class Resources:
    """cgroup limits (``docker run``/``update`` flags, ``HostConfig`` resources)."""

    memory: int = 0  # bytes; 0: unlimited
    memory_swap: int = 0  # bytes of memory + swap; 0: unset, -1: unlimited swap
    memory_reservation: int = 0
    nano_cpus: int = 0  # --cpus 0.5 = 500_000_000
    cpu_shares: int = 0
    cpu_period: int = 0
    cpu_quota: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int = 0  # 0 or -1: unlimited
    blkio_weight: int = 0
    oom_kill_disable: bool = False
    ulimits: tuple[Ulimit, ...] = ()


@dataclass(frozen=True, slots=True)
class ContainerUpdate:
    """``docker update`` / ``POST /containers/{id}/update``: the limits and the restart policy
    asked for; None leaves a setting as it is (Docker's zero values)."""

    memory: int | None = None
    memory_swap: int | None = None  # -1: unlimited
    memory_reservation: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None  # 0 or -1: unlimited
    restart_policy: RestartPolicy | None = None

    @property
    def empty(self) -> bool:
        return self == ContainerUpdate()


@dataclass(frozen=True, slots=True)
class Security:
    """Capabilities, seccomp and the other ``--security-opt`` values, parsed."""

    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    seccomp: str = ""  # "": the default profile; "unconfined"; or a profile's JSON text
    no_new_privileges: bool = False
    apparmor: str = ""  # accepted, as Docker on a host without AppArmor
    label: tuple[str, ...] = ()  # SELinux label options: accepted, not applied
    masked_paths: tuple[str, ...] | None = None  # None: Docker's defaults
    readonly_paths: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """A host device node made in the container (``--device``, ``HostConfig.Devices``)."""

    path_on_host: str
    path_in_container: str = ""  # "": the host's path
    cgroup_permissions: str = "rwm"  # what the device cgroup allows: r, w, m


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """A network the container is asked to join (``--network``, ``network connect``,
    ``NetworkingConfig.EndpointsConfig``)."""

    network: str  # name or ID as given
    aliases: tuple[str, ...] = ()
    ipv4_address: str = ""  # --ip: a static address (user subnets only)
    mac_address: str = ""


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """A container as asked for, before (and, once created, after) the image's defaults are
    merged in: ``cmd``/``entrypoint`` None mean "the image's"."""

    image: str  # as the user named it (Config.Image)
    name: str = ""  # "" = a random name
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None  # None: the image's; (): none
    env: tuple[str, ...] = ()  # "K=V"; a bare "K" removes K from the image's env
    working_dir: str = ""
    user: str = ""
    group_add: tuple[str, ...] = ()
    hostname: str = ""
    domainname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    labels: Pairs = ()
    exposed_ports: tuple[str, ...] = ()  # "80/tcp"
    stop_signal: str = ""
    stop_timeout: int | None = None
    healthcheck: Healthcheck | None = None
    # filesystem
    mounts: tuple[Mount, ...] = ()
    volumes_from: tuple[str, ...] = ()
    read_only: bool = False
    # network
    network_mode: str = "default"  # default | bridge | NAME | none | host | container:X
    networks: tuple[EndpointSpec, ...] = ()  # extra settings per network (aliases, --ip)
    ports: tuple[PortBinding, ...] = ()
    publish_all: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()  # "name:ip" (ip may be host-gateway)
    mac_address: str = ""
    # namespaces
    pid_mode: str = ""  # "" | host | container:X
    ipc_mode: str = ""  # "" (private) | host | shareable | none | container:X
    uts_mode: str = ""  # "" | host
    cgroupns_mode: str = ""  # "" | private | host
    # process and host
    resources: Resources = field(default_factory=Resources)
    security: Security = field(default_factory=Security)
    restart_policy: RestartPolicy = field(default_factory=RestartPolicy)
    log_config: LogConfig = field(default_factory=LogConfig)
    auto_remove: bool = False
    init: bool = False
    shm_size: int = 0  # bytes; 0: 64 MiB
    sysctls: Pairs = ()
    runtime: str = ""  # "" = runc
    platform: str = ""
    # devices, legacy links, storage (engine/containers/create.py checks them)
    devices: tuple[Device, ...] = ()
    device_cgroup_rules: tuple[str, ...] = ()  # "c 1:3 rwm", Docker's grammar
    links: Pairs = ()  # --link NAME:ALIAS: (the linked container's name, the alias)
    storage_opt: Pairs = ()  # --storage-opt key=value

    @property
    def args(self) -> tuple[str, ...]:
        """The process: entrypoint then cmd (after the image's are merged in)."""
        return (*(self.entrypoint or ()), *(self.cmd or ()))

    @property
    def bridged(self) -> bool:
        """Whether the container joins bridge networks of ours (not none/host/container:)."""
        return is_bridged(self.network_mode)

    def endpoint(self, network: str) -> EndpointSpec | None:
        for e in self.networks:
            if e.network == network:
                return e
        return None

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True)
class ContainerState:
    """Docker's State. ``running`` holds for paused and restarting containers too."""

    status: str = "created"  # created | running | paused | restarting | removing | exited | dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    started_at: str = ZERO_TIME
    finished_at: str = ZERO_TIME
    # The monitor process that owns the running container (pid + start time: a later process
    # with the same pid is not it).
    # While "restarting", the process that waits out the back-off and starts the next run.
    monitor_pid: int = 0
    monitor_start: str = ""
    health: Health | None = None  # containers with a health check, once started
    # Docker's restart manager, kept with the state since no daemon keeps it in memory: the
    # last back-off (ms; 0: the next is the first), HasBeenManuallyStopped (a user stopped or
    # killed it: unless-stopped stays down, also at boot), and a stop asked for this run (its
    # exit is the last, whatever the policy).
    restart_delay_ms: int = 0
    manually_stopped: bool = False
    stop_requested: bool = False

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")

    @property
    def paused(self) -> bool:
        return self.status == "paused"

    @property
    def restarting(self) -> bool:
        return self.status == "restarting"

    @property
    def dead(self) -> bool:
        return self.status == "dead"

    @property
    def ever_started(self) -> bool:
        return self.started_at != ZERO_TIME


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The container on one network: what it asked for, and while it runs, its interface."""

    network_id: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str = ""  # the static address asked for (IPAMConfig)
    endpoint_id: str = ""
    ip_address: str = ""
    prefix_len: int = 0
    gateway: str = ""
    mac_address: str = ""
    ifname: str = ""  # eth0 inside
    host_veth: str = ""  # its peer on the bridge

    def stopped(self) -> Endpoint:
        """What a stopped container keeps: the network and what it asked for."""
        return Endpoint(self.network_id, self.aliases, self.ipv4_address)


@dataclass(frozen=True, slots=True)
class PublishedPort:
    """A binding in effect while the container runs (host ports chosen)."""

    protocol: str
    host_ip: str
    host_port: int
    container_port: int


@dataclass(frozen=True, slots=True)
class Container:
    """A container as the engine keeps it: the spec as created (image defaults merged,
    volumes named), its state, and where it is on the networks."""

    id: str
    name: str  # without Docker's leading "/"
    created: str  # RFC 3339
    image_id: str
    spec: ContainerSpec
    state: ContainerState = field(default_factory=ContainerState)
    endpoints: tuple[tuple[str, Endpoint], ...] = ()  # (network name, endpoint), in join order
    published: tuple[PublishedPort, ...] = ()  # while running
    sandbox_key: str = ""  # while running: the network namespace's path
    restart_count: int = 0

    @property
    def path(self) -> str:
        args = self.spec.args
        return args[0] if args else ""

    @property
    def args(self) -> tuple[str, ...]:
        return self.spec.args[1:]

    @property
    def running(self) -> bool:
        return self.state.running

    def endpoint(self, network: str) -> Endpoint | None:
        for name, ep in self.endpoints:
            if name == network:
                return ep
        return None

    def with_endpoint(self, network: str, ep: Endpoint | None) -> Container:
        """A copy with ``network``'s endpoint set (appended if new), or removed (None)."""
        out = [(n, e) for n, e in self.endpoints if n != network or ep is not None]
        if ep is not None:
            if any(n == network for n, _ in self.endpoints):
                out = [(n, ep if n == network else e) for n, e in out]
            else:
                out.append((network, ep))
        return replace(self, endpoints=tuple(out))


def is_bridged(mode: str) -> bool:
    """Whether NetworkMode ``mode`` puts the container on a bridge network of ours."""
    return mode not in ("none", "host") and not mode.startswith("container:")


def network_key(mode: str) -> str:
    """The network name NetworkMode ``mode`` joins ("default" is "bridge")."""
    return "bridge" if mode == "default" else mode


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
