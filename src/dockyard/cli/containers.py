"""Container verbs: run, create, start, stop, kill, restart, pause, unpause, update, rm,
logs, attach, exec, wait, top, rename, cp, diff, export, commit, container prune, and what the
engine leaves behind runs: ``container _exited`` (a monitor) and ``container _restart`` (a
restart policy's restarter)."""

from __future__ import annotations

import os
import sys

from dockyard.cli.context import Context
from dockyard.cli.output import (
    confirm,
    for_each_name,
    human_size,
    print_deleted,
    table,
)
from dockyard.errors import DockyardError, InvalidArgument, NotFound

TYPE_CHECKING = False  # not typing's: ~3 ms of every container verb's start-up
if TYPE_CHECKING:
    import argparse

    from dockyard.cli.parser import ArgumentParser
    from dockyard.cli.verbs import Args
    from dockyard.model.container import ContainerSpec

# ------------------------------------------------------------------ run / create


def parse_create(
    ctx: Context, argv: list[str], run: bool
) -> tuple[ContainerSpec, argparse.Namespace | Args]:
    """``run``/``create`` arguments -> (the spec, the parsed flags)."""
    from dockyard.cli.flags import add_flags, flags_for, spec_from_args, split_at_image
    from dockyard.cli.verbs import Command, parse_lean

    verb = "run" if run else "create"
    usage = "[OPTIONS] IMAGE [COMMAND] [ARG...]"
    description = "Run a command in a new container" if run else "Create a new container"
    opts_argv, image, command = split_at_image(argv, verb)
    parser: list[ArgumentParser] = []

    def p() -> ArgumentParser:
        """argparse over the same table: for what parse_lean leaves, and to report errors
        (building it costs ~10 ms: the plain forms never do)."""
        if not parser:
            # -h is --hostname, as in Docker: only --help shows help.
            parser.append(ctx.parser(usage, description, add_help=False))
            parser[0].add_argument("--help", action="help")
            add_flags(parser[0], verb)
            parser[0].add_argument("image")
        return parser[0]

    if image is None:
        p().error(f'"dockyard {verb}" requires at least 1 argument.')
    table = Command(usage, description, tuple(flags_for(verb)), (("image", None),))
    a = parse_lean(table, [*opts_argv, image]) or p().parse_args([*opts_argv, image])
    if a.add_host or a.dns or a.dns_search:
        _check_dns_flags(p(), a)
    try:
        spec = spec_from_args(a, image, command, run=run)
    except InvalidArgument as e:
        if str(e).startswith("invalid argument "):
            p().error(str(e))  # a flag's value: a usage error, as Docker's CLI reports it
        raise
    if a.cidfile and os.path.exists(a.cidfile):
        raise InvalidArgument(
            f"Container ID file found, make sure the other container isn't running or delete "
            f"{a.cidfile}"
        )
    return spec, a


def _check_dns_flags(p: argparse.ArgumentParser, a: argparse.Namespace | Args) -> None:
    """Bad --add-host/--dns/--dns-search values are flag errors, as in Docker's CLI; a
    loopback --dns gets Docker's warning."""
    from dockyard.model.addresses import (
        check_dns,
        check_dns_search,
        check_extra_host,
        is_loopback,
    )

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


def _write_cidfile(path: str, cid: str) -> None:
    if path:
        with open(path, "x") as f:
            f.write(cid)


def cmd_create(ctx: Context, argv: list[str]) -> int:
    spec, a = parse_create(ctx, argv, run=False)
    _ensure_image(ctx, spec.image, a.pull)
    cid = ctx.engine.containers.create(spec)
    _write_cidfile(a.cidfile, cid)
    print(cid)
    return 0


