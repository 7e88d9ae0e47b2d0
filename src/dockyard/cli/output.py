"""Rendering as Docker does it: tab-aligned tables, decimal sizes, "2 hours ago", templates."""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dockyard.units import ago, human_duration, human_size, parse_time

__all__ = ["ago", "human_duration", "human_size", "parse_time"]  # re-exported for the verbs


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Docker's tabwriter layout: columns padded to the widest cell plus three spaces."""
    widths = [len(h) for h in headers]
    for r in rows:
        for i, cell in enumerate(r):
            widths[i] = max(widths[i], len(cell))
    lines = []
    for r in [list(headers), *rows]:
        cells = [c.ljust(widths[i] + 3) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def trunc_id(image_id: str, no_trunc: bool = False) -> str:
    return image_id if no_trunc else image_id.split(":", 1)[-1][:12]


# ----------------------------------------------------------------- templates

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)


def _lookup(obj: Any, path: str) -> Any:
    if path == ".":
        return obj
    cur = obj
    for part in path.lstrip(".").split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        else:
            cur = getattr(cur, part, None)
    return cur


def _render_value(v: Any) -> str:
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{_render_value(x)}" for k, x in sorted(v.items())) + "]"
    if isinstance(v, list):
        return "[" + " ".join(_render_value(x) for x in v) + "]"
    return str(v)


def _eval(expr: str, obj: Any) -> Any:
    words = shlex.split(expr)
    if not words:
        return ""
    fn = words[0]
    if fn == "json":
        return json.dumps(_eval(" ".join(words[1:]) or ".", obj))
    if fn == "index":
        base = _lookup(obj, words[1])
        for key in words[2:]:
            base = base.get(key) if isinstance(base, dict) else None
        return base
    if fn in ("upper", "lower"):
        s = str(_eval(" ".join(words[1:]), obj))
        return s.upper() if fn == "upper" else s.lower()
    if fn == "join":
        return words[2].join(str(x) for x in (_lookup(obj, words[1]) or []))
    if fn.startswith("."):
        return _lookup(obj, fn)
    return fn


def render_template(template: str, obj: Any) -> str:
    """A small subset of Go templates: ``{{.A.B}}``, ``{{json .X}}``, ``{{index .M "k"}}``,
    ``{{join .L ","}}``, ``{{upper .X}}`` and literal text; ``\\t`` and ``\\n`` escapes."""
    template = template.replace("\\t", "\t").replace("\\n", "\n")

    def sub(m: re.Match[str]) -> str:
        v = _eval(m.group(1), obj)
        return v if isinstance(v, str) else _render_value(v)

    return _ACTION.sub(sub, template)


def format_rows(template: str, rows: Sequence[dict[str, Any]], headers: dict[str, str]) -> str:
    """``--format 'table {{.A}}\\t{{.B}}'`` or a plain per-row template."""
    if template.startswith("table"):
        body = template[len("table") :].strip() or "\t".join(f"{{{{.{k}}}}}" for k in headers)
        head = _ACTION.sub(lambda m: headers.get(m.group(1).lstrip("."), m.group(1)), body)
        head = head.replace("\\t", "\t")
        cells = [render_template(body, r).split("\t") for r in rows]
        return table(head.split("\t"), cells)
    return "\n".join(render_template(template, r) for r in rows)


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
