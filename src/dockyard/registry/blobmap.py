"""What we know about layers on registries (Docker's "v2 metadata" service, smaller).

For each diff_id: the compressed blobs that carry it (digest, size, media type) and the
repositories of each registry known to hold them. Push uses it to skip compressing and
uploading a layer the registry already has (``Layer already exists``) and to ask for a
cross-repository mount (``Mounted from ...``); pull records where each layer came from.

Kept in ``<root>/registry/blobs.json``, rewritten atomically under an flock: losing it costs
only a recompression, never correctness (the registry is always asked before a blob is
assumed present). A writer killed between writing its temp file and renaming it leaves the
temp file; the next writer, holding the same flock, knows any temp file is such a leftover
and removes it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

MAX_REPOS = 20  # per blob and registry: enough to find a mount source


class KnownBlob(NamedTuple):
    digest: str
    size: int
    media_type: str
    repos: dict[str, list[str]]  # registry -> repositories


class BlobMap:
    def __init__(self, root: str):
        self.dir = os.path.join(root, "registry")
        self.path = os.path.join(self.dir, "blobs.json")

    def _read(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as f:
                data = json.load(f)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def lookup(self, diff_id: str) -> list[KnownBlob]:
        out = []
        for d, entry in (self._read().get(diff_id) or {}).items():
            try:
                out.append(
                    KnownBlob(d, int(entry["size"]), str(entry["media_type"]), entry["repos"])
                )
            except (KeyError, TypeError, ValueError):
                continue
        return out

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.dir, "blobs.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            for name in os.listdir(self.dir):
                if name.endswith(".tmp"):
                    os.unlink(os.path.join(self.dir, name))
            data = self._read()
            yield data
            tmp = f"{self.path}.{os.getpid()}.tmp"
            with open(tmp, "w") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        finally:
            os.close(fd)

    def record(self, entries: list[tuple[str, str, int, str, str, str]]) -> None:
        """(diff_id, digest, size, media type, registry, repository) rows."""
        if not entries:
            return
        with self._locked() as data:
            for diff_id, digest, size, media_type, registry, repo in entries:
                blobs = data.setdefault(diff_id, {})
                entry = blobs.setdefault(
                    digest, {"size": size, "media_type": media_type, "repos": {}}
                )
                repos = entry["repos"].setdefault(registry, [])
                if repo in repos:
                    repos.remove(repo)
                repos.insert(0, repo)
                del repos[MAX_REPOS:]

    def forget(self, diff_id: str, digest: str, registry: str, repo: str) -> None:
        with self._locked() as data:
            entry = (data.get(diff_id) or {}).get(digest)
            if entry and repo in entry["repos"].get(registry, []):
                entry["repos"][registry].remove(repo)
