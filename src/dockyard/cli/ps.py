"""``ps`` (``container ls``): a module of its own, so listing loads none of the other
container verbs' code (cli/containers.py) on one of the most typed commands."""

from __future__ import annotations

from dockyard.cli.output import table

TYPE_CHECKING = False  # not typing's: `ps` is a small verb (tests/cli/test_lean_commands.py)
if TYPE_CHECKING:
    from dockyard.cli.context import Context


def cmd_ps(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.output import parse_filters

    a = ctx.args("ps", argv)
    filters = parse_filters(a.filter)
    show_all = a.all or a.last >= 0 or a.latest
    # The rows are the API's list entries, as Docker's CLI builds them.
    rows = ctx.engine.containers.list_shapes(all_containers=show_all, filters=filters)
    if a.latest:
        rows = rows[:1]
    elif a.last >= 0:
        rows = rows[: a.last]
    if a.quiet:
        if rows:
            print("\n".join(d["Id"] if a.no_trunc else d["Id"][:12] for d in rows))
        return 0
    from dockyard.cli.rows import ContainerRow

    ctxs = [ContainerRow(d, trunc=not a.no_trunc) for d in rows]
    if a.format and a.format != "table":
        from dockyard.cli.formatter import write_list

        write_list(a.format, ctxs, ContainerRow.header)
        return 0
    cols = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
    cols += ["Size"] if a.size else []
    heads = [ContainerRow.header[c] for c in cols]
    print(table(heads, [[getattr(x, c)() for c in cols] for x in ctxs]))
    return 0
