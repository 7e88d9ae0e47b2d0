"""Routes: images (list, inspect, history, tag, remove, pull, load, save)."""

from __future__ import annotations

import os
import queue
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from dockyard.api.http import Call, Done, Reply, Router, labels_match
from dockyard.errors import InvalidArgument
from dockyard.units import unix_time

routes = Router()


@routes.route("GET", "/images/json")
def image_list(call: Call) -> list[dict[str, Any]]:
    filters = call.filters()
    dangling = None
    if filters.get("dangling"):
        dangling = filters["dangling"][-1].lower() in ("1", "true")
    images = call.engine.images
    out = []
    for entry in images.summaries(
        all_images=call.flag("all"), dangling=dangling, references=filters.get("reference", [])
    ):
        data = images.inspect(entry.record.id)
        # Compose's `down --rmi local` finds the images it built by their labels.
        if not labels_match((data["Config"] or {}).get("Labels"), filters.get("label", ())):
            continue
        untagged = not entry.repo_tags and not entry.repo_digests
        out.append(
            {
                "Containers": -1,
                "Created": unix_time(data["Created"]),
                "Id": data["Id"],
                "Labels": (data["Config"] or {}).get("Labels") or None,
                "ParentId": data["Parent"],
                # Docker 20.10 lists an untagged image with these placeholders.
                "RepoDigests": ["<none>@<none>"] if untagged else entry.repo_digests,
                "RepoTags": ["<none>:<none>"] if untagged else entry.repo_tags,
                "SharedSize": -1,
                "Size": data["Size"],
                "VirtualSize": data["VirtualSize"],
            }
        )
    return out


@routes.route("GET", "/images/{name*}/json")
def image_inspect(call: Call) -> dict[str, Any]:
    return call.engine.images.inspect(call.params["name"])


@routes.route("GET", "/images/{name*}/history")
def image_history(call: Call) -> list[dict[str, Any]]:
    images = call.engine.images
    data = images.inspect(call.params["name"])
    tags = {data["Id"]: data["RepoTags"]}
    return [
        {
            "Id": row.id,
            "Created": unix_time(row.created),
            "CreatedBy": row.created_by,
            "Tags": tags.get(row.id) or None,
            "Size": row.size,
            "Comment": row.comment,
        }
        for row in images.history(data["Id"])
    ]


@routes.route("POST", "/images/{name*}/tag")
def image_tag(call: Call) -> Reply:
    repo = call.arg("repo")
    if not repo:
        raise InvalidArgument("repository name is required")
    tag = call.arg("tag")
    call.engine.images.tag(call.params["name"], f"{repo}:{tag}" if tag else repo)
    return Reply(201)


@routes.route("DELETE", "/images/{name*}")
def image_remove(call: Call) -> list[dict[str, str]]:
    report = call.engine.images.remove(
        [call.params["name"]], force=call.flag("force"), prune=not call.flag("noprune")
    )
    return [{kind: what} for kind, what in report.items]


def _progress_stream(work: Any) -> Iterator[dict[str, Any]]:
    """Run ``work(emit)`` in a thread and yield what it emits as it comes (pull progress);
    its exception is raised here, after the messages before it."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            q.put(("done", work(lambda msg: q.put(("msg", msg)))))
        except BaseException as e:
            q.put(("error", e))

    threading.Thread(target=run, daemon=True).start()
    while True:
        kind, value = q.get()
        if kind == "msg":
            yield value
        elif kind == "error":
            raise value
        else:
            return


@routes.route("POST", "/images/create")
def image_create(call: Call) -> None:
    image = call.arg("fromImage")
    if not image:
        if call.arg("fromSrc"):
            _import(call)
        raise InvalidArgument("fromImage is required")
    tag = call.arg("tag")
    if tag:
        image += f"@{tag}" if tag.startswith("sha256:") else f":{tag}"
    root, run_root = call.engine.root, call.engine.run_root
    from dockyard.api.registry import request_logins
    from dockyard.image.reference import parse_reference

    logins = request_logins(call, parse_reference(image).domain)

    def pull(emit: Any) -> str:
        # Its own engine: the pull runs in another thread than this connection's.
        from dockyard.engine import Engine

        engine = Engine(root=root, run_root=run_root)
        try:
            with engine.registry.given_credentials(logins):
                return engine.registry.pull(image, progress=emit)
        finally:
            engine.close()

    def messages() -> Iterator[dict[str, Any]]:
        yield from _progress_stream(pull)
        # Docker ends a pull with its digest and status lines; the engine's messages carry
        # them (Digest:, Status:) already.

    call.handler.json_stream(messages())


def _import(call: Call) -> None:
    """``docker import``: ``fromSrc=-`` (the body is the tar) or a URL the daemon fetches;
    Docker's answer is one ``{"status": <image ID>}`` message."""
    source = call.arg("fromSrc")
    repo, tag = call.arg("repo"), call.arg("tag")
    reference = (f"{repo}:{tag}" if tag else repo) or None
    changes = call.query.get("changes", [])
    message = call.arg("message")
    platform = call.arg("platform")
    if platform and platform not in ("linux", "linux/amd64"):
        raise InvalidArgument(f"platform {platform!r} is not supported: only linux/amd64")
    images = call.engine.images
    if source == "-":
        image_id = images.import_(call.handler.body_file(), reference, changes, message, "-")
    else:
        image_id = images.import_url(source, reference, changes, message)
    call.handler.json_stream([{"status": image_id}])


@routes.route("POST", "/images/load")
def image_load(call: Call) -> None:
    engine = call.engine
    tmp_dir = os.path.join(engine.root, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="api-load-", dir=tmp_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in call.handler.iter_body():
                f.write(chunk)
        lines = engine.images.load(path)
    finally:
        os.unlink(path)
    call.handler.json_stream({"stream": line + "\n"} for line in lines)


def _save(call: Call, names: list[str]) -> None:
    engine = call.engine
    tmp_dir = os.path.join(engine.root, "tmp")
    os.makedirs(tmp_dir, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix="api-save-", dir=tmp_dir)
    os.close(fd)
    try:
        engine.images.save(names, path)
        with open(path, "rb") as f:
            call.handler.stream(iter(lambda: f.read(1 << 20), b""), "application/x-tar")
    finally:
        os.unlink(path)
    raise Done  # pragma: no cover - stream() raised it already


@routes.route("GET", "/images/{name*}/get")
def image_get(call: Call) -> None:
    _save(call, [call.params["name"]])


@routes.route("GET", "/images/get")
def images_get(call: Call) -> None:
    names = call.query.get("names") or []
    if not names:
        raise InvalidArgument("no image names given")
    _save(call, names)
