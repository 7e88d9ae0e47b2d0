"""Docker's units for people: sizes ("1.24MB"), durations ("About a minute"), RFC 3339 times.

Shared by the CLI's tables and the Engine API's list shapes (``Status: "Up 2 minutes"``), so
it sits below both front ends. No imports at module load: ``dockyard ps`` starts fast.
"""

from __future__ import annotations

_DECIMAL_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")
_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _scaled(n: float, base: float, units: tuple[str, ...], digits: int) -> str:
    """go-units' CustomSize: ``n`` divided by ``base`` while it is that big, with ``digits``
    significant digits and the unit it reached."""
    i = 0
    while n >= base and i < len(units) - 1:
        n /= base
        i += 1
    return f"{float(f'{n:.{digits}g}'):g}{units[i]}"


def human_size(n: float) -> str:
    """go-units HumanSize: decimal units, 3 significant digits ("1.24MB", "4.1kB", "0B")."""
    return _scaled(n, 1000.0, _DECIMAL_UNITS, 3)


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


# ------------------------------------------------------------------ --since / --until

_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def go_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` in nanoseconds ("1h30m", "-10s", "1.5h"); None if it is
    not one."""
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total = 0.0
    while s:
        i = 0
        while i < len(s) and (s[i].isdigit() or s[i] == "."):
            i += 1
        number = s[:i]
        if not number or number == "." or number.count(".") > 1:
            return None
        j = i
        while j < len(s) and not (s[j].isdigit() or s[j] == "."):
            j += 1
        unit = s[i:j]
        if unit not in _DURATION_UNITS:
            return None
        total += float(number) * _DURATION_UNITS[unit]
        s = s[j:]
    return sign * int(total)


class _GoTimeError(ValueError):
    pass


def _parse_go_layout(value: str, layout: list[str], layout_text: str) -> tuple[list[int], int]:
    """The few layouts of Docker's GetTimestamp, parsed as Go's time.Parse parses them:
    ([year, month, day, hour, minute, second, nanosecond], zone offset in seconds, or -1
    when the value names none). Go's error texts."""
    fields = [0, 1, 1, 0, 0, 0, 0]
    zone = -1
    rest = value

    def cannot(elem: str) -> _GoTimeError:
        return _GoTimeError(
            f'parsing time "{value}" as "{layout_text}": cannot parse "{rest}" as "{elem}"'
        )

    def number(width: int, fixed: bool) -> int:
        n = 0
        while n < len(rest) and n < width and rest[n].isdigit():
            n += 1
        if n == 0 or (fixed and n < width):
            raise ValueError
        return n

    for elem in layout:
        if elem in ("-", "T", ":"):
            if not rest.startswith(elem):
                raise cannot(elem)
            rest = rest[1:]
            continue
        if elem == ".999999999":
            if rest[:1] in (".", ",") and rest[1:2].isdigit():
                n = 1
                while n < len(rest) and rest[n].isdigit():
                    n += 1
                fields[6] = int(rest[1:n][:9].ljust(9, "0"))
                rest = rest[n:]
            continue
        if elem == "Z07:00":
            if rest[:1] in ("Z", "z"):
                zone, rest = 0, rest[1:]
                continue
            if len(rest) < 6 or rest[0] not in "+-" or rest[3] != ":":
                raise cannot(elem)
            try:
                hh, mm = int(rest[1:3]), int(rest[4:6])
            except ValueError:
                raise cannot(elem) from None
            zone = (hh * 3600 + mm * 60) * (-1 if rest[0] == "-" else 1)
            rest = rest[6:]
            continue
        width, fixed, slot, limit, what = {
            "2006": (4, True, 0, 10000, "year"),
            "01": (2, True, 1, 13, "month"),
            "02": (2, True, 2, 32, "day"),
            "15": (2, False, 3, 24, "hour"),
            "04": (2, True, 4, 60, "minute"),
            "05": (2, True, 5, 60, "second"),
        }[elem]
        try:
            n = number(width, fixed)
        except ValueError:
            raise cannot(elem) from None
        v = int(rest[:n])
        if (what in ("month", "day") and v < 1) or v >= limit:
            raise _GoTimeError(f'parsing time "{value}": {what} out of range')
        fields[slot] = v
        rest = rest[n:]
        if elem == "05" and rest[:1] in (".", ",") and rest[1:2].isdigit():
            n = 1  # Go takes a fraction after the seconds even where the layout has none
            while n < len(rest) and rest[n].isdigit():
                n += 1
            fields[6] = int(rest[1:n][:9].ljust(9, "0"))
            rest = rest[n:]
    if rest:
        raise _GoTimeError(f'parsing time "{value}": extra text: "{rest}"')
    year, month, day = fields[0], fields[1], fields[2]
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    if day > days:
        raise _GoTimeError(f'parsing time "{value}": day out of range')
    return fields, zone


def docker_timestamp(value: str, now: float | None = None) -> str:
    """Docker's ``GetTimestamp`` (api/types/time), what its CLI sends for ``--since`` and
    ``--until``: a Go duration before ``now`` ("10m"), an RFC 3339 date or time (local
    unless it names a zone), or a Unix time ("1700000000.5") -> "seconds[.nanoseconds]".
    ValueError with Docker's message."""
    import time

    ref = time.time() if now is None else now
    d = go_duration(value)
    if d is not None and value != "0":
        return str(int((int(ref * 1e9) - d) // 1_000_000_000))
    in_location = not (any(c in value for c in "zZ+") or value.count("-") == 3)
    if "." in value:
        layout = "2006 - 01 - 02 T 15 : 04 : 05 .999999999"
    elif "T" in value:
        colons = value.count(":")
        if not in_location and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1  # the zone offset's colon
        layout = ["2006 - 01 - 02 T 15", "2006 - 01 - 02 T 15 : 04"][colons] if colons < 2 else ""
        layout = layout or "2006 - 01 - 02 T 15 : 04 : 05"
    else:
        layout = "2006 - 01 - 02"
    elems = layout.split() + ([] if in_location else ["Z07:00"])
    text = "".join(elems)
    try:
        fields, zone = _parse_go_layout(value, elems, text)
    except _GoTimeError:
        if "-" in value:
            raise
        ts_ns(value, what=None)  # a Unix time is sent as it is
        return value
    import calendar

    year, month, day, hour, minute, second, nanos = fields
    utc = calendar.timegm((year, month, day, hour, minute, second))
    if zone < 0:  # the local zone (Go: the reference time's zone)
        offset = time.localtime(ref).tm_gmtoff
        secs = utc - offset
    else:
        secs = utc - zone
    return f"{secs}.{nanos:09d}"


def ts_ns(text: str, what: str | None = "") -> int:
    """A Docker API timestamp ("1700000000", "1700000000.123456789") in nanoseconds (moby
    ParseTimestamps). ValueError: Go's ParseInt message, or with ``what`` None Docker's
    CLI message for a value that is neither time nor duration."""
    secs, dot, frac = text.partition(".")
    try:
        s = _go_parse_int(secs)
        n = _go_parse_int(frac) if dot else 0
    except ValueError as e:
        if what is None:
            raise ValueError(f'failed to parse value as time or duration: "{text}"') from None
        raise e
    if dot and frac:
        n = int(n * 10 ** (9 - len(frac)))  # moby scales what it is given to nanoseconds
    return s * 1_000_000_000 + n


def _go_parse_int(text: str) -> int:
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(f'strconv.ParseInt: parsing "{text}": invalid syntax')
    return int(text)


def bytes_size(n: float) -> str:
    """go-units BytesSize: binary units, 4 significant digits ("320KiB", "23.54GiB")."""
    return _scaled(n, 1024.0, _BINARY_UNITS, 4)
