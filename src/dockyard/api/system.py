"""Routes: /_ping, /version, /info, /events, volumes and networks."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Iterator
from typing import Any

from dockyard.api.http import API_VERSION, MIN_API_VERSION, Call, Reply, Router
from dockyard.errors import InvalidArgument

routes = Router()


@routes.route("GET|HEAD", "/_ping")
def ping(call: Call) -> Reply:
    # API-Version and OSType headers come with every reply (http.py).
    return Reply(200, "OK", "text/plain; charset=utf-8")


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@routes.route("GET", "/version")
def version(call: Call) -> dict[str, Any]:
    from dockyard import __version__

    details = {
        "ApiVersion": API_VERSION,
        "Arch": _arch(),
        "BuildTime": "",
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "KernelVersion": platform.release(),
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    }
    return {
        "Platform": {"Name": "dockyard"},
        "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
        "Version": __version__,
        **details,
    }


@routes.route("GET", "/info")
def info(call: Call) -> dict[str, Any]:
    from dockyard import __version__

    engine = call.engine
    listed = engine.containers.list_containers(all_containers=True)
    running = sum(1 for c in listed if c.running)
    images = {row.id for row in engine.images.list_images(all_images=True)}
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        mem = 0
    return {
        "ID": "",
        "Containers": len(listed),
        "ContainersRunning": running,
        "ContainersPaused": 0,
        "ContainersStopped": len(listed) - running,
        "Images": len(images),
        "Driver": "overlay",
        "DriverStatus": [],
        "DockerRootDir": engine.root,
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": []},
        "MemoryLimit": True,
        "SwapLimit": True,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "OomKillDisable": False,
        "IPv4Forwarding": True,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1",
        "KernelVersion": platform.release(),
        "OperatingSystem": platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
        if hasattr(platform, "freedesktop_os_release")
        else "Linux",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": mem,
        "Name": socket.gethostname(),
        "ServerVersion": __version__,
        "DefaultRuntime": "runc",
        "Runtimes": {"runc": {"path": "runc"}, "crun": {"path": "crun"}},
        "SecurityOptions": ["name=seccomp,profile=default"],
        "Labels": [],
        "ExperimentalBuild": False,
        "Warnings": None,
    }


# ---------------------------------------------------------------- volumes


@routes.route("GET", "/volumes")
def volume_list(call: Call) -> dict[str, Any]:
    dangling = call.filters().get("dangling")
    flag = None if not dangling else dangling[-1].lower() in ("1", "true")
    return {"Volumes": call.engine.volumes.list_volumes(dangling=flag), "Warnings": None}


@routes.route("POST", "/volumes/create")
def volume_create(call: Call) -> Reply:
    body = call.json()
    driver = body.get("Driver") or "local"
    if driver != "local":
        raise InvalidArgument(f"volume driver {driver!r} is not supported")
    labels = body.get("Labels") or {}
    name = call.engine.volumes.create(str(body.get("Name") or ""), dict(labels))
    return Reply(201, call.engine.volumes.inspect(name))


@routes.route("GET", "/volumes/{name}")
def volume_inspect(call: Call) -> dict[str, Any]:
    return call.engine.volumes.inspect(call.params["name"])


@routes.route("DELETE", "/volumes/{name}")
def volume_remove(call: Call) -> Reply:
    call.engine.volumes.remove(call.params["name"], force=call.flag("force"))
    return Reply(204)


# ---------------------------------------------------------------- networks


@routes.route("GET", "/networks")
def network_list(call: Call) -> list[dict[str, Any]]:
    nets = call.engine.networks
    filters = call.filters()
    out = []
    for row in nets.list_networks():
        if "name" in filters and not any(v in row["Name"] for v in filters["name"]):
            continue
        if "id" in filters and not any(row["ID"].startswith(v) for v in filters["id"]):
            continue
        out.append(nets.inspect(row["ID"]))
    return out


@routes.route("GET", "/networks/{name}")
def network_inspect(call: Call) -> dict[str, Any]:
    return call.engine.networks.inspect(call.params["name"])


@routes.route("POST", "/networks/create")
def network_create(call: Call) -> Reply:
    body = call.json(required=True)
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("network name is required")
    driver = body.get("Driver") or "bridge"
    if driver != "bridge":
        raise InvalidArgument(f"network driver {driver!r} is not supported")
    configs = (body.get("IPAM") or {}).get("Config") or [{}]
    if len(configs) > 1:
        raise InvalidArgument("only one IPAM config (subnet) per network is supported")
    net_id = call.engine.networks.create(
        name,
        subnet=configs[0].get("Subnet") or None,
        gateway=configs[0].get("Gateway") or None,
        labels=dict(body.get("Labels") or {}),
        internal=bool(body.get("Internal")),
    )
    return Reply(201, {"Id": net_id, "Warning": ""})


@routes.route("DELETE", "/networks/{name}")
def network_remove(call: Call) -> Reply:
    call.engine.networks.remove(call.params["name"])
    return Reply(204)


@routes.route("GET", "/events")
def events(call: Call) -> None:
    """Docker's event stream: the recorded events from ``since`` to ``until`` when either is
    given, then (unless ``until`` has passed) each new one as any process writes it, one
    JSON object a line."""
    from dockyard.engine.events import encode

    # since=0 is the epoch (every recorded event), not "absent": 1 ns is the same bound.
    messages = call.engine.events.read(
        since=max(1, call.timestamp("since")) if call.arg("since") else 0,
        until=max(1, call.timestamp("until")) if call.arg("until") else 0,
        filters=call.filters(),
        follow=True,
        stop=call.handler.client_gone,
    )

    def lines() -> Iterator[bytes]:
        yield b""  # headers now, as Docker flushes them before any event
        for msg in messages:
            yield (encode(msg) + "\n").encode()

    call.handler.stream(lines(), "application/json")
