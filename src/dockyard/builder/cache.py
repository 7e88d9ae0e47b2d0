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
    from dockyard.store.images import LayerBlob


class LinkLayer(NamedTuple):
    """A ``COPY --link`` layer, reusable on any base."""

    digest: str
    media_type: str
    size: int
    diff_id: str

    def blob(self) -> LayerBlob:
        from dockyard.store.images import LayerBlob

        return LayerBlob(self.digest, self.media_type, self.size)


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

    def get_layer(self, key: str) -> LinkLayer | None:
        """The layer a ``COPY --link`` with this key made (its blob may since be gone)."""
        try:
            with open(os.path.join(self.dir, "layers", key)) as f:
                d = json.load(f)
            return LinkLayer(str(d["digest"]), str(d["media_type"]), int(d["size"]),
                             str(d["diff_id"]))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put_layer(self, key: str, blob: LayerBlob, diff_id: str) -> None:
        d = os.path.join(self.dir, "layers")
        os.makedirs(d, exist_ok=True)
        tmp = os.path.join(d, f".{key}.{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump({"digest": blob.digest, "media_type": blob.media_type, "size": blob.size,
                       "diff_id": diff_id}, f)  # fmt: skip
        os.replace(tmp, os.path.join(d, key))

    def remove_layers(self) -> None:
        import shutil

        shutil.rmtree(os.path.join(self.dir, "layers"), ignore_errors=True)

    def entries(self) -> list[Entry]:
        out = []
        try:
            names = os.listdir(self.dir)
        except FileNotFoundError:
            return []
        for name in names:
            if name.startswith(".") or name == "layers":
                continue  # a put in progress; --link layers
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
