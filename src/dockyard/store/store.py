"""The store: one object that owns a ``--root`` directory.

Its parts are opened on first use: ``exec``, ``ps`` and ``stop`` need only the metadata DB,
and start-up time is a feature.
"""

from __future__ import annotations

import os

from dockyard.lazy import cached_property
from dockyard.store.db import Metadata

# Not typing.TYPE_CHECKING: importing typing costs ~2 ms of start-up (`dockyard exec`
# is latency-critical); type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from dockyard.store.content import ContentStore
    from dockyard.store.images import ContainerUsers, ImageStore
    from dockyard.store.lock import StoreLock
    from dockyard.store.snapshots import Snapshots


class Store:
    def __init__(self, root: str, container_users: ContainerUsers | None = None):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        self.db = Metadata(self.root)
        self._container_users = container_users

    @cached_property
    def content(self) -> ContentStore:
        from dockyard.store.content import ContentStore

        return ContentStore(self.root)

    @cached_property
    def snapshots(self) -> Snapshots:
        from dockyard.store.snapshots import Snapshots

        return Snapshots(self.root, self.db)

    @cached_property
    def lock(self) -> StoreLock:
        from dockyard.store.lock import StoreLock

        return StoreLock(self.root)

    @cached_property
    def images(self) -> ImageStore:
        from dockyard.store.images import ImageStore

        return ImageStore(self.content, self.db, self.snapshots, self.lock, self._container_users)

    def close(self) -> None:
        self.db.close()
