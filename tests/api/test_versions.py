"""API versions: /v1.24 ... /v1.45 and unversioned paths, Api-Version 1.45, what newer and
older clients negotiate, and the per-version answers clients depend on."""

from __future__ import annotations

import json

import docker
import pytest

from tests.api.conftest import DOCKER_20, Daemon


@pytest.mark.parametrize("prefix", ["", "/v1.24", "/v1.41", "/v1.44", "/v1.45"])
def test_every_served_version_answers(api: Daemon, prefix: str) -> None:
    status, headers, body = api.request("GET", f"{prefix}/version")
    assert status == 200
    assert headers["api-version"] == "1.45"
    doc = json.loads(body)
    assert (doc["ApiVersion"], doc["MinAPIVersion"]) == ("1.45", "1.24")


def test_versions_out_of_range(api: Daemon) -> None:
    assert api.error("GET", "/v1.46/version") == (
        400,
        "client version 1.46 is too new. Maximum supported API version is 1.45",
    )
    assert api.error("GET", "/v1.23/containers/json") == (
        400,
        "client version 1.23 is too old. Minimum supported API version is 1.24, please "
        "upgrade your client to a newer version",
    )
    assert api.error("GET", "/vx.y/version") == (404, "page not found")


def test_ping_carries_the_version(api: Daemon) -> None:
    for method in ("GET", "HEAD"):
        status, headers, _ = api.request(method, "/_ping")
        assert (status, headers["api-version"]) == (200, "1.45")
        assert headers["cache-control"] == "no-cache, no-store, must-revalidate"


def test_newest_cli_negotiates_1_45(api: Daemon) -> None:
    """docker 28's CLI speaks up to 1.50: it settles on the server's 1.45."""
    r = api.docker("version", "--format", "{{.Client.APIVersion}} {{.Server.APIVersion}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1.45", "1.45"]
    r = api.docker("run", "--rm", "busybox", "echo", "at 1.45")
    assert (r.returncode, r.stdout) == (0, "at 1.45\n"), r.stderr


def test_debian_cli_stays_at_1_41(api: Daemon) -> None:
    """Docker 20.10's CLI pins 1.41 and works against the newer server."""
    r = api.docker("version", "--format", "{{.Client.APIVersion}}", binary=DOCKER_20)
    assert (r.returncode, r.stdout.strip()) == (0, "1.41"), r.stderr
    r = api.docker("run", "--rm", "busybox", "echo", "at 1.41", binary=DOCKER_20)
    assert (r.returncode, r.stdout) == (0, "at 1.41\n"), r.stderr


def test_docker_py_negotiates(api: Daemon) -> None:
    auto = docker.DockerClient(base_url=api.url, version="auto")
    pinned = docker.DockerClient(base_url=api.url, version="1.30")
    try:
        assert auto.api.api_version == "1.45"
        assert auto.version()["ApiVersion"] == "1.45"
        assert pinned.api.api_version == "1.30"
        assert pinned.containers.list(all=True) is not None
    finally:
        auto.close()
        pinned.close()


def test_volume_prune_before_and_after_1_42(api: Daemon) -> None:
    """Before 1.42 a volume prune took named volumes too; since, only anonymous ones
    unless the ``all`` filter says so."""
    for name in ("named-a", "named-b"):
        api.client.volumes.create(name)
    try:
        status, _, body = api.request("POST", "/v1.45/volumes/prune")
        assert (status, json.loads(body)["VolumesDeleted"]) == (200, [])
        status, _, body = api.request("POST", "/v1.41/volumes/prune")
        assert sorted(json.loads(body)["VolumesDeleted"]) == ["named-a", "named-b"]
    finally:
        for name in ("named-a", "named-b"):
            api.cli("volume", "rm", "-f", name, check=False)


def test_virtual_size_leaves_at_1_44(api: Daemon) -> None:
    old = json.loads(api.request("GET", "/v1.43/system/df")[2])
    new = json.loads(api.request("GET", "/v1.44/system/df")[2])
    assert "VirtualSize" in old["Images"][0]
    assert "VirtualSize" not in new["Images"][0]
    assert "BuilderSize" in json.loads(api.request("GET", "/v1.41/system/df")[2])
    assert "BuilderSize" not in new
