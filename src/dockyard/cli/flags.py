"""``run``/``create`` (and ``exec``) flags: the one table, and flags -> ``ContainerSpec``.

The table is the only list of these flags: argparse is built from it, and so is the set of
flags that take a value, which tells where IMAGE starts in ``run [OPTIONS] IMAGE [CMD...]``
(everything after it is the container's command, even if it looks like a flag). What the
Docker CLI parses client-side is parsed here (``-p``, ``--mount``, ``--ulimit``, sizes,
durations, ``--env-file``, reading a seccomp profile); the engine sees values only.
Errors read like Docker's: ``invalid argument "x" for "--flag" flag: why``.
"""

from __future__ import annotations

import os

from dockyard.cli.verbs import Flag, add_to_parser
from dockyard.errors import InvalidArgument

# Not typing's, and no `re` or model import at the top: `create` imports this module before
# anything else.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

    from dockyard.cli.parser import ArgumentParser
    from dockyard.cli.verbs import Args
    from dockyard.model.container import (
        ContainerSpec,
        ContainerUpdate,
        Healthcheck,
        Mount,
        PortBinding,
        RestartPolicy,
        Ulimit,
    )


F = Flag
FLAGS: tuple[Flag, ...] = (
    F(
        "-d --detach",
        "bool",
        "Run container in background and print container ID",
        verbs="run exec",
    ),
    F("--rm", "bool", "Automatically remove the container when it exits"),
    F("--sig-proxy", help="Proxy received signals to the process", default="true", verbs="run"),
    F("-i --interactive", "bool", "Keep STDIN open even if not attached", verbs="run create exec"),
    F("-t --tty", "bool", "Allocate a pseudo-TTY", verbs="run create exec"),
    F("-a --attach", "list", "Attach to STDIN, STDOUT or STDERR"),
    F(
        "--detach-keys",
        help="Override the key sequence for detaching",
        default="ctrl-p,ctrl-q",
        verbs="run create exec",
    ),
    F("--name", help="Assign a name to the container"),
    F("-e --env", "list", "Set environment variables", verbs="run create exec"),
    F("--env-file", "list", "Read in a file of environment variables", verbs="run create exec"),
    F("-w --workdir", help="Working directory inside the container", verbs="run create exec"),
    F(
        "-u --user",
        help="Username or UID (format: <name|uid>[:<group|gid>])",
        verbs="run create exec",
    ),
    F("--privileged", "bool", "Give extended privileges", verbs="run create exec"),
    F("--group-add", "list", "Add additional groups to join"),
    F("-h --hostname", help="Container host name"),
    F("--domainname", help="Container NIS domain name"),
    F("--entrypoint", help="Overwrite the default ENTRYPOINT of the image", default=Flag.UNSET),
    F("-l --label", "list", "Set meta data on a container"),
    F("--label-file", "list", "Read in a line delimited file of labels"),
    F("--stop-signal", help="Signal to stop the container"),
    F("--stop-timeout", help="Timeout (in seconds) to stop a container"),
    F("--init", "bool", "Run an init inside the container that forwards signals and reaps"),
    F("--runtime", help="Runtime to use for this container"),
    F("--platform", help="Set platform if server is multi-platform capable"),
    F("--pull", help='Pull image before running ("always"|"missing"|"never")', default="missing"),
    F("--cidfile", help="Write the container ID to the file"),
    F(
        "--restart",
        help="Restart policy to apply when a container exits",
        default="no",
        verbs="run create update",
    ),
    F("--log-driver", help="Logging driver for the container"),
    F("--log-opt", "list", "Log driver options"),
    F("--health-cmd", help="Command to run to check health"),
    F("--health-interval", help="Time between running the check (ms|s|m|h)"),
    F("--health-timeout", help="Maximum time to allow one check to run (ms|s|m|h)"),
    F("--health-start-period", help="Start period for the container to initialize (ms|s|m|h)"),
    F("--health-retries", help="Consecutive failures needed to report unhealthy"),
    F("--no-healthcheck", "bool", "Disable any container-specified HEALTHCHECK"),
    # filesystem
    F("-v --volume", "list", "Bind mount a volume"),
    F("--mount", "list", "Attach a filesystem mount to the container"),
    F("--tmpfs", "list", "Mount a tmpfs directory"),
    F("--volumes-from", "list", "Mount volumes from the specified container(s)"),
    F("--read-only", "bool", "Mount the container's root filesystem as read only"),
    F("--storage-opt", "list", "Storage driver options for the container"),
    # network
    F("--network --net", help="Connect a container to a network", default="default"),
    F("--network-alias --net-alias", "list", "Add network-scoped alias for the container"),
    F("--ip", help="IPv4 address (e.g., 172.30.100.104)"),
    F("--mac-address", help="Container MAC address (e.g., 92:d0:c6:0a:29:33)"),
    F("-p --publish", "list", "Publish a container's port(s) to the host"),
    F("-P --publish-all", "bool", "Publish all exposed ports to random ports"),
    F("--expose", "list", "Expose a port or a range of ports"),
    F("--add-host", "list", "Add a custom host-to-IP mapping (host:ip)"),
    F("--dns", "list", "Set custom DNS servers"),
    F("--dns-search", "list", "Set custom DNS search domains"),
    F("--dns-option --dns-opt", "list", "Set DNS options"),
    F("--link", "list", "Add link to another container"),
    # namespaces
    F("--pid", help="PID namespace to use"),
    F("--ipc", help="IPC mode to use"),
    F("--uts", help="UTS namespace to use"),
    F("--cgroupns", help="Cgroup namespace to use (host|private)"),
    # resources
    F("-m --memory", help="Memory limit", verbs="run create update"),
    F(
        "--memory-swap",
        help="Swap limit equal to memory plus swap: '-1' for unlimited swap",
        verbs="run create update",
    ),
    F("--memory-reservation", help="Memory soft limit", verbs="run create update"),
    F("--cpus", help="Number of CPUs", verbs="run create update"),
    F("-c --cpu-shares", help="CPU shares (relative weight)", verbs="run create update"),
    F(
        "--cpu-period",
        help="Limit CPU CFS (Completely Fair Scheduler) period",
        verbs="run create update",
    ),
    F(
        "--cpu-quota",
        help="Limit CPU CFS (Completely Fair Scheduler) quota",
        verbs="run create update",
    ),
    F(
        "--cpuset-cpus",
        help="CPUs in which to allow execution (0-3, 0,1)",
        verbs="run create update",
    ),
    F(
        "--cpuset-mems",
        help="MEMs in which to allow execution (0-3, 0,1)",
        verbs="run create update",
    ),
    F(
        "--pids-limit",
        help="Tune container pids limit (set -1 for unlimited)",
        verbs="run create update",
    ),
    F("--blkio-weight", help="Block IO (relative weight), between 10 and 1000, or 0 to disable"),
    F("--oom-kill-disable", "bool", "Disable OOM Killer"),
    F("--ulimit", "list", "Ulimit options"),
    F("--shm-size", help="Size of /dev/shm"),
    F("--sysctl", "list", "Sysctl options"),
    F("--device", "list", "Add a host device to the container"),
    F("--device-cgroup-rule", "list", "Add a rule to the cgroup allowed devices list"),
    # security
    F("--cap-add", "list", "Add Linux capabilities"),
    F("--cap-drop", "list", "Drop Linux capabilities"),
    F("--security-opt", "list", "Security Options"),
)


