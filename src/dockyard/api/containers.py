"""Routes: containers (list, create, inspect, start/stop/kill/restart/pause/unpause/update/wait,
rm, logs, attach, resize, rename, export). Each decodes its request, calls one engine operation
and encodes the answer: Docker's JSON <-> the model is model/docker.py's."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from dockyard.api.http import Call, Reply, Router
from dockyard.errors import Conflict, DockyardError, InvalidArgument

routes = Router()

STDOUT, STDERR = 1, 2


def stdcopy(kind: int, payload: bytes) -> bytes:
    """Docker's multiplexed stream frame: [stream, 0, 0, 0, size (big-endian u32)] + data."""
    return bytes((kind, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


# ---------------------------------------------------------------- create, list, inspect


@routes.route("POST", "/containers/create")
def container_create(call: Call) -> Reply:
    from dockyard.model.docker import spec_from_body

    spec = spec_from_body(call.json(required=True), call.arg("name"))
    cid = call.engine.containers.create(spec)
    return Reply(201, {"Id": cid, "Warnings": []})


@routes.route("GET", "/containers/json")
def container_list(call: Call) -> list[dict[str, Any]]:
    rows = call.engine.containers.list_shapes(
        all_containers=call.flag("all"), filters=call.filters(), size=call.flag("size")
    )
    limit = call.int_arg("limit", -1)
    if limit is not None and limit > 0:
        rows = rows[:limit]
    return rows


@routes.route("GET", "/containers/{id}/json")
def container_inspect(call: Call) -> dict[str, Any]:
    return call.engine.containers.inspect(call.params["id"])


# ---------------------------------------------------------------- lifecycle


@routes.route("POST", "/containers/{id}/start")
def container_start(call: Call) -> Reply:
    containers = call.engine.containers
    cid = containers.resolve(call.params["id"])
    ctr = containers.get(cid)
    if ctr.running:
        return Reply(304)
    waiting = call.daemon.take_pending(cid)
    sessions = containers.sessions

    def connect() -> None:
        # Before the process runs, so even `true` cannot exit unseen: the daemon records
        # the exit (api/exits.py), and the attached clients miss no output.
        call.daemon.exits.watch(sessions, cid)
        for p in waiting:
            p.connect(sessions, cid)

    try:
        sessions.start_attached(cid, connect)
    except DockyardError as e:
        from dockyard.model.docker import start_error_text

        message = start_error_text(e)
        code = None
        with contextlib.suppress(DockyardError):
            code = containers.get(cid).state.exit_code  # as the failed start recorded it
        if ctr.spec.auto_remove:
            # Docker removes an --rm container whose start failed: `docker run --rm` waits
            # for that (wait?condition=removed) before it exits.
            with contextlib.suppress(DockyardError):
                containers.remove(cid, force=True)
        for p in waiting:
            p.fail(code)
        raise type(e)(message) from None
    return Reply(204)


@routes.route("POST", "/containers/{id}/stop")
def container_stop(call: Call) -> Reply:
    containers = call.engine.containers
    cid = containers.resolve(call.params["id"])
    if not containers.get(cid).running:
        return Reply(304)
    containers.stop(cid, call.int_arg("t"))
    return Reply(204)


@routes.route("POST", "/containers/{id}/restart")
def container_restart(call: Call) -> Reply:
    call.engine.containers.restart(call.params["id"], call.int_arg("t"))
    return Reply(204)


@routes.route("POST", "/containers/{id}/kill")
def container_kill(call: Call) -> Reply:
    call.engine.containers.kill(call.params["id"], call.arg("signal") or "KILL")
    return Reply(204)


@routes.route("POST", "/containers/{id}/pause")
def container_pause(call: Call) -> Reply:
    call.engine.containers.pause(call.params["id"])
    return Reply(204)


@routes.route("POST", "/containers/{id}/unpause")
def container_unpause(call: Call) -> Reply:
    call.engine.containers.unpause(call.params["id"])
    return Reply(204)


@routes.route("POST", "/containers/{id}/update")
def container_update(call: Call) -> dict[str, Any]:
    from dockyard.model.docker import update_from_body

    change = update_from_body(call.json(required=True))
    call.engine.containers.update(call.params["id"], change)
    return {"Warnings": []}


@routes.route("GET", "/containers/{id}/export")
def container_export(call: Call) -> None:
    import os
    import tempfile

    # Written whole first (as the image save route does): an error is then a proper status,
    # not a tar cut short.
    engine = call.engine
    tmp_dir = os.path.join(engine.root, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    with tempfile.TemporaryFile(dir=tmp_dir) as f:
        engine.containers.export(call.params["id"], f)
        f.seek(0)
        call.handler.stream(iter(lambda: f.read(1 << 20), b""), "application/x-tar")


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
    containers = call.engine.containers
    cid = containers.resolve(call.params["id"])
    rows, cols = call.int_arg("h", 0) or 0, call.int_arg("w", 0) or 0
    try:
        containers.sessions.resize(cid, rows, cols)
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
            doc: dict[str, Any]
            try:
                doc = {"StatusCode": waiter.wait(), "Error": None}
            except DockyardError as e:  # in the body, as Docker reports a failed wait
                doc = {"StatusCode": -1, "Error": {"Message": str(e)}}
            yield json.dumps(doc).encode() + b"\n"
        finally:
            waiter.cancel()

    call.handler.stream(body(), "application/json")


# ---------------------------------------------------------------- logs, attach


@routes.route("GET", "/containers/{id}/logs")
def container_logs(call: Call) -> None:
    want = {"stdout": call.flag("stdout"), "stderr": call.flag("stderr")}
    if not any(want.values()):
        raise InvalidArgument("Bad parameters: you must choose at least one stream")
    try:
        tail: int | None = int(call.arg("tail") or "all")
    except ValueError:
        tail = None  # Docker's daemon reads anything that is not a number as "all"
    containers = call.engine.containers
    ctr = containers.get(call.params["id"])
    tty = ctr.spec.tty
    stamps = call.flag("timestamps")
    records = containers.logs(
        ctr.id,
        follow=call.flag("follow"),
        tail=tail,
        since=call.timestamp("since"),
        until=call.timestamp("until"),
        stop=call.handler.client_gone,
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

    ctr = call.engine.containers.get(call.params["id"])
    attach(
        call,
        ctr,
        stdin=call.flag("stdin"),
        stdout=call.flag("stdout"),
        stderr=call.flag("stderr"),
        detach_keys=call.arg("detachKeys"),
    )


@routes.route("GET", "/containers/{id}/stats")
def container_stats(call: Call) -> None:
    """Docker's stats frames: a stream, one a second (``stream=false``: one frame, two
    readings a second apart; with ``one-shot``, one reading)."""
    stream = call.arg("stream", "1").lower() not in ("0", "false", "no")
    frames = call.engine.containers.stats.frames(
        call.params["id"],
        stream=stream,
        one_shot=call.flag("one-shot"),
        stop=call.handler.client_gone,
    )

    def body() -> Iterator[bytes]:
        for doc in frames:
            yield json.dumps(doc).encode() + b"\n"

    call.handler.stream(body(), "application/json")
