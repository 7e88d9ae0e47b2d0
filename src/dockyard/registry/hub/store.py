"""What the hub keeps: repositories, blobs, upload sessions, manifests and tags.

Every operation here is one the distribution API needs; the HTTP layer (server.py) decides who
may call it. Invariants, kept by doing each check and insert in one ``BEGIN IMMEDIATE``
transaction (and under ``gc.lock`` shared when a blob file is published):

- a manifest row exists only if every blob and manifest it names exists in its repository;
- a blob row exists only once its file is in place and verified;
- garbage collection (gc.py) removes only blobs no manifest names.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from dockyard.errors import NotFound
from dockyard.registry.hub.accounts import Accounts, User
from dockyard.registry.hub.blobs import BlobFiles
from dockyard.registry.hub.db import Database
from dockyard.registry.hub.errors import RegistryError
from dockyard.registry.hub.manifests import MAX_MANIFEST_SIZE, parse_manifest
from dockyard.registry.hub.names import check_digest, is_digest, is_official
from dockyard.registry.hub.uploads import Uploads

# A blob seen in use less than this long ago is not written to again just to say so.
_TOUCH_EVERY = 30.0


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    digest: str
    media_type: str
    data: bytes
    subject: str | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    name: str
    description: str
    stars: int
    official: bool


class HubStore:
    def __init__(self, data: Path):
        data.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data = data
        self.files = BlobFiles(data)
        self.db = Database(data / "hub.db")
        self.accounts = Accounts(self.db)
        self.uploads = Uploads(self.files, self.db)

    # ---- repositories -------------------------------------------------------------------

    def is_private(self, repo: str) -> bool:
        row = self.db.conn.execute("SELECT private FROM repos WHERE name=?", (repo,)).fetchone()
        return bool(row and row[0])

    def repo_exists(self, repo: str) -> bool:
        return bool(self.db.conn.execute("SELECT 1 FROM repos WHERE name=?", (repo,)).fetchone())

    @staticmethod
    def _ensure_repo(c: Any, repo: str) -> None:
        c.execute("INSERT OR IGNORE INTO repos(name, created) VALUES (?, ?)", (repo, time.time()))

    def describe(self, repo: str, description: str) -> None:
        self._set_repo(repo, "description", description)

    def set_private(self, repo: str, private: bool) -> None:
        self._set_repo(repo, "private", int(private))

    def _set_repo(self, repo: str, column: str, value: object) -> None:
        assert column in ("description", "private")
        with self.db.write() as c:
            cur = c.execute(f"UPDATE repos SET {column}=? WHERE name=?", (value, repo))  # noqa: S608
            if cur.rowcount == 0:
                raise NotFound(f"no such repository: {repo}")

    def star(self, repo: str, user: str, on: bool = True) -> None:
        with self.db.write() as c:
            if not c.execute("SELECT 1 FROM repos WHERE name=?", (repo,)).fetchone():
                raise NotFound(f"no such repository: {repo}")
            if not c.execute("SELECT 1 FROM users WHERE name=?", (user,)).fetchone():
                raise NotFound(f"no such user: {user}")
            if on:
                c.execute("INSERT OR IGNORE INTO stars(repo, user) VALUES (?,?)", (repo, user))
            else:
                c.execute("DELETE FROM stars WHERE repo=? AND user=?", (repo, user))

    def repo_info(self, repo: str) -> dict[str, Any]:
        c = self.db.conn
        row = c.execute(
            "SELECT description, private, created FROM repos WHERE name=?", (repo,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no such repository: {repo}")
        stars = c.execute("SELECT count(*) FROM stars WHERE repo=?", (repo,)).fetchone()[0]
        tags = c.execute("SELECT count(*) FROM tags WHERE repo=?", (repo,)).fetchone()[0]
        return {
            "name": repo,
            "description": row[0],
            "star_count": stars,
            "is_official": is_official(repo),
            "is_private": bool(row[1]),
            "tag_count": tags,
            "created": row[2],
        }

    def list_repos(self) -> list[dict[str, Any]]:
        names = [r[0] for r in self.db.conn.execute("SELECT name FROM repos ORDER BY name")]
        return [self.repo_info(n) for n in names]

    def remove_repo(self, repo: str) -> None:
        """Forget a repository: its tags, manifests and links go; gc reclaims the blobs."""
        with self.db.write() as c:
            if c.execute("DELETE FROM repos WHERE name=?", (repo,)).rowcount == 0:
                raise NotFound(f"no such repository: {repo}")
            for table in ("tags", "manifests", "manifest_refs", "repo_blobs", "stars", "uploads"):
                c.execute(f"DELETE FROM {table} WHERE repo=?", (repo,))  # noqa: S608

    def _visible_sql(self, user: User | None) -> tuple[str, tuple[Any, ...]]:
        if user is not None and user.admin:
            return "1", ()
        if user is None:
            return "r.private=0", ()
        return "(r.private=0 OR substr(r.name, 1, ?) = ?)", (len(user.name) + 1, user.name + "/")

    def catalog(self, user: User | None, n: int, last: str) -> list[str]:
        cond, args = self._visible_sql(user)
        rows = self.db.conn.execute(
            f"SELECT r.name FROM repos r WHERE {cond} AND r.name > ? "  # noqa: S608
            "AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo = r.name) "
            "ORDER BY r.name LIMIT ?",
            (*args, last, n),
        )
        return [r[0] for r in rows]

    def search(
        self, query: str, user: User | None, limit: int, page: int
    ) -> tuple[int, list[SearchResult]]:
        cond, args = self._visible_sql(user)
        q = query.lower()
        where = (
            f"{cond} AND EXISTS (SELECT 1 FROM manifests m WHERE m.repo = r.name) "
            "AND (instr(lower(r.name), ?) > 0 OR instr(lower(r.description), ?) > 0)"
        )
        c = self.db.conn
        total = c.execute(
            f"SELECT count(*) FROM repos r WHERE {where}",
            (*args, q, q),  # noqa: S608
        ).fetchone()[0]
        rows = c.execute(
            "SELECT r.name, r.description, "
            "(SELECT count(*) FROM stars s WHERE s.repo = r.name) AS stars "
            f"FROM repos r WHERE {where} "  # noqa: S608
            "ORDER BY stars DESC, r.name LIMIT ? OFFSET ?",
            (*args, q, q, limit, (page - 1) * limit),
        )
        return total, [SearchResult(n, d, s, is_official(n)) for n, d, s in rows]

    # ---- blobs ----------------------------------------------------------------------------

    def blob_size(self, repo: str, digest: str, touch: bool = False) -> int:
        """Size of a blob the repository may serve. ``touch`` marks it as just seen, so that
        a client that was told "exists" (and skips the upload) finds it at manifest time."""
        c = self.db.conn
        row = c.execute(
            "SELECT b.size, b.touched FROM repo_blobs r JOIN blobs b ON b.digest = r.digest "
            "WHERE r.repo=? AND r.digest=?",
            (repo, digest),
        ).fetchone()
        if row is None:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        now = time.time()
        if touch and now - row[1] > _TOUCH_EVERY:
            with self.db.write() as w:
                cur = w.execute("UPDATE blobs SET touched=? WHERE digest=?", (now, digest))
                if cur.rowcount == 0:  # collected since the read above
                    raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})
        return int(row[0])

    def open_blob(self, repo: str, digest: str) -> tuple[IO[bytes], int]:
        size = self.blob_size(repo, digest)
        try:
            f = open(self.files.path(digest), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest}) from None
        return f, size

    def mount(self, repo: str, digest: str, source: str) -> bool:
        """Link a blob of ``source`` into ``repo`` (cross-repository mount)."""
        with self.files.lock(exclusive=False), self.db.write() as c:
            if not c.execute(
                "SELECT 1 FROM repo_blobs r JOIN blobs b ON b.digest = r.digest "
                "WHERE r.repo=? AND r.digest=?",
                (source, digest),
            ).fetchone():
                return False
            self._ensure_repo(c, repo)
            c.execute("INSERT OR IGNORE INTO repo_blobs(repo, digest) VALUES (?,?)", (repo, digest))
            c.execute("UPDATE blobs SET touched=? WHERE digest=?", (time.time(), digest))
        return True

    def delete_blob(self, repo: str, digest: str) -> None:
        with self.db.write() as c:
            user = c.execute(
                "SELECT manifest FROM manifest_refs WHERE repo=? AND digest=? "
                "UNION SELECT digest FROM manifests WHERE repo=? AND digest=? LIMIT 1",
                (repo, digest, repo, digest),
            ).fetchone()
            if user is not None:
                raise RegistryError(
                    "DENIED",
                    f"blob {digest} is used by manifest {user[0]} in {repo}: delete the "
                    "manifest first",
                )
            cur = c.execute("DELETE FROM repo_blobs WHERE repo=? AND digest=?", (repo, digest))
            if cur.rowcount == 0:
                raise RegistryError("BLOB_UNKNOWN", detail={"digest": digest})

    def _record_blob(self, c: Any, repo: str, digest: str, size: int) -> None:
        self._ensure_repo(c, repo)
        c.execute(
            "INSERT INTO blobs(digest, size, touched) VALUES (?,?,?) "
            "ON CONFLICT(digest) DO UPDATE SET touched=excluded.touched",
            (digest, size, time.time()),
        )
        c.execute("INSERT OR IGNORE INTO repo_blobs(repo, digest) VALUES (?,?)", (repo, digest))

    # ---- uploads --------------------------------------------------------------------------

    def finish_upload(
        self,
        repo: str,
        upload_id: str,
        digest: str,
        chunks: Iterable[bytes],
        start: int | None = None,
    ) -> int:
        def commit(path: Path, size: int) -> None:
            with self.files.lock(exclusive=False):
                self.files.publish(path, digest)
                with self.db.write() as c:
                    self._record_blob(c, repo, digest, size)
                    c.execute("DELETE FROM uploads WHERE id=?", (upload_id,))

        return self.uploads.finish(repo, upload_id, digest, chunks, start, commit)

    def put_blob(self, repo: str, digest: str, chunks: Iterable[bytes]) -> int:
        """A monolithic upload (POST with ``?digest=``)."""
        upload_id = self.uploads.start(repo)
        try:
            return self.finish_upload(repo, upload_id, digest, chunks)
        except BaseException:
            self.uploads.drop(upload_id)
            raise

    # ---- manifests ------------------------------------------------------------------------

    def put_manifest(self, repo: str, ref: str, data: bytes, content_type: str) -> ManifestInfo:
        if len(data) > MAX_MANIFEST_SIZE:
            raise RegistryError(
                "MANIFEST_INVALID",
                f"manifest is larger than {MAX_MANIFEST_SIZE} bytes",
                status=413,
            )
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if is_digest(ref) and ref != digest:
            raise RegistryError(
                "DIGEST_INVALID",
                f"manifest digest {digest} does not match the reference {ref}",
                detail={"digest": ref},
            )
        parsed = parse_manifest(data, content_type)
        with self.files.lock(exclusive=False):
            self.files.write_bytes(data, digest)
            with self.db.write() as c:
                for d, size, kind in parsed.refs:
                    if kind == "manifest":
                        row = c.execute(
                            "SELECT size FROM manifests WHERE repo=? AND digest=?", (repo, d)
                        ).fetchone()
                    else:
                        row = c.execute(
                            "SELECT b.size FROM repo_blobs r JOIN blobs b ON b.digest = r.digest"
                            " WHERE r.repo=? AND r.digest=?",
                            (repo, d),
                        ).fetchone()
                    if row is None:
                        raise RegistryError(
                            "MANIFEST_BLOB_UNKNOWN",
                            f"{kind} {d} is unknown to repository {repo}",
                            detail={"digest": d},
                        )
                    if int(row[0]) != size:
                        raise RegistryError(
                            "MANIFEST_INVALID",
                            f"descriptor of {d} says {size} bytes, the registry has {row[0]}",
                        )
                self._record_blob(c, repo, digest, len(data))
                c.execute(
                    "INSERT OR REPLACE INTO manifests(repo, digest, media_type, size, subject,"
                    " artifact_type, annotations, created) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        repo,
                        digest,
                        parsed.media_type,
                        len(data),
                        parsed.subject,
                        parsed.artifact_type,
                        json.dumps(parsed.annotations),
                        time.time(),
                    ),
                )
                c.executemany(
                    "INSERT OR IGNORE INTO manifest_refs(repo, manifest, digest) VALUES (?,?,?)",
                    [(repo, digest, d) for d, _, _ in parsed.refs],
                )
                if not is_digest(ref):
                    c.execute(
                        "INSERT OR REPLACE INTO tags(repo, tag, digest, updated) VALUES (?,?,?,?)",
                        (repo, ref, digest, time.time()),
                    )
        return ManifestInfo(digest, parsed.media_type, data, parsed.subject)

    def resolve(self, repo: str, ref: str) -> tuple[str, str]:
        """(digest, media type) of a manifest reference in ``repo``."""
        c = self.db.conn
        if is_digest(ref):
            digest = check_digest(ref)
        else:
            row = c.execute(
                "SELECT digest FROM tags WHERE repo=? AND tag=?", (repo, ref)
            ).fetchone()
            if row is None:
                raise self._manifest_unknown(repo, ref)
            digest = row[0]
        row = c.execute(
            "SELECT media_type FROM manifests WHERE repo=? AND digest=?", (repo, digest)
        ).fetchone()
        if row is None:
            raise self._manifest_unknown(repo, ref)
        return digest, row[0]

    def _manifest_unknown(self, repo: str, ref: str) -> RegistryError:
        if not self.repo_exists(repo):
            return RegistryError("NAME_UNKNOWN", f"repository {repo} not known to registry")
        return RegistryError("MANIFEST_UNKNOWN", f"manifest unknown: {repo}:{ref}")

    def get_manifest(self, repo: str, ref: str) -> ManifestInfo:
        digest, media_type = self.resolve(repo, ref)
        try:
            data = self.files.path(digest).read_bytes()
        except FileNotFoundError:
            raise self._manifest_unknown(repo, ref) from None
        return ManifestInfo(digest, media_type, data, None)

    def delete_manifest(self, repo: str, ref: str) -> None:
        with self.db.write() as c:
            if not is_digest(ref):
                # OCI 1.1: deleting by tag removes the tag only.
                if c.execute("DELETE FROM tags WHERE repo=? AND tag=?", (repo, ref)).rowcount == 0:
                    raise self._manifest_unknown(repo, ref)
                return
            if not c.execute(
                "SELECT 1 FROM manifests WHERE repo=? AND digest=?", (repo, ref)
            ).fetchone():
                raise self._manifest_unknown(repo, ref)
            parent = c.execute(
                "SELECT manifest FROM manifest_refs WHERE repo=? AND digest=? LIMIT 1", (repo, ref)
            ).fetchone()
            if parent is not None:
                raise RegistryError(
                    "DENIED",
                    f"manifest {ref} is part of index {parent[0]} in {repo}: delete the index "
                    "first",
                )
            c.execute("DELETE FROM manifests WHERE repo=? AND digest=?", (repo, ref))
            c.execute("DELETE FROM manifest_refs WHERE repo=? AND manifest=?", (repo, ref))
            c.execute("DELETE FROM tags WHERE repo=? AND digest=?", (repo, ref))
            c.execute("DELETE FROM repo_blobs WHERE repo=? AND digest=?", (repo, ref))

    def tags(self, repo: str, n: int | None, last: str) -> list[str]:
        if not self.repo_exists(repo):
            raise RegistryError("NAME_UNKNOWN", f"repository {repo} not known to registry")
        rows = self.db.conn.execute(
            "SELECT tag FROM tags WHERE repo=? AND tag > ? ORDER BY tag LIMIT ?",
            (repo, last, -1 if n is None else n),
        )
        return [r[0] for r in rows]

    def referrers(self, repo: str, digest: str, artifact_type: str | None) -> list[dict[str, Any]]:
        sql = (
            "SELECT digest, media_type, size, artifact_type, annotations FROM manifests "
            "WHERE repo=? AND subject=?"
        )
        args: tuple[Any, ...] = (repo, digest)
        if artifact_type:
            sql += " AND artifact_type=?"
            args += (artifact_type,)
        out = []
        for d, mt, size, at, ann in self.db.conn.execute(sql + " ORDER BY digest", args):
            desc: dict[str, Any] = {"mediaType": mt, "digest": d, "size": size}
            if at:
                desc["artifactType"] = at
            annotations = json.loads(ann)
            if annotations:
                desc["annotations"] = annotations
            out.append(desc)
        return out

    def close(self) -> None:
        self.db.close()
