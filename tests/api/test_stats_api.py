"""``GET /containers/{id}/stats`` read by docker-py (``container.stats``) and the docker CLI
(``docker stats``) against ``dockyard daemon``, as their users call them."""

from __future__ import annotations

import json
import re

import docker.errors
import pytest

from tests.api.conftest import Daemon


def test_dockerpy_stats_stream_false(api: Daemon) -> None:
    c = api.client.containers.run("busybox", ["sleep", "600"], name="pystats", detach=True)
    doc = c.stats(stream=False)
    assert doc["name"] == "/pystats" and doc["id"] == c.id
    assert doc["pids_stats"]["current"] == 1
    assert doc["memory_stats"]["usage"] > 0 and doc["memory_stats"]["limit"] > 0
    # stream=false: a previous reading a second before, so CPU % can be computed.
    assert doc["precpu_stats"]["system_cpu_usage"] < doc["cpu_stats"]["system_cpu_usage"]
    assert "eth0" in doc["networks"]


def test_dockerpy_stats_stream_yields_frames_a_second_apart(api: Daemon) -> None:
    c = api.client.containers.run("busybox", ["sleep", "600"], name="pystream", detach=True)
    frames = c.stats(stream=True, decode=True)
    try:
        first, second = next(frames), next(frames)
    finally:
        frames.close()
    assert first["preread"] == "0001-01-01T00:00:00Z"  # the first frame has no previous one
    assert second["preread"] == first["read"]


def test_dockerpy_stats_of_a_missing_container(api: Daemon) -> None:
    with pytest.raises(docker.errors.NotFound) as e:
        api.client.api.stats("nosuch", stream=False)
    assert e.value.explanation == "No such container: nosuch"
    status, message = api.error("GET", "/containers/nosuch/stats?stream=false")
    assert (status, message) == (404, "No such container: nosuch")


def test_docker_cli_stats_no_stream(api: Daemon) -> None:
    api.cli("run", "-d", "--name", "clistats", "busybox", "sleep", "600")
    r = api.docker("stats", "--no-stream", "--format", "{{json .}}", "clistats")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert (row["Container"], row["Name"], row["PIDs"]) == ("clistats", "clistats", "1")
    assert re.fullmatch(r"[\d.]+[KMG]?i?B / [\d.]+[KMG]?i?B", row["MemUsage"])
    # The docker CLI's table over our API is what our own CLI prints, column for column.
    theirs = api.docker("stats", "--no-stream", "clistats").stdout.splitlines()
    ours = api.cli("stats", "--no-stream", "clistats").stdout.splitlines()
    assert re.split(r"\s{2,}", theirs[0]) == re.split(r"\s{2,}", ours[0])
    assert re.split(r"\s{2,}", theirs[1])[:2] == re.split(r"\s{2,}", ours[1])[:2]
    missing = api.docker("stats", "--no-stream", "nosuch")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        "Error response from daemon: No such container: nosuch",
    )
