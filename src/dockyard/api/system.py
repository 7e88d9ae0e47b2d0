"""Routes: /_ping, /version, /info, /events, volumes and networks."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Iterator, Sequence
from typing import Any

from dockyard.api.http import API_VERSION, MIN_API_VERSION, Call, Reply, Router, labels_match
from dockyard.errors import InvalidArgument, NotFound

routes = Router()


@routes.route("GET|HEAD", "/_ping")
def ping(call: Call) -> Reply:
    # API-Version and OSType headers come with every reply (http.py); the cache headers are
    # Docker's (a proxy must not answer a client's version probe).
    no_cache = [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")]
    return Reply(200, "OK", "text/plain; charset=utf-8", no_cache)


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
        "IndexServerAddress": "https://index.docker.io/v1/",
        # Never in a swarm: what `docker info` and clients read for "Swarm: inactive".
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "Warnings": None,
    }


# ---------------------------------------------------------------- volumes


@routes.route("GET", "/volumes")
def volume_list(call: Call) -> dict[str, Any]:
    filters = call.filters()
    dangling = filters.get("dangling")
    flag = None if not dangling else dangling[-1].lower() in ("1", "true")
    volumes = [
        v
        for v in call.engine.volumes.list_volumes(dangling=flag)
        # Compose finds its project's volumes by label (and removes what it finds).
        if labels_match(v.get("Labels"), filters.get("label", ()))
        and _any_in(v["Name"], filters.get("name", ()))
        and (not filters.get("driver") or v.get("Driver") in filters["driver"])
    ]
    return {"Volumes": volumes, "Warnings": None}


def _any_in(name: str, patterns: Sequence[str]) -> bool:
    return not patterns or any(p in name for p in patterns)


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


_BUILTIN_NETWORKS = ("bridge", "host", "none")


@routes.route("GET", "/networks")
def network_list(call: Call) -> list[dict[str, Any]]:
    nets = call.engine.networks
    filters = call.filters()
    for kind in filters.get("type", ()):
        if kind not in ("custom", "builtin"):
            raise InvalidArgument(f"invalid filter: 'type'='{kind}'")
    out = []
    for row in nets.list_networks():
        if not _any_in(row["Name"], filters.get("name", ())):
            continue
        if "id" in filters and not any(row["ID"].startswith(v) for v in filters["id"]):
            continue
        doc = nets.inspect(row["ID"])
        # Compose lists its project's networks by label, then removes them: without this
        # filter `compose down` tried to remove the default bridge.
        if not labels_match(doc.get("Labels"), filters.get("label", ())):
            continue
        if filters.get("driver") and doc.get("Driver") not in filters["driver"]:
            continue
        if filters.get("scope") and doc.get("Scope") not in filters["scope"]:
            continue
        builtin = doc["Name"] in _BUILTIN_NETWORKS
        if filters.get("type") and ("builtin" if builtin else "custom") not in filters["type"]:
            continue
        out.append(doc)
    return out


@routes.route("GET", "/networks/{name}")
def network_inspect(call: Call) -> dict[str, Any]:
    scope = call.arg("scope")
    if scope not in ("", "local"):
        # Only local networks exist here: a swarm- or global-scoped lookup finds none.
        raise NotFound(f"network {call.params['name']} not found")
    return call.engine.networks.inspect(call.params["name"])


@routes.route("POST", "/networks/create")
def network_create(call: Call) -> Reply:
    from dockyard.model.docker.networks import network_create_from_body

    req = network_create_from_body(call.json(required=True))
    net_id = call.engine.networks.create(
        req.name,
        subnet=req.subnet,
        gateway=req.gateway,
        labels=req.labels,
        internal=req.internal,
        options=req.options,
        attachable=req.attachable,
    )
    return Reply(201, {"Id": net_id, "Warning": ""})


@routes.route("POST", "/networks/{name}/connect")
def network_connect(call: Call) -> Reply:
    from dockyard.model.docker.networks import connect_from_body

    req = connect_from_body(call.json(required=True))
    call.engine.networks.connect(call.params["name"], req.container, req.aliases, req.ipv4_address)
    return Reply(200, None)


@routes.route("POST", "/networks/{name}/disconnect")
def network_disconnect(call: Call) -> Reply:
    from dockyard.model.docker.networks import disconnect_from_body

    container, force = disconnect_from_body(call.json(required=True))
    call.engine.networks.disconnect(call.params["name"], container, force=force)
    return Reply(200, None)


@routes.route("DELETE", "/networks/{name}")
def network_remove(call: Call) -> Reply:
    call.engine.networks.remove(call.params["name"])
    return Reply(204)


@routes.route("GET", "/events")
def events(call: Call) -> None:
    """Docker's event stream: the recorded events from ``since`` to ``until`` when either is
    given, then (unless ``until`` has passed) each new one as any process writes it, one
    JSON object a line."""
    from dockyard.store.journal import encode

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
