"""``dockyard stats``: live resource usage of containers, Docker's table or ``--format``."""

from __future__ import annotations

import sys

from dockyard.cli.context import Context


def cmd_stats(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] [CONTAINER...]", "Display a live stream of resource usage")
    p.add_argument("containers", nargs="*")
    p.add_argument("-a", "--all", action="store_true", help="Show all containers")
    p.add_argument("--format", default="", help="Pretty-print using a Go template")
    p.add_argument("--no-stream", action="store_true", help="Print the first result only")
    p.add_argument("--no-trunc", action="store_true", help="Do not truncate output")
    a = p.parse_args(argv)
    from dockyard.cli.formatter import TABLE, render_list
    from dockyard.cli.rows import StatsRow

    fmt = a.format or StatsRow.table
    if fmt == TABLE:
        fmt = StatsRow.table
    ticks = ctx.engine.containers.stats.table(
        a.containers, all_containers=a.all, stream=not a.no_stream
    )
    out = sys.stdout
    for frames in ticks:
        rows = [StatsRow(name, doc, trunc=not a.no_trunc) for name, doc in frames]
        text = render_list(fmt, rows, StatsRow.header)
        if not a.no_stream:
            text = "\033[2J\033[H" + text  # Docker's CLI clears the screen each time
        out.write(text)
        out.flush()
    return 0