def flags_for(verb: str) -> list[Flag]:
    return [f for f in FLAGS if verb in f.verbs]


def value_flags(verb: str) -> set[str]:
    """The flag names of ``verb`` that take a value (for finding where IMAGE starts)."""
    return {n for f in flags_for(verb) if f.kind != "bool" for n in f.names}


def add_flags(p: ArgumentParser, verb: str) -> None:
    add_to_parser(p, flags_for(verb))


def split_at_image(argv: list[str], verb: str) -> tuple[list[str], str | None, list[str]]:
    """(options, the first positional, everything after it)."""
    takes_value = value_flags(verb)
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            i += 1
            break
        if not a.startswith("-") or a == "-":
            break
        if "=" in a and a.startswith("--"):
            i += 1
            continue
        if a in takes_value:
            i += 2
            continue
        if not a.startswith("--") and len(a) > 2:
            # Combined short flags such as -it or -dp 80:80: the last may take a value.
            if f"-{a[-1]}" in takes_value:
                i += 2
                continue
            if any(f"-{ch}" in takes_value for ch in a[1:-1]):
                i += 1  # e.g. -p8080:80 attached value
                continue
        i += 1
    if i >= len(argv):
        return argv, None, []
    return argv[:i], argv[i], argv[i + 1 :]


