"""Images, tags and their references to blobs and snapshots; rmi, prune and GC.

The deletion rules follow Docker's daemon (image_delete.go): a tag is removed first; an image
goes only when nothing references it; a child image, a running container or (without -f) a
stopped container or other repositories block it. What became unreferenced is computed and
removed from the DB in one transaction; files go after the commit (under the exclusive store
lock), so a kill leaves only unreferenced leftovers that ``system check --repair`` removes.
"""

from __future__ import annotations

import time

from dockyard import fastjson
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.image.digest import chain_ids
from dockyard.sqlite import sqlite3  # _sqlite3, loaded without functools
from dockyard.store.content import ContentStore
from dockyard.store.db import Metadata
from dockyard.store.lock import StoreLock
from dockyard.store.snapshots import Snapshots

TYPE_CHECKING = False  # not typing's: `images` and `image inspect` start with this module
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence
    from typing import NamedTuple

    # Imported where used: `images` and `ps` must not pay for tarfile, the manifest models or
    # the reference grammar's regexes (start-up time is a feature).
    from dockyard.image.config import ImageConfig
    from dockyard.image.manifest import Manifest
    from dockyard.image.reference import Reference
else:
    from dockyard.model.values import NamedTuple


def parse_reference(text: str, default_tag: bool = True) -> Reference:
    from dockyard.image.reference import parse_reference as parse

    return parse(text, default_tag=default_tag)


def looks_like_image_id(text: str) -> bool:
    from dockyard.image.reference import looks_like_image_id as check

    return check(text)


class LayerBlob(NamedTuple):
    """A layer blob already in the content store, as a manifest names it."""

    digest: str
    media_type: str
    size: int


class ImageLayer(NamedTuple):
    diff_id: str
    chain_id: str
    blob: str
    snapshot_id: int
    size: int
    tar_size: int


class ImageRecord(NamedTuple):
    id: str
    manifest: str
    created: str
    size: int
    parent: str | None
    added: float
    last_tag_time: str | None
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()


