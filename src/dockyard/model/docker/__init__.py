"""Docker's JSON and the model, both ways, in one place: ``reading`` (create bodies and
the rows written before the model -> values) and ``shapes`` (values -> inspect, list
entries, STATUS). Split in two modules of one direction each; callers import from here."""

from __future__ import annotations

from dockyard.model.docker.reading import (
    check_mount,
    container_from_inspect,
    parse_security_opts,
    port_key,
    restart_policy_check,
    spec_from_body,
    update_from_body,
)
from dockyard.model.docker.shapes import (
    config_shape,
    host_config_shape,
    inspect_shape,
    list_shape,
    mount_points,
    ports_shape,
    start_error_text,
    status_text,
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
