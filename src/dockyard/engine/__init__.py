"""The engine: the one API both front ends (the CLI and the daemon) call.

``Engine(root=..., run_root=...)`` wires the store and the services; each service method does
one user-visible operation, over typed values (``dockyard.model``); Docker's JSON shapes are
rendered in one place per kind (``model/docker.py`` for containers).
"""

from __future__ import annotations

import os

from dockyard.lazy import cached_property

# Not typing.TYPE_CHECKING: importing typing costs ~2 ms of start-up (`dockyard exec`
# is latency-critical); type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable

    from dockyard.engine.builder import BuilderService
    from dockyard.engine.containers import ContainerService
    from dockyard.engine.images import ImageService
    from dockyard.engine.networks import NetworkService
    from dockyard.engine.registry import RegistryService
    from dockyard.engine.system import SystemService
    from dockyard.engine.volumes import VolumeService
    from dockyard.store import Store
    from dockyard.store.events import Events


DEFAULT_ROOT = "/var/lib/dockyard"
DEFAULT_RUN_ROOT = "/run/dockyard"


class Engine:
    def __init__(
        self,
        root: str | None = None,
        run_root: str | None = None,
        *,
        exit_recorder: Callable[[str], bool] | None = None,
    ):
        self.root = os.path.abspath(root or os.environ.get("DOCKYARD_ROOT") or DEFAULT_ROOT)
        self.run_root = os.path.abspath(
            run_root or os.environ.get("DOCKYARD_RUN_ROOT") or DEFAULT_RUN_ROOT
        )
        # In a process that records exits itself (the daemon's exit watcher): given the ID
        # of a container that has ended, waits until that process has recorded its exit;
        # False when it does not record that one (the reader records it then).
        self.exit_recorder = exit_recorder

    @cached_property
    def store(self) -> Store:
        from dockyard.store import Store

        # rmi asks the container side which containers use an image (running or not).
        return Store(self.root, container_users=self._container_users)

    def _container_users(self, image_id: str) -> list[tuple[str, bool]]:
        out = []
        for r in self.store.db.query("SELECT id FROM containers WHERE image_id = ?", (image_id,)):
            ctr = self.containers.get(str(r["id"]))
            out.append((ctr.id, ctr.running))
        return out

    @cached_property
    def events(self) -> Events:
        """The event journal (store/events.py): ``events.emit(type, action, actor, attrs)``,
        ``events.container(ctr, action, **attrs)``."""
        from dockyard.store.events import Events

        return Events(self.root)

    @cached_property
    def containers(self) -> ContainerService:
        from dockyard.engine.containers import ContainerService

        return ContainerService(self)

    @cached_property
    def networks(self) -> NetworkService:
        from dockyard.engine.networks import NetworkService

        return NetworkService(self)

    @cached_property
    def volumes(self) -> VolumeService:
        from dockyard.engine.volumes import VolumeService

        return VolumeService(self)

    @cached_property
    def images(self) -> ImageService:
        from dockyard.engine.images import ImageService

        return ImageService(self)

    @cached_property
    def registry(self) -> RegistryService:
        from dockyard.engine.registry import RegistryService

        return RegistryService(self)

    @cached_property
    def system(self) -> SystemService:
        from dockyard.engine.system import SystemService

        return SystemService(self)

    @cached_property
    def builder(self) -> BuilderService:
        from dockyard.engine.builder import BuilderService

        return BuilderService(self)

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
