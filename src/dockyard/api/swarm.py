"""Routes: swarm, services, nodes, tasks, secrets, configs and plugins, answered as a Docker
that is not in a swarm (and has no plugin installed) answers them.

dockyard has no swarm mode, so it is always such a Docker. Clients test for these answers:
docker-py's and testcontainers' clean-up code calls ``POST /swarm/leave`` and expects 503
"This node is not part of a swarm"; ``docker info``, ``docker node ls`` and Compose look at
the 503 "not a swarm manager" text. Routes that take a body decode it first, as moby's
handlers do, so an empty or broken body is a 400 before the 503.
"""

from __future__ import annotations

from typing import Any

from dockyard.api.http import Call, Reply, Router
from dockyard.errors import DockyardError, InvalidArgument, NotFound, Unavailable

routes = Router()

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)
NOT_IN_SWARM = "This node is not part of a swarm"


class NotImplementedHere(DockyardError):
    """A feature this engine does not have (moby's errdefs.NotImplemented: 501)."""

    http_status = 501


def _not_a_manager(call: Call) -> Any:
    raise Unavailable(NOT_A_MANAGER)


def _decode_then_not_a_manager(call: Call) -> Any:
    """moby decodes the spec before asking the cluster: a missing body is Go's decoder
    error (``got EOF while reading request body``), bad JSON its message."""
    if not call.body().strip():
        raise InvalidArgument("got EOF while reading request body")
    call.json()
    raise Unavailable(NOT_A_MANAGER)


def _logs(call: Call) -> Any:
    if not (call.flag("stdout") or call.flag("stderr")):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    raise Unavailable(NOT_A_MANAGER)


_MANAGER_ONLY = [
    ("GET", "/swarm"),
    ("GET", "/swarm/unlockkey"),
    ("GET", "/services"),
    ("GET|DELETE", "/services/{id}"),
    ("GET", "/nodes"),
    ("GET|DELETE", "/nodes/{id}"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("GET", "/secrets"),
    ("GET|DELETE", "/secrets/{id}"),
    ("GET", "/configs"),
    ("GET|DELETE", "/configs/{id}"),
]
_WITH_BODY = [
    "/swarm/unlock",
    "/swarm/update",
    "/services/create",
    "/services/{id}/update",
    "/nodes/{id}/update",
    "/secrets/create",
    "/secrets/{id}/update",
    "/configs/create",
    "/configs/{id}/update",
]
for _methods, _path in _MANAGER_ONLY:
    routes.add(_methods, _path, _not_a_manager)
for _path in _WITH_BODY:
    routes.add("POST", _path, _decode_then_not_a_manager)
routes.add("GET", "/services/{id}/logs", _logs)
routes.add("GET", "/tasks/{id}/logs", _logs)


@routes.route("POST", "/swarm/leave")
def swarm_leave(call: Call) -> Any:
    raise Unavailable(NOT_IN_SWARM)


@routes.route("POST", "/swarm/init")
@routes.route("POST", "/swarm/join")
def swarm_init(call: Call) -> Any:
    raise NotImplementedHere("swarm mode is not supported by dockyard")


# ---------------------------------------------------------------- plugins (none installed)


@routes.route("GET", "/plugins")
def plugin_list(call: Call) -> list[Any]:
    call.filters()  # a malformed filter is still a 400
    return []


def _plugin_not_found(call: Call) -> Any:
    raise NotFound(f'plugin "{call.params["name"]}" not found')


for _methods, _path in [
    ("GET", "/plugins/{name*}/json"),
    ("POST", "/plugins/{name*}/enable"),
    ("POST", "/plugins/{name*}/disable"),
    ("POST", "/plugins/{name*}/push"),
    ("POST", "/plugins/{name*}/set"),
    ("DELETE", "/plugins/{name*}"),
]:
    routes.add(_methods, _path, _plugin_not_found)


@routes.route("POST", "/plugins/{name*}/upgrade")
def plugin_upgrade(call: Call) -> Reply:
    name = call.params["name"]
    if ":" not in name.rsplit("/", 1)[-1] and "@" not in name:
        name += ":latest"  # the reference is normalised first, as in moby
    raise NotFound(f'plugin "{name}" not found')


@routes.route("GET", "/plugins/privileges")
@routes.route("POST", "/plugins/pull")
@routes.route("POST", "/plugins/create")
def plugin_install(call: Call) -> Any:
    raise NotImplementedHere("plugins are not supported by dockyard")
