"""``dockyard events`` (``system events``): the event journal, past and as it grows."""

from __future__ import annotations

import sys
import time
from typing import Any

from dockyard.cli.context import Context
from dockyard.errors import InvalidArgument


def cmd_events(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Get real time events from the server")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output")
    p.add_argument("--format", default="", help="Format the output using a Go template")
    p.add_argument("--since", default="", help="Show all events created since timestamp")
    p.add_argument("--until", default="", help="Stream events until this timestamp")
    a = p.parse_args(argv)
    filters: dict[str, list[str]] = {}
    for f in a.filter:
        key, eq, value = f.partition("=")
        if not eq:
            raise InvalidArgument(
                f'invalid argument "{f}" for "-f, --filter" flag: bad format of filter '
                "(expected name=value)"
            )
        filters.setdefault(key.strip().lower(), []).append(value.strip())
    since, until = _time(a.since), _time(a.until)
    write = _template_writer(a.format) if a.format else _default_line
    out = sys.stdout
    events = ctx.engine.events.read(since=since, until=until, filters=filters, follow=True)
    for msg in events:
        out.write(write(msg))
        out.flush()
    return 0


def _time(value: str) -> int:
    """Docker's GetTimestamp, as its CLI sends ``--since``/``--until`` (its errors bare)."""
    if not value:
        return 0
    from dockyard.units import docker_timestamp, ts_ns

    try:
        # An explicit "0" is the epoch, not "unset": `--since 0` shows every recorded event
        # (Docker's daemon tells a zero time from an absent one); 1 ns is the same bound.
        return max(1, ts_ns(docker_timestamp(value)))
    except ValueError as e:
        raise InvalidArgument(str(e)) from None


def _default_line(msg: dict[str, Any]) -> str:
    """docker/cli's printOutput: time (local, nine fraction digits), type, action, actor,
    then the attributes sorted by key."""
    ns = int(msg.get("timeNano") or 0) or int(msg.get("time") or 0) * 1_000_000_000
    actor = msg.get("Actor") or {}
    line = f"{_local_time(ns)} {msg.get('Type', '')} {msg.get('Action', '')} {actor.get('ID', '')}"
    attrs = actor.get("Attributes") or {}
    if attrs:
        line += " (" + ", ".join(f"{k}={attrs[k]}" for k in sorted(attrs)) + ")"
    return line + "\n"


def _local_time(ns: int) -> str:
    """Go's RFC3339NanoFixed in the local zone."""
    sec, frac = divmod(ns, 1_000_000_000)
    t = time.localtime(sec)
    off = t.tm_gmtoff
    zone = (
        "Z"
        if off == 0
        else f"{'+' if off > 0 else '-'}{abs(off) // 3600:02d}:{abs(off) % 3600 // 60:02d}"
    )
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{frac:09d}{zone}"


def _template_writer(fmt: str) -> Any:
    from dockyard.cli.formatter import parse_template
    from dockyard.cli.gotemplate import TemplateError
    from dockyard.cli.rows import EventRow

    tmpl = parse_template(fmt)

    def write(msg: dict[str, Any]) -> str:
        try:
            return tmpl.execute(EventRow(msg)) + "\n"
        except TemplateError as e:
            raise InvalidArgument(str(e)) from None

    return write
