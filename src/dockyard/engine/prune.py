"""What ``prune`` keeps: Docker's prune filters (``until``, ``label``, ``label!``, and per
kind ``dangling`` or ``all``), read from the same ``{key: [values]}`` map both front ends
build (the API's ``filters`` JSON, the CLI's ``--filter k=v``)."""

from __future__ import annotations

import time

from dockyard.errors import InvalidArgument

# Neither typing nor re at import: every prune starts here, most with no filter (~4 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NamedTuple
else:
    from dockyard.model.values import NamedTuple

_UNIX = r"^-?\d+(\.\d+)?$"
# The layouts moby's GetTimestamp tries for values without a time zone (taken as local time).
_LOCAL_LAYOUTS = ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H",
                  "%Y-%m-%d")  # fmt: skip


class PruneFilters(NamedTuple):
    until: float | None = None  # only what was created before (epoch seconds)
    labels: tuple[tuple[str, str | None], ...] = ()  # label=k / label=k=v: must have
    not_labels: tuple[tuple[str, str | None], ...] = ()  # label!=...: must not have
    dangling: bool | None = None  # images: None = the kind's default
    all: bool = False  # volumes (API 1.42+): named volumes too

    def keeps(self, labels: Mapping[str, str], created: float | None) -> bool:
        """True when the filters protect an object with these labels and creation time."""
        if self.until is not None and created is not None and created >= self.until:
            return True
        for key, value in self.labels:
            if key not in labels or (value is not None and labels[key] != value):
                return True
        for key, value in self.not_labels:
            if key in labels and (value is None or labels[key] == value):
                return True
        return False


def parse_timestamp(value: str, now: float | None = None) -> float:
    """Docker's ``until``/``since`` values (moby's GetTimestamp): a Go duration before now
    (``24h``, ``90m``), Unix seconds (``1700000000.5``), RFC 3339, or a date/time without a
    zone (local time)."""
    from dockyard.builder.metadata import go_duration
    from dockyard.units import parse_time

    now = time.time() if now is None else now
    ns = go_duration(value)
    if ns is not None:
        return now - ns / 1e9
    import re

    if re.match(_UNIX, value):
        return float(value)
    parsed = parse_time(value)
    if parsed is not None:
        return parsed
    from datetime import datetime

    for layout in _LOCAL_LAYOUTS:
        try:
            return datetime.strptime(value, layout).timestamp()
        except ValueError:
            continue
    raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')


def _bool(key: str, value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidArgument(f"Invalid filter '{key}={value}'")


def prune_filters(
    filters: Mapping[str, Sequence[str]] | None, allowed: Sequence[str], *, prefix: str = ""
) -> PruneFilters:
    """The filters of one prune; a key not in ``allowed`` is Docker's "Invalid filter"
    (``prefix``: what the build cache's prune puts before it)."""
    until: float | None = None
    labels: list[tuple[str, str | None]] = []
    not_labels: list[tuple[str, str | None]] = []
    dangling: bool | None = None
    all_ = False
    for key, values in (filters or {}).items():
        if key not in allowed:
            raise InvalidArgument(f"{prefix}Invalid filter '{key}'")
        for value in values:
            if key == "until":
                until = parse_timestamp(value)
            elif key in ("label", "label!"):
                k, eq, v = value.partition("=")
                (labels if key == "label" else not_labels).append((k, v if eq else None))
            elif key == "dangling":
                dangling = _bool(key, value)
            elif key == "all":
                all_ = _bool(key, value)
    return PruneFilters(until, tuple(labels), tuple(not_labels), dangling, all_)


# The filters each kind's prune takes (Docker's; anything else is "Invalid filter").
CONTAINER_FILTERS = ("until", "label", "label!")
IMAGE_FILTERS = ("dangling", "until", "label", "label!")
NETWORK_FILTERS = ("until", "label", "label!")
VOLUME_FILTERS = ("label", "label!", "all")
