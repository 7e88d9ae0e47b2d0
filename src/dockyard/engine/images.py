"""Image operations in Docker's shapes: list, inspect, history, tag, rmi, prune, save/load."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from dockyard.errors import DockyardError

if TYPE_CHECKING:
    from dockyard.engine import Engine
    from dockyard.store.images import DeleteReport, ImageRecord


class ImageRow(NamedTuple):
    """One line of ``docker images``."""

    repository: str
    tag: str
    digest: str
    id: str
    created: str
    size: int
    dangling: bool


class HistoryRow(NamedTuple):
    id: str
    created: str
    created_by: str
    size: int
    comment: str
    empty_layer: bool


def split_stored_name(name: str) -> tuple[str, str, str]:
    """A stored (normalised) tag or digest reference -> (familiar repository, tag, digest),
    without the reference parser: listing must stay cheap. "docker.io/library/busybox:latest"
    -> ("busybox", "latest", ""); "localhost:5000/a@sha256:..." -> ("localhost:5000/a", "",
    "sha256:...")."""
    repo, _, digest = name.partition("@")
    tag = ""
    slash = repo.rfind("/")
    colon = repo.rfind(":")
    if colon > slash:
        repo, tag = repo[:colon], repo[colon + 1 :]
    if repo.startswith("docker.io/"):
        repo = repo[len("docker.io/") :]
        if repo.startswith("library/") and repo.count("/") == 1:
            repo = repo[len("library/") :]
    return repo, tag, digest


def _familiar(name: str) -> str:
    repo, tag, digest = split_stored_name(name)
    return repo + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


class ImageService:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store = engine.store

    def list_images(
        self,
        *,
        all_images: bool = False,
        dangling: bool | None = None,
        reference: str | None = None,
    ) -> list[ImageRow]:
        rows: list[ImageRow] = []
        images = self.store.images
        parents = {r.parent for r in images.records() if r.parent}
        for rec in images.records():
            is_dangling = not rec.tags and not rec.digests
            # Untagged images with children are intermediate build images: hidden without -a.
            if is_dangling and rec.id in parents and not all_images:
                continue
            if dangling is not None and is_dangling != (dangling and rec.id not in parents):
                continue
            entries = self._repo_tag_pairs(rec)
            for repo, tag, digest in entries:
                if reference and not _match_reference(reference, repo, tag):
                    continue
                rows.append(ImageRow(repo, tag, digest, rec.id, rec.created, rec.size, is_dangling))
        return rows

    @staticmethod
    def _repo_tag_pairs(rec: ImageRecord) -> list[tuple[str, str, str]]:
        digests = {}
        for d in rec.digests:
            repo, _, digest = split_stored_name(d)
            digests[repo] = digest
        if not rec.tags:
            if digests:
                return [(repo, "<none>", dg) for repo, dg in digests.items()]
            return [("<none>", "<none>", "")]
        out = []
        for t in rec.tags:
            repo, tag, _ = split_stored_name(t)
            out.append((repo, tag or "<none>", digests.get(repo, "")))
        return out

    def inspect(self, name: str) -> dict[str, Any]:
        from dockyard.image.config import docker_container_config

        images = self.store.images
        image_id = images.resolve(name)
        rec = images.get(image_id)
        cfg = images.config(image_id)
        layers = images.layers(image_id)
        history = cfg.history
        snaps = [self.store.snapshots.path(la.snapshot_id) for la in layers]
        graph: dict[str, str] = {}
        if snaps:
            graph["UpperDir"] = snaps[-1]
            if len(snaps) > 1:
                graph["LowerDir"] = ":".join(reversed(snaps[:-1]))
        return {
            "Id": image_id,
            "RepoTags": [_familiar(t) for t in rec.tags],
            "RepoDigests": [_familiar(d) for d in rec.digests],
            "Parent": rec.parent or "",
            "Comment": str(history[-1].get("comment", "")) if history else "",
            "Created": rec.created,
            "Container": str(cfg.data.get("container", "")),
            "ContainerConfig": docker_container_config(cfg.data.get("container_config") or {}),
            "DockerVersion": str(cfg.data.get("docker_version", "")),
            "Author": str(cfg.data.get("author", "")),
            "Config": docker_container_config(cfg.config),
            "Architecture": cfg.architecture,
            "Variant": str(cfg.data.get("variant", "")) or None,
            "Os": cfg.os,
            "Size": rec.size,
            "VirtualSize": rec.size,
            "GraphDriver": {"Data": graph, "Name": "overlay"},
            "RootFS": {"Type": "layers", "Layers": cfg.diff_ids},
            "Metadata": {"LastTagTime": rec.last_tag_time or "0001-01-01T00:00:00Z"},
        }

    def history(self, name: str) -> list[HistoryRow]:
        images = self.store.images
        image_id = images.resolve(name)
        cfg = images.config(image_id)
        layers = images.layers(image_id)
        entries = cfg.history or [{"created": cfg.created} for _ in layers]
        # Each history entry without empty_layer consumes the next layer, bottom up.
        sizes: list[int] = []
        li = 0
        for h in entries:
            if h.get("empty_layer"):
                sizes.append(0)
            else:
                sizes.append(layers[li].size if li < len(layers) else 0)
                li += 1
        ancestors = self._ancestor_ids(image_id)
        rows = []
        for i, (h, size) in enumerate(zip(entries, sizes, strict=True)):
            rows.append(
                HistoryRow(
                    ancestors.get(i, "<missing>"),
                    str(h.get("created", "")),
                    str(h.get("created_by", "")),
                    size,
                    str(h.get("comment", "")),
                    bool(h.get("empty_layer")),
                )
            )
        rows.reverse()
        return rows

    def _ancestor_ids(self, image_id: str) -> dict[int, str]:
        """History index -> local image ID for this image and its local parents."""
        out: dict[int, str] = {}
        images = self.store.images
        current: str | None = image_id
        while current:
            n = len(images.config(current).history)
            out.setdefault(n - 1, current)
            current = images.get(current).parent
            if current and not images._exists(current):
                break
        return out

    def _event(self, action: str, image_id: str, name: str = "") -> None:
        """An image event as Docker 20.10 writes it: the image ID as actor; ``name`` the
        tag for tag, else the ID again (untag, delete, save, load, import)."""
        self.engine.events.emit("image", action, image_id, {"name": name or image_id})

    def tag(self, source: str, target: str) -> None:
        from dockyard.image.reference import parse_reference

        self.store.images.tag(source, target)
        self._event("tag", self.store.images.resolve(target), parse_reference(target).familiar())

    def remove(
        self, names: Sequence[str], *, force: bool = False, prune: bool = True
    ) -> DeleteReport:
        from dockyard.store.images import DeleteReport

        total = DeleteReport()
        for name in names:
            try:
                image_id = self.store.images.resolve(name)
            except DockyardError:
                image_id = ""  # remove() says why
            r = self.store.images.remove(name, force=force, prune=prune)
            self._report_events(r, image_id)
            total.items += r.items
            total.reclaimed += r.reclaimed
        return total

    def _report_events(self, report: DeleteReport, image_id: str = "") -> None:
        for kind, what in report.items:
            if kind == "Untagged":
                if image_id:
                    self._event("untag", image_id)
            else:
                self._event("delete", what)

    def prune(self, *, all_images: bool = False) -> DeleteReport:
        report = self.store.images.prune(all_images=all_images)
        self._report_events(report)
        return report

    def save(self, names: Sequence[str], output: str | None, fmt: str = "docker") -> None:
        from dockyard.store.archives import save

        save(self.store, names, output, fmt)
        for name in names:
            self._event("save", self.store.images.resolve(name))

    def load(self, path: str) -> list[str]:
        from dockyard.store.archives import load

        loaded = load(self.store, path)
        for line in loaded:  # "Loaded image: busybox:latest", "Loaded image ID: sha256:..."
            try:
                self._event("load", self.store.images.resolve(line.split(": ", 1)[-1]))
            except DockyardError:
                pass
        return loaded

    def import_(
        self,
        src: BinaryIO,
        reference: str | None,
        changes: Sequence[str] = (),
        message: str = "",
        source_name: str = "-",
    ) -> str:
        from dockyard.store.archives import import_rootfs

        image_id = import_rootfs(self.store, src, reference, changes, message, source_name)
        if reference:
            from dockyard.image.reference import parse_reference

            self._event("tag", image_id, parse_reference(reference).familiar())
        self._event("import", image_id)
        return image_id

    def bootstrap(self, name: str) -> str:
        from dockyard.errors import InvalidArgument
        from dockyard.store.bootstrap import bootstrap_busybox

        if name not in ("busybox", "busybox:latest"):
            raise InvalidArgument(f"can only bootstrap busybox, not {name!r}")
        return bootstrap_busybox(self.store)


def _match_reference(pattern: str, repo: str, tag: str) -> bool:
    """``docker images REPO[:TAG]`` and ``-f reference=``: shell-style match on familiar names."""
    import fnmatch

    if ":" in pattern.rsplit("/", 1)[-1]:
        p_repo, p_tag = pattern.rsplit(":", 1)
        return fnmatch.fnmatchcase(repo, p_repo) and fnmatch.fnmatchcase(tag, p_tag)
    return fnmatch.fnmatchcase(repo, pattern)


def stdin_to_file(stream: BinaryIO, dir_: str) -> str:
    """Spool a non-seekable stream (``load`` from stdin) to a temp file the caller removes."""
    import shutil
    import tempfile

    fd, path = tempfile.mkstemp(prefix="dockyard-load-", dir=dir_)
    with os.fdopen(fd, "wb") as f:
        shutil.copyfileobj(stream, f, 1 << 20)
    return path
