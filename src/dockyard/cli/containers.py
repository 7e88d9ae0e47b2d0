"""Container verbs: run, create, start, stop, kill, restart, rm, ps, logs, attach, exec, wait,
top, rename, cp, diff, commit, container prune, and the monitor's ``container _exited``."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

from dockyard.cli.context import ArgumentParser, Context
from dockyard.cli.output import (
    ago,
    confirm,
    container_status,
    for_each_name,
    format_rows,
    human_size,
    print_deleted,
    table,
)
from dockyard.errors import DockyardError, InvalidArgument, NotFound

# ------------------------------------------------------------------ run / create flags

# Flags that take a value: needed to find where IMAGE starts (everything after it is the
# container's command, even if it looks like a flag).
VALUE_FLAGS = {
    "-e",
    "--env",
    "--env-file",
    "-w",
    "--workdir",
    "-u",
    "--user",
    "--name",
    "-v",
    "--volume",
    "-h",
    "--hostname",
    "--domainname",
    "-m",
    "--memory",
    "--memory-swap",
    "--cpus",
    "-c",
    "--cpu-shares",
    "--pids-limit",
    "--ulimit",
    "--network",
    "--net",
    "--network-alias",
    "--net-alias",
    "--entrypoint",
    "--cap-add",
    "--cap-drop",
    "--security-opt",
    "--tmpfs",
    "-l",
    "--label",
    "--label-file",
    "--stop-signal",
    "--stop-timeout",
    "--runtime",
    "-p",
    "--publish",
    "--expose",
    "--detach-keys",
    "-a",
    "--attach",
    "--group-add",
    "--shm-size",
    "--sysctl",
    "--mount",
    "--add-host",
    "--dns",
    "--dns-search",
    "--dns-option",
    "--dns-opt",
    "--ip",
    "--restart",
    "--platform",
    "--pull",
    "--log-driver",
    "--log-opt",
    "--cidfile",
}


def split_at_image(
    argv: list[str], value_flags: set[str] = VALUE_FLAGS
) -> tuple[list[str], str | None, list[str]]:
    """(options, the first positional, everything after it)."""
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
        if a in value_flags:
            i += 2
            continue
        if not a.startswith("--") and len(a) > 2:
            # Combined short flags such as -it or -dp 80:80: the last may take a value.
            if f"-{a[-1]}" in value_flags:
                i += 2
                continue
            if any(f"-{ch}" in value_flags for ch in a[1:-1]):
                i += 1  # e.g. -p8080:80 attached value
                continue
        i += 1
    if i >= len(argv):
        return argv, None, []
    return argv[:i], argv[i], argv[i + 1 :]


EXEC_VALUE_FLAGS = {"-e", "--env", "--env-file", "-u", "--user", "-w", "--workdir", "--detach-keys"}


def parse_bytes(text: str) -> int:
    """Docker's RAMInBytes: 64m, 1g, 512k, 100 (bytes); binary multiples."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)b?", text.strip().lower())
    if not m:
        raise InvalidArgument(f"invalid size: '{text}'")
    mult = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    return int(float(m.group(1)) * mult[m.group(2)])


def create_parser(ctx: Context, run: bool) -> ArgumentParser:
    # -h is --hostname, as in Docker: only --help shows help.
    p = ctx.parser(
        "[OPTIONS] IMAGE [COMMAND] [ARG...]",
        "Run a command in a new container" if run else "Create a new container",
        add_help=False,
    )
    p.add_argument("--help", action="help")
    if run:
        p.add_argument("-d", "--detach", action="store_true", help="Run in background")
        p.add_argument("--rm", action="store_true", help="Remove the container when it exits")
        p.add_argument("--sig-proxy", default="true", help="Proxy received signals")
    else:
        p.add_argument("--rm", action="store_true", help="Remove the container when it exits")
    p.add_argument("-i", "--interactive", action="store_true", help="Keep STDIN open")
    p.add_argument("-t", "--tty", action="store_true", help="Allocate a pseudo-TTY")
    p.add_argument("-a", "--attach", action="append", default=[], help="Attach to STDIN/OUT/ERR")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q")
    p.add_argument("--name")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("-u", "--user", default="")
    p.add_argument("--group-add", action="append", default=[])
    p.add_argument("-h", "--hostname", default="")
    p.add_argument("--domainname", default="")
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--tmpfs", action="append", default=[])
    p.add_argument("--read-only", action="store_true")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--init", action="store_true")
    p.add_argument("--cap-add", action="append", default=[])
    p.add_argument("--cap-drop", action="append", default=[])
    p.add_argument("--security-opt", action="append", default=[])
    p.add_argument("-m", "--memory", default="")
    p.add_argument("--memory-swap", default="")
    p.add_argument("--cpus", default="")
    p.add_argument("-c", "--cpu-shares", type=int, default=0)
    p.add_argument("--pids-limit", type=int, default=0)
    p.add_argument("--ulimit", action="append", default=[])
    p.add_argument("--shm-size", default="")
    p.add_argument("--sysctl", action="append", default=[])
    p.add_argument("--network", "--net", default="default")
    p.add_argument("--network-alias", "--net-alias", action="append", default=[])
    p.add_argument("--ip", default="")
    p.add_argument("--add-host", action="append", default=[])
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--dns-option", "--dns-opt", action="append", default=[])
    p.add_argument("--entrypoint")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("--stop-signal", default="")
    p.add_argument("--stop-timeout", type=int)
    p.add_argument("--runtime", default="")
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("--expose", action="append", default=[])
    p.add_argument("--restart", default="no")
    p.add_argument("--pull", default="missing")
    p.add_argument("image")
    return p


