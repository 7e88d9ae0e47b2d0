"""Engine.builder: ``docker build`` for both front ends."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.build.builder import BuildOptions
    from dockyard.build.progress import Progress
    from dockyard.engine import Engine


class BuilderService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def build(self, opts: BuildOptions, progress: Progress | None = None) -> str:
        """Build ``opts.dockerfile`` in ``opts.context``; returns the image ID (tagged with
        ``opts.tags``). Raises BuildError (exit 1) or StepFailed (the RUN's exit code)."""
        from dockyard.build.builder import Builder
        from dockyard.build.progress import Progress

        return Builder(self.engine, progress or Progress()).build(opts)

    def prune(self) -> int:
        """Forget the build cache's keys (images stay until rmi/prune); returns how many."""
        from dockyard.build.cache import BuildCache

        return BuildCache(self.engine.root, self.engine.store.db).clear()
