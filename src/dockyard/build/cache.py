"""The build cache: (parent image, instruction, content checksum) -> the image a step made.

Keys live as small files under ``<root>/build/cache`` (one read per lookup, no schema). A
hit is trusted only while its image still exists with the same parent, so ``rmi`` and
``image prune`` need not know about the cache: an entry whose image is gone is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.store.db import Metadata


def cache_key(parent: str, material: object) -> str:
    return hashlib.sha256(json.dumps([parent, material], sort_keys=True).encode()).hexdigest()


class BuildCache:
    def __init__(self, root: str, db: Metadata) -> None:
        self.dir = os.path.join(root, "build", "cache")
        self.db = db

    def get(self, key: str, parent: str) -> str | None:
        try:
            with open(os.path.join(self.dir, key)) as f:
                image_id = f.read().strip()
        except OSError:
            return None
        r = self.db.one("SELECT parent FROM images WHERE id = ?", (image_id,))
        if r is None or (r["parent"] or "") != parent:
            return None
        return image_id

    def put(self, key: str, image_id: str) -> None:
        os.makedirs(self.dir, exist_ok=True)
        tmp = os.path.join(self.dir, f".{key}.{os.getpid()}")
        with open(tmp, "w") as f:
            f.write(image_id)
        os.replace(tmp, os.path.join(self.dir, key))

    def clear(self) -> int:
        """Forget every entry (``builder prune``); images stay."""
        n = 0
        try:
            names = os.listdir(self.dir)
        except OSError:
            return 0
        for name in names:
            try:
                os.unlink(os.path.join(self.dir, name))
                n += 1
            except OSError:
                pass
        return n
