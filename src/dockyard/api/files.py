"""Routes: a container's files and processes: archive (``docker cp``), changes (``diff``),
commit, top. Each is a few lines over one engine operation (engine/containers/files.py),
the same ones the CLI's verbs call."""

from __future__ import annotations

import base64
import json
from typing import Any

from dockyard.api.http import Call, Reply, Router
from dockyard.errors import InvalidArgument

routes = Router()

STAT_HEADER = "X-Docker-Container-Path-Stat"
_KINDS = {"C": 0, "A": 1, "D": 2}  # Docker's ChangeType: modified, added, deleted


def _stat_header(stat: dict[str, Any]) -> tuple[str, str]:
    """Docker's path stat header: base64 (standard alphabet) of the stat's JSON."""
    doc = json.dumps(stat, separators=(",", ":")).encode()
    return STAT_HEADER, base64.b64encode(doc).decode()


def _path(call: Call) -> str:
    path = call.arg("path")
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    return path


@routes.route("HEAD", "/containers/{id}/archive")
def archive_stat(call: Call) -> Reply:
    stat = call.engine.containers.stat_path(call.params["id"], _path(call))
    return Reply(200, None, "application/json", [_stat_header(stat)])


@routes.route("GET", "/containers/{id}/archive")
def archive_get(call: Call) -> None:
    with call.engine.containers.archive(call.params["id"], _path(call)) as source:
        call.handler.write_stream(source.write, "application/x-tar", [_stat_header(source.stat)])


@routes.route("PUT", "/containers/{id}/archive")
def archive_put(call: Call) -> Reply:
    call.engine.containers.extract(
        call.params["id"],
        _path(call),
        call.handler.body_file(),
        no_overwrite_dir_non_dir=call.flag("noOverwriteDirNonDir"),
        copy_uid_gid=call.flag("copyUIDGID"),
    )
    return Reply(200, None)


@routes.route("GET", "/containers/{id}/changes")
def container_changes(call: Call) -> Reply:
    changes = call.engine.containers.diff(call.params["id"])
    # Docker answers null, not [], when nothing changed.
    doc = [{"Path": path, "Kind": _KINDS[kind]} for kind, path in changes] or None
    return Reply(200, json.dumps(doc).encode() + b"\n")


@routes.route("GET", "/containers/{id}/top")
def container_top(call: Call) -> dict[str, Any]:
    ps_args = call.arg("ps_args")
    # moby splits ps_args on single spaces and hands the words to ps.
    titles, rows = call.engine.containers.top(
        call.params["id"], ps_args.split(" ") if ps_args else ()
    )
    return {"Processes": rows, "Titles": titles}


@routes.route("POST", "/commit")
def commit(call: Call) -> Reply:
    from dockyard.model.docker.commit import commit_config_from_body

    container = call.arg("container")
    if not container:
        raise InvalidArgument('invalid name or ID supplied: ""')
    repo, tag = call.arg("repo"), call.arg("tag")
    reference = (f"{repo}:{tag}" if tag else repo) if repo else None
    # No body, or null (what Docker's CLI sends): the container's own config.
    raw = call.body().strip()
    config = None if raw in (b"", b"null") else commit_config_from_body(call.json())
    image_id = call.engine.containers.commit(
        container,
        reference,
        changes=call.query.get("changes", []),
        message=call.arg("comment"),
        author=call.arg("author"),
        config=config,
    )
    return Reply(201, {"Id": image_id})
