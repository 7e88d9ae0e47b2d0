"""units.parse_time reads RFC 3339 by integer arithmetic (no datetime on ``ps``' path): the
same seconds as datetime's reading, for any date, time, fraction and zone, valid or not."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from dockyard.units import ago, parse_time


def by_datetime(text: str) -> float | None:
    """parse_time as it was: datetime.fromisoformat over the text without its fraction."""
    if len(text) < 20 or text[10] != "T":
        return None
    main, frac, zone = text[:19], "", text[19:]
    if zone.startswith("."):
        i = 1
        while i < len(zone) and zone[i].isdigit():
            i += 1
        frac, zone = zone[:i], zone[i:]
    try:
        base = datetime.fromisoformat(main + ("+00:00" if zone == "Z" else zone))
    except ValueError:
        return None
    return base.timestamp() + (float(frac) if len(frac) > 1 else 0.0)


zones = st.one_of(
    st.sampled_from(["Z", "", "+00:00", "z", "+01:00:30", "+0100", "Zulu"]),
    st.builds(
        "{}{:02d}:{:02d}".format,
        st.sampled_from("+-"),
        st.integers(0, 25),
        st.integers(0, 61),
    ),
)


@given(
    st.integers(1, 9999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["", ".", ".5", ".000000001", ".994941949"]),
    zones,
)
def test_parse_time_agrees_with_datetime(
    y: int, mo: int, d: int, h: int, mi: int, s: int, frac: str, zone: str
) -> None:
    text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}{zone}"
    assert parse_time(text) == by_datetime(text), text


@given(st.text(max_size=40))
def test_parse_time_of_any_text_agrees_with_datetime(text: str) -> None:
    assert parse_time(text) == by_datetime(text)


def test_docker_times() -> None:
    assert parse_time("2026-12-04T07:04:51.994941949Z") == 1796367891.994941949
    assert parse_time("2024-02-29T23:59:59+02:00") == 1709243999
    assert parse_time("0001-01-01T00:00:00Z") == -62135596800
    assert parse_time("2023-02-29T00:00:00Z") is None
    assert ago("2026-12-04T07:04:51Z", now=1796367891 + 7200) == "2 hours ago"
    assert ago("garbage") == "N/A"