class DeleteReport:
    """What rmi/prune did, as Docker's ImageDeleteResponseItem list."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []  # ("Untagged"|"Deleted", what)
        self.reclaimed = 0

    def untagged(self, ref: str) -> None:
        self.items.append(("Untagged", ref))

    def deleted(self, what: str) -> None:
        self.items.append(("Deleted", what))


if TYPE_CHECKING:
    ContainerUsers = Callable[[str], list[tuple[str, bool]]]


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


class ImageStore:
    def __init__(
        self,
        content: ContentStore,
        db: Metadata,
        snapshots: Snapshots,
        lock: StoreLock,
        container_users: ContainerUsers | None = None,
    ):
        self.content = content
        self.db = db
        self.snapshots = snapshots
        self.lock = lock
        self.container_users: ContainerUsers = container_users or self._containers_from_db

    # ----------------------------------------------------------------- adding

    def add(
        self,
        config: ImageConfig,
        layers: Sequence[LayerBlob],
        *,
        tags: Sequence[Reference] = (),
        manifest_raw: bytes | None = None,
        parent: str | None = None,
        repo_digests: Sequence[str] = (),
        extra_blobs: Sequence[str] = (),
    ) -> str:
        """Record an image whose layer blobs are in the content store.

        Unpacks the snapshots it lacks (verifying each diff_id), stores the config and a
        manifest, then records everything in one transaction. The caller holds the shared
        store lock from before it ingested the blobs.
        """
        from dockyard.image.manifest import OCI_CONFIG, Descriptor, Manifest

        diff_ids = config.diff_ids
        if len(diff_ids) != len(layers):
            raise InvalidArgument(
                f"image has {len(layers)} layers but its config lists {len(diff_ids)} diff_ids"
            )
        chains = chain_ids(diff_ids)
        image_layers: list[ImageLayer] = []
        for i, (blob, diff_id, chain) in enumerate(zip(layers, diff_ids, chains, strict=True)):
            snap = self.snapshots.get(chain)
            if snap is None:
                snap = self.snapshots.ensure(
                    chain,
                    chains[i - 1] if i else None,
                    diff_id,
                    lambda d=blob.digest: self.content.open(d),  # type: ignore[misc]
                )
            else:
                self._verify_blob_diff_id(blob, diff_id)
            image_layers.append(
                ImageLayer(diff_id, chain, blob.digest, snap.id, snap.size, snap.tar_size)
            )
        image_id = config.id
        self.content.ingest_bytes(config.raw, expected=image_id)
        if manifest_raw is None:
            manifest = Manifest(
                config=Descriptor(OCI_CONFIG, image_id, len(config.raw)),
                layers=tuple(Descriptor(b.media_type, b.digest, b.size) for b in layers),
            )
            manifest_raw = manifest.to_bytes()
        manifest_digest = self.content.ingest_bytes(manifest_raw)
        size = sum(la.size for la in image_layers)
        now = time.time()
        with self.db.transaction() as c:
            c.execute(
                "INSERT OR IGNORE INTO images (id, manifest, created, size, parent, added)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (image_id, manifest_digest, config.created, size, parent, now),
            )
            if parent:
                c.execute(
                    "UPDATE images SET parent = ? WHERE id = ? AND parent IS NULL",
                    (parent, image_id),
                )
            c.execute("DELETE FROM image_layers WHERE image_id = ?", (image_id,))
            c.executemany(
                "INSERT INTO image_layers (image_id, idx, diff_id, chain_id, blob)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (image_id, i, la.diff_id, la.chain_id, la.blob)
                    for i, la in enumerate(image_layers)
                ],
            )
            blob_rows: list[tuple[str, int, str, str | None]] = [
                (image_id, len(config.raw), OCI_CONFIG, None),
                (manifest_digest, len(manifest_raw), "manifest", None),
            ]
            blob_rows += [
                (b.digest, b.size, b.media_type, d) for b, d in zip(layers, diff_ids, strict=True)
            ]
            c.executemany(
                "INSERT INTO blobs (digest, size, media_type, diff_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(digest) DO UPDATE"
                " SET diff_id = COALESCE(blobs.diff_id, excluded.diff_id)",
                blob_rows,
            )
            for d in extra_blobs:
                c.execute(
                    "INSERT OR IGNORE INTO blobs (digest, size, media_type) VALUES (?, ?, ?)",
                    (d, self.content.size(d), "index"),
                )
            c.executemany(
                "INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)",
                [(image_id, r[0]) for r in blob_rows] + [(image_id, d) for d in extra_blobs],
            )
            for ref in tags:
                self._tag(c, image_id, ref)
            for rd in repo_digests:
                c.execute(
                    "INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?, ?)",
                    (rd, image_id),
                )
        return image_id

    def _verify_blob_diff_id(self, blob: LayerBlob, diff_id: str) -> None:
        """A known snapshot with a new blob: make sure the blob really holds that layer."""
        r = self.db.one("SELECT diff_id FROM blobs WHERE digest = ?", (blob.digest,))
        if r and r["diff_id"] == diff_id:
            return
        if blob.digest == diff_id:  # an uncompressed blob: its digest was verified on ingest
            return
        import hashlib

        from dockyard.errors import CorruptData

        h = hashlib.sha256()
        from dockyard.image.layer import open_decompressed

        with self.content.open(blob.digest) as f, open_decompressed(f) as tar:
            while chunk := tar.read(1 << 20):
                h.update(chunk)
        got = "sha256:" + h.hexdigest()
        if got != diff_id:
            raise CorruptData(f"layer diff_id mismatch: expected {diff_id}, got {got}")

    # ----------------------------------------------------------------- tags

    def _tag(self, c: sqlite3.Connection, image_id: str, ref: Reference) -> None:
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {ref}")
        c.execute(
            "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?, ?)", (str(ref), image_id)
        )
        c.execute(
            "UPDATE images SET last_tag_time = ? WHERE id = ?",
            (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), image_id),
        )

    def tag(self, source: str, target: str) -> None:
        image_id = self.resolve(source)
        ref = parse_reference(target)
        with self.db.transaction() as c:
            self._tag(c, image_id, ref)

    # ----------------------------------------------------------------- reading

    def resolve(self, text: str) -> str:
        """An image ID from a reference, a full ID or a unique ID prefix (Docker's order)."""
        hub = _stored_hub_name(text)
        if hub is not None:
            # A plain Docker Hub name that is tagged here: no need for the full grammar (a
            # stored tag was validated when it was made).
            r = self.db.one("SELECT image_id FROM tags WHERE name = ?", (hub,))
            if r:
                return str(r["image_id"])
        ref: Reference | None = None
        try:
            ref = parse_reference(text)
        except InvalidArgument:
            if not looks_like_image_id(text):
                raise
        if ref is not None:
            table = "repo_digests" if ref.digest and not ref.tag else "tags"
            key = f"{ref.name}@{ref.digest}" if table == "repo_digests" else str(ref)
            r = self.db.one(f"SELECT image_id FROM {table} WHERE name = ?", (key,))
            if r:
                return str(r["image_id"])
        if looks_like_image_id(text):
            hexpart = text.removeprefix("sha256:")
            rows = self.db.query(
                "SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2",
                ("sha256:" + hexpart, "sha256:" + hexpart + "g"),
            )
            if len(rows) == 1:
                return str(rows[0]["id"])
            if len(rows) > 1:
                raise NotFound(f"No such image: {text} (ambiguous ID prefix)")
        raise NotFound(f"No such image: {text}")

    def get(self, image_id: str) -> ImageRecord:
        r = self.db.one("SELECT * FROM images WHERE id = ?", (image_id,))
        if not r:
            raise NotFound(f"No such image: {image_id}")
        return self._record(r)

    def _record(self, r: sqlite3.Row) -> ImageRecord:
        tags = tuple(
            x["name"]
            for x in self.db.query(
                "SELECT name FROM tags WHERE image_id = ? ORDER BY name", (r["id"],)
            )
        )
        digests = tuple(
            x["name"]
            for x in self.db.query(
                "SELECT name FROM repo_digests WHERE image_id = ? ORDER BY name", (r["id"],)
            )
        )
        return ImageRecord(
            r["id"],
            r["manifest"],
            r["created"],
            r["size"],
            r["parent"],
            r["added"],
            r["last_tag_time"],
            tags,
            digests,
        )

    def records(self, *, untagged: bool = False) -> list[ImageRecord]:
        """Every image (newest first), or those without a tag or digest: three queries
        whatever the store's size (a query per image made `images` with 5,000 tags slow)."""
        where = (
            " WHERE id NOT IN (SELECT image_id FROM tags)"
            " AND id NOT IN (SELECT image_id FROM repo_digests)"
            if untagged
            else ""
        )
        rows = self.db.query(f"SELECT * FROM images{where} ORDER BY added DESC")
        names: dict[str, tuple[list[str], list[str]]] = {}
        if not untagged:
            for i, table in enumerate(("tags", "repo_digests")):
                for r in self.db.query(f"SELECT image_id, name FROM {table} ORDER BY name"):
                    names.setdefault(r["image_id"], ([], []))[i].append(r["name"])
        none: tuple[list[str], list[str]] = ([], [])
        return [
            ImageRecord(
                r["id"],
                r["manifest"],
                r["created"],
                r["size"],
                r["parent"],
                r["added"],
                r["last_tag_time"],
                tuple(names.get(r["id"], none)[0]),
                tuple(names.get(r["id"], none)[1]),
            )
            for r in rows
        ]

    def config(self, image_id: str) -> ImageConfig:
        from dockyard.image.config import ImageConfig

        return ImageConfig.parse(self.content.read(image_id))

    def manifest(self, image_id: str) -> Manifest:
        from dockyard.image.manifest import Manifest

        return Manifest.from_bytes(self.content.read(self.get(image_id).manifest))

    def layers(self, image_id: str) -> list[ImageLayer]:
        rows = self.db.query(
            "SELECT l.diff_id, l.chain_id, l.blob, s.id AS sid, s.size, s.tar_size"
            " FROM image_layers l JOIN snapshots s ON s.chain_id = l.chain_id"
            " WHERE l.image_id = ? ORDER BY l.idx",
            (image_id,),
        )
        return [
            ImageLayer(r["diff_id"], r["chain_id"], r["blob"], r["sid"], r["size"], r["tar_size"])
            for r in rows
        ]

    def blob_media_type(self, digest: str) -> str:
        r = self.db.one("SELECT media_type FROM blobs WHERE digest = ?", (digest,))
        return str(r["media_type"]) if r else ""

    def children(self, image_id: str) -> list[str]:
        return [
            str(r["id"])
            for r in self.db.query("SELECT id FROM images WHERE parent = ?", (image_id,))
        ]

    def references(self, image_id: str) -> list[str]:
        rows = self.db.query(
            "SELECT name FROM tags WHERE image_id = ?"
            " UNION ALL SELECT name FROM repo_digests WHERE image_id = ?",
            (image_id, image_id),
        )
        return [str(r["name"]) for r in rows]

    def _containers_from_db(self, image_id: str) -> list[tuple[str, bool]]:
        out = []
        for r in self.db.query("SELECT id, data FROM containers WHERE image_id = ?", (image_id,)):
            state = fastjson.loads(r["data"]).get("State", {})
            out.append((str(r["id"]), bool(state.get("Running"))))
        return out

    # ----------------------------------------------------------------- deleting

    def remove(self, text: str, *, force: bool = False, prune: bool = True) -> DeleteReport:
        """``docker rmi``: untag, and delete what is no longer referenced."""
        report = DeleteReport()
        with self.lock.exclusive():
            image_id = self.resolve(text)
            refs = self.references(image_id)
            removed_ref = False
            by_id = self._is_id_ref(image_id, text)
            if not by_id:
                ref = parse_reference(text)
                key = f"{ref.name}@{ref.digest}" if ref.digest and not ref.tag else str(ref)
                if not force and _single_reference(refs):
                    users = self.container_users(image_id)
                    if users:
                        raise Conflict(
                            f'conflict: unable to remove repository reference "{text}" '
                            f"(must force) - container {users[0][0][:12]} is using its "
                            f"referenced image {_short(image_id)}"
                        )
                with self.db.transaction() as c:
                    self._untag(c, key)
                    report.untagged(_familiar(key))
                    refs = self.references(image_id)
                    if not ref.digest:
                        # Docker drops digest refs of the same repository along with its last tag.
                        same_repo_tags = [
                            x for x in refs if "@" not in x and x.rsplit(":", 1)[0] == ref.name
                        ]
                        if not same_repo_tags:
                            for x in [x for x in refs if x.startswith(ref.name + "@")]:
                                self._untag(c, x)
                                report.untagged(_familiar(x))
                    refs = self.references(image_id)
                if refs:
                    return report
                removed_ref = True
            elif _single_reference(refs):
                # Docker: by ID with a single reference, that reference itself is no conflict.
                conflict = self._conflict(image_id, [], force=force)
                if conflict:
                    raise conflict
                with self.db.transaction() as c:
                    for x in refs:
                        self._untag(c, x)
                        report.untagged(_familiar(x))
            self._delete_helper(image_id, report, force=force, prune=prune, quiet=removed_ref)
        return report

    def _is_id_ref(self, image_id: str, text: str) -> bool:
        hexpart = text.removeprefix("sha256:")
        return (
            bool(hexpart)
            and image_id.removeprefix("sha256:").startswith(hexpart)
            and (text.startswith("sha256:") or not self._tag_exists(text))
        )

    def _tag_exists(self, text: str) -> bool:
        try:
            ref = parse_reference(text)
        except InvalidArgument:
            return False
        return self.db.one("SELECT 1 FROM tags WHERE name = ?", (str(ref),)) is not None

    def _untag(self, c: sqlite3.Connection, name: str) -> None:
        table = "repo_digests" if "@" in name else "tags"
        c.execute(f"DELETE FROM {table} WHERE name = ?", (name,))

    def _conflict(self, image_id: str, refs: list[str], *, force: bool) -> Conflict | None:
        short = _short(image_id)
        if self.children(image_id):
            return Conflict(
                f"conflict: unable to delete {short} (cannot be forced) - "
                "image has dependent child images"
            )
        users = self.container_users(image_id)
        running = [u for u, r in users if r]
        if running:
            return Conflict(
                f"conflict: unable to delete {short} (cannot be forced) - "
                f"image is being used by running container {running[0][:12]}"
            )
        if force:
            return None
        if len(refs) > 1:
            return Conflict(
                f"conflict: unable to delete {short} (must be forced) - "
                "image is referenced in multiple repositories"
            )
        if users:
            return Conflict(
                f"conflict: unable to delete {short} (must be forced) - "
                f"image is being used by stopped container {users[0][0][:12]}"
            )
        return None

    def _delete_helper(
        self, image_id: str, report: DeleteReport, *, force: bool, prune: bool, quiet: bool
    ) -> None:
        refs = self.references(image_id)
        if quiet and refs:
            return  # Docker's conflictActiveReference: a parent that is still tagged stays
        conflict = self._conflict(image_id, refs, force=force)
        if conflict:
            dangling = not refs and not self.children(image_id)
            if quiet and (not dangling or self.container_users(image_id)):
                return
            raise conflict
        parent = self.get(image_id).parent
        with self.db.transaction() as c:
            for x in self.references(image_id):
                self._untag(c, x)
                report.untagged(_familiar(x))
            c.execute("DELETE FROM images WHERE id = ?", (image_id,))
            report.deleted(image_id)
            doomed_snaps, doomed_blobs = self.collect(c)
            for snap in doomed_snaps:
                report.deleted(snap[1])
                report.reclaimed += snap[2]
        self.remove_files(doomed_snaps, doomed_blobs)
        if prune and parent and self._exists(parent):
            self._delete_helper(parent, report, force=False, prune=True, quiet=True)

    def _exists(self, image_id: str) -> bool:
        return self.db.one("SELECT 1 FROM images WHERE id = ?", (image_id,)) is not None

    @staticmethod
    def garbage(c: sqlite3.Connection) -> tuple[list[tuple[int, str, int]], list[str]]:
        """Snapshots (id, chain id, size; top first) and blobs that nothing references."""
        snaps = c.execute(
            "SELECT id, chain_id, size FROM snapshots WHERE chain_id NOT IN"
            " (SELECT chain_id FROM image_layers) ORDER BY id DESC"
        ).fetchall()
        blobs = c.execute(
            "SELECT digest FROM blobs WHERE digest NOT IN (SELECT digest FROM image_blobs)"
        ).fetchall()
        return (
            [(int(s["id"]), str(s["chain_id"]), int(s["size"])) for s in snaps],
            [str(b["digest"]) for b in blobs],
        )

    def collect(self, c: sqlite3.Connection) -> tuple[list[tuple[int, str, int]], list[str]]:
        """Inside the caller's transaction: drop the rows of garbage; the caller removes the
        files after the commit (``remove_files``)."""
        snaps, blobs = self.garbage(c)
        c.executemany("DELETE FROM snapshots WHERE id = ?", [(s[0],) for s in snaps])
        c.executemany("DELETE FROM blobs WHERE digest = ?", [(b,) for b in blobs])
        return snaps, blobs

    def remove_files(self, snaps: list[tuple[int, str, int]], blobs: list[str]) -> None:
        for snap_id, _, _ in snaps:
            self.snapshots.remove_files(snap_id)
        for digest in blobs:
            self.content.delete(digest)

    def discard(self, new_blobs: Sequence[str], chains_before: set[str]) -> None:
        """Undo a failed add: drop the snapshots and blobs it created that nothing references."""
        with self.lock.exclusive():
            with self.db.transaction() as c:
                snaps, blobs = self.garbage(c)
                snaps = [s for s in snaps if s[1] not in chains_before]
                blobs = [b for b in blobs if b in new_blobs]
                c.executemany("DELETE FROM snapshots WHERE id = ?", [(s[0],) for s in snaps])
                c.executemany("DELETE FROM blobs WHERE digest = ?", [(b,) for b in blobs])
                unrecorded = [
                    d
                    for d in new_blobs
                    if c.execute("SELECT 1 FROM blobs WHERE digest = ?", (d,)).fetchone() is None
                ]
            self.remove_files(snaps, unrecorded)

    def prune(self, *, all_images: bool = False) -> DeleteReport:
        """``docker image prune [-a]``: dangling images, or every image no container uses."""
        with self.lock.exclusive():
            return self.drop_unused(None, keep_tagged=not all_images)

    def drop_unused(
        self, candidates: Collection[str] | None, *, keep_tagged: bool = True
    ) -> DeleteReport:
        """Under the caller's exclusive lock: delete the ``candidates`` (every image for
        None) that no child image, container (or tag, with ``keep_tagged``) uses, and the
        untagged parents that leaves unused."""
        report = DeleteReport()
        while True:
            progressed = False
            # With keep_tagged only untagged images can go: a prune with nothing to prune
            # reads no row per tagged image.
            for img in self.records(untagged=keep_tagged):
                if candidates is not None and img.id not in candidates:
                    continue
                if (img.tags or img.digests) and keep_tagged:
                    continue
                if not self._exists(img.id):
                    continue
                if self.children(img.id) or self.container_users(img.id):
                    continue
                try:
                    # Without keep_tagged (prune -a) an image of several repositories goes
                    # too: Docker deletes it tag by tag. Children and containers were
                    # checked above, so the force lifts only that conflict.
                    self._delete_helper(
                        img.id, report, force=not keep_tagged, prune=True, quiet=False
                    )
                    progressed = True
                except Conflict:
                    continue
            if not progressed:
                return report

    def in_use(self) -> set[str]:
        """Images a tag, a digest or a container keeps, and all their ancestors."""
        rows = self.db.query(
            "WITH RECURSIVE live(id) AS ("
            " SELECT image_id FROM tags UNION SELECT image_id FROM repo_digests"
            " UNION SELECT image_id FROM containers"
            " UNION SELECT images.parent FROM images JOIN live ON images.id = live.id"
            "  WHERE images.parent IS NOT NULL AND images.parent != ''"
            ") SELECT id FROM live"
        )
        return {str(r["id"]) for r in rows}


_HUB_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-/")


def _stored_hub_name(text: str) -> str | None:
    """How "busybox", "me/app:1" would be stored ("docker.io/library/busybox:latest"), for
    names plainly on Docker Hub; None for anything else (the full parser decides those)."""
    name, _, tag = text.partition(":")
    first = name.split("/", 1)[0]
    if (
        not name
        or "@" in text
        or ":" in tag
        or not set(name) <= _HUB_NAME_CHARS
        or "." in first
        or first == "localhost"
    ):
        return None
    return f"docker.io/{'library/' if '/' not in name else ''}{name}:{tag or 'latest'}"


def _single_reference(refs: list[str]) -> bool:
    """Docker's isSingleReference: at most one tag and all refs in one repository."""
    names = {r.split("@", 1)[0] if "@" in r else r.rsplit(":", 1)[0] for r in refs}
    tags = [r for r in refs if "@" not in r]
    return len(tags) <= 1 and len(names) <= 1


def _familiar(name: str) -> str:
    return parse_reference(name, default_tag=False).familiar()
