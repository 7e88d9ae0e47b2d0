"""Engine.builder: ``docker build`` for both front ends."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

if TYPE_CHECKING:
    from dockyard.builder.builder import BuildOptions
    from dockyard.builder.progress import Progress
    from dockyard.engine import Engine


class BuilderService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def build(self, opts: BuildOptions, progress: Progress | None = None) -> str:
        """Build ``opts.dockerfile`` in ``opts.context``; returns the image ID (tagged with
        ``opts.tags``). Raises BuildError (exit 1) or StepFailed (the RUN's exit code)."""
        from dockyard.builder.builder import Builder
        from dockyard.builder.progress import Progress
        from dockyard.engine import Engine

        root, run_root = self.engine.root, self.engine.run_root

        def new_host() -> Engine:
            # Independent stages build on threads of their own: SQLite connections belong
            # to the thread that made them.
            return Engine(root, run_root)

        return Builder(self.engine, progress or Progress(), new_host).build(opts)

    def build_context(
        self,
        source: BinaryIO | str,
        dockerfile: str | None,
        opts: BuildOptions,
        progress: Progress | None = None,
    ) -> str:
        """``POST /build``: build from a context the caller sends, ``source``: the request's
        body (a tar, maybe compressed, unpacked as it arrives; or a bare Dockerfile), or the
        ``remote`` URL (a git repository, a tar or a Dockerfile to download). ``dockerfile``
        is a path inside the context. ``opts``' own context and Dockerfile are ignored."""
        import io

        from dockyard.builder.parser import BuildError
        from dockyard.builder.prepare import is_git_url, is_url, prepare, prepare_upload

        say = progress.message if progress is not None else None
        if isinstance(source, str):
            # Only what a URL names: a path on the daemon's host is not the client's to read.
            if not (is_url(source) or is_git_url(source)):
                raise BuildError(f"unable to prepare context: remote {source!r} is not a URL")
            prepared_cm = prepare(self.engine.root, source, dockerfile, io.BytesIO(), say)
        else:
            prepared_cm = prepare_upload(self.engine.root, source, dockerfile)
        with prepared_cm as prepared:
            return self.build(
                opts._replace(
                    dockerfile=prepared.dockerfile,
                    context=prepared.context,
                    dockerignore=prepared.dockerignore,
                ),
                progress,
            )

    def prune(self, *, all_entries: bool = False, until: float | None = None) -> CachePruneReport:
        """``builder prune``: forget cache entries (only those no tag or container keeps
        alive, unless ``all_entries``; only those unused for ``until`` seconds, if given) and
        delete the images only those entries kept. Images that a tag or a container uses,
        and their parents, always stay: after ``-a`` a build of them just misses the cache."""
        import time

        from dockyard.builder.cache import BuildCache

        store = self.engine.store
        cache = BuildCache(self.engine.root, store.db)
        with store.lock.exclusive():
            entries = cache.entries()
            if until is not None:
                cutoff = time.time() - until
                entries = [e for e in entries if e.used < cutoff]
            live = store.images.in_use()
            if not all_entries:
                entries = [e for e in entries if e.image_id not in live]
            for e in entries:
                cache.remove(e.key)
            images = store.images.drop_unused({e.image_id for e in entries} - live)
            mounts: list[str] = []
            mount_bytes = 0
            if all_entries:
                # RUN --mount=type=cache directories are no image's: only -a drops them (those
                # a running build holds stay), with the --link layers' index.
                from dockyard.builder.mounts import cache_mounts, remove_cache_mount

                for path, _ident, size in cache_mounts(self.engine.root):
                    if remove_cache_mount(path):
                        mounts.append(os.path.basename(path))
                        mount_bytes += size
                cache.remove_layers()
        return CachePruneReport(
            sorted(e.key for e in entries) + mounts,
            images.reclaimed + sum(e.size for e in entries) + mount_bytes,
        )


def cache_prune_until(filters: Mapping[str, Sequence[str]]) -> float | None:
    """``builder prune --filter until=24h`` (the only filter the classic builder's cache
    has): seconds an entry must have gone unused, or None. Docker's messages otherwise."""
    from dockyard.builder.metadata import go_duration
    from dockyard.builder.parser import BuildError

    until: float | None = None
    for key, values in filters.items():
        if key.strip().lower() != "until":
            raise BuildError(f"failed to prune build cache: Invalid filter '{key}'")
        for value in values:
            ns = go_duration(value.strip())
            if ns is None:
                raise BuildError(
                    f'failed to prune build cache: "until" filter expects a duration (e.g., '
                    f"'24h'): time: invalid duration \"{value}\""
                )
            until = ns / 1e9
    return until


class CachePruneReport(NamedTuple):
    deleted: list[str]  # cache keys
    reclaimed: int  # bytes: the layers of the images deleted, and the entries' files
