"""The store: one object that owns a ``--root`` directory."""

from __future__ import annotations

import os

from dockyard.store.content import ContentStore
from dockyard.store.db import Metadata
from dockyard.store.images import ContainerUsers, ImageStore
from dockyard.store.lock import StoreLock
from dockyard.store.snapshots import Snapshots


class Store:
    def __init__(self, root: str, container_users: ContainerUsers | None = None):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        self.content = ContentStore(self.root)
        self.db = Metadata(self.root)
        self.snapshots = Snapshots(self.root, self.db)
        self.lock = StoreLock(self.root)
        self.images = ImageStore(self.content, self.db, self.snapshots, self.lock, container_users)

    def close(self) -> None:
        self.db.close()
