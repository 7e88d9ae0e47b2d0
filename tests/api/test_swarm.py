"""Swarm, services, nodes, tasks, secrets, configs and plugins: answered as a Docker that is
not in a swarm, status and message alike (checked against the reference Docker when it runs
here, which is not in a swarm either)."""

from __future__ import annotations

import json

import docker
import pytest

from tests.api.conftest import Daemon, Reference

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)

# (method, path, body) as clients send them; never init or join: the reference Docker
# would really become a manager.
REQUESTS = [
    ("GET", "/swarm", None),
    ("POST", "/swarm/leave", None),
    ("POST", "/swarm/leave?force=1", None),
    ("GET", "/swarm/unlockkey", None),
    ("POST", "/swarm/unlock", b"{}"),
    ("POST", "/swarm/unlock", None),
    ("POST", "/swarm/update?version=1", b"{}"),
    ("GET", "/services", None),
    ("GET", "/services/x", None),
    ("DELETE", "/services/x", None),
    ("POST", "/services/create", b"{}"),
    ("POST", "/services/create", None),
    ("POST", "/services/x/update?version=1", b"{}"),
    ("GET", "/services/x/logs?stdout=1", None),
    ("GET", "/nodes", None),
    ("GET", "/nodes/x", None),
    ("DELETE", "/nodes/x", None),
    ("POST", "/nodes/x/update?version=1", b"{}"),
    ("GET", "/tasks", None),
    ("GET", "/tasks/x", None),
    ("GET", "/tasks/x/logs?stdout=1", None),
    ("GET", "/secrets", None),
    ("GET", "/secrets/x", None),
    ("DELETE", "/secrets/x", None),
    ("POST", "/secrets/create", b"{}"),
    ("POST", "/secrets/x/update?version=1", b"{}"),
    ("GET", "/configs", None),
    ("GET", "/configs/x", None),
    ("POST", "/configs/create", b"{}"),
    ("GET", "/plugins", None),
    ("GET", "/plugins/x/json", None),
    ("DELETE", "/plugins/x", None),
    ("POST", "/plugins/x/disable", None),
    ("POST", "/plugins/x/push", None),
    ("POST", "/plugins/x/set", b"[]"),
    ("POST", "/plugins/x/upgrade?remote=y", b"[]"),
]


def _answer(status: int, body: bytes) -> tuple[int, object]:
    doc = json.loads(body)
    return status, doc["message"] if isinstance(doc, dict) else doc


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_as_a_docker_outside_a_swarm(
    api: Daemon, reference: Reference, method: str, path: str, body: bytes | None
) -> None:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    ours = api.request(method, f"/v1.41{path}", body, headers)
    theirs = reference.request(method, f"/v1.41{path}", body, headers)
    assert _answer(ours[0], ours[2]) == _answer(theirs[0], theirs[2])


def test_leave_and_inspect_without_the_reference(api: Daemon) -> None:
    """The answers clients test for, also where no reference Docker runs."""
    assert api.error("POST", "/swarm/leave") == (503, "This node is not part of a swarm")
    assert api.error("GET", "/swarm") == (503, NOT_A_MANAGER)
    assert api.error("GET", "/services") == (503, NOT_A_MANAGER)
    assert api.error("POST", "/services/create") == (400, "got EOF while reading request body")
    assert api.error("POST", "/swarm/init", b"{}") == (
        501,
        "swarm mode is not supported by dockyard",
    )
    status, _, body = api.request("GET", "/plugins")
    assert (status, json.loads(body)) == (200, [])


def test_docker_swarm_leave_as_users_see_it(api: Daemon) -> None:
    r = api.docker("swarm", "leave")
    assert r.returncode == 1
    assert r.stderr.strip() == "Error response from daemon: This node is not part of a swarm"
    r = api.docker("node", "ls")
    assert r.returncode == 1
    assert NOT_A_MANAGER in r.stderr
    r = api.docker("info", "--format", "{{.Swarm.LocalNodeState}}")
    assert (r.returncode, r.stdout.strip()) == (0, "inactive")


def test_docker_swarm_leave_matches_docker(api: Daemon, reference: Reference) -> None:
    for args in (["swarm", "leave"], ["swarm", "leave", "--force"], ["service", "ls"]):
        ours, theirs = api.docker(*args), reference.docker(*args)
        assert (ours.returncode, ours.stdout, ours.stderr) == (
            theirs.returncode,
            theirs.stdout,
            theirs.stderr,
        )


def test_docker_py_sees_no_swarm(api: Daemon) -> None:
    """docker-py's clean-up: ``leave(force=True)`` takes the 503 as "not in a swarm" and
    returns; without force the 503 is an APIError that says so."""
    assert api.client.swarm.leave(force=True) is True
    with pytest.raises(docker.errors.APIError) as err:
        api.client.swarm.leave()
    assert err.value.status_code == 503
    assert "This node is not part of a swarm" in str(err.value)
    assert api.client.plugins.list() == []
