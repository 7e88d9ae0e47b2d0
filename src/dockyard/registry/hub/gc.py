"""Garbage collection of the hub's blobs: mark what manifests name, sweep the rest.

Safe while the hub serves pushes, from the server process or a separate ``hub gc``:
- it holds ``gc.lock`` exclusive, and publishing a blob or manifest holds it shared, so no
  file appears or is recorded while it decides;
- the mark and the deletion of rows are one ``BEGIN IMMEDIATE`` transaction, and a manifest
  push checks its blobs in such a transaction too: either the manifest came first and its
  blobs are marked, or the blobs went first and the push fails with MANIFEST_BLOB_UNKNOWN;
- a blob uploaded, mounted or found by HEAD within ``grace`` seconds is kept, so a client
  between "blob pushed" and "manifest pushed" does not lose it;
- upload sessions idle for ``upload_grace`` seconds are abandoned and removed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from dockyard.registry.hub.store import HubStore

DEFAULT_GRACE = 3600.0
DEFAULT_UPLOAD_GRACE = 24 * 3600.0
_TMP_GRACE = 3600.0


@dataclass
class GCReport:
    blobs_removed: int = 0
    bytes_freed: int = 0
    uploads_removed: int = 0
    blobs_kept: int = 0


def collect(
    store: HubStore,
    grace: float = DEFAULT_GRACE,
    upload_grace: float = DEFAULT_UPLOAD_GRACE,
    dry_run: bool = False,
) -> GCReport:
    report = GCReport()
    files = store.files
    with files.lock(exclusive=True):
        now = time.time()
        with store.db.write() as c:
            doomed = c.execute(
                "SELECT digest, size FROM blobs WHERE touched < ? "
                "AND digest NOT IN (SELECT digest FROM manifests) "
                "AND digest NOT IN (SELECT digest FROM manifest_refs)",
                (now - grace,),
            ).fetchall()
            stale = [
                r[0]
                for r in c.execute(
                    "SELECT id FROM uploads WHERE touched < ?", (now - upload_grace,)
                )
            ]
            report.blobs_kept = c.execute("SELECT count(*) FROM blobs").fetchone()[0] - len(doomed)
            if not dry_run:
                for digest, _ in doomed:
                    c.execute("DELETE FROM blobs WHERE digest=?", (digest,))
                    c.execute("DELETE FROM repo_blobs WHERE digest=?", (digest,))
                c.executemany("DELETE FROM uploads WHERE id=?", [(u,) for u in stale])
            known = {r[0] for r in c.execute("SELECT digest FROM blobs")}
            sessions = {r[0] for r in c.execute("SELECT id FROM uploads")}
        report.blobs_removed = len(doomed)
        report.bytes_freed = sum(int(s) for _, s in doomed)
        report.uploads_removed = len(stale)
        if dry_run:
            return report
        for digest, _ in doomed:
            files.path(digest).unlink(missing_ok=True)
        # Files no row names: left by a crash between writing and recording.
        for digest in list(files.stored_digests()):
            if digest not in known:
                files.path(digest).unlink(missing_ok=True)
        for entry in os.scandir(files.uploads):
            old = now - entry.stat(follow_symlinks=False).st_mtime > 60
            if entry.name not in sessions and (entry.name in stale or old):
                os.unlink(entry.path)
        for entry in os.scandir(files.tmp):
            if now - entry.stat(follow_symlinks=False).st_mtime > _TMP_GRACE:
                os.unlink(entry.path)
    return report
