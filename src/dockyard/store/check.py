"""``system check``: prove the store is consistent, and remove leftovers with ``--repair``.

Problems are things that break images (a referenced blob or snapshot missing, a blob whose bytes
do not match its digest). Leftovers are what an interrupted process leaves behind: ingest files,
temp snapshot dirs, files with no row, rows nothing references. Leftovers are harmless and only
cost disk; ``--repair`` removes them under the exclusive store lock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dockyard.store.content import writer_alive
from dockyard.store.mounts import detach_all
from dockyard.store.store import Store


@dataclass(slots=True)
class CheckReport:
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def consistent(self) -> bool:
        return not self.problems


def check_store(store: Store, *, repair: bool = False, verify_blobs: bool = False) -> CheckReport:
    report = CheckReport()
    with store.lock.exclusive():
        db = store.db
        blob_rows = {str(r["digest"]) for r in db.query("SELECT digest FROM blobs")}
        on_disk = set(store.content.blobs())
        for d in sorted(blob_rows - on_disk):
            report.problems.append(f"blob {d} is recorded but missing")
        for r in db.query(
            "SELECT image_id, digest FROM image_blobs"
            " WHERE digest NOT IN (SELECT digest FROM blobs)"
        ):
            report.problems.append(f"image {r['image_id']} needs blob {r['digest']} with no record")
        if verify_blobs:
            for d in sorted(blob_rows & on_disk):
                if not store.content.verify(d):
                    report.problems.append(f"blob {d} does not match its digest")
        snaps = {s.id: s for s in store.snapshots.all()}
        for s in snaps.values():
            if not os.path.isdir(store.snapshots.path(s.id)):
                report.problems.append(f"snapshot {s.id} ({s.chain_id}) is recorded but missing")
        for r in db.query(
            "SELECT image_id, chain_id FROM image_layers"
            " WHERE chain_id NOT IN (SELECT chain_id FROM snapshots)"
        ):
            report.problems.append(f"image {r['image_id']} needs snapshot {r['chain_id']}")
        for r in db.query(
            "SELECT name, image_id FROM tags WHERE image_id NOT IN (SELECT id FROM images)"
        ):
            report.problems.append(f"tag {r['name']} points at missing image {r['image_id']}")

        stale: list[str] = []
        for path in store.content.ingests():
            if not writer_alive(path):
                stale.append(path)
                report.leftovers.append(f"partial ingest {os.path.basename(path)}")
        for d in sorted(on_disk - blob_rows):
            stale.append(store.content.path(d))
            report.leftovers.append(f"unreferenced blob {d}")
        for path in store.snapshots.tmp_entries():
            if writer_alive(path):
                continue
            stale.append(path)
            report.leftovers.append(f"unfinished snapshot {os.path.basename(path)}")
        for name in store.snapshots.disk_dirs():
            if not name.isdigit() or int(name) not in snaps:
                stale.append(os.path.join(store.snapshots.dir, name))
                report.leftovers.append(f"snapshot dir {name} with no record")
        garbage_snaps, garbage_blobs = store.images.garbage(db.conn)
        for _, chain, _ in garbage_snaps:
            report.leftovers.append(f"unreferenced snapshot {chain}")
        for d in garbage_blobs:
            report.leftovers.append(f"unreferenced blob record {d}")
        if repair and report.leftovers:
            with db.transaction() as c:
                doomed_snaps, doomed_blobs = store.images.collect(c)
            store.images.remove_files(doomed_snaps, doomed_blobs)
            for path in stale:
                # A killed build step's root is mounted in its temp dir: deleting through
                # the mount would not remove the dir, and it would be listed again.
                detach_all(path)
                store.content.remove_path(path)
            report.repaired = list(report.leftovers)
    return report
