"""What clients send and read, through ``dockyard daemon``: the create body's fields honoured
(and Docker's errors for bad ones), and ``docker images`` of images with several tags, with
reference filters, beside the reference Docker where it runs."""

from __future__ import annotations

import json
import socket
import subprocess

import docker
import pytest
from docker.types import Healthcheck, LogConfig, Mount

from tests.api.conftest import Daemon, Reference
from tests.conftest import CLI
from tests.helpers import reference_docker

# ---------------------------------------------------------------- docker images


def _image_rows(run: object, prefix: str) -> dict[str, list[str]]:
    """`docker images` as a user reads it, for images under ``prefix``."""

    def out(*args: str) -> list[str]:
        r = run(*args)  # type: ignore[operator]
        assert r.returncode == 0, r.stderr
        return [ln for ln in r.stdout.splitlines() if ln]

    fmt = ["--format", "{{.Repository}}:{{.Tag}}"]
    return {
        "all": sorted(x for x in out("images", *fmt) if x.startswith(prefix)),
        "quiet": out("images", "-q", f"{prefix}*/*"),
        "repo": sorted(out("images", *fmt, f"{prefix}a/b")),
        "repo:tag": out("images", *fmt, f"{prefix}a/b:1"),
        "filter": sorted(out("images", *fmt, "--filter", f"reference={prefix}a/*")),
        "two filters": sorted(
            out(
                "images", *fmt, "--filter", f"reference={prefix}a/b", "--filter",
                f"reference={prefix}c/*:2",
            )
        ),
        "nothing": out("images", *fmt, f"{prefix}zz"),
    }  # fmt: skip


def _tag_three(run: object, prefix: str) -> None:
    for tag in (f"{prefix}a/b:1", f"{prefix}a/b:2", f"{prefix}c/d:2"):
        r = run("tag", "busybox", tag)  # type: ignore[operator]
        assert r.returncode == 0, r.stderr


def test_images_of_several_tags(api: Daemon) -> None:
    prefix = "dyimg"
    _tag_three(api.docker, prefix)
    try:
        ours = _image_rows(api.docker, prefix)
        assert ours == {
            "all": [f"{prefix}a/b:1", f"{prefix}a/b:2", f"{prefix}c/d:2"],
            "quiet": [ours["quiet"][0]] * 3,  # one row per tag, as Docker's -q prints
            "repo": [f"{prefix}a/b:1", f"{prefix}a/b:2"],
            "repo:tag": [f"{prefix}a/b:1"],
            "filter": [f"{prefix}a/b:1", f"{prefix}a/b:2"],
            "two filters": [f"{prefix}a/b:1", f"{prefix}a/b:2", f"{prefix}c/d:2"],
            "nothing": [],
        }
        # One API entry for the image, its tags narrowed by the filter
        entries = api.client.api.images(filters={"reference": f"{prefix}c/*"})
        assert [e["RepoTags"] for e in entries] == [[f"{prefix}c/d:2"]]
        if reference_docker():
            ref = Reference("/usr/bin/docker")
            _tag_three(ref, prefix)
            try:
                theirs = _image_rows(ref, prefix)
                ours["quiet"] = theirs["quiet"] = [len(ours["quiet"])]  # IDs differ
                assert ours == theirs
            finally:
                ref("rmi", f"{prefix}a/b:1", f"{prefix}a/b:2", f"{prefix}c/d:2")
    finally:
        api.docker("rmi", f"{prefix}a/b:1", f"{prefix}a/b:2", f"{prefix}c/d:2")


def test_image_prune_all_removes_images_of_several_tags(bb: CLI) -> None:
    bb("tag", "busybox", "x/y:1")
    bb("tag", "busybox", "x/z:2")
    r = bb("image", "prune", "-a", "-f")
    assert r.stdout.splitlines()[:4] == [
        "Deleted Images:",
        "untagged: busybox:latest",
        "untagged: x/y:1",
        "untagged: x/z:2",
    ]
    assert bb("images", "-q").stdout == ""
    # ...but not while a container uses it
    bb("image", "bootstrap", "busybox")
    bb("tag", "busybox", "x/y:1")
    bb("create", "--name", "user", "busybox")
    bb("image", "prune", "-a", "-f")
    assert sorted(bb("images", "--format", "{{.Repository}}").stdout.split()) == ["busybox", "x/y"]
    bb("rm", "user")


# ---------------------------------------------------------------- create bodies


def _run(client: docker.DockerClient, cmd: str, **kw: object) -> str:
    out = client.containers.run("busybox", ["sh", "-c", cmd], remove=True, **kw)
    return out.decode()  # type: ignore[no-any-return,union-attr]


