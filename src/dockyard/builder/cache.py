"""The build cache: (parent image, instruction, content checksum) -> the image a step made.

Keys live as small files under ``<root>/build/cache`` (one read per lookup, no schema); a
file's mtime is when the entry was last used (``builder prune --filter until=``). A hit is
trusted only while its image still exists with the same parent, so ``rmi`` and ``image
prune`` need not know about the cache: an entry whose image is gone is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from dockyard.store.db import Metadata


class Entry(NamedTuple):
    key: str
    image_id: str
    used: float  # when it was stored or last hit (epoch seconds)
    size: int  # bytes of its file


def cache_key(parent: str, material: object) -> str:
    return hashlib.sha256(json.dumps([parent, material], sort_keys=True).encode()).hexdigest()


class BuildCache:
    def __init__(self, root: str, db: Metadata) -> None:
        self.dir = os.path.join(root, "build", "cache")
        self.db = db

    def get(self, key: str, parent: str) -> str | None:
        path = os.path.join(self.dir, key)
        try:
            with open(path) as f:
                image_id = f.read().strip()
        except OSError:
            return None
        r = self.db.one("SELECT parent FROM images WHERE id = ?", (image_id,))
        if r is None or (r["parent"] or "") != parent:
            return None
        try:
            os.utime(path)  # last used: what prune's "until" looks at
        except OSError:
            pass
        return image_id

    def put(self, key: str, image_id: str) -> None:
        os.makedirs(self.dir, exist_ok=True)
        tmp = os.path.join(self.dir, f".{key}.{os.getpid()}")
        with open(tmp, "w") as f:
            f.write(image_id)
        os.replace(tmp, os.path.join(self.dir, key))

    def entries(self) -> list[Entry]:
        out = []
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        for name in names:
            if name.startswith("."):
                continue  # a put in progress
            path = os.path.join(self.dir, name)
            try:
                with open(path) as f:
                    image_id = f.read().strip()
                st = os.stat(path)
            except OSError:
                continue
            out.append(Entry(name, image_id, st.st_mtime, st.st_size))
        return out

    def remove(self, key: str) -> None:
        try:
            os.unlink(os.path.join(self.dir, key))
        except FileNotFoundError:
            pass
