"""Routes: ``POST /build`` (the classic builder, as ``docker build`` with
``DOCKER_BUILDKIT=0`` and docker-py's ``images.build`` use it) and ``/build/cancel``.

The context arrives as the request's body and is unpacked as it arrives (builder/prepare.py);
the engine's build reports through builder/progress.py's JsonProgress, whose messages are
written as they come. As in Docker, what fails before the first message (a Dockerfile that
does not parse, an unknown target, a bad tag) is an HTTP error; what fails after is an
``{"errorDetail": ..., "error": ...}`` message, with the command's exit code as ``code``
for a failing RUN (the CLI exits with it).
"""

from __future__ import annotations

import json
from typing import Any

from dockyard.api.http import Call, Done, Router
from dockyard.errors import DockyardError, InvalidArgument

routes = Router()


def _json_arg(call: Call, name: str, what: str) -> Any:
    text = call.arg(name)
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        from dockyard.gojson import syntax_error

        raise InvalidArgument(f"error reading {what}: {syntax_error(text) or e}") from None


def _string_map(call: Call, name: str, what: str) -> dict[str, str | None]:
    doc = _json_arg(call, name, what)
    if doc is None:
        return {}
    if not isinstance(doc, dict) or not all(isinstance(v, str | None) for v in doc.values()):
        raise InvalidArgument(f"error reading {what}: expected an object of strings")
    return doc


class _Messages:
    """Docker's JSON message stream, started by the first message."""

    def __init__(self, call: Call) -> None:
        self.req = call.req
        self.started = False

    def emit(self, msg: dict[str, Any]) -> None:
        if not self.started:
            self.req.start(200, [("Content-Type", "application/json")])
            self.req.conn.streaming()  # a quiet RUN may last: no timeout between messages
            self.started = True
        self.req.write(json.dumps(msg).encode() + b"\r\n")

    def fail(self, err: DockyardError) -> None:
        from dockyard.builder.state import StepFailed

        detail: dict[str, Any] = {"message": str(err)}
        if isinstance(err, StepFailed):
            detail = {"code": err.code, "message": err.classic}
        self.emit({"errorDetail": detail, "error": detail["message"]})


@routes.route("POST", "/build")
def build(call: Call) -> None:
    from dockyard.builder.builder import BuildOptions
    from dockyard.builder.progress import JsonProgress
    from dockyard.model.docker.auth import registry_config

    if call.arg("version") == "2":
        raise InvalidArgument(
            "BuildKit is not supported by dockyard: build with DOCKER_BUILDKIT=0 (the classic "
            "builder)"
        )
    if call.flag("squash"):
        raise InvalidArgument("squash is only supported with experimental mode")
    platform = call.arg("platform")
    if platform and platform not in ("linux", "linux/amd64"):
        raise InvalidArgument(f"platform {platform!r} is not supported: only linux/amd64")
    build_args = _string_map(call, "buildargs", "build args")
    labels = _string_map(call, "labels", "labels")
    cache_from = _json_arg(call, "cachefrom", "cache from")
    if cache_from is not None and not isinstance(cache_from, list):
        raise InvalidArgument("error reading cache from: expected an array")
    opts = BuildOptions(
        dockerfile="",
        tags=call.query.get("t", []),
        # A null build arg is one the client had no value for: the ARG's default stands
        # (never the daemon's environment, which the builder reads for the CLI's sake).
        build_args={k: v for k, v in build_args.items() if v is not None},
        target=call.arg("target"),
        no_cache=call.flag("nocache"),
        labels={k: v or "" for k, v in labels.items()},
        network=call.arg("networkmode") or "default",
        pull=call.flag("pull"),
    )
    logins = {
        registry: auth.login
        for registry, auth in registry_config(call.req.headers.get("X-Registry-Config")).items()
        if auth.login is not None
    }
    engine = call.engine
    messages = _Messages(call)
    progress = JsonProgress(messages.emit, quiet=call.flag("q"))
    remote = call.arg("remote")
    try:
        with engine.registry.given_credentials(logins):
            engine.builder.build_context(
                remote or call.handler.body_file(),
                call.arg("dockerfile") or None,
                opts,
                progress,
            )
    except DockyardError as e:
        if not (messages.started or progress.held):
            raise  # nothing built yet: an HTTP error, as Docker's
        for held in progress.held:
            messages.emit(held)
        messages.fail(e)
    if not messages.started:
        messages.emit({"stream": ""})  # every build reports; a reply must have a head anyway
    call.req.finish()
    raise Done


@routes.route("POST", "/build/cancel")
def build_cancel(call: Call) -> None:
    # BuildKit's: the classic builder stops when its client goes, which cancels the build.
    raise InvalidArgument("build cancel is only supported by BuildKit")
