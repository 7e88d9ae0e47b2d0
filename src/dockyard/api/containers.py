"""Routes: containers (list, create, inspect, start/stop/kill/restart/wait, rm, logs, attach,
resize, rename)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dockyard.api.http import Call, Reply, Router
from dockyard.api.images import unix_time
from dockyard.errors import Conflict, DockyardError, InvalidArgument

if TYPE_CHECKING:
    from dockyard.engine.container_options import CreateOptions

routes = Router()

STDOUT, STDERR = 1, 2


def stdcopy(kind: int, payload: bytes) -> bytes:
    """Docker's multiplexed stream frame: [stream, 0, 0, 0, size (big-endian u32)] + data."""
    return bytes((kind, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


# ---------------------------------------------------------------- create


def _strings(value: Any, field: str) -> list[str]:
    """A Docker string list (a bare string counts as one element, as Docker's StrSlice)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{field} must be a list of strings")
    return list(value)


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field} must be an object")
    return value


def _int(value: Any, field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{field} must be a number")
    return int(value)


def _publish_specs(bindings: dict[str, Any]) -> list[str]:
    """HostConfig.PortBindings -> the ``-p`` specs the engine parses."""
    specs = []
    for port, hosts in bindings.items():
        for h in hosts or [{}]:
            h = _mapping(h, "PortBindings")
            ip, host_port = str(h.get("HostIp") or ""), str(h.get("HostPort") or "")
            if ip:
                specs.append(f"{ip}:{host_port}:{port}")
            elif host_port:
                specs.append(f"{host_port}:{port}")
            else:
                specs.append(str(port))
    return specs


def create_options(body: dict[str, Any], name: str) -> CreateOptions:
    """Docker's create body -> the options ``run``/``create`` resolve their flags to."""
    from dockyard.engine.container_options import CreateOptions

    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise InvalidArgument("Config cannot be empty in order to create a container")
    hc = _mapping(body.get("HostConfig"), "HostConfig")
    restart = _mapping(hc.get("RestartPolicy"), "RestartPolicy").get("Name") or "no"
    if restart != "no":
        raise InvalidArgument("restart policies are not supported yet")
    entrypoint = None
    if body.get("Entrypoint") is not None:
        entrypoint = [e for e in _strings(body["Entrypoint"], "Entrypoint") if e] or []
    nano_cpus = _int(hc.get("NanoCpus"), "NanoCpus")
    quota, period = _int(hc.get("CpuQuota"), "CpuQuota"), _int(hc.get("CpuPeriod"), "CpuPeriod")
    if not nano_cpus and quota > 0:
        nano_cpus = quota * 1_000_000_000 // (period or 100_000)
    network = str(hc.get("NetworkMode") or "default")
    endpoints = _mapping(
        _mapping(body.get("NetworkingConfig"), "NetworkingConfig").get("EndpointsConfig"),
        "EndpointsConfig",
    )
    aliases = _strings(
        _mapping(endpoints.get(network), "EndpointsConfig").get("Aliases"), "Aliases"
    )
    ulimits = [
        f"{u['Name']}={u.get('Soft', 0)}:{u.get('Hard', u.get('Soft', 0))}"
        for u in hc.get("Ulimits") or []
        if isinstance(u, dict) and "Name" in u
    ]
    attach = [s for s in ("stdin", "stdout", "stderr") if body.get(f"Attach{s.title()}")]
    binds = _strings(hc.get("Binds"), "Binds")
    # Config.Volumes also names the targets of Binds (docker-py sends both): those are binds.
    targets = {b.split(":")[1] for b in binds if b.count(":") >= 1}
    anonymous = [v for v in _mapping(body.get("Volumes"), "Volumes") if v not in targets]
    return CreateOptions(
        image=image,
        cmd=_strings(body.get("Cmd"), "Cmd") or None,
        entrypoint=entrypoint,
        name=name,
        env=_strings(body.get("Env"), "Env"),
        workdir=str(body.get("WorkingDir") or ""),
        user=str(body.get("User") or ""),
        group_add=_strings(hc.get("GroupAdd"), "GroupAdd"),
        tty=bool(body.get("Tty")),
        stdin_open=bool(body.get("OpenStdin")),
        attach=attach,
        hostname=str(body.get("Hostname") or ""),
        domainname=str(body.get("Domainname") or ""),
        volumes=[*binds, *anonymous],
        tmpfs=[
            f"{path}:{opts}" if opts else path
            for path, opts in _mapping(hc.get("Tmpfs"), "Tmpfs").items()
        ],
        auto_remove=bool(hc.get("AutoRemove")),
        read_only=bool(hc.get("ReadonlyRootfs")),
        privileged=bool(hc.get("Privileged")),
        init=bool(hc.get("Init")),
        cap_add=_strings(hc.get("CapAdd"), "CapAdd"),
        cap_drop=_strings(hc.get("CapDrop"), "CapDrop"),
        security_opt=_strings(hc.get("SecurityOpt"), "SecurityOpt"),
        memory=_int(hc.get("Memory"), "Memory"),
        memory_swap=_int(hc.get("MemorySwap"), "MemorySwap"),
        nano_cpus=nano_cpus,
        cpu_shares=_int(hc.get("CpuShares"), "CpuShares"),
        pids_limit=max(_int(hc.get("PidsLimit"), "PidsLimit"), 0),
        ulimits=ulimits,
        shm_size=_int(hc.get("ShmSize"), "ShmSize"),
        sysctls={str(k): str(v) for k, v in _mapping(hc.get("Sysctls"), "Sysctls").items()},
        network=network,
        labels={str(k): str(v) for k, v in _mapping(body.get("Labels"), "Labels").items()},
        stop_signal=str(body.get("StopSignal") or ""),
        stop_timeout=body.get("StopTimeout") if isinstance(body.get("StopTimeout"), int) else None,
        runtime=str(hc.get("Runtime") or ""),
        publish=_publish_specs(_mapping(hc.get("PortBindings"), "PortBindings")),
        publish_all=bool(hc.get("PublishAllPorts")),
        expose=list(_mapping(body.get("ExposedPorts"), "ExposedPorts")),
        network_aliases=aliases,
    )


@routes.route("POST", "/containers/create")
def container_create(call: Call) -> Reply:
    opts = create_options(call.json(required=True), call.arg("name"))
    if opts.publish:
        from dockyard.network.ports import port_bindings

        port_bindings(opts.publish)  # a bad binding is a 400 before anything is made
    cid = call.engine.containers.create(opts)
    return Reply(201, {"Id": cid, "Warnings": []})


# ---------------------------------------------------------------- list, inspect


def _ports(data: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, hosts in (data["NetworkSettings"].get("Ports") or {}).items():
        port, _, proto = key.partition("/")
        if not hosts:
            out.append({"PrivatePort": int(port), "Type": proto or "tcp"})
        for h in hosts or []:
            out.append(
                {
                    "IP": h.get("HostIp", ""),
                    "PrivatePort": int(port),
                    "PublicPort": int(h.get("HostPort") or 0),
                    "Type": proto or "tcp",
                }
            )
    return out


@routes.route("GET", "/containers/json")
def container_list(call: Call) -> list[dict[str, Any]]:
    from dockyard.cli.output import container_status
    from dockyard.engine.containers import match_filters

    filters = call.filters()
    unknown = set(filters) - {"status", "name", "id", "exited", "label", "ancestor"}
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    show_all = call.flag("all") or bool(filters.get("status") or filters.get("exited"))
    listed = call.engine.containers.list_containers(all_containers=show_all)
    rows = [d for d in listed if match_filters(d, filters)]
    limit = call.int_arg("limit", -1)
    if limit is not None and limit > 0:
        rows = rows[:limit]
    return [
        {
            "Id": d["Id"],
            "Names": [d["Name"]],
            "Image": d["Config"]["Image"],
            "ImageID": d["Image"],
            "Command": " ".join([d["Path"], *d["Args"]]),
            "Created": unix_time(d["Created"]),
            "Ports": _ports(d),
            "Labels": d["Config"].get("Labels") or {},
            "State": d["State"]["Status"],
            "Status": container_status(d),
            "HostConfig": {"NetworkMode": d["HostConfig"]["NetworkMode"]},
            "NetworkSettings": {"Networks": d["NetworkSettings"].get("Networks") or {}},
            "Mounts": d["Mounts"],
        }
        for d in rows
    ]


@routes.route("GET", "/containers/{id}/json")
def container_inspect(call: Call) -> dict[str, Any]:
    data = call.engine.containers.inspect(call.params["id"])
    # Every container logs with json-file; clients (docker-py's run) read the driver here.
    data["HostConfig"].setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    return data


# ---------------------------------------------------------------- lifecycle


@routes.route("POST", "/containers/{id}/start")
def container_start(call: Call) -> Reply:
    containers = call.engine.containers
    cid = containers.resolve(call.params["id"])
    if containers.get(cid)["State"]["Running"]:
        return Reply(304)
    waiting = call.daemon.take_pending(cid)
    if not waiting:
        containers.start(cid)
        return Reply(204)
    from dockyard.runtime.attach import request_start

    try:
        # The monitor waits for a start request: the attached clients connect first.
        containers.start(cid, attach=True)
    except DockyardError as e:
        for p in waiting:
            p.fail(str(e))
        raise
    rdir = containers.container_run_dir(cid)
    for p in waiting:
        p.connect(rdir)
    request_start(rdir)
    return Reply(204)


@routes.route("POST", "/containers/{id}/stop")
def container_stop(call: Call) -> Reply:
    containers = call.engine.containers
    cid = containers.resolve(call.params["id"])
    if not containers.get(cid)["State"]["Running"]:
        return Reply(304)
    containers.stop(cid, call.int_arg("t"))
    return Reply(204)


@routes.route("POST", "/containers/{id}/restart")
def container_restart(call: Call) -> Reply:
    containers = call.engine.containers
    cid = containers.stop(call.params["id"], call.int_arg("t"))
    containers.start(cid)
    return Reply(204)


@routes.route("POST", "/containers/{id}/kill")
def container_kill(call: Call) -> Reply:
    call.engine.containers.kill(call.params["id"], call.arg("signal") or "KILL")
    return Reply(204)


@routes.route("DELETE", "/containers/{id}")
def container_remove(call: Call) -> Reply:
    call.engine.containers.remove(
        call.params["id"], force=call.flag("force"), volumes=call.flag("v")
    )
    return Reply(204)


@routes.route("POST", "/containers/{id}/rename")
def container_rename(call: Call) -> Reply:
    call.engine.containers.rename(call.params["id"], call.arg("name"))
    return Reply(204)


@routes.route("POST", "/containers/{id}/resize")
def container_resize(call: Call) -> Reply:
    from dockyard.runtime.attach import send_resize

    containers = call.engine.containers
    cid = containers.resolve(call.params["id"])
    rows, cols = call.int_arg("h", 0) or 0, call.int_arg("w", 0) or 0
    try:
        send_resize(containers.container_run_dir(cid), rows, cols)
    except Conflict:
        raise Conflict(f"Container {cid} is not running") from None
    return Reply(200)


# ---------------------------------------------------------------- wait


@routes.route("POST", "/containers/{id}/wait")
def container_wait(call: Call) -> None:
    from dockyard.api.streams import ExitWaiter

    condition = call.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    # Registered before the headers go out: `docker run` starts the container on them.
    waiter = ExitWaiter(call, call.params["id"], condition)

    def body() -> Iterator[bytes]:
        # Headers first, as Docker does: its client returns from the POST only then, and
        # `docker run` starts the container after that.
        try:
            yield b""
            code = waiter.wait()
            yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"
        finally:
            waiter.cancel()

    call.handler.stream(body(), "application/json")


# ---------------------------------------------------------------- logs, attach


@routes.route("GET", "/containers/{id}/logs")
def container_logs(call: Call) -> None:
    want = {"stdout": call.flag("stdout"), "stderr": call.flag("stderr")}
    if not any(want.values()):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    tail_text = call.arg("tail") or "all"
    tail = None
    if tail_text != "all":
        try:
            tail = int(tail_text)
        except ValueError:
            raise InvalidArgument(f"invalid tail value: {tail_text}") from None
    containers = call.engine.containers
    data = containers.get(call.params["id"])
    tty = bool(data["Config"].get("Tty"))
    stamps = call.flag("timestamps")
    records = containers.logs(
        data["Id"], follow=call.flag("follow"), tail=tail, stop=call.handler.client_gone
    )

    def frames() -> Iterator[bytes]:
        yield b""  # headers go out now, even before the first line of a quiet container
        for stream, text, ts in records:
            if not want.get(stream):
                continue
            payload = ((f"{ts} " if stamps else "") + text).encode()
            yield payload if tty else stdcopy(STDERR if stream == "stderr" else STDOUT, payload)

    call.handler.stream(frames(), "application/vnd.docker.raw-stream")


@routes.route("POST", "/containers/{id}/attach")
def container_attach(call: Call) -> None:
    from dockyard.api.streams import attach

    data = call.engine.containers.get(call.params["id"])
    attach(
        call,
        data,
        stdin=call.flag("stdin"),
        stdout=call.flag("stdout"),
        stderr=call.flag("stderr"),
    )
