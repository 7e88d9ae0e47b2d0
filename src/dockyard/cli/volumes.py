"""Volume verbs: volume create, ls, inspect, rm, prune."""

from __future__ import annotations

from dockyard.cli.context import Context
from dockyard.cli.output import (
    confirm,
    for_each_name,
    human_size,
    print_deleted,
    table,
)
from dockyard.errors import InvalidArgument


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
    from dockyard.cli.output import parse_filters

    a = ctx.args("volume ls", argv)
    filters = parse_filters(a.filter)
    dangling = None
    if "dangling" in filters:
        dangling = filters["dangling"][-1].lower() in ("true", "1")
    vols = ctx.engine.volumes.list_volumes(dangling=dangling)
    if a.quiet:
        if vols:
            print("\n".join(v["Name"] for v in vols))
        return 0
    if a.format and a.format != "table":
        from dockyard.cli.formatter import write_list
        from dockyard.cli.rows import VolumeRow

        write_list(a.format, [VolumeRow(v) for v in vols], VolumeRow.header)
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
    p.add_argument(
        "--filter", action="append", default=[], help='Provide filter values (e.g. "label=<label>")'
    )
    a = p.parse_args(argv)
    from dockyard.cli.output import parse_filters
    from dockyard.engine.prune import VOLUME_FILTERS, prune_filters

    filters = prune_filters(parse_filters(a.filter), VOLUME_FILTERS)
    what = "all local volumes" if a.all else "anonymous local volumes"
    if not a.force and not confirm(f"This will remove {what} not used by at least one container."):
        return 0
    removed, size = ctx.engine.volumes.prune(all_volumes=a.all or filters.all, filters=filters)
    print_deleted("Volumes", removed)
    print(f"Total reclaimed space: {human_size(size)}")
    return 0
