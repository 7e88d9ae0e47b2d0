"""``docker network connect|disconnect`` and the network create/inspect options clients send,
through the daemon, beside the reference Docker."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from typing import Any

import docker
import pytest

from tests.api.conftest import Daemon, Reference

Docker = Callable[..., subprocess.CompletedProcess[str]]
# Static addresses need a --subnet: ours and the reference's, away from the pools tests and
# other people's reference networks use (10.213.0.0/16, Docker's 172.x).
OURS_NET = f"10.216.{os.getpid() % 250}."
THEIRS_NET = f"10.217.{os.getpid() % 250}."


def _connect_session(docker_cli: Docker, prefix: str) -> list[Any]:
    net, ctr = f"{prefix}-net", f"{prefix}-ctr"
    seen: list[Any] = []

    def step(*args: str) -> None:
        r = docker_cli(*args)
        err = re.sub(r"\b[0-9a-f]{64}\b", "ID", r.stderr)
        seen.append((args[:2], r.returncode, r.stdout if args[1] != "create" else "", err))

    step("network", "create", "--subnet", f"{OURS_NET}0/24", "--label", "k=v", net)
    docker_cli("run", "-d", "--name", ctr, "busybox", "sleep", "300")
    step("network", "connect", "--alias", "web", "--ip", f"{OURS_NET}10", net, ctr)
    step("network", "connect", net, ctr)
    step("network", "connect", net, "nosuchcontainer")
    step("network", "connect", "nosuchnet", ctr)
    fmt = f'{{{{json (index .NetworkSettings.Networks "{net}").Aliases}}}}'
    aliases = json.loads(docker_cli("inspect", "--format", fmt, ctr).stdout)
    seen.append(sorted(a for a in aliases if len(a) != 12))  # Docker adds the short ID
    fmt = f'{{{{(index .NetworkSettings.Networks "{net}").IPAddress}}}}'
    seen.append(docker_cli("inspect", "--format", fmt, ctr).stdout)
    seen.append(docker_cli("exec", ctr, "ip", "-4", "-o", "addr", "show").stdout.count("inet "))
    step("network", "disconnect", net, ctr)
    step("network", "disconnect", net, ctr)
    step("network", "disconnect", "-f", net, ctr)
    step("network", "rm", net)
    return seen


def test_connect_disconnect_as_docker(api: Daemon, reference: Reference) -> None:
    """The same steps; each daemon's network has its own subnet (both hosts' routes)."""
    ours = _connect_session(api.docker, reference.prefix)

    def theirs(*args: str) -> subprocess.CompletedProcess[str]:
        args = tuple(a.replace(OURS_NET, THEIRS_NET) for a in args)
        return reference.docker(*args)

    got = _connect_session(theirs, reference.prefix)
    got[6] = str(got[6]).replace(THEIRS_NET, OURS_NET)
    assert ours == got


def test_connect_alone(api: Daemon) -> None:
    seen = _connect_session(api.docker, "conn")
    assert seen[0][1] == 0 and seen[1][1] == 0
    assert seen[2][3] == (
        "Error response from daemon: endpoint with name conn-ctr already exists in network "
        "conn-net\n"
    )
    assert seen[5] == ["conn-ctr", "web"] or seen[5] == ["web"]
    assert seen[6] == f"{OURS_NET}10\n"
    assert seen[7] == 3  # lo, eth0 (bridge), eth1 (the new network)


def test_docker_py_connect(api: Daemon) -> None:
    net = api.client.networks.create("pynet", labels={"a": "b"})
    c = api.client.containers.run("busybox", "sleep 300", detach=True)
    try:
        net.connect(c, aliases=["db"])
        net.reload()
        assert [x.id for x in net.containers] == [c.id]
        c.reload()
        assert "db" in c.attrs["NetworkSettings"]["Networks"]["pynet"]["Aliases"]
        net.disconnect(c, force=True)
        c.reload()
        assert "pynet" not in c.attrs["NetworkSettings"]["Networks"]
        with pytest.raises(docker.errors.NotFound):
            net.connect("nosuch")
    finally:
        c.remove(force=True)
        net.remove()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, 'invalid name or ID supplied: ""'),
        (
            {"Container": 5},
            400,
            "json: cannot unmarshal number into Go struct field NetworkConnect.Container of "
            "type string",
        ),
        (
            {"Container": "x", "EndpointConfig": {"Aliases": "x"}},
            400,
            "json: cannot unmarshal string into Go struct field "
            "EndpointSettings.EndpointConfig.Aliases of type []string",
        ),
        ({"Container": "nosuch"}, 404, "No such container: nosuch"),
    ],
)
def test_connect_bad_bodies(
    api: Daemon, body: dict[str, object], status: int, message: str
) -> None:
    api.client.networks.create("badbody")
    try:
        raw = json.dumps(body).encode()
        assert api.error("POST", "/networks/badbody/connect", raw) == (status, message)
        assert api.client.networks.get("badbody").attrs["Containers"] == {}
    finally:
        api.cli("network", "rm", "badbody", check=False)
    assert api.error("POST", "/networks/badbody/connect", b"{bad")[0] == 400


def test_connect_bad_bodies_as_docker(api: Daemon, reference: Reference) -> None:
    name = f"{reference.prefix}-bb"
    api.client.networks.create(name)
    reference.docker("network", "create", name)
    try:
        for body in (b"{}", b'{"Container": 5}', b'{"Container":"nosuch"}'):
            url = f"/v1.41/networks/{name}/connect"
            json_type = {"Content-Type": "application/json"}
            ours = api.request("POST", url, body, json_type)
            theirs = reference.request("POST", url, body, json_type)
            assert (ours[0], json.loads(ours[2])) == (theirs[0], json.loads(theirs[2]))
    finally:
        api.cli("network", "rm", name, check=False)


# ---------------------------------------------------------------- create and inspect


def test_create_options_as_clients_send_them(api: Daemon) -> None:
    """What Compose sends for a project's default network: inspect must show the options
    given and no others (Compose recreates a network whose options changed)."""
    body = {
        "Name": "proj_default",
        "CheckDuplicate": True,
        "Driver": "bridge",
        "Internal": False,
        "Attachable": True,
        "Ingress": False,
        "IPAM": {"Driver": "default", "Config": []},
        "EnableIPv6": False,
        "Options": {},
        "Labels": {"com.docker.compose.network": "default", "com.docker.compose.project": "proj"},
    }
    status, _, data = api.request(
        "POST", "/networks/create", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    assert status == 201, data
    try:
        got = api.client.networks.get("proj_default").attrs
        assert got["Options"] == {}
        assert got["Attachable"] is True
        assert got["Labels"] == body["Labels"]
        status, _, _ = api.request("GET", "/networks/proj_default?verbose=false&scope=local")
        assert status == 200
        assert api.request("GET", "/networks/proj_default?scope=swarm")[0] == 404
    finally:
        api.cli("network", "rm", "proj_default", check=False)


def test_bridge_name_option(api: Daemon, reference: Reference) -> None:
    device = f"dyt{os.getpid() % 100000}o"
    name = f"{reference.prefix}-opt"
    args = ["network", "create", "-o", "com.docker.network.driver.mtu=1400", "--label", "x=y"]
    ours = api.docker(*args, "-o", f"com.docker.network.bridge.name={device}", name)
    theirs = reference.docker(*args, "-o", f"com.docker.network.bridge.name={device}r", name)
    assert ours.returncode == theirs.returncode == 0, ours.stderr + theirs.stderr
    fmt = "{{json .Options}} {{json .Labels}} {{.Driver}} {{.Attachable}}"
    ours_seen = api.docker("network", "inspect", "--format", fmt, name).stdout
    theirs_seen = reference.docker("network", "inspect", "--format", fmt, name).stdout
    assert ours_seen == theirs_seen.replace(f"{device}r", device)
    assert os.path.exists(f"/sys/class/net/{device}")
    api.docker("network", "rm", name)
    assert not os.path.exists(f"/sys/class/net/{device}")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"Name": "n6", "EnableIPv6": True}, 400, "IPv6 networks are not supported"),
        ({"Name": "nd", "Driver": "overlay"}, 400, "network driver 'overlay' is not supported"),
        ({"Name": "ni", "Ingress": True}, 400, "swarm-scoped networks need swarm mode"),
        ({"Name": "nl", "Labels": {"a": 1}}, 400, "json: cannot unmarshal"),
        ({"Name": "nb", "Options": {"com.docker.network.bridge.name": "docker0"}}, 409, "bridge"),
        (
            {"Name": "nc", "IPAM": {"Config": [{"Subnet": "10.1.0.0/24"}, {"Subnet": "x"}]}},
            400,
            "only one IPAM config",
        ),
        ({"Name": 5}, 400, "json: cannot unmarshal number into Go struct field"),
    ],
)
def test_create_refusals_leave_nothing(
    api: Daemon, body: dict[str, object], status: int, message: str
) -> None:
    before = [n.name for n in api.client.networks.list()]
    got = api.error("POST", "/networks/create", json.dumps(body).encode())
    assert got[0] == status and got[1].startswith(message), got
    assert [n.name for n in api.client.networks.list()] == before
