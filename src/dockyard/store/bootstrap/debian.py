"""``dockyard image bootstrap debian|node|python``: real base images from Debian's packages.

Resolve (mmdebstrap's dry run: the exact package versions) -> the cache has a layer for
this recipe and these versions? -> else build it: mmdebstrap into a scratch dir, the
recipe's files and removals, device nodes and host files out, times clamped -> the layer
tar goes into the cache -> ingest it into the store and tag it, as ``load`` would.

Reproducible: the same package versions give the same layer bytes and the same image ID.
Entries are written in name order with numeric owners (``write_layer``), every file time
is clamped to the newest time a package shipped (so files made by maintainer scripts do not
carry the build's date), mmdebstrap runs with a fixed SOURCE_DATE_EPOCH and removes its own
logs and caches, and the config's ``created`` is that same newest time.
"""

from __future__ import annotations

import glob
import hashlib
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.errors import Unavailable
from dockyard.image.changes import apply_changes
from dockyard.image.config import new_config
from dockyard.image.layer import CHUNK, write_layer
from dockyard.image.manifest import OCI_LAYER
from dockyard.image.reference import parse_reference
from dockyard.store.archives import adding
from dockyard.store.bootstrap import mmdebstrap
from dockyard.store.bootstrap.cache import BootstrapCache, CachedLayer, remove_tree
from dockyard.store.bootstrap.recipes import Recipe, check_tag, parse_name, write_files
from dockyard.store.images import LayerBlob
from dockyard.store.store import Store

# Docker's JSON progress messages ({"status", "id", "progressDetail"}), as pull emits them.
Progress = Callable[[dict[str, Any]], None]

# Files mmdebstrap copies from the host (its debootstrap compatibility) or that the runtime
# provides at run time: an image must not carry this machine's.
HOST_FILES = ("etc/resolv.conf", "etc/hostname", "etc/hosts")


@dataclass(frozen=True, slots=True)
class BootstrapOptions:
    suite: str | None = None  # default: recipes.DEFAULT_SUITE, or the tag of debian:SUITE
    mirrors: tuple[str, ...] = ()  # apt mirrors (URLs or sources lines); none: mmdebstrap's
    changes: tuple[str, ...] = ()  # Dockerfile instructions for the config, as import -c
    use_cache: bool = True  # False: build again even if the cache has these versions
    cache_dir: str | None = None


def bootstrap_debian(
    store: Store, name: str, options: BootstrapOptions, progress: Progress
) -> tuple[str, list[str]]:
    """Build (or take from the cache) and store the image; its ID and the tags it got."""
    if os.geteuid() != 0:
        raise Unavailable("bootstrapping Debian images needs root (mmdebstrap's root mode)")
    recipe, suite, tag = parse_name(name, options.suite)
    mmdebstrap.mmdebstrap_binary()  # a missing tool is said before any work
    request = mmdebstrap.Request(suite, recipe.packages, options.mirrors)
    cache = BootstrapCache(options.cache_dir)
    cache.leftovers()

    progress({"status": f"Resolving {recipe.repo} packages in Debian {suite}"})
    packages = mmdebstrap.resolve(request)
    versions = dict(p.split("=", 1) for p in packages)
    check_tag(recipe, versions, suite, tag)
    identity = recipe.identity(suite, options.mirrors)
    key = _cache_key(identity, packages)

    layer = cache.get(key) if options.use_cache else None
    if layer is None:
        with cache.building():
            # Another process may have built it while this one waited for the lock.
            layer = cache.get(key) if options.use_cache else None
            if layer is None:
                layer = _build(cache, key, identity, recipe, request, packages, progress)
    else:
        progress({"status": f"Using the cached layer ({len(packages)} packages)"})

    tags = [tag] if tag else recipe.tags(layer.versions, suite)
    return _store_image(store, recipe, layer, tags, options, progress), [
        f"{recipe.repo}:{t}" for t in tags
    ]


def _cache_key(identity: str, packages: Sequence[str]) -> str:
    h = hashlib.sha256(identity.encode())
    for p in packages:
        h.update(b"\n" + p.encode())
    return h.hexdigest()


def _build(
    cache: BootstrapCache,
    key: str,
    identity: str,
    recipe: Recipe,
    request: mmdebstrap.Request,
    packages: Sequence[str],
    progress: Progress,
) -> CachedLayer:
    statuses = {"download": "Downloading", "install": "Installing"}

    def report(phase: str, done: int, total: int) -> None:
        progress(
            {
                "id": phase,
                "status": statuses[phase],
                "progressDetail": {"current": done, "total": total},
                "unit": "packages",
            }
        )

    progress({"status": f"Building {recipe.repo} from {len(packages)} packages (mmdebstrap)"})
    with cache.new_entry() as scratch:
        rootfs = os.path.join(scratch, "rootfs")
        mmdebstrap.build(request, rootfs, cache.debs, packages, report)
        installed = installed_packages(rootfs)
        versions = dict(p.split("=", 1) for p in installed)
        _tidy(rootfs, recipe, versions)
        stamp = newest_package_time(rootfs)
        _clamp_times(rootfs, stamp)
        tar_path = os.path.join(scratch, "layer.tar")
        progress({"id": "layer", "status": "Writing the layer"})
        with open(tar_path, "wb") as f:
            written = write_layer(rootfs, f, from_overlay_upper=False, mtime_clamp=stamp)
            f.flush()
            os.fsync(f.fileno())
        remove_tree(rootfs)
        # The mirror may have moved between the dry run and the build: file the layer under
        # what was really installed.
        meta = {
            "diff_id": written.diff_id,
            "tar_size": written.tar_size,
            "created": _rfc3339(stamp),
            "recipe": identity,
            "packages": list(installed),
        }
        real_key = key if tuple(installed) == tuple(packages) else _cache_key(identity, installed)
        return cache.publish(real_key, tar_path, meta)


