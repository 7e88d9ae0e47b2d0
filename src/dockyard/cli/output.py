"""Rendering as Docker does it: tab-aligned tables, decimal sizes, "2 hours ago", templates."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from dockyard.units import ago, human_duration, human_size, parse_time

__all__ = ["ago", "human_duration", "human_size", "parse_time"]  # re-exported for the verbs


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


def prune_filter_map(specs: Sequence[str]) -> dict[str, list[str]]:
    """``--filter k=v`` flags as Docker's filter map (``label!=k`` is the key ``label!``)."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        key, eq, value = spec.partition("=")
        if not eq:
            from dockyard.errors import InvalidArgument

            raise InvalidArgument(f"bad format of filter (expected name=value): {spec}")
        out.setdefault(key.strip(), []).append(value)
    return out