def cmd_run(ctx: Context, argv: list[str]) -> int:
    spec, a = parse_create(ctx, argv, run=True)
    containers = ctx.engine.containers
    _ensure_image(ctx, spec.image, a.pull)
    cid, code = containers.run(
        spec,
        detach=a.detach,
        detach_keys=a.detach_keys,
        sig_proxy=a.sig_proxy.lower() != "false",
    )
    _write_cidfile(a.cidfile, cid)
    if a.detach:
        print(cid)
        return 0
    return code or 0


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
        try:
            cid = engine.containers.start(a.containers[0], attach=True)
        except DockyardError as e:
            print(f"Error: {e}", file=sys.stderr)
            return 1  # Docker's CLI: a failed start is 1, whatever failed
        spec = engine.containers.get(cid).spec
        code = engine.containers.sessions.attach(
            cid,
            stdin=a.interactive and spec.open_stdin,
            tty=spec.tty,
            detach_keys=a.detach_keys,
            start=True,
        )
        return code or 0
    status = 0
    for name in a.containers:
        try:
            engine.containers.start(name)
            print(name)
        except DockyardError as e:
            print(f"Error: {e}", file=sys.stderr)
            status = 1  # Docker's CLI, also for a command that cannot run (run: 126, 127)
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

    return for_each_name(a.containers, lambda n: ctx.engine.containers.restart(n, a.time))