# ---------------------------------------------------------------------------- values


def _bad(value: str, flag: str, why: str) -> InvalidArgument:
    return InvalidArgument(f'invalid argument "{value}" for "{flag}" flag: {why}')


def parse_bytes(text: str) -> int:
    """Docker's RAMInBytes: 64m, 1g, 512k, 100 (bytes); binary multiples."""
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)b?", text.strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    return int(float(m.group(1)) * mult[m.group(2)])


def _size(value: str, flag: str) -> int:
    try:
        return parse_bytes(value)
    except InvalidArgument as e:
        raise _bad(value, flag, str(e)) from None


def _int(value: str, flag: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _bad(value, flag, f'strconv.ParseInt: parsing "{value}": invalid syntax') from None


_DURATION = r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)"
_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}


def parse_duration(text: str, flag: str) -> int:
    """Go's time.ParseDuration ("1m30s", "500ms") -> nanoseconds."""
    units = {**_NS, "h": 3600 * 10**9}
    pos, total = 0, 0.0
    if text in ("0", "", "-0", "+0"):
        return 0
    sign = -1 if text.startswith("-") else 1
    if text[:1] in "+-":
        pos = 1
    import re

    for m in re.compile(_DURATION).finditer(text, pos):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise _bad(text, flag, f'time: invalid duration "{text}"')
    return sign * int(total)


def env_file_lines(paths: Sequence[str]) -> list[str]:
    """``--env-file``/``--label-file`` contents: one entry a line, # comments and blanks
    skipped."""
    out = []
    for path in paths:
        try:
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if line and not line.startswith("#"):
                        out.append(line)
        except OSError as e:
            raise InvalidArgument(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    return out


def _port_range(text: str, what: str) -> tuple[int, int]:
    lo_s, dash, hi_s = text.partition("-")
    if not lo_s.isdigit() or (dash and not hi_s.isdigit()):
        raise InvalidArgument(f"invalid {what}: {text}")
    lo, hi = int(lo_s), int(hi_s) if dash else int(lo_s)
    if not (0 < lo <= 65535 and 0 < hi <= 65535) or hi < lo:
        raise InvalidArgument(f"invalid {what}: {text}")
    return lo, hi


def _split_proto(text: str) -> tuple[str, str]:
    port, slash, proto = text.rpartition("/")
    if not slash:
        return text, "tcp"
    proto = proto.lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    return port, proto


def parse_expose(spec: str) -> list[str]:
    """``--expose 80``, ``80/udp``, ``8000-8002`` -> ["80/tcp", ...]."""
    port, proto = _split_proto(spec.strip())
    lo, hi = _port_range(port, "range format for --expose")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def parse_publish(spec: str) -> list[PortBinding]:
    """``-p [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]``, either port possibly a range."""
    from dockyard.model.container import PortBinding

    text = spec.strip()
    if not text:
        raise InvalidArgument("invalid publish spec: empty")
    if text.startswith("["):
        raise InvalidArgument(f"invalid publish spec {spec}: IPv6 addresses are not supported")
    rest, proto = _split_proto(text)
    parts = rest.split(":")
    if len(parts) == 1:
        ip, host, ctr = "", "", parts[0]
    elif len(parts) == 2:
        ip, host, ctr = "", parts[0], parts[1]
    elif len(parts) == 3:
        ip, host, ctr = parts
    else:
        raise InvalidArgument(f"invalid IP address: {':'.join(parts[:-2])}")
    if ip:
        import ipaddress

        try:
            ipaddress.IPv4Address(ip)
        except ValueError:
            raise InvalidArgument(f"invalid IP address: {ip}") from None
    if not ctr:
        raise InvalidArgument(f"no port specified: {spec}<empty>")
    c_lo, c_hi = _port_range(ctr, "containerPort")
    h_lo = 0
    if host:
        h_lo, h_hi = _port_range(host, "hostPort")
        if h_hi - h_lo != c_hi - c_lo:
            raise InvalidArgument(f"invalid ranges specified for container and host Ports: {spec}")
    return [
        PortBinding(cport, proto, ip, str(h_lo + i) if host else "")
        for i, cport in enumerate(range(c_lo, c_hi + 1))
    ]


def parse_ulimit(spec: str) -> Ulimit:
    from dockyard.model.container import Ulimit

    name, eq, values = spec.partition("=")
    if not eq:
        raise _bad(spec, "--ulimit", f"invalid ulimit argument: {spec}")
    soft_s, _, hard_s = values.partition(":")
    soft = _int(soft_s, "--ulimit")
    hard = _int(hard_s, "--ulimit") if hard_s else soft
    if soft > hard:
        raise _bad(
            spec,
            "--ulimit",
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}",
        )
    return Ulimit(name, soft, hard)


