"""A writable root for one build step, and turning its upper dir into an image layer.

The step's root is an overlay of the parent image's snapshots under a fresh upper dir, made
in the store's ``snapshots/tmp`` (so ``system check`` knows a dead builder's leftovers). The
upper dir *is* the layer's diff: it is written once as the layer tar, then renamed into
place as the new snapshot instead of being unpacked a second time.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import TYPE_CHECKING

from dockyard.image.digest import chain_ids

if TYPE_CHECKING:
    from dockyard.image.layer import WrittenLayer
    from dockyard.store import Store
    from dockyard.store.images import LayerBlob

INIT_DIRS = ("proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "etc")
ETC_FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False


def _rmtree(path: str) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def init_layer(store: Store) -> str:
    """The build init layer (mount points for RUN), relative to the snapshots dir."""
    base = os.path.join(store.root, "build", "init")
    if not os.path.isdir(os.path.join(base, "etc")) or not os.path.exists(
        os.path.join(base, ETC_FILES[-1])
    ):
        tmp = f"{base}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
        _rmtree(tmp)
        for d in INIT_DIRS:
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        for f in ETC_FILES:
            open(os.path.join(tmp, f), "w").close()
        os.makedirs(os.path.dirname(base), exist_ok=True)
        try:
            os.rename(tmp, base)
        except OSError:  # another builder made it meanwhile
            _rmtree(tmp)
    return os.path.relpath(base, store.snapshots.dir)


class StepFS:
    """``with StepFS(store, lower_ids) as fs:`` mounts ``fs.rootfs``; leaving unmounts and
    removes everything that was not committed. With ``overlay=False`` the root is the upper
    dir itself, empty (``COPY --link`` writes into nothing but its own layer)."""

    def __init__(
        self, store: Store, lower_ids: list[int], *, init: bool = False, overlay: bool = True
    ) -> None:
        self.store = store
        self.lower_ids = lower_ids  # top layer first
        self.init = init
        self.overlay = overlay
        self.work = os.path.join(store.snapshots.tmp_dir, f"{os.getpid()}-{os.urandom(6).hex()}")
        self.upper = os.path.join(self.work, "fs")
        self.rootfs = os.path.join(self.work, "merged") if overlay else self.upper
        self.aux = os.path.join(self.work, "aux")  # bundle, etc files
        self.mounted = False

    def __enter__(self) -> StepFS:
        for d in (self.upper, os.path.join(self.work, "ovl"), self.rootfs, self.aux):
            os.makedirs(d, mode=0o755, exist_ok=d == self.rootfs)
        os.chmod(self.work, 0o700)
        if not self.overlay:
            return self
        try:
            self._mount("")
        except BaseException:
            _rmtree(self.work)
            raise
        return self

    def _mount(self, extra: str) -> None:
        from dockyard.runtime.rootfs import mount_overlay

        tops = [extra] if extra else []
        if self.init:
            tops.append(init_layer(self.store))
        mount_overlay(
            self.store.snapshots.dir,
            self.lower_ids,
            self.upper,
            os.path.join(self.work, "ovl"),
            self.rootfs,
            extra_lower_top=":".join(tops),
        )
        self.mounted = True

    def remount_with(self, layer: str) -> None:
        """Mount the root again with directory ``layer`` (below the step's aux dir) as a
        lower layer above the image's: RUN's mount points, which the step's layer must not
        get. What the upper holds stays."""
        self.unmount()
        self._mount(os.path.relpath(layer, self.store.snapshots.dir))

    def unmount(self) -> None:
        if self.mounted:
            from dockyard.runtime.rootfs import unmount

            unmount(self.rootfs)
            self.mounted = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unmount()
        if os.path.lexists(self.work):
            _rmtree(self.work)

    def commit(
        self, parent_diff_ids: list[str], new_blobs: list[str]
    ) -> tuple[LayerBlob, str] | None:
        """Write the upper dir as a layer blob and make it the snapshot for its chain ID;
        returns the blob and its diff_id, or None when the step changed nothing (Docker then
        records an empty layer: a history entry, no layer)."""
        from dockyard.image.layer import write_layer
        from dockyard.image.manifest import OCI_LAYER
        from dockyard.store.images import LayerBlob

        self.unmount()
        if not os.listdir(self.upper) and not _is_opaque(self.upper):
            return None
        content = self.store.content
        with content.writer() as w:
            written = write_layer(self.upper, w, from_overlay_upper=True)
            digest = w.commit()
        new_blobs.append(digest)
        chains = chain_ids([*parent_diff_ids, written.diff_id])
        self._adopt(chains[-1], chains[-2] if len(chains) > 1 else None, written)
        return LayerBlob(digest, OCI_LAYER, w.size), written.diff_id

    def _adopt(self, chain_id: str, parent: str | None, written: WrittenLayer) -> None:
        snaps = self.store.snapshots
        if snaps.get(chain_id) is not None:
            return  # the same layer on the same parent exists already (and is verified)
        for d in ("ovl", "merged", "aux"):
            _rmtree(os.path.join(self.work, d))
        os.chmod(self.work, 0o755)
        with self.store.db.transaction() as c:
            r = c.execute("SELECT id FROM snapshots WHERE chain_id = ?", (chain_id,)).fetchone()
            if r:
                return
            cur = c.execute(
                "INSERT INTO snapshots (chain_id, parent, diff_id, size, tar_size, created)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (chain_id, parent, written.diff_id, written.size, written.tar_size, time.time()),
            )
            final = os.path.join(snaps.dir, str(int(cur.lastrowid or 0)))
            if os.path.lexists(final):  # a dir with no row, left by a killed process
                _rmtree(final)
            os.rename(self.work, final)
