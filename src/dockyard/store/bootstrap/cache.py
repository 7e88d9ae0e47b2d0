"""The bootstrap cache: Debian's .debs and finished root filesystem layers, outside any store.

A Debian-based image takes a minute or more to assemble, and every store (each test's, each
user's ``--root``) would otherwise assemble its own. The cache lives in one stable directory
(``$DOCKYARD_BOOTSTRAP_CACHE``, else ``/var/cache/dockyard/bootstrap`` for root and
``$XDG_CACHE_HOME/dockyard/bootstrap`` for others):

```
debs/             apt's downloaded packages, shared by every recipe (mmdebstrap syncs them in
                  and out), so a rebuild downloads only what changed on the mirror
layers/<key>/     layer.tar (the image's one layer, uncompressed) and meta.json (diff_id,
                  created, the package versions); <key> hashes the recipe and the exact
                  package versions, so the same versions find the same layer
tmp/              entries being built (renamed into layers/ when complete)
lock              flock: one build at a time (builds share debs/)
```

Entries are immutable and appear by rename; a recipe keeps only its newest entry.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

CACHE_ENV = "DOCKYARD_BOOTSTRAP_CACHE"


def default_cache_dir() -> str:
    explicit = os.environ.get(CACHE_ENV, "").strip()
    if explicit:
        return explicit
    if os.geteuid() == 0:
        return "/var/cache/dockyard/bootstrap"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "dockyard", "bootstrap")


@dataclass(frozen=True, slots=True)
class CachedLayer:
    """A finished root filesystem layer."""

    path: str  # the uncompressed layer tar
    diff_id: str
    tar_size: int
    created: str  # RFC 3339: the newest file the packages installed
    recipe: str  # what built it ("node bookworm ...")
    packages: tuple[str, ...]  # "name=version", sorted

    @property
    def versions(self) -> dict[str, str]:
        return dict(p.split("=", 1) for p in self.packages)


class BootstrapCache:
    def __init__(self, root: str | None = None) -> None:
        self.root = root or default_cache_dir()
        self.debs = os.path.join(self.root, "debs")
        self._layers = os.path.join(self.root, "layers")
        self._tmp = os.path.join(self.root, "tmp")

    def _ensure(self) -> None:
        for d in (self.root, self.debs, self._layers, self._tmp):
            os.makedirs(d, mode=0o755, exist_ok=True)

    @contextmanager
    def building(self) -> Iterator[None]:
        """Exclusive: one build at a time in this cache (mmdebstrap writes debs/)."""
        self._ensure()
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def get(self, key: str) -> CachedLayer | None:
        entry = os.path.join(self._layers, key)
        try:
            with open(os.path.join(entry, "meta.json"), "rb") as f:
                meta: dict[str, Any] = json.load(f)
            layer = os.path.join(entry, "layer.tar")
            if os.path.getsize(layer) != meta["tar_size"]:
                return None
            return CachedLayer(
                layer,
                str(meta["diff_id"]),
                int(meta["tar_size"]),
                str(meta["created"]),
                str(meta["recipe"]),
                tuple(meta["packages"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, or a damaged entry: build it again

    @contextmanager
    def new_entry(self) -> Iterator[str]:
        """A scratch directory for one build, removed afterwards (whatever ``publish`` did
        not move out of it)."""
        self._ensure()
        tmp = tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=self._tmp)
        try:
            yield tmp
        finally:
            remove_tree(tmp)

    def publish(self, key: str, layer_path: str, meta: dict[str, Any]) -> CachedLayer:
        """Move a finished layer into the cache under ``key``; drop older entries of the
        same recipe (a newer mirror state replaced them)."""
        entry = tempfile.mkdtemp(prefix=f"{os.getpid()}-entry-", dir=self._tmp)
        os.rename(layer_path, os.path.join(entry, "layer.tar"))
        with open(os.path.join(entry, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        final = os.path.join(self._layers, key)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(entry, final)
        for other in os.listdir(self._layers):
            old = self.get(other) if other != key else None
            if old is not None and old.recipe == meta["recipe"]:
                shutil.rmtree(os.path.join(self._layers, other), ignore_errors=True)
        cached = self.get(key)
        assert cached is not None
        return cached

    def leftovers(self) -> None:
        """Remove scratch dirs of builds whose process is gone (killed mid-build)."""
        if not os.path.isdir(self._tmp):
            return
        for name in os.listdir(self._tmp):
            pid = name.split("-", 1)[0]
            if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
                remove_tree(os.path.join(self._tmp, name))


def remove_tree(path: str) -> None:
    """rmtree that first unmounts whatever is mounted below ``path``: mmdebstrap mounts
    /proc, /sys and /dev into the root it builds, and a build killed half-way leaves them
    there; rmtree would walk into the host's."""
    real = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        points = []
    for point in sorted(points, reverse=True):
        if point.startswith(real + "/"):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)
