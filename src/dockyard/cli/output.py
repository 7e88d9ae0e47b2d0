"""Rendering as Docker does it: tab-aligned tables, decimal sizes, "2 hours ago", templates."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def human_size(n: float) -> str:
    """go-units HumanSize: decimal units, 3 significant digits ("1.24MB", "4.1kB", "0B")."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while n >= 1000 and i < len(units) - 1:
        n /= 1000.0
        i += 1
    return f"{float(f'{n:.3g}'):g}{units[i]}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    m = s // 60
    if m == 1:
        return "About a minute"
    if m < 60:
        return f"{m} minutes"
    h = round(s / 3600)
    if h == 1:
        return "About an hour"
    if h < 48:
        return f"{h} hours"
    if h < 24 * 7 * 2:
        return f"{h // 24} days"
    if h < 24 * 30 * 2:
        return f"{h // 24 // 7} weeks"
    if h < 24 * 365 * 2:
        return f"{h // 24 // 30} months"
    return f"{h // 24 // 365} years"


def parse_time(text: str) -> float | None:
    """RFC 3339 with any fraction -> epoch seconds."""
    if not text:
        return None
    from datetime import datetime

    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not m:
        return None
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + float(m.group(2) or 0)


def ago(text: str) -> str:
    t = parse_time(text)
    if t is None:
        return "N/A"
    return human_duration(time.time() - t) + " ago"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], minwidth: int = 10) -> str:
    """Docker's table layout: its tabwriter (cells padded to the widest in their column
    block plus three spaces, at least ``minwidth``; the last column unpadded), without the
    final newline."""
    from dockyard.cli.tabwriter import tabwrite

    text = "\n".join("\t".join(r) for r in [list(headers), *rows]) + "\n"
    return tabwrite(text, minwidth)[:-1]


def trunc_id(image_id: str, no_trunc: bool = False) -> str:
    return image_id if no_trunc else image_id.split(":", 1)[-1][:12]


# ----------------------------------------------------------------- templates


def format_rows(template: str, rows: Sequence[Any], headers: dict[str, str]) -> str:
    """``--format`` over list rows (Go's text/template, ``table`` directive), without the
    final newline; see cli/formatter.py."""
    from dockyard.cli.formatter import render_list

    return render_list(template, rows, headers).removesuffix("\n")


def for_each_name(names: Sequence[str], act: Callable[[str], object]) -> int:
    """Docker's multi-name verbs (stop, rm, ...): run ``act(name)`` for each, print the name
    when it worked and one ``Error:`` line when not; exit status 1 if any failed."""
    from dockyard.errors import DockyardError

    status = 0
    for name in names:
        try:
            act(name)
            print(name)
        except DockyardError as e:
            print(f"Error: {e}", file=sys.stderr)
            status = 1
    return status


def confirm(warning: str, sep: str = "\n") -> bool:
    """Docker's prune prompt: the warning, then one line read from stdin, tty or not; only
    y/yes goes on, so a script without -f that feeds nothing removes nothing."""
    sys.stdout.write(f"WARNING! {warning}{sep}Are you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def print_deleted(title: str, lines: Sequence[str]) -> None:
    """One section of a prune report: ``Deleted <title>:``, its lines, a blank line; nothing
    when nothing was removed."""
    if lines:
        print(f"Deleted {title}:")
        print("\n".join(lines))
        print()


def container_status(data: dict[str, Any]) -> str:
    """The STATUS column of ps: "Up 2 minutes", "Created", "Exited (0) 5 seconds ago"."""
    st = data["State"]
    if st["Running"]:
        t = parse_time(st["StartedAt"]) or time.time()
        return "Up " + human_duration(time.time() - t)
    if st["Status"] == "created":
        return "Created"
    return f"Exited ({st['ExitCode']}) {ago(st['FinishedAt'])}"
