"""``docker ps --filter``: which containers a filter set keeps."""

from __future__ import annotations

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dockyard.model.container import Container

FILTERS = ("status", "name", "id", "exited", "label", "ancestor", "health")
HEALTH = ("starting", "healthy", "unhealthy", "none")


def check_filters(filters: Mapping[str, Sequence[str]]) -> None:
    unknown = set(filters) - set(FILTERS)
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    for value in filters.get("health", ()):
        if value not in HEALTH:
            raise InvalidArgument(f"Unrecognised filter value for health: {value}")


def shows_stopped(filters: Mapping[str, Sequence[str]]) -> bool:
    """A status or exited filter lists stopped containers without ``-a``."""
    return bool(filters.get("status") or filters.get("exited"))


def match(ctr: Container, filters: Mapping[str, Sequence[str]]) -> bool:
    """Whether ``ctr`` passes every filter: status, name, id, exited, label, ancestor,
    health (a container without a running check is "none", as in Docker)."""
    for key, values in filters.items():
        if key == "status" and ctr.state.status not in values:
            return False
        if key == "name" and not any(v.lstrip("/") in ctr.name for v in values):
            return False
        if key == "id" and not any(ctr.id.startswith(v) for v in values):
            return False
        if key == "exited" and (ctr.running or str(ctr.state.exit_code) not in values):
            return False
        if key == "label":
            labels = dict(ctr.spec.labels)
            for v in values:
                k, eq, val = v.partition("=")
                if k not in labels or (eq and labels[k] != val):
                    return False
        if key == "health":
            health = ctr.state.health
            if (health.status if health is not None else "none") not in values:
                return False
        if key == "ancestor" and not any(
            ctr.spec.image == v or ctr.image_id.startswith(v) for v in values
        ):
            return False
    return True
