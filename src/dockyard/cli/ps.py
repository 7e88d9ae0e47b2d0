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
    rows = ctx.engine.containers.list_shapes(all_containers=show_all, filters=filters, size=a.size)
    if a.latest:
        rows = rows[:1]
    elif a.last >= 0:
        rows = rows[: a.last]
    if a.quiet:
        if rows:
            print("\n".join(d["Id"] if a.no_trunc else d["Id"][:12] for d in rows))
        return 0
    trunc = not a.no_trunc
    if a.format and a.format != "table":
        from dockyard.cli.formatter import write_list
        from dockyard.cli.rows import ContainerRow

        write_list(a.format, [ContainerRow(d, trunc=trunc) for d in rows], ContainerRow.header)
        return 0
    # The default table without the template machinery: the columns' functions are the ones
    # ContainerRow's methods use (cli/columns.py).
    from dockyard.cli import columns

    cols = columns.TABLE + ((("Size", columns.size),) if a.size else ())
    heads = [columns.HEADERS[name] for name, _ in cols]
    print(table(heads, [[fn(d, trunc) for _, fn in cols] for d in rows]))
    return 0
