"""Image operations in Docker's shapes: list, inspect, history, tag, rmi, prune, save/load."""

from __future__ import annotations

import os

from dockyard.errors import DockyardError

# Not typing's: images, image inspect and prune start with this module (typing: ~3 ms).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, BinaryIO, NamedTuple

    from dockyard.engine import Engine
    from dockyard.engine.prune import PruneFilters
    from dockyard.store.bootstrap.debian import BootstrapOptions
    from dockyard.store.images import DeleteReport, ImageRecord
else:
    from dockyard.model.values import NamedTuple


class ImageRow(NamedTuple):
    """One line of ``docker images``."""

    repository: str
    tag: str
    digest: str
    id: str
    created: str
    size: int
    dangling: bool


class ImageSummary(NamedTuple):
    """One image of ``GET /images/json``: its record and the references it is listed with."""

    record: ImageRecord
    repo_tags: list[str]
    repo_digests: list[str]


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
        records = images.records()
        parents = {r.parent for r in records if r.parent}
        for rec in records:
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

    def summaries(
        self,
        *,
        all_images: bool = False,
        dangling: bool | None = None,
        references: Sequence[str] = (),
    ) -> list[ImageSummary]:
        """``GET /images/json``: one entry per image (Docker's CLI makes a row of each tag).
        With reference patterns an image keeps only the tags and digests that match one, and
        is left out when none does (moby's daemon/images/images.go)."""
        out: list[ImageSummary] = []
        images = self.store.images
        records = images.records()
        parents = {r.parent for r in records if r.parent}
        for rec in records:
            tags, digests = list(rec.tags), list(rec.digests)
            if references:
                tags = [t for t in tags if _matches_any(references, t)]
                digests = [d for d in digests if _matches_any(references, d)]
            if tags or digests:
                if dangling:
                    continue
            elif references or (rec.tags or rec.digests):
                continue  # its references did not match
            elif rec.id in parents and not all_images:
                continue  # an intermediate build image: shown with -a
            elif dangling is False:
                continue
            out.append(
                ImageSummary(rec, [_familiar(t) for t in tags], [_familiar(d) for d in digests])
            )
        return out

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

    def prune(
        self, *, all_images: bool = False, filters: PruneFilters | None = None
    ) -> DeleteReport:
        """``image prune [-a]``: dangling images (all unused ones with ``all_images`` or a
        ``dangling=false`` filter) that the ``until``/``label``/``label!`` filters do not
        protect."""
        if filters is not None and filters.dangling is not None:
            all_images = not filters.dangling
        if filters is None or (filters.until is None and not filters.labels + filters.not_labels):
            report = self.store.images.prune(all_images=all_images)
            self._report_events(report)
            return report
        from dockyard.units import parse_time

        images = self.store.images
        candidates = set()
        # Without -a only untagged images can go: the tagged ones' configs are not read.
        for rec in images.records(untagged=not all_images):
            labels = images.config(rec.id).config.get("Labels") or {}
            if not filters.keeps(labels, parse_time(rec.created)):
                candidates.add(rec.id)
        with images.lock.exclusive():
            report = images.drop_unused(candidates, keep_tagged=not all_images)
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

    def import_url(
        self, url: str, reference: str | None, changes: Sequence[str] = (), message: str = ""
    ) -> str:
        """``docker import URL``: the tar at ``url`` (http or https), downloaded first."""
        import tempfile

        from dockyard.builder.prepare import DownloadError, download
        from dockyard.errors import InvalidArgument

        if not url.startswith(("http://", "https://")):
            raise InvalidArgument(f"import source {url!r} is not an http(s) URL")
        tmp_dir = os.path.join(self.engine.root, "tmp")
        os.makedirs(tmp_dir, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="import-", dir=tmp_dir) as work:
            path = os.path.join(work, "rootfs")
            try:
                download(url, path)
            except DownloadError as e:
                raise InvalidArgument(str(e)) from None
            with open(path, "rb") as f:
                return self.import_(f, reference, changes, message, url)

    def bootstrap(
        self,
        name: str,
        options: BootstrapOptions | None = None,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[str, list[str]]:
        """``image bootstrap``: busybox from the host, debian/node/python from Debian's
        packages (see store/bootstrap/). The image ID and the tags it got."""
        from dockyard.store.bootstrap import bootstrap
        from dockyard.store.bootstrap.debian import BootstrapOptions

        return bootstrap(
            self.store, name, options or BootstrapOptions(), progress or (lambda _m: None)
        )


def _match_reference(pattern: str, repo: str, tag: str) -> bool:
    """``docker images REPO[:TAG]`` and ``-f reference=``: Docker's FamiliarMatch, Go's
    path.Match of the pattern on "repo:tag", else on the repository alone."""
    familiar = f"{repo}:{tag}" if tag and tag != "<none>" else repo
    return _path_match(pattern, familiar) or _path_match(pattern, repo)


def _path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: ``*`` and ``?`` never match a ``/``; ``[...]`` classes, ``^``
    negating. A malformed pattern matches nothing (Go returns ErrBadPattern)."""
    import re

    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                return False
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    try:
        return re.fullmatch("".join(out), name) is not None
    except re.error:
        return False


def _matches_any(patterns: Sequence[str], stored: str) -> bool:
    repo = split_stored_name(stored)[0]
    familiar = _familiar(stored)
    return any(_path_match(p, familiar) or _path_match(p, repo) for p in patterns)


def stdin_to_file(stream: BinaryIO, dir_: str) -> str:
    """Spool a non-seekable stream (``load`` from stdin) to a temp file the caller removes."""
    import shutil
    import tempfile

    fd, path = tempfile.mkstemp(prefix="dockyard-load-", dir=dir_)
    with os.fdopen(fd, "wb") as f:
        shutil.copyfileobj(stream, f, 1 << 20)
    return path
