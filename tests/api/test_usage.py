"""``docker system df`` and the prunes of every kind through the daemon, by the docker CLIs
and docker-py, beside the reference Docker (which other people use too: there every prune
is confined by a label filter to what the test made)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import DOCKER_20, Daemon, Reference

Docker = Callable[..., subprocess.CompletedProcess[str]]


def _q(filters: dict[str, list[str]]) -> str:
    """A filters map as a query value."""
    return quote(json.dumps(filters))


def _df_shape(docker_cli: Docker, *args: str) -> tuple[list[str], list[str]]:
    r = docker_cli("system", "df", *args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # The first words of each line: headers and row kinds, not the sizes.
    return [line.split("  ")[0] for line in lines if line], [r.stderr]


@pytest.mark.parametrize("binary", [None, DOCKER_20])
def test_docker_system_df_as_docker(api: Daemon, reference: Reference, binary: str | None) -> None:
    def ours(*a: str) -> subprocess.CompletedProcess[str]:
        return api.docker(*a, binary=binary)

    def theirs(*a: str) -> subprocess.CompletedProcess[str]:
        return reference.docker(*a, binary=binary)

    assert _df_shape(ours) == _df_shape(theirs)
    verbose = [x for x in _df_shape(ours, "-v")[0] if x.isupper() or x.endswith(":")]
    their_verbose = [x for x in _df_shape(theirs, "-v")[0] if x.isupper() or x.endswith(":")]
    assert verbose == their_verbose


def test_system_df_counts(api: Daemon) -> None:
    api.client.images.prune()  # what earlier tests' failed builds left, as Docker leaves it
    api.client.containers.run("busybox", "sh -c 'echo 12345 > /f; sleep 300'", detach=True)
    api.client.volumes.create("df-vol")
    try:
        r = api.docker("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")
        assert r.stdout.splitlines() == [
            "Images 1 1",
            "Containers 1 1",
            "Local Volumes 1 0",
            "Build Cache 0 0",
        ]
        df = api.client.df()
        assert set(df) == {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"}
        assert df["Images"][0]["Containers"] == 1
        assert df["Containers"][0]["SizeRw"] >= 6
        assert df["Volumes"][0]["UsageData"] == {"Size": 0, "RefCount": 0}
        status, _, body = api.request("GET", "/system/df?type=volume")
        doc = json.loads(body)
        assert (status, doc["Images"], doc["Containers"]) == (200, None, None)
        assert [v["Name"] for v in doc["Volumes"]] == ["df-vol"]
        assert api.error("GET", "/system/df?type=bogus") == (400, "unknown object type: bogus")
    finally:
        api.cli("volume", "rm", "-f", "df-vol", check=False)


# ---------------------------------------------------------------- prune


def _prune_session(docker_cli: Docker, prefix: str) -> list[Any]:
    """One of each kind made, labelled; pruned by the label; what each prune printed."""
    label = f"{prefix}=1"
    seen: list[Any] = []

    def step(*args: str) -> None:
        r = docker_cli(*args)
        out = r.stdout
        for word in out.split():
            if len(word) == 64 or word.startswith("sha256:"):
                out = out.replace(word, "ID")
        seen.append((args[:2], r.returncode, out, r.stderr))

    docker_cli("create", "--label", label, "--name", f"{prefix}-stopped", "busybox")
    docker_cli("volume", "create", "--label", label, f"{prefix}-vol")
    docker_cli("network", "create", "--label", label, f"{prefix}-net")
    step("container", "prune", "-f", "--filter", f"label={prefix}")
    step("container", "prune", "-f", "--filter", f"label={prefix}")
    step("volume", "prune", "-f", "--filter", f"label={prefix}")
    step("network", "prune", "-f", "--filter", f"label={prefix}")
    step("image", "prune", "-f", "--filter", f"label={prefix}")
    step("builder", "prune", "-f", "--filter", "until=87600h")
    step("container", "prune", "-f", "--filter", "bogus=1")
    step("image", "prune", "-f", "--filter", "until=nonsense")
    seen.append(docker_cli("ps", "-a", "--filter", f"name={prefix}", "-q").stdout)
    return seen


def test_docker_prunes_as_docker(api: Daemon, reference: Reference) -> None:
    """With Docker 20.10's CLI, which speaks 1.41 to both daemons (the newer one would speak
    1.45 to ours and 1.41 to the reference, where volume prune means something else)."""

    def ours(*a: str) -> subprocess.CompletedProcess[str]:
        return api.docker(*a, binary=DOCKER_20)

    def theirs(*a: str) -> subprocess.CompletedProcess[str]:
        return reference.docker(*a, binary=DOCKER_20)

    # Docker 20.10 answers a bad "until" with a 500 where we answer 400: same words.
    assert _prune_session(ours, reference.prefix) == _prune_session(theirs, reference.prefix)


def test_newest_cli_volume_prune(api: Daemon) -> None:
    """At 1.42+ a volume prune takes anonymous volumes, and named ones with ``-a``."""
    api.client.volumes.create("named-vol")
    anon = api.client.containers.create("busybox", volumes=["/data"])
    anon_name = anon.attrs["Mounts"][0]["Name"]
    anon.remove()
    try:
        r = api.docker("volume", "prune", "-f")
        assert r.stdout.split()[:3] == ["Deleted", "Volumes:", anon_name], r.stderr
        r = api.docker("volume", "prune", "-af")
        assert r.stdout.split()[:3] == ["Deleted", "Volumes:", "named-vol"], r.stderr
    finally:
        api.cli("volume", "rm", "-f", "named-vol", check=False)


def test_prune_filters(api: Daemon) -> None:
    c = api.client
    keep = c.containers.create("busybox", labels={"keep": "yes"})
    other = c.containers.create("busybox", labels={"keep": "no"})
    plain = c.containers.create("busybox")
    got = c.containers.prune(filters={"label!": ["keep=yes"]})
    assert sorted(got["ContainersDeleted"]) == sorted([other.id, plain.id])
    assert c.containers.prune(filters={"until": ["2000-01-01T00:00:00Z"]}) == {
        "ContainersDeleted": None,
        "SpaceReclaimed": 0,
    }
    got = c.containers.prune(filters={"until": ["0s"], "label": ["keep"]})
    assert got["ContainersDeleted"] == [keep.id]

    c.volumes.create("lbl-a", labels={"team": "a"})
    c.volumes.create("lbl-b", labels={"team": "b"})
    got = c.volumes.prune(filters={"label": ["team=a"], "all": ["true"]})
    assert got["VolumesDeleted"] == ["lbl-a"]
    assert c.volumes.prune(filters={"all": ["1"]})["VolumesDeleted"] == ["lbl-b"]

    c.networks.create("net-old", labels={"gen": "1"})
    c.networks.create("net-new")
    assert c.networks.prune(filters={"label": ["gen"]}) == {"NetworksDeleted": ["net-old"]}
    assert c.networks.prune() == {"NetworksDeleted": ["net-new"]}

    c.images.prune()  # what earlier tests' failed builds left, as Docker leaves it
    assert c.images.prune() == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    c.api.prune_builds()  # the cache of earlier tests' builds
    assert c.api.prune_builds() == {"CachesDeleted": None, "SpaceReclaimed": 0}


def test_image_prune_all_and_by_label(api: Daemon) -> None:
    """``dangling=false`` is ``prune -a``: every image no container uses (busybox is kept by
    a container here), unless a label filter protects it."""
    user = api.client.containers.create("busybox")
    made = user.commit("prune-me", "1", changes=["LABEL tier=test"])
    try:
        url = "/images/prune?filters="
        status, _, body = api.request(
            "POST", url + _q({"dangling": ["false"], "label!": ["tier=test"]})
        )
        assert (status, json.loads(body)["ImagesDeleted"]) == (200, None)
        status, _, body = api.request("POST", url + _q({"dangling": ["false"]}))
        deleted = json.loads(body)["ImagesDeleted"]
        assert deleted[:2] == [{"Untagged": "prune-me:1"}, {"Deleted": made.id}]
        assert api.client.images.get("busybox")
    finally:
        api.cli("rmi", "-f", "prune-me:1", check=False)


@pytest.mark.parametrize(
    ("path", "filters", "message"),
    [
        ("/containers/prune", {"bogus": ["x"]}, "Invalid filter 'bogus'"),
        ("/images/prune", {"bogus": ["x"]}, "Invalid filter 'bogus'"),
        ("/volumes/prune", {"until": ["1h"]}, "Invalid filter 'until'"),
        ("/networks/prune", {"dangling": ["1"]}, "Invalid filter 'dangling'"),
        ("/build/prune", {"bogus": ["x"]}, "failed to prune build cache: Invalid filter 'bogus'"),
        ("/images/prune", {"until": ["xx"]}, 'failed to parse value as time or duration: "xx"'),
        ("/images/prune", {"dangling": ["maybe"]}, "Invalid filter 'dangling=maybe'"),
    ],
)
def test_prune_bad_filters_remove_nothing(
    api: Daemon, path: str, filters: dict[str, list[str]], message: str
) -> None:
    victim = api.client.containers.create("busybox")
    api.client.volumes.create("kept-vol")
    try:
        status, msg = api.error("POST", f"{path}?filters={_q(filters)}")
        assert (status, msg) == (400, message)
        assert api.client.containers.get(victim.id)
        assert api.client.volumes.get("kept-vol")
    finally:
        api.cli("volume", "rm", "-f", "kept-vol", check=False)
    assert api.error("POST", "/containers/prune?filters={bad")[0] == 400


def test_cli_prune_filters_are_the_same(bb: object) -> None:
    """``dockyard container prune --filter`` reads the same filters as the daemon."""
    from tests.conftest import CLI

    assert isinstance(bb, CLI)
    bb("create", "--name", "kept", "--label", "keep=1", "busybox")
    bb("create", "--name", "gone", "busybox")
    r = bb("container", "prune", "-f", "--filter", "label!=keep")
    assert "Deleted Containers:" in r.stdout
    assert bb("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["kept"]
    r = bb("container", "prune", "-f", "--filter", "bogus=1", check=False)
    assert (r.returncode, r.stderr) == (125, "Error: Invalid filter 'bogus'\n")
