"""Docker's units for people: sizes ("1.24MB"), durations ("About a minute"), RFC 3339 times.

Shared by the CLI's tables and the Engine API's list shapes (``Status: "Up 2 minutes"``), so
it sits below both front ends. No imports at module load: ``dockyard ps`` starts fast.
"""

from __future__ import annotations


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
    """RFC 3339 with any fraction (``2026-12-04T07:04:51.994941949Z``, ``...+02:00``) -> epoch
    seconds; None for "" or anything else."""
    if len(text) < 20 or text[10] != "T":
        return None
    from datetime import datetime

    main, frac, zone = text[:19], "", text[19:]
    if zone.startswith("."):
        i = 1
        while i < len(zone) and zone[i].isdigit():
            i += 1
        frac, zone = zone[:i], zone[i:]
    if zone == "Z":
        zone = "+00:00"
    try:
        base = datetime.fromisoformat(main + zone)
    except ValueError:
        return None
    return base.timestamp() + (float(frac) if len(frac) > 1 else 0.0)


def unix_time(rfc3339: str) -> int:
    """Docker's list shapes give times as Unix seconds (0 for Go's zero time)."""
    if rfc3339.startswith("0001-"):
        return 0
    t = parse_time(rfc3339)
    return int(t) if t is not None else 0


def ago(text: str, now: float | None = None) -> str:
    """ "2 hours ago" (Docker's CREATED column), "N/A" for an unparsable time."""
    import time

    t = parse_time(text)
    if t is None:
        return "N/A"
    return human_duration((time.time() if now is None else now) - t) + " ago"


def log_time(text: str, now: float) -> float:
    """``docker logs --since/--until`` and the API's ``since``/``until`` -> epoch seconds, as
    Docker's GetTimestamp reads them: a Unix time ("1700000000", "1700000000.5"), a Go
    duration before ``now`` ("10m", "1h30m"), an RFC 3339 time, or a date/time without a
    zone (local time). ValueError otherwise."""
    import re

    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if parts and "".join(n + u for n, u in parts) == text:
        return now - sum(float(n) * units[u] for n, u in parts)
    t = parse_time(text)
    if t is not None:
        return t
    from datetime import datetime

    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).timestamp()
        except ValueError:
            continue
    raise ValueError(text)