def cmd_kill(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers")
    p.add_argument("containers", nargs="+")
    p.add_argument("-s", "--signal", default="KILL")
    a = p.parse_args(argv)
    return for_each_name(a.containers, lambda n: ctx.engine.containers.kill(n, a.signal))


def cmd_pause(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("CONTAINER [CONTAINER...]", "Pause all processes within one or more containers")
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    return for_each_name(a.containers, ctx.engine.containers.pause)


def cmd_unpause(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser(
        "CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers"
    )
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    return for_each_name(a.containers, ctx.engine.containers.unpause)


def cmd_update(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.flags import add_flags, update_from_args

    p = ctx.parser(
        "[OPTIONS] CONTAINER [CONTAINER...]", "Update configuration of one or more containers"
    )
    add_flags(p, "update")
    p.set_defaults(restart="")  # unset: the policy stays as it is
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    change = update_from_args(a)
    if change.empty:
        print("Error: you must provide one or more flags when using this command", file=sys.stderr)
        return 1
    return for_each_name(a.containers, lambda n: ctx.engine.containers.update(n, change))


def cmd_export(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER", "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output", default="", help="Write to a file, instead of STDOUT")
    p.add_argument("container")
    a = p.parse_args(argv)
    containers = ctx.engine.containers
    try:
        if not a.output:
            if sys.stdout.isatty():
                raise InvalidArgument(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                )
            containers.export(a.container, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return 0
        _export_to_file(ctx, a.container, a.output)
    except DockyardError as e:
        print(f"Error: {e}", file=sys.stderr)  # Docker's CLI exits 1 here
        return 1
    return 0


def _export_to_file(ctx: Context, container: str, path: str) -> None:
    """Docker's CLI writes a temporary file beside ``path`` and renames it: a failed export
    leaves no partial file, and an existing file is replaced only by a whole one."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".docker_temp_", dir=directory)
    except OSError as e:
        raise DockyardError(f"failed to export container: {e.strerror}: {path}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            ctx.engine.containers.export(container, f)
        os.chmod(tmp, 0o600)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


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
    p = ctx.parser(
        "[OPTIONS] CONTAINER [CONTAINER...]", "Block until containers stop, print exit codes"
    )
    p.add_argument(
        "--condition",
        default="not-running",
        help="Wait until the container is not-running (default), has its next-exit, or is removed",
    )
    p.add_argument("containers", nargs="+")
    a = p.parse_args(argv)
    status = 0
    for n in a.containers:
        try:
            print(ctx.engine.containers.wait(n, a.condition), flush=True)
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


def cmd_port(ctx: Context, argv: list[str]) -> int:
    from dockyard.model.docker.shapes import ports_shape

    a = ctx.args("port", argv)
    ports = ports_shape(ctx.engine.containers.get(a.container))
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


def cmd_logs(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.logs_fast import tail_count, time_flag, write_records

    p = ctx.parser("[OPTIONS] CONTAINER", "Fetch the logs of a container")
    p.add_argument("container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-t", "--timestamps", action="store_true")
    p.add_argument("-n", "--tail", default="all")
    p.add_argument("--since", default="", help="Show logs since timestamp or relative (42m)")
    p.add_argument("--until", default="", help="Show logs before a timestamp or relative")
    p.add_argument("--details", action="store_true")
    a = p.parse_args(argv)
    records = ctx.engine.containers.logs(
        a.container,
        follow=a.follow,
        tail=tail_count(a.tail),
        since=time_flag(a.since, "since"),
        until=time_flag(a.until, "until"),
    )
    write_records(records, timestamps=a.timestamps, follow=a.follow)
    return 0


def cmd_attach(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] CONTAINER", "Attach to a running container's streams")
    p.add_argument("container")
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--detach-keys", default="ctrl-p,ctrl-q")
    p.add_argument("--sig-proxy", default="true")
    a = p.parse_args(argv)
    ctr = ctx.engine.containers.get(a.container)
    if not ctr.running:
        raise InvalidArgument("You cannot attach to a stopped container, start it first")
    code = ctx.engine.containers.sessions.attach(
        ctr.id,
        stdin=not a.no_stdin and ctr.spec.open_stdin,
        tty=ctr.spec.tty,
        detach_keys=a.detach_keys,
        sig_proxy=a.sig_proxy.lower() != "false",
    )
    return code or 0


def cmd_exec(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.environ import resolve_env
    from dockyard.cli.flags import add_flags, env_file_lines, split_at_image

    p = ctx.parser("[OPTIONS] CONTAINER COMMAND [ARG...]", "Run a command in a running container")
    add_flags(p, "exec")
    p.add_argument("container")
    opts_argv, container, command = split_at_image(argv, "exec")
    if container is None or not command:
        p.error('"dockyard exec" requires at least 2 arguments.')
    a = p.parse_args([*opts_argv, container])
    execs = ctx.engine.containers.execs
    ex = execs.spec(
        a.container,
        command,
        tty=a.tty,
        env=resolve_env(env_file_lines(a.env_file) + a.env),
        user=a.user,
        workdir=a.workdir,
        privileged=a.privileged,
    )
    if not (a.detach and a.tty):
        execs.replace_process(ex, tty=a.tty, interactive=a.interactive, detach=a.detach)
    return execs.run(ex, tty=a.tty, interactive=a.interactive, detach=a.detach)


def cmd_top(ctx: Context, argv: list[str]) -> int:
    a = ctx.args("top", argv)
    header, rows = ctx.engine.containers.top(a.container, a.ps_args)
    print(table(header, rows, minwidth=20))  # Docker's top uses a minimum width of 20
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
    ctx.engine.containers.copy(a.src, a.dst, follow_link=a.follow_link, archive=a.archive)
    return 0


def cmd_container_prune(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Remove all stopped containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        help='Provide filter values (e.g. "until=<timestamp>")',
    )
    a = p.parse_args(argv)
    from dockyard.cli.output import parse_filters
    from dockyard.engine.prune import CONTAINER_FILTERS, prune_filters

    filters = prune_filters(parse_filters(a.filter), CONTAINER_FILTERS)
    if not a.force and not confirm("This will remove all stopped containers."):
        return 0
    removed, size = ctx.engine.containers.prune(filters)
    print_deleted("Containers", removed)
    print(f"Total reclaimed space: {human_size(size)}")
    return 0


def cmd_exited(ctx: Context, argv: list[str]) -> int:
    """Run by a container's monitor once the container has exited: ``_exited ID [PID]``, PID
    the monitor's own (a later run of the container is then left alone)."""
    if not argv:
        return 0
    monitor = int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else None
    ctx.engine.containers.on_exit(argv[0], monitor_pid=monitor)
    return 0


def cmd_restart_after(ctx: Context, argv: list[str]) -> int:
    """A restart policy's restarter: ``_restart ID DUE PREVIOUS_PID PREVIOUS_START`` (see
    engine/containers/restarts.py). Not for users: the engine spawns it."""
    cid, due, pid, start = argv
    ctx.engine.containers.restart_after_backoff(
        cid, float(due), (int(pid), "" if start == "-" else start)
    )
    return 0
