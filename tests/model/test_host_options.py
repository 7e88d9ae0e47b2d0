"""The grammar of devices, device cgroup rules and links (model/devices.py, model/links.py),
what --link puts in the environment (checked against Docker 20.10's output), and the new
HostConfig fields both ways through Docker's JSON and the stored form."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.codec import decode, encode
from dockyard.model.container import Container, Device
from dockyard.model.devices import check_device, parse_cgroup_rule, parse_device
from dockyard.model.docker import host_config_shape, spec_from_body
from dockyard.model.links import link_env, parse_link


@pytest.mark.parametrize(
    ("text", "device"),
    [
        ("/dev/null", Device("/dev/null", "/dev/null", "rwm")),
        ("/dev/null:/dev/x", Device("/dev/null", "/dev/x", "rwm")),
        ("/dev/null:r", Device("/dev/null", "/dev/null", "r")),
        ("/dev/null:/dev/x:rw", Device("/dev/null", "/dev/x", "rw")),
    ],
)
def test_device_grammar(text: str, device: Device) -> None:
    assert parse_device(text) == device


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("null", "null is not an absolute path"),
        ("/dev/null:rr", "rr is not an absolute path"),  # not a mode: a path (Docker's CLI)
        ("/dev/null:/dev/x:rr", "bad mode specified: rr"),
        ("/dev/null:/dev/x:", "bad mode specified: "),
        ("/dev/null::r", " is not an absolute path"),
        ("/dev/null:/dev/x:r:w", "bad format for path: /dev/null:/dev/x:r:w"),
        ("", "bad format for path: "),
    ],
)
def test_bad_devices(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        parse_device(text)
    assert str(e.value) == message


def test_api_devices_get_the_clis_defaults() -> None:
    assert check_device(Device("/dev/null", "", "")) == Device("/dev/null", "/dev/null", "rwm")
    with pytest.raises(InvalidArgument, match="bad mode specified: rx"):
        check_device(Device("/dev/null", "/dev/x", "rx"))


def test_cgroup_rules() -> None:
    assert parse_cgroup_rule("c 1:3 rwm") == ("c", 1, 3, "rwm")
    assert parse_cgroup_rule("b 7:* r") == ("b", 7, None, "r")
    assert parse_cgroup_rule("a *:* rr") == ("a", None, None, "rr")  # Docker's pattern
    for bad in ("a", "c 1:3", "c 1:3 rwmx", "x 1:3 r", "c a:3 r", " c 1:3 r", "c 1:3 "):
        with pytest.raises(InvalidArgument) as e:
            parse_cgroup_rule(bad)
        assert str(e.value) == f"invalid device cgroup format '{bad}'"


def test_link_grammar() -> None:
    assert parse_link("db") == ("db", "db")
    assert parse_link("db:web") == ("db", "web")
    assert parse_link("/db:/parent/web") == ("db", "web")  # inspect's form, read back
    for bad, message in (("a:b:c", "bad format for links: a:b:c"), ("", "empty string")):
        with pytest.raises(InvalidArgument, match=message):
            parse_link(bad)


def merged(env: list[str]) -> list[str]:
    """A list of variables as the runtime merges them: a repeated name keeps its first
    place and takes its last value (runtime/spec.py's _env, runc's, Docker's)."""
    out: dict[str, str] = {}
    for e in env:
        out[e.partition("=")[0]] = e
    return list(out.values())


def test_link_env_is_dockers() -> None:
    """Docker 20.10 for ``--link rng:r`` to a container exposing 8000-8002/tcp, 8001/udp and
    8003/udp (what its container's /proc/1/environ listed, in order)."""
    env = link_env(
        "r",
        "wizardly_shirley",
        "172.17.0.5",
        ["8000/tcp", "8001/tcp", "8002/tcp", "8003/udp", "8001/udp"],
        ["PATH=/usr/bin"],
    )
    ip = "172.17.0.5"
    per_port = []
    for port, proto in (("8001", "tcp"), ("8001", "udp"), ("8002", "tcp"), ("8003", "udp")):
        key = f"R_PORT_{port}_{proto.upper()}"
        per_port += [f"{key}={proto}://{ip}:{port}", f"{key}_ADDR={ip}", f"{key}_PORT={port}"]
        per_port.append(f"{key}_PROTO={proto}")
    assert merged(env) == [
        f"R_PORT=tcp://{ip}:8000",
        f"R_PORT_8000_TCP_START=tcp://{ip}:8000",
        f"R_PORT_8000_TCP_ADDR={ip}",
        "R_PORT_8000_TCP_PROTO=tcp",
        "R_PORT_8000_TCP_PORT_START=8000",
        f"R_PORT_8000_UDP_END=udp://{ip}:8003",
        "R_PORT_8000_UDP_PORT_END=8003",
        f"R_PORT_8000_TCP=tcp://{ip}:8000",
        "R_PORT_8000_TCP_PORT=8000",
        *per_port,
        "R_NAME=/wizardly_shirley/r",
    ]
    # two adjacent ports are no range; the alias's last path part names the variables
    env = link_env("a/web-x", "p", ip, ["80/tcp", "8000/udp", "8001/udp"], ["FOO=bar", "HOME=/"])
    assert not [e for e in env if "_START=" in e or "_END=" in e]
    assert "WEB_X_NAME=/p/a/web-x" in env and "WEB_X_ENV_FOO=bar" in env
    assert not [e for e in env if e.startswith("WEB_X_ENV_HOME")]


BODY = {
    "Image": "busybox",
    "HostConfig": {
        "Devices": [
            {"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "r"}
        ],
        "DeviceCgroupRules": ["c 1:3 rwm"],
        "Links": ["db:web", "/cache:/old/c"],
        "StorageOpt": {"size": "10G"},
    },
}


def test_host_config_fields_both_ways() -> None:
    spec = spec_from_body(BODY, "app")
    assert spec.devices == (Device("/dev/null", "/dev/x", "r"),)
    assert spec.device_cgroup_rules == ("c 1:3 rwm",)
    assert spec.links == (("db", "web"), ("cache", "c"))
    assert spec.storage_opt == (("size", "10G"),)
    hc = host_config_shape(spec)
    assert hc["Devices"] == BODY["HostConfig"]["Devices"]  # type: ignore[index]
    assert hc["DeviceCgroupRules"] == ["c 1:3 rwm"]
    assert hc["Links"] == ["/db:/app/web", "/cache:/app/c"]
    assert hc["StorageOpt"] == {"size": "10G"}
    ctr = Container("a" * 64, "app", "", "sha256:" + "0" * 64, spec)
    assert decode(encode(ctr)) == ctr
    plain = host_config_shape(spec_from_body({"Image": "busybox"}))
    assert (plain["Devices"], plain["DeviceCgroupRules"], plain["Links"]) == ([], None, None)
    assert "StorageOpt" not in plain
    with pytest.raises(InvalidArgument, match="bad format for links: a:b:c"):
        spec_from_body({"Image": "busybox", "HostConfig": {"Links": ["a:b:c"]}})
