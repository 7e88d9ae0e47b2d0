"""Docker's JSON and the model, both ways, in one place: ``reading`` (create bodies and
the rows written before the model -> values), ``checks`` (the daemon's checks of values both
front ends send) and ``shapes`` (values -> inspect, list entries, STATUS); ``listing.py``
finishes a stored list entry without the model. Callers import from here.

Each name is imported from its module on first use (PEP 562): ``inspect``, ``ps`` and
``port`` render through ``shapes`` alone, and ``create`` checks through ``checks``, without
loading ``reading`` (~1 ms of start-up).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: ~2 ms (see engine/containers)
if TYPE_CHECKING:
    from dockyard.model.docker.checks import (
        check_mount,
        parse_security_opts,
        restart_policy_check,
    )
    from dockyard.model.docker.reading import (
        container_from_inspect,
        spec_from_body,
        update_from_body,
    )
    from dockyard.model.docker.shapes import (
        config_shape,
        host_config_shape,
        inspect_shape,
        list_shape,
        mount_points,
        port_key,
        ports_shape,
        start_error_text,
        status_text,
    )

_CHECKS = ("check_mount", "parse_security_opts", "restart_policy_check")
_READING = ("container_from_inspect", "spec_from_body", "update_from_body")
_SHAPES = (
    "config_shape",
    "host_config_shape",
    "inspect_shape",
    "list_shape",
    "mount_points",
    "port_key",
    "ports_shape",
    "start_error_text",
    "status_text",
)
__all__ = [
    "check_mount",
    "config_shape",
    "container_from_inspect",
    "host_config_shape",
    "inspect_shape",
    "list_shape",
    "mount_points",
    "parse_security_opts",
    "port_key",
    "ports_shape",
    "restart_policy_check",
    "spec_from_body",
    "start_error_text",
    "status_text",
    "update_from_body",
]


def __getattr__(name: str) -> object:
    if name in _READING:
        module = f"{__name__}.reading"
    elif name in _CHECKS:
        module = f"{__name__}.checks"
    elif name in _SHAPES:
        module = f"{__name__}.shapes"
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    __import__(module)
    import sys

    return getattr(sys.modules[module], name)