def installed_packages(rootfs: str) -> tuple[str, ...]:
    """``name=version`` of every package dpkg installed, sorted."""
    out: list[str] = []
    name = version = ""
    installed = False
    with open(os.path.join(rootfs, "var/lib/dpkg/status"), encoding="utf-8") as f:
        for line in [*f, "\n"]:
            if line.startswith("Package: "):
                name = line[9:].strip()
            elif line.startswith("Version: "):
                version = line[9:].strip()
            elif line.startswith("Status: "):
                installed = line.split()[-1] == "installed"
            elif not line.strip():
                if name and version and installed:
                    out.append(f"{name}={version}")
                name = version = ""
                installed = False
    return tuple(sorted(out))


def _tidy(rootfs: str, recipe: Recipe, versions: dict[str, str]) -> None:
    # /dev is the runtime's to fill (runc mounts a tmpfs there); layers may not carry devices.
    dev = os.path.join(rootfs, "dev")
    for entry in os.listdir(dev):
        path = os.path.join(dev, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            remove_tree(path)
        else:
            os.unlink(path)
    for rel in HOST_FILES:
        path = os.path.join(rootfs, rel)
        if os.path.lexists(path):
            os.unlink(path)
    for pattern in recipe.remove:
        for path in glob.glob(os.path.join(rootfs, pattern)):
            os.unlink(path)
    write_files(rootfs, recipe.files(versions))


def newest_package_time(rootfs: str) -> int:
    """The newest modification time among the regular files the packages shipped (dpkg's
    file lists, conffiles aside: maintainer scripts may edit those). It depends only on the
    package versions, not on when the build ran."""
    info = os.path.join(rootfs, "var/lib/dpkg/info")
    conffiles: set[str] = set()
    for path in glob.glob(os.path.join(info, "*.conffiles")):
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            conffiles.update(line.rstrip("\n") for line in f)
    newest = 0
    for path in glob.glob(os.path.join(info, "*.list")):
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                rel = line.rstrip("\n")
                if not rel or rel in conffiles:
                    continue
                try:
                    st = os.lstat(rootfs + rel)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    newest = max(newest, int(st.st_mtime))
    return newest or mmdebstrap.BUILD_EPOCH


def _clamp_times(rootfs: str, stamp: int) -> None:
    """Files newer than ``stamp`` (made while installing) get ``stamp``. write_layer clamps
    the tar too; doing it on disk keeps the tree and the tar in agreement."""
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for n in [*dirnames, *filenames, ""]:
            path = os.path.join(dirpath, n) if n else dirpath
            st = os.lstat(path)
            if st.st_mtime > stamp:
                os.utime(path, (stamp, stamp), follow_symlinks=False)


def _rfc3339(stamp: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp))


def _store_image(
    store: Store,
    recipe: Recipe,
    layer: CachedLayer,
    tags: list[str],
    options: BootstrapOptions,
    progress: Progress,
) -> str:
    versions = layer.versions
    config = apply_changes(recipe.config(versions), list(options.changes))
    history: list[dict[str, Any]] = [
        {
            "created": layer.created,
            "created_by": f"dockyard image bootstrap {recipe.repo}"
            f" (mmdebstrap, {len(layer.packages)} Debian packages)",
        }
    ]
    if options.changes:
        changes = "; ".join(options.changes)
        history.append({"created": layer.created, "created_by": changes, "empty_layer": True})
    with adding(store) as new_blobs:
        if not store.content.has(layer.diff_id):
            with (
                open(layer.path, "rb") as src,
                store.content.writer(layer.diff_id, layer.tar_size) as w,
            ):
                done = 0
                while chunk := src.read(CHUNK):
                    w.write(chunk)
                    done += len(chunk)
                    progress(
                        {
                            "id": "layer",
                            "status": "Copying",
                            "progressDetail": {"current": done, "total": layer.tar_size},
                        }
                    )
                new_blobs.append(w.commit())
        progress({"id": "layer", "status": "Unpacking"})
        cfg = new_config([layer.diff_id], config, history, created=layer.created)
        image_id = store.images.add(
            cfg,
            [LayerBlob(layer.diff_id, OCI_LAYER, layer.tar_size)],
            tags=[parse_reference(f"{recipe.repo}:{t}") for t in tags],
        )
    progress({"id": "layer", "status": "Done"})
    return image_id