def test_namespaces_mac_and_env(api: Daemon) -> None:
    c = api.client
    assert _run(c, "hostname", uts_mode="host").strip() == socket.gethostname()
    # the host's PID namespace: our own pid is not 1, and the host's init is visible
    assert _run(c, "echo $$; cat /proc/1/comm", pid_mode="host").split()[0] != "1"
    assert _run(c, "echo $$").strip() == "1"
    other = c.containers.run("busybox", ["sleep", "300"], detach=True, name="pidpeer")
    try:
        assert "sleep 300" in _run(c, "ps -o args", pid_mode="container:pidpeer")
    finally:
        other.remove(force=True)
    # cgroupns private: the container sees itself at its cgroup root
    lines = _run(c, "cat /proc/self/cgroup", cgroupns="private").splitlines()
    assert lines and all(ln.endswith(":/") for ln in lines)
    out = _run(c, "cat /sys/class/net/eth0/address", mac_address="02:42:ac:11:00:99")
    assert out.strip() == "02:42:ac:11:00:99"
    # a bare NAME unsets it (PATH too: then the command is not found, as in Docker)
    out = _run(c, "env | grep ^HOSTNAME= || echo unset $FOO", environment=["FOO=1", "HOSTNAME"])
    assert out.strip() == "unset 1"
    with pytest.raises(docker.errors.APIError, match="executable file not found"):
        c.containers.run("busybox", ["true"], environment=["PATH"], auto_remove=True)
    assert api.container_rows() == []


def test_mounts_volumes_from_logging_health(api: Daemon) -> None:
    c = api.client
    mounts = [Mount("/data", "dyclientvol", type="volume"), Mount("/scratch", None, type="tmpfs")]
    _run(c, "echo kept > /data/x; mount | grep -q ' /scratch type tmpfs'", mounts=mounts)
    src = c.containers.create("busybox", ["true"], volumes=["/shared"], name="volsrc")
    try:
        c.containers.run("busybox", ["sh", "-c", "echo via-from > /shared/f"],
                         volumes_from=["volsrc"], remove=True)  # fmt: skip
        assert _run(c, "cat /data/x /shared/f", mounts=mounts[:1], volumes_from=["volsrc"]) == (
            "kept\nvia-from\n"
        )
        ctr = c.containers.create(
            "busybox",
            ["true"],
            log_config=LogConfig(type="json-file", config={"max-size": "1m"}),
            healthcheck=Healthcheck(test=["CMD", "true"], interval=2_000_000_000),
            restart_policy={"Name": "no"},
        )
        info = c.api.inspect_container(ctr.id)
        assert info["HostConfig"]["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-size": "1m"},
        }
        assert info["Config"]["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 2000000000}
        assert info["HostConfig"]["RestartPolicy"] == {"Name": "no", "MaximumRetryCount": 0}
        ctr.remove()
        bare = c.api.create_container("busybox", ["true"])  # docker-py sends no policy
        info = c.api.inspect_container(bare["Id"])
        assert info["HostConfig"]["RestartPolicy"] == {"Name": "", "MaximumRetryCount": 0}
        c.api.remove_container(bare["Id"])
    finally:
        src.remove(v=True)
        c.volumes.get("dyclientvol").remove()
    assert api.container_rows() == []


@pytest.mark.parametrize(
    ("body", "message", "docker_too"),
    [
        ({"HostConfig": {"CgroupnsMode": "bogus"}}, "invalid cgroup namespace mode: bogus", True),
        ({"Hostname": "h", "HostConfig": {"UTSMode": "host"}},
         "conflicting options: hostname and the UTS mode", True),
        ({"HostConfig": {"PidMode": "container:nosuch"}}, "No such container: nosuch", True),
        # Docker refuses a bad MAC only at start; we at create, in its CLI's words.
        ({"MacAddress": "zz"}, "zz is not a valid mac address", False),
        ({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}},
         "invalid restart policy 'sometimes'", False),
    ],
)  # fmt: skip
def test_bad_create_bodies(
    api: Daemon, body: dict[str, object], message: str, docker_too: bool
) -> None:
    doc = json.dumps({"Image": "busybox", "Cmd": ["true"], **body}).encode()
    status, got = api.error("POST", "/v1.41/containers/create", doc)
    assert got == message
    assert status in (400, 404)
    assert api.container_rows() == []
    if reference_docker() and docker_too:  # Docker refuses them with the same words
        r = subprocess.run(
            ["curl", "-s", "--unix-socket", "/var/run/docker.sock", "-H",
             "Content-Type: application/json", "-d", doc.decode(),
             "http://docker/v1.41/containers/create"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert json.loads(r.stdout) == {"message": message}