def _env_files(paths: list[str]) -> list[str]:
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


def parse_create(ctx: Context, argv: list[str], run: bool) -> tuple[Any, argparse.Namespace]:
    from dockyard.engine.container_options import CreateOptions

    opts_argv, image, command = split_at_image(argv)
    p = create_parser(ctx, run)
    if image is None:
        p.error(
            '"dockyard run" requires at least 1 argument.'
            if run
            else '"dockyard create" requires at least 1 argument.'
        )
    a = p.parse_args([*opts_argv, image])
    if a.publish:
        from dockyard.network.ports import port_bindings

        port_bindings(a.publish)  # a bad -p is a usage error before anything is created
    if a.add_host or a.dns or a.dns_search:
        _check_dns_flags(p, a)
    if a.network_alias and a.network in ("default", "bridge", "none", "host"):
        raise InvalidArgument("network-scoped aliases are only supported for user-defined networks")
    if a.restart not in ("no", ""):
        raise InvalidArgument("restart policies are not supported yet")
    labels = {}
    for lbl in a.label:
        k, _, v = lbl.partition("=")
        labels[k] = v
    sysctls = {}
    for s in a.sysctl:
        k, eq, v = s.partition("=")
        if not eq:
            raise InvalidArgument(f"invalid sysctl: {s}")
        sysctls[k] = v
    memory_swap = 0
    if a.memory_swap:
        memory_swap = -1 if a.memory_swap == "-1" else parse_bytes(a.memory_swap)
    cpus = 0
    if a.cpus:
        try:
            cpus = int(float(a.cpus) * 1e9)
        except ValueError:
            raise InvalidArgument(f'invalid argument "{a.cpus}" for "--cpus" flag') from None
        ncpu = os.cpu_count() or 1
        if cpus > ncpu * 1_000_000_000:
            raise InvalidArgument(
                f"range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            )
    attach = [s.lower() for s in a.attach]
    if run and not a.detach and not attach:
        attach = ["stdout", "stderr"] + (["stdin"] if a.interactive else [])
    entrypoint = None
    if a.entrypoint is not None:
        entrypoint = [a.entrypoint] if a.entrypoint else []
    opts = CreateOptions(
        image=image,
        cmd=command or None,
        entrypoint=entrypoint,
        name=a.name or "",
        env=_env_files(a.env_file) + a.env,
        workdir=a.workdir,
        user=a.user,
        group_add=a.group_add,
        tty=a.tty,
        stdin_open=a.interactive,
        attach=attach,
        hostname=a.hostname,
        domainname=a.domainname,
        volumes=a.volume,
        tmpfs=a.tmpfs,
        auto_remove=a.rm,
        read_only=a.read_only,
        privileged=a.privileged,
        init=a.init,
        cap_add=a.cap_add,
        cap_drop=a.cap_drop,
        security_opt=a.security_opt,
        memory=parse_bytes(a.memory) if a.memory else 0,
        memory_swap=memory_swap,
        nano_cpus=cpus,
        cpu_shares=a.cpu_shares,
        pids_limit=a.pids_limit,
        ulimits=a.ulimit,
        shm_size=parse_bytes(a.shm_size) if a.shm_size else 0,
        sysctls=sysctls,
        network=a.network,
        labels=labels,
        stop_signal=a.stop_signal,
        stop_timeout=a.stop_timeout,
        runtime=a.runtime,
        expose=a.expose,
        publish=a.publish,
        publish_all=a.publish_all,
        network_aliases=a.network_alias,
        ip=a.ip,
        extra_hosts=a.add_host,
        dns=a.dns,
        dns_search=a.dns_search,
        dns_options=a.dns_option,
    )
    return opts, a


def _check_dns_flags(p: argparse.ArgumentParser, a: argparse.Namespace) -> None:
    """Bad --add-host/--dns/--dns-search values are flag errors, as in Docker's CLI; a
    loopback --dns gets Docker's warning."""
    from dockyard.network.hosts import check_dns, check_dns_search, check_extra_host, is_loopback

    for flag, values, check in (
        ("--add-host", a.add_host, check_extra_host),
        ("--dns", a.dns, check_dns),
        ("--dns-search", a.dns_search, check_dns_search),
    ):
        for v in values:
            try:
                check(v)
            except InvalidArgument as e:
                p.error(f'invalid argument "{v}" for "{flag}" flag: {e}')
    for v in a.dns:
        if is_loopback(v):
            print(
                f"WARNING: Localhost DNS setting (--dns={v}) may fail in containers.",
                file=sys.stderr,
            )


def _ensure_image(ctx: Context, image: str, pull: str) -> None:
    """``--pull missing|always|never`` for run and create. An image that is here already costs
    one lookup: no pull, and no reference grammar to load (~10 ms of every run)."""
    try:
        if pull not in ("missing", "never"):
            raise NotFound(image)
        ctx.engine.store.images.resolve(image)
    except NotFound:
        from dockyard.cli.registry import pull_missing

        pull_missing(ctx, image, pull)


def cmd_create(ctx: Context, argv: list[str]) -> int:
    opts, a = parse_create(ctx, argv, run=False)
    _ensure_image(ctx, opts.image, a.pull)
    print(ctx.engine.containers.create(opts))
    return 0


def _attach_and_wait(
    ctx: Context,
    cid: str,
    *,
    stdin: bool,
    tty: bool,
    detach_keys: str,
    start: bool,
    sig_proxy: bool = True,
) -> int:
    from dockyard.runtime.attach import attach, send_signal

    rdir = ctx.engine.containers.container_run_dir(cid)
    restore = []
    if sig_proxy and not tty:
        import signal

        def forward(signum: int, _frame: Any) -> None:
            try:
                send_signal(rdir, signum)
            except (OSError, DockyardError):
                pass

        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            restore.append((s, signal.signal(s, forward)))
    try:
        code = attach(
            rdir, stdin=stdin, tty=tty, start=start, detach_keys=detach_keys, handles_exit=True
        )
    finally:
        import signal

        for s, h in restore:
            signal.signal(s, h)
    if code is None:
        return 0
    # Record the exit (and --rm) before returning, as docker run does.
    # The monitor deletes the runtime state itself when a client records the exit.
    ctx.engine.containers.on_exit(cid, runtime_cleanup=False)
    return code


def cmd_run(ctx: Context, argv: list[str]) -> int:
    opts, a = parse_create(ctx, argv, run=True)
    engine = ctx.engine
    _ensure_image(ctx, opts.image, a.pull)
    # The container's monitor starts first: its interpreter comes up while the container is
    # created and its bundle written (start() lets it go).
    opts = opts._replace(container_id=os.urandom(32).hex())
    launch = engine.containers.launch_early(opts)
    try:
        cid = engine.containers.create(opts)
    except BaseException:
        launch.cancel()
        engine.containers.forget_run_dir(opts.container_id)
        raise
    try:
        if a.detach:
            engine.containers.start(cid, launch=launch)
            print(cid)
            return 0
        engine.containers.start(cid, attach=True, launch=launch)
    except DockyardError as e:
        # Docker keeps the failed container (created, with the error) unless --rm.
        if a.rm:
            try:
                engine.containers.remove(cid, force=True)
            except DockyardError:
                pass
        raise e
    return _attach_and_wait(
        ctx,
        cid,
        stdin="stdin" in opts.attach,
        tty=a.tty,
        detach_keys=a.detach_keys,
        start=True,
        sig_proxy=a.sig_proxy.lower() != "false",
    )


def cmd_start(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers")
    p.add_argument("containers", nargs="+")
    p.add_argument("-a", "--attach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q")
    a = p.parse_args(argv)
    engine = ctx.engine
    if a.attach or a.interactive:
        if len(a.containers) > 1:
            raise InvalidArgument("you cannot start and attach multiple containers at once")
        cid = engine.containers.start(a.containers[0], attach=True)
        data = engine.containers.get(cid)
        return _attach_and_wait(
            ctx,
            cid,
            stdin=a.interactive and data["Config"]["OpenStdin"],
            tty=data["Config"]["Tty"],
            detach_keys=a.detach_keys,
            start=True,
        )
    status = 0
    for name in a.containers:
        try:
            engine.containers.start(name)
            print(name)
        except DockyardError as e:
            print(f"Error: {e}", file=sys.stderr)
            status = e.exit_code if len(a.containers) == 1 else 1
    return status


def cmd_stop(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers")
    p.add_argument("containers", nargs="+")
    p.add_argument("-t", "--time", type=int, default=None)
    a = p.parse_args(argv)
    return for_each_name(a.containers, lambda n: ctx.engine.containers.stop(n, a.time))


def cmd_restart(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers")
    p.add_argument("containers", nargs="+")
    p.add_argument("-t", "--time", type=int, default=None)
    a = p.parse_args(argv)

    def restart(n: str) -> None:
        ctx.engine.containers.stop(n, a.time)
        ctx.engine.containers.start(n)

    return for_each_name(a.containers, restart)


def cmd_kill(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers")
    p.add_argument("containers", nargs="+")
    p.add_argument("-s", "--signal", default="KILL")
    a = p.parse_args(argv)
    return for_each_name(a.containers, lambda n: ctx.engine.containers.kill(n, a.signal))


def cmd_rm(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers")
    p.add_argument("containers", nargs="+")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-v", "--volumes", action="store_true")
    a = p.parse_args(argv)
    return for_each_name(
        a.containers,
        lambda n: ctx.engine.containers.remove(n, force=a.force, volumes=a.volumes),
    )


def cmd_wait(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("CONTAINER [CONTAINER...]", "Block until containers stop, print exit codes")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    status = 0
    for n in a.containers:
        try:
            print(ctx.engine.containers.wait(n), flush=True)
        except DockyardError as e:
            print(f"Error: {e}", file=sys.stderr)
            status = 1
    return status


def cmd_rename(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("CONTAINER NEW_NAME", "Rename a container")
    p.add_argument("container")
    p.add_argument("new_name")
    a = p.parse_args(argv)
    ctx.engine.containers.rename(a.container, a.new_name)
    return 0


def _command(data: dict[str, Any], no_trunc: bool) -> str:
    cmd = " ".join([data["Path"], *data["Args"]])
    if not no_trunc and len(cmd) > 20:
        cmd = cmd[:19] + "…"
    return f'"{cmd}"'


def _ports_column(d: dict[str, Any]) -> str:
    """Docker's PORTS: "0.0.0.0:8080->80/tcp, 443/tcp"."""
    out = []
    for key, binds in (d["NetworkSettings"].get("Ports") or {}).items():
        if not binds:
            out.append(key)
        for b in binds or ():
            out.append(f"{b['HostIp']}:{b['HostPort']}->{key}")
    return ", ".join(out)


def cmd_port(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("CONTAINER [PRIVATE_PORT[/PROTO]]", "List port mappings for the container")
    p.add_argument("container")
    p.add_argument("port", nargs="?")
    a = p.parse_args(argv)
    data = ctx.engine.containers.get(a.container)
    ports = data["NetworkSettings"].get("Ports") or {}
    if a.port:
        key = a.port if "/" in a.port else f"{a.port}/tcp"
        binds = ports.get(key)
        if not binds:
            raise NotFound(f"No public port '{key}' published for {a.container}")
        for b in binds:
            print(f"{b['HostIp']}:{b['HostPort']}")
        return 0
    for key, binds in sorted(ports.items(), key=lambda kv: int(kv[0].split("/")[0])):
        for b in binds or ():
            print(f"{key} -> {b['HostIp']}:{b['HostPort']}")
    return 0


def cmd_ps(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.images import _parse_filters
    from dockyard.engine.containers import match_filters

    p = ctx.parser("[OPTIONS]", "List containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("-n", "--last", type=int, default=-1)
    p.add_argument("-l", "--latest", action="store_true")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("--format")
    a = p.parse_args(argv)
    filters = _parse_filters(a.filter)
    unknown = set(filters) - {"status", "name", "id", "exited", "label", "ancestor"}
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    show_all = (
        a.all
        or bool(filters.get("status"))
        or bool(filters.get("exited"))
        or a.last >= 0
        or a.latest
    )
    listed = ctx.engine.containers.list_containers(all_containers=show_all)
    rows = [d for d in listed if match_filters(d, filters)]
    if a.latest:
        rows = rows[:1]
    elif a.last >= 0:
        rows = rows[: a.last]
    if a.quiet:
        if rows:
            print("\n".join(d["Id"] if a.no_trunc else d["Id"][:12] for d in rows))
        return 0
    dicts = [
        {
            "ID": d["Id"] if a.no_trunc else d["Id"][:12],
            "Image": d["Config"]["Image"],
            "Command": _command(d, a.no_trunc),
            "RunningFor": ago(d["Created"]),
            "CreatedAt": d["Created"],
            "Status": container_status(d),
            "State": d["State"]["Status"],
            "Ports": _ports_column(d),
            "Names": d["Name"].lstrip("/"),
            "Labels": ",".join(f"{k}={v}" for k, v in (d["Config"].get("Labels") or {}).items()),
        }
        for d in rows
    ]
    if a.format:
        out = format_rows(
            a.format,
            dicts,
            {
                "ID": "CONTAINER ID",
                "Image": "IMAGE",
                "Command": "COMMAND",
                "RunningFor": "CREATED",
                "Status": "STATUS",
                "Ports": "PORTS",
                "Names": "NAMES",
                "State": "STATE",
            },
        )
        if out:
            print(out)
        return 0
    cols = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
    print(
        table(
            ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"],
            [[x[c] for c in cols] for x in dicts],
        )
    )
    return 0


def cmd_logs(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER", "Fetch the logs of a container")
    p.add_argument("container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--details", action="store_true")
    a = p.parse_args(argv)
    tail = None
    if a.tail != "all":
        try:
            tail = int(a.tail)
        except ValueError:
            raise InvalidArgument(f"invalid tail value: {a.tail}") from None
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for stream, text, ts in ctx.engine.containers.logs(a.container, follow=a.follow, tail=tail):
        line = (f"{ts} " if a.timestamps else "") + text
        target = err if stream == "stderr" else out
        target.write(line.encode())
        if a.follow:
            target.flush()
    out.flush()
    return 0


def cmd_attach(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER", "Attach to a running container's streams")
    p.add_argument("container")
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q")
    p.add_argument("--sig-proxy", default="true")
    a = p.parse_args(argv)
    data = ctx.engine.containers.get(a.container)
    if not data["State"]["Running"]:
        raise InvalidArgument("You cannot attach to a stopped container, start it first")
    return _attach_and_wait(
        ctx,
        data["Id"],
        stdin=not a.no_stdin and data["Config"]["OpenStdin"],
        tty=data["Config"]["Tty"],
        detach_keys=a.detach_keys,
        start=False,
        sig_proxy=a.sig_proxy.lower() != "false",
    )


def cmd_exec(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER COMMAND [ARG...]", "Run a command in a running container")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-u", "--user", default="")
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q")
    p.add_argument("container")
    opts_argv, container, command = split_at_image(argv, EXEC_VALUE_FLAGS)
    if container is None or not command:
        p.error('"dockyard exec" requires at least 2 arguments.')
    a = p.parse_args([*opts_argv, container])
    from dockyard.cli.exec_fast import exec_if_found
    from dockyard.runtime.exec import run_exec

    engine = ctx.engine
    cid, rt, proc = engine.containers.exec_spec(
        a.container,
        command,
        tty=a.tty,
        env=_env_files(a.env_file) + a.env,
        user=a.user,
        workdir=a.workdir,
        privileged=a.privileged,
    )
    runtime = engine.containers.runtime(rt)
    if not (a.detach and a.tty):
        exec_if_found(engine, cid, rt, proc, tty=a.tty, interactive=a.interactive, detach=a.detach)
    return run_exec(
        runtime,
        cid,
        proc,
        engine.containers.container_run_dir(cid),
        tty=a.tty,
        interactive=a.interactive,
        detach=a.detach,
    )


def cmd_top(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("CONTAINER [ps OPTIONS]", "Display the running processes of a container")
    p.add_argument("container")
    p.add_argument("ps_args", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    header, rows = ctx.engine.containers.top(a.container, a.ps_args)
    print(table(header, rows))
    return 0


def cmd_diff(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("CONTAINER", "Inspect changes to files on a container's filesystem")
    p.add_argument("container")
    a = p.parse_args(argv)
    for kind, path in ctx.engine.containers.diff(a.container):
        print(f"{kind} {path}")
    return 0


def cmd_commit(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser(
        "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a container's changes"
    )
    p.add_argument("container")
    p.add_argument("reference", nargs="?")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-p", "--pause", default="true")
    a = p.parse_args(argv)
    print(
        ctx.engine.containers.commit(
            a.container, a.reference, changes=a.change, message=a.message, author=a.author
        )
    )
    return 0


def cmd_cp(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser(
        "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       dockyard cp [OPTIONS] "
        "SRC_PATH|- CONTAINER:DEST_PATH",
        "Copy files between a container and the host",
    )
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("-L", "--follow-link", action="store_true")
    p.add_argument("-a", "--archive", action="store_true")
    a = p.parse_args(argv)
    from dockyard.runtime.cp import copy

    copy(ctx.engine.containers, a.src, a.dst, follow_link=a.follow_link)
    return 0


def cmd_container_prune(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true")
    a = p.parse_args(argv)
    if not a.force and not confirm("This will remove all stopped containers."):
        return 0
    removed, size = ctx.engine.containers.prune()
    print_deleted("Containers", removed)
    print(f"Total reclaimed space: {human_size(size)}")
    return 0


def cmd_exited(ctx: Context, argv: list[str]) -> int:
    """Run by a container's monitor once the container has exited."""
    for cid in argv:
        ctx.engine.containers.on_exit(cid)
    return 0


# ------------------------------------------------------------------ volumes


def cmd_volume_create(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] [VOLUME]", "Create a volume")
    p.add_argument("name", nargs="?", default="")
    p.add_argument("--name", dest="name_opt", default="")
    p.add_argument("-l", "--label", action="append", default=[])
    p.add_argument("-d", "--driver", default="local")
    a = p.parse_args(argv)
    if a.driver != "local":
        raise InvalidArgument(f"volume driver {a.driver!r} is not supported: use local")
    labels = dict(lbl.partition("=")[::2] for lbl in a.label)
    print(ctx.engine.volumes.create(a.name or a.name_opt, labels))
    return 0


def cmd_volume_ls(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.images import _parse_filters

    p = ctx.parser("[OPTIONS]", "List volumes")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("-f", "--filter", action="append", default=[])
    p.add_argument("--format")
    a = p.parse_args(argv)
    filters = _parse_filters(a.filter)
    dangling = None
    if "dangling" in filters:
        dangling = filters["dangling"][-1].lower() in ("true", "1")
    vols = ctx.engine.volumes.list_volumes(dangling=dangling)
    if a.quiet:
        if vols:
            print("\n".join(v["Name"] for v in vols))
        return 0
    if a.format:
        print(format_rows(a.format, vols, {"Driver": "DRIVER", "Name": "VOLUME NAME"}))
        return 0
    print(table(["DRIVER", "VOLUME NAME"], [[v["Driver"], v["Name"]] for v in vols]))
    return 0


def cmd_volume_inspect(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.images import inspect_each

    p = ctx.parser("[OPTIONS] VOLUME [VOLUME...]", "Display detailed information on volumes")
    p.add_argument("names", nargs="+")
    p.add_argument("-f", "--format")
    a = p.parse_args(argv)
    return inspect_each(a.names, ctx.engine.volumes.inspect, a.format)


def cmd_volume_rm(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] VOLUME [VOLUME...]", "Remove one or more volumes")
    p.add_argument("names", nargs="+")
    p.add_argument("-f", "--force", action="store_true")
    a = p.parse_args(argv)
    return for_each_name(a.names, lambda n: ctx.engine.volumes.remove(n, force=a.force))


def cmd_volume_prune(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Remove unused local volumes")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("-a", "--all", action="store_true")
    a = p.parse_args(argv)
    what = "all local volumes" if a.all else "anonymous local volumes"
    if not a.force and not confirm(f"This will remove {what} not used by at least one container."):
        return 0
    removed, size = ctx.engine.volumes.prune(all_volumes=a.all)
    print_deleted("Volumes", removed)
    print(f"Total reclaimed space: {human_size(size)}")
    return 0
