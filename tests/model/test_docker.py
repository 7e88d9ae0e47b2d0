"""Docker's JSON <-> the model: the create bodies real clients send, Docker's 400s for bodies
of the wrong shape, and inspect documents with the keys Docker 20.10 shows."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.container import Container, Mount, PortBinding
from dockyard.model.docker import inspect_shape, spec_from_body

# What docker-py 7 sends for
#   client.containers.create("busybox", "sleep 9", name="web", ports={"80/tcp": 8080},
#       volumes={"/srv": {"bind": "/data", "mode": "ro"}}, environment={"A": "1"},
#       mem_limit="64m", restart_policy={"Name": "no"}, tmpfs={"/run": "size=1m"})
DOCKER_PY_BODY = {
    "Hostname": None,
    "Domainname": None,
    "ExposedPorts": {"80/tcp": {}},
    "User": None,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "Env": ["A=1"],
    "Cmd": ["sleep", "9"],
    "Image": "busybox",
    "Volumes": {"/data": {}},
    "NetworkDisabled": False,
    "Entrypoint": None,
    "WorkingDir": None,
    "HostConfig": {
        "NetworkMode": "default",
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
        "Binds": ["/srv:/data:ro"],
        "Memory": 67108864,
        "RestartPolicy": {"Name": "no"},
        "Tmpfs": {"/run": "size=1m"},
    },
    "NetworkingConfig": None,
}


def test_a_docker_py_body_becomes_values() -> None:
    spec = spec_from_body(DOCKER_PY_BODY, "web")
    assert spec.name == "web" and spec.cmd == ("sleep", "9") and spec.env == ("A=1",)
    assert spec.ports == (PortBinding(80, "tcp", "", "8080"),)
    assert spec.resources.memory == 64 << 20
    bind, tmp = spec.mounts
    assert bind == Mount("bind", "/data", "/srv", True, origin="bind", mode="ro",
                         propagation="rprivate")  # fmt: skip
    assert (tmp.type, tmp.target, tmp.tmpfs_size, tmp.mode) == ("tmpfs", "/run", 1 << 20, "size=1m")
    # Config.Volumes names the bind's target too: no anonymous volume for it.
    assert [m.target for m in spec.mounts] == ["/data", "/run"]


def test_what_goes_in_comes_out_in_inspect() -> None:
    spec = spec_from_body(DOCKER_PY_BODY, "web")
    c = Container("f" * 64, "web", "2026-12-04T00:00:00Z", "sha256:abc", spec)
    doc = inspect_shape(c, container_dir="/c", volume_source=lambda n: f"/v/{n}")
    hc = doc["HostConfig"]
    assert hc["Binds"] == ["/srv:/data:ro"] and hc["Tmpfs"] == {"/run": "size=1m"}
    assert hc["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert hc["Memory"] == 64 << 20 and hc["LogConfig"] == {"Type": "json-file", "Config": {}}
    assert doc["Config"]["Env"] == ["A=1"] and doc["Name"] == "/web"
    assert doc["Mounts"] == [
        {
            "Type": "bind",
            "Source": "/srv",
            "Destination": "/data",
            "Mode": "ro",
            "RW": False,
            "Propagation": "rprivate",
        }
    ]
    assert doc["LogPath"] == "/c/" + "f" * 64 + "-json.log"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Config cannot be empty in order to create a container"),
        ({"Image": "b", "Env": "A=1"}, "cannot unmarshal string into Go struct field Config.Env"),
        (
            {"Image": "b", "HostConfig": {"Memory": "64m"}},
            "cannot unmarshal string into Go struct field HostConfig.Memory of type int64",
        ),
        ({"Image": "b", "HostConfig": []}, "cannot unmarshal array into Go struct field"),
        ({"Image": "b", "Cmd": [1]}, "cannot unmarshal array into Go struct field Config.Cmd"),
        ({"Image": "b", "HostConfig": {"Binds": ["/a:b"]}}, "mount path must be absolute"),
        (
            {"Image": "b", "HostConfig": {"PortBindings": {"x/tcp": []}}},
            "invalid port specification: 'x/tcp'",
        ),
        (
            {"Image": "b", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "abc"}]}}},
            "invalid hostPort: abc",
        ),
        (
            {"Image": "b", "HostConfig": {"SecurityOpt": ["foo=bar"]}},
            "invalid --security-opt 2: 'foo=bar'",
        ),
        (
            {"Image": "b", "HostConfig": {"Mounts": [{"Type": "tmpfs", "BindOptions": {"a": 1}}]}},
            'invalid mount config for type "tmpfs": field BindOptions must not be specified',
        ),
    ],
)
def test_bodies_of_the_wrong_shape_are_400s(body: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        spec_from_body(body)
    assert message in str(e.value)
