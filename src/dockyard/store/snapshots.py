"""Snapshots: each image layer unpacked once, keyed by chain ID, shared by every image.

``snapshots/<n>/fs`` holds one layer's changes in overlayfs form (whiteouts as 0:0 char
devices, opaque dirs by xattr), so a container's root is an overlay mount of these dirs.
Short numeric ids keep the overlay mount options well under the kernel's one-page limit.
"""

from __future__ import annotations

import os
import time

from dockyard.sqlite import sqlite3  # _sqlite3, loaded without functools
from dockyard.store.db import Metadata

TYPE_CHECKING = False  # not typing's: the image listing path imports this module
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO, NamedTuple
else:
    from dockyard.model.values import NamedTuple


def _rmtree(path: str, ignore_errors: bool = True) -> None:
    import shutil  # shutil loads bz2/lzma/zlib: keep it off the listing commands' path

    shutil.rmtree(path, ignore_errors=ignore_errors)


class Snapshot(NamedTuple):
    id: int
    chain_id: str
    parent: str | None
    diff_id: str
    size: int
    tar_size: int


def _row(r: sqlite3.Row) -> Snapshot:
    return Snapshot(r["id"], r["chain_id"], r["parent"], r["diff_id"], r["size"], r["tar_size"])


class Snapshots:
    def __init__(self, root: str, db: Metadata):
        self.dir = os.path.join(root, "snapshots")
        self.tmp_dir = os.path.join(self.dir, "tmp")
        self.db = db
        os.makedirs(self.tmp_dir, exist_ok=True)

    def path(self, snap_id: int) -> str:
        return os.path.join(self.dir, str(snap_id), "fs")

    def get(self, chain_id: str) -> Snapshot | None:
        r = self.db.one("SELECT * FROM snapshots WHERE chain_id = ?", (chain_id,))
        return _row(r) if r else None

    def all(self) -> list[Snapshot]:
        return [_row(r) for r in self.db.query("SELECT * FROM snapshots ORDER BY id")]

    def ensure(
        self,
        chain_id: str,
        parent: str | None,
        diff_id: str,
        open_blob: Callable[[], BinaryIO],
    ) -> Snapshot:
        """The snapshot for ``chain_id``, unpacking the layer if no image has it yet.

        The layer is unpacked into a private temp dir (verifying its diff_id on the way) and
        renamed into place inside the transaction that records it: a failure or a kill leaves
        at most an unreferenced temp dir for ``system check --repair``.
        """
        found = self.get(chain_id)
        if found:
            return found
        from dockyard.image.layer import apply_layer

        work = os.path.join(self.tmp_dir, f"{os.getpid()}-{os.urandom(6).hex()}")
        os.makedirs(os.path.join(work, "fs"))
        try:
            with open_blob() as blob:
                applied = apply_layer(blob, os.path.join(work, "fs"), expected_diff_id=diff_id)
            with self.db.transaction() as c:
                r = c.execute("SELECT * FROM snapshots WHERE chain_id = ?", (chain_id,)).fetchone()
                if r:  # another process unpacked the same layer meanwhile
                    return _row(r)
                cur = c.execute(
                    "INSERT INTO snapshots (chain_id, parent, diff_id, size, tar_size, created)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (chain_id, parent, diff_id, applied.size, applied.tar_size, time.time()),
                )
                snap_id = int(cur.lastrowid or 0)
                final = os.path.join(self.dir, str(snap_id))
                if os.path.lexists(final):
                    # A dir with no row: left by a process killed between rename and commit.
                    _rmtree(final, ignore_errors=False)
                os.rename(work, final)
                return Snapshot(snap_id, chain_id, parent, diff_id, applied.size, applied.tar_size)
        finally:
            if os.path.exists(work):
                _rmtree(work)

    def remove_files(self, snap_id: int) -> None:
        path = os.path.join(self.dir, str(snap_id))
        if os.path.lexists(path):
            # Rename first so that a kill mid-delete leaves an obvious leftover, never a
            # half-emptied dir under a live id.
            trash = os.path.join(self.tmp_dir, f"rm-{snap_id}-{os.urandom(4).hex()}")
            os.rename(path, trash)
            _rmtree(trash)

    def disk_dirs(self) -> list[str]:
        """Names of snapshot dirs (for check): not tmp/, nor the empty lower dir that
        containers of layerless images mount."""
        return [n for n in os.listdir(self.dir) if n not in ("tmp", "empty")]

    def tmp_entries(self) -> list[str]:
        return [os.path.join(self.tmp_dir, n) for n in os.listdir(self.tmp_dir)]