def _bool_value(value: str, key: str) -> bool:
    if value.lower() in ("", "1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid value for {key}: {value}")


def parse_mount(spec: str) -> Mount:
    """``--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,...]``."""
    from dockyard.model.container import Mount

    kind, source, target, read_only = "volume", "", "", False
    propagation, no_copy, labels = "", False, []
    size, mode = 0, 0
    try:
        for field in spec.split(","):
            key, eq, value = field.partition("=")
            key = key.strip().lower()
            if not eq and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
                raise InvalidArgument(f"invalid field '{field}' must be a key=value pair")
            if key == "type":
                kind = value
            elif key in ("source", "src"):
                source = value
            elif key in ("target", "destination", "dst"):
                target = value
            elif key in ("readonly", "ro"):
                read_only = _bool_value(value, key)
            elif key == "bind-propagation":
                propagation = value
            elif key == "volume-nocopy":
                no_copy = _bool_value(value, key)
            elif key == "volume-label":
                k, _, v = value.partition("=")
                labels.append((k, v))
            elif key == "tmpfs-size":
                try:
                    size = parse_bytes(value)
                except InvalidArgument:
                    raise InvalidArgument(f"invalid value for {key}: {value}") from None
            elif key == "tmpfs-mode":
                try:
                    mode = int(value, 8)
                except ValueError:
                    raise InvalidArgument(f"invalid value for {key}: {value}") from None
            elif key in ("consistency", "volume-driver", "volume-opt", "bind-nonrecursive"):
                continue  # accepted and without effect here, as on Docker for Linux
            else:
                raise InvalidArgument(f"unexpected key '{key}' in '{field}'")
        if not target:
            raise InvalidArgument("target is required")
    except InvalidArgument as e:
        raise _bad(spec, "--mount", str(e)) from None
    # The daemon's checks (type, source...) are the engine's, at create (model/docker.py).
    return Mount(
        kind,
        target,
        source,
        read_only,
        origin="mount",
        propagation=propagation or ("rprivate" if kind == "bind" else ""),
        no_copy=no_copy,
        tmpfs_size=size,
        tmpfs_mode=mode,
        volume_labels=tuple(labels),
    )


def _healthcheck(a: Any) -> Healthcheck | None:
    """``--health-*`` and ``--no-healthcheck``, checked as Docker's CLI checks them (the
    engine checks the rest: durations under 1 ms)."""
    from dockyard.model.container import Healthcheck

    check = Healthcheck(
        test=("CMD-SHELL", a.health_cmd) if a.health_cmd else (),
        interval=parse_duration(a.health_interval, "--health-interval"),
        timeout=parse_duration(a.health_timeout, "--health-timeout"),
        start_period=parse_duration(a.health_start_period, "--health-start-period"),
        retries=_int(a.health_retries, "--health-retries") if a.health_retries else 0,
    )
    if a.no_healthcheck:
        if check != Healthcheck():
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return Healthcheck(test=("NONE",))
    if check == Healthcheck():
        return None
    for flag, value in (
        ("--health-interval", check.interval),
        ("--health-timeout", check.timeout),
        ("--health-retries", check.retries),
        ("--health-start-period", check.start_period),
    ):
        if value < 0:
            raise InvalidArgument(f"{flag} cannot be negative")
    return check


