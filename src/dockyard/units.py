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
    main, frac, zone = text[:19], "", text[19:]
    if zone.startswith("."):
        i = 1
        while i < len(zone) and zone[i].isdigit():
            i += 1
        frac, zone = zone[:i], zone[i:]
    base: float | None = _epoch_seconds(main, zone)
    if base is None:
        # Not the stored form (a zone with seconds, no zone at all: local time...):
        # datetime's reading, as before.
        from datetime import datetime

        try:
            base = datetime.fromisoformat(main + ("+00:00" if zone == "Z" else zone)).timestamp()
        except ValueError:
            return None
    return base + (float(frac) if len(frac) > 1 else 0.0)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _epoch_seconds(main: str, zone: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS`` in the zone ``Z`` or ``+HH:MM``/``-HH:MM`` -> Unix seconds, by
    integer arithmetic (``ps`` and ``images`` print ages; importing datetime is ~1 ms of their
    start-up); None for any other shape or an impossible date, which datetime then reads."""
    if (main[4], main[7], main[13], main[16]) != ("-", "-", ":", ":"):
        return None
    digits = main[0:4] + main[5:7] + main[8:10] + main[11:13] + main[14:16] + main[17:19]
    if not (digits.isascii() and digits.isdigit()):
        return None
    y, mo, d = int(main[0:4]), int(main[5:7]), int(main[8:10])
    h, mi, sec = int(main[11:13]), int(main[14:16]), int(main[17:19])
    if zone == "Z":
        offset = 0
    elif len(zone) == 6 and zone[0] in "+-" and zone[3] == ":" and zone[1:3].isdigit():
        if not (zone[4:6].isascii() and zone[4:6].isdigit() and zone[1:3].isascii()):
            return None
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 23 or zm > 59:
            return None
        offset = (zh * 60 + zm) * 60 * (-1 if zone[0] == "-" else 1)
    else:
        return None
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if not (y >= 1 and 1 <= mo <= 12 and h < 24 and mi < 60 and sec < 60):
        return None
    if not 1 <= d <= _MONTH_DAYS[mo - 1] + (1 if mo == 2 and leap else 0):
        return None
    # Days since 1970-01-01 of the proleptic Gregorian date (the civil-from-days inverse,
    # with March as the first month so that February's leap day comes last).
    yy = y - (1 if mo <= 2 else 0)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + h * 3600 + mi * 60 + sec - offset


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