def update_from_args(a: Any) -> ContainerUpdate:
    """``docker update``'s flags (the run flags of the same names) -> what changes."""
    from dockyard.model.container import ContainerUpdate

    nano_cpus = None
    if a.cpus:
        try:
            nano_cpus = int(float(a.cpus) * 1e9)
        except ValueError:
            raise _bad(a.cpus, "--cpus", f"failed to parse {a.cpus} as a rational number") from None
    swap = None
    if a.memory_swap:
        swap = -1 if a.memory_swap == "-1" else _size(a.memory_swap, "--memory-swap")
    return ContainerUpdate(
        memory=_size(a.memory, "-m, --memory") if a.memory else None,
        memory_swap=swap,
        memory_reservation=(
            _size(a.memory_reservation, "--memory-reservation") if a.memory_reservation else None
        ),
        nano_cpus=nano_cpus,
        cpu_shares=_int(a.cpu_shares, "-c, --cpu-shares") if a.cpu_shares else None,
        cpu_period=_int(a.cpu_period, "--cpu-period") if a.cpu_period else None,
        cpu_quota=_int(a.cpu_quota, "--cpu-quota") if a.cpu_quota else None,
        cpuset_cpus=a.cpuset_cpus or None,
        cpuset_mems=a.cpuset_mems or None,
        pids_limit=_int(a.pids_limit, "--pids-limit") if a.pids_limit else None,
        restart_policy=parse_restart(a.restart) if a.restart else None,
    )


def parse_restart(text: str) -> RestartPolicy:
    from dockyard.model.container import RestartPolicy

    name, _, count = text.partition(":")
    if count:
        try:
            return RestartPolicy(name, int(count))
        except ValueError:
            raise InvalidArgument(
                "invalid restart policy format: maximum retry count must be an integer"
            ) from None
    return RestartPolicy(name or "no")


def security_opts(opts: Sequence[str]) -> list[str]:
    """``--security-opt`` values as Docker's CLI sends them: ``seccomp=FILE`` becomes the
    file's compacted JSON (cli/security_opts.py); a value that is neither ``key=value`` nor
    ``key:value`` is refused here, as by Docker's CLI."""
    for opt in opts:
        if "=" not in opt and ":" not in opt and opt != "no-new-privileges":
            raise InvalidArgument(f'Invalid --security-opt: "{opt}"')
    if not opts:
        return []
    from dockyard.cli.security_opts import inline_seccomp_profiles

    return inline_seccomp_profiles(list(opts))


def _pairs(entries: Sequence[str]) -> tuple[tuple[str, str], ...]:
    out: dict[str, str] = {}
    for e in entries:
        k, _, v = e.partition("=")
        out[k] = v
    return tuple(out.items())


def normalize_caps(caps: Sequence[str]) -> tuple[str, ...]:
    """As Docker's CLI sends them: upper case with the ``CAP_`` prefix (``ALL`` stays)."""
    out = []
    for c in caps:
        c = c.strip().upper()
        if c != "ALL" and not c.startswith("CAP_"):
            c = "CAP_" + c
        out.append(c)
    return tuple(out)


def _mode(value: str, flag: str, allowed: Sequence[str], what: str, *, joins: bool) -> str:
    """A namespace flag's value as Docker's CLI checks it (``joins``: ``container:NAME``
    is a value too)."""
    if not value or value in allowed:
        return value
    if joins and value.startswith("container:") and value != "container:":
        return value
    raise InvalidArgument(f"{flag}: invalid {what} mode")


def _devices_links_storage(a: argparse.Namespace | Args) -> dict[str, Any]:
    """--device, --device-cgroup-rule, --link and --storage-opt: Docker's CLI grammar."""
    from dockyard.model.devices import check_cgroup_rule, parse_device
    from dockyard.model.links import parse_link

    devices = tuple(parse_device(d) for d in a.device)  # Docker's CLI says these bare
    rules = []
    for rule in a.device_cgroup_rule:
        try:
            rules.append(check_cgroup_rule(rule))
        except InvalidArgument as e:
            raise _bad(rule, "--device-cgroup-rule", str(e)) from None
    links = []
    for link in a.link:
        try:
            links.append(parse_link(link))
        except InvalidArgument as e:
            raise _bad(link, "--link", str(e)) from None
    storage: dict[str, str] = {}
    for opt in a.storage_opt:
        key, eq, value = opt.partition("=")
        if not eq:
            raise InvalidArgument("invalid storage option")
        storage[key] = value
    return {
        "devices": devices,
        "device_cgroup_rules": tuple(rules),
        "links": tuple(links),
        "storage_opt": tuple(storage.items()),
    }


def _is_mac(text: str) -> bool:
    import re  # only for a --mac-address

    return re.fullmatch(r"([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}", text) is not None


def spec_from_args(
    a: argparse.Namespace | Args, image: str, command: Sequence[str], *, run: bool
) -> ContainerSpec:
    """The parsed flags of ``run``/``create`` -> the spec the engine creates."""
    from dockyard.cli.environ import resolve_env
    from dockyard.model.container import (
        ContainerSpec,
        EndpointSpec,
        LogConfig,
        Resources,
        Security,
    )
    from dockyard.model.docker import parse_security_opts
    from dockyard.model.mounts import parse_bind, parse_tmpfs

    mounts: list[Mount] = [parse_bind(v) for v in a.volume]
    mounts += [parse_mount(m) for m in a.mount]
    for t in a.tmpfs:
        path, _, opts = t.partition(":")
        mounts.append(parse_tmpfs(path, opts))
    ports: list[PortBinding] = []
    for p in a.publish:
        ports += parse_publish(p)
    exposed: list[str] = []
    for e in a.expose:
        try:
            exposed += parse_expose(e)
        except InvalidArgument:
            raise InvalidArgument(
                f'invalid range format for --expose: {e}, error: strconv.ParseUint: parsing "{e}": '
                "invalid syntax"
            ) from None
    if a.network_alias and a.network in ("default", "bridge", "none", "host"):
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
    if a.mac_address and not _is_mac(a.mac_address):
        raise InvalidArgument(f"{a.mac_address} is not a valid mac address")
    restart = parse_restart(a.restart)
    if a.rm and restart.name not in ("", "no"):
        raise InvalidArgument("conflicting options: cannot specify both --restart and --rm")
    attach = [s.lower() for s in a.attach]
    for s in attach:
        if s not in ("stdin", "stdout", "stderr"):
            raise _bad(s, "-a, --attach", "valid streams are STDIN, STDOUT and STDERR")
    if not getattr(a, "detach", False) and not attach:
        # Docker's CLI attaches by default: run without -d, and create (which run -d does not)
        attach = ["stdout", "stderr"] + (["stdin"] if a.interactive else [])
    entrypoint = None
    if a.entrypoint is not None:
        entrypoint = (a.entrypoint,) if a.entrypoint else ()
    sysctls = []
    for s in a.sysctl:
        k, eq, v = s.partition("=")
        if not eq:
            raise _bad(s, "--sysctl", f"sysctl '{s}' is not allowed")
        sysctls.append((k, v))
    memory = _size(a.memory, "-m, --memory") if a.memory else 0
    memory_swap = 0
    if a.memory_swap:
        memory_swap = -1 if a.memory_swap == "-1" else _size(a.memory_swap, "--memory-swap")
    nano_cpus = 0
    if a.cpus:
        try:
            nano_cpus = int(float(a.cpus) * 1e9)
        except ValueError:
            raise _bad(a.cpus, "--cpus", f"failed to parse {a.cpus} as a rational number") from None
        ncpu = os.cpu_count() or 1
        if nano_cpus > ncpu * 1_000_000_000:
            raise InvalidArgument(
                f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )
    health = _healthcheck(a)
    security = parse_security_opts(security_opts(a.security_opt))
    network = a.network or "default"
    endpoints: tuple[EndpointSpec, ...] = ()
    if a.network_alias or a.ip:
        endpoints = (EndpointSpec(network, tuple(a.network_alias), a.ip),)
    labels = _pairs(env_file_lines(a.label_file) + a.label)
    pids = _int(a.pids_limit, "--pids-limit") if a.pids_limit else 0
    if a.log_driver == "none" and a.log_opt:
        raise InvalidArgument("invalid logging opts for driver none")  # Docker's CLI's check
    return ContainerSpec(
        image=image,
        name=a.name or "",
        cmd=tuple(command) or None,
        entrypoint=entrypoint,
        env=tuple(resolve_env(env_file_lines(a.env_file) + a.env)),
        working_dir=a.workdir,
        user=a.user,
        group_add=tuple(a.group_add),
        hostname=a.hostname,
        domainname=a.domainname,
        tty=a.tty,
        open_stdin=a.interactive,
        stdin_once=a.interactive and "stdin" in attach,
        attach_stdin="stdin" in attach,
        attach_stdout="stdout" in attach,
        attach_stderr="stderr" in attach,
        labels=labels,
        exposed_ports=tuple(exposed),
        stop_signal=a.stop_signal,
        stop_timeout=_int(a.stop_timeout, "--stop-timeout") if a.stop_timeout else None,
        healthcheck=health,
        mounts=tuple(mounts),
        volumes_from=tuple(a.volumes_from),
        read_only=a.read_only,
        network_mode=network,
        networks=endpoints,
        ports=tuple(ports),
        publish_all=a.publish_all,
        dns=tuple(a.dns),
        dns_search=tuple(a.dns_search),
        dns_options=tuple(a.dns_option),
        extra_hosts=tuple(a.add_host),
        mac_address=a.mac_address,
        pid_mode=_mode(a.pid, "--pid", ("host",), "PID", joins=True),
        ipc_mode=a.ipc,
        uts_mode=_mode(a.uts, "--uts", ("host",), "UTS", joins=False),
        cgroupns_mode=_mode(a.cgroupns, "--cgroupns", ("host", "private"), "CGROUP", joins=False),
        resources=Resources(
            memory=memory,
            memory_swap=memory_swap,
            memory_reservation=(
                _size(a.memory_reservation, "--memory-reservation") if a.memory_reservation else 0
            ),
            nano_cpus=nano_cpus,
            cpu_shares=_int(a.cpu_shares, "-c, --cpu-shares") if a.cpu_shares else 0,
            cpu_period=_int(a.cpu_period, "--cpu-period") if a.cpu_period else 0,
            cpu_quota=_int(a.cpu_quota, "--cpu-quota") if a.cpu_quota else 0,
            cpuset_cpus=a.cpuset_cpus,
            cpuset_mems=a.cpuset_mems,
            pids_limit=max(pids, 0),
            blkio_weight=_int(a.blkio_weight, "--blkio-weight") if a.blkio_weight else 0,
            oom_kill_disable=a.oom_kill_disable,
            ulimits=tuple(parse_ulimit(u) for u in a.ulimit),
        ),
        security=Security(
            privileged=a.privileged,
            cap_add=normalize_caps(a.cap_add),
            cap_drop=normalize_caps(a.cap_drop),
            seccomp=security.seccomp,
            no_new_privileges=security.no_new_privileges,
            apparmor=security.apparmor,
            label=security.label,
        ),
        restart_policy=restart,
        log_config=LogConfig(a.log_driver or "json-file", _pairs(a.log_opt)),
        auto_remove=a.rm,
        init=a.init,
        shm_size=_size(a.shm_size, "--shm-size") if a.shm_size else 0,
        sysctls=tuple(sysctls),
        runtime=a.runtime,
        platform=a.platform,
        **_devices_links_storage(a),
    )
