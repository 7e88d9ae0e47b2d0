"""Blob upload sessions: ``uploads/<id>`` files that grow PATCH by PATCH.

The server keeps each session's running sha256 in memory, so the final PUT verifies the digest
without reading the blob again; after a restart (or an interrupted write) the hash is rebuilt
from the file, which always holds exactly the bytes acknowledged so far.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.registry.hub.blobs import BlobFiles
from dockyard.registry.hub.db import Database
from dockyard.registry.hub.errors import RegistryError
from dockyard.registry.hub.names import UPLOAD_ID_RE


@dataclass
class _Session:
    lock: threading.Lock = field(default_factory=threading.Lock)
    hasher: Any = None
    offset: int = -1


def upload_headers(repo: str, upload_id: str, offset: int) -> dict[str, str]:
    """Where an upload stands, as the spec's 202/204 answers say it."""
    return {
        "Location": f"/v2/{repo}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(offset - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


class Uploads:
    def __init__(self, files: BlobFiles, db: Database):
        self.files = files
        self.db = db
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def start(self, repo: str) -> str:
        upload_id = os.urandom(16).hex()
        path = self.files.upload_path(upload_id)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        now = time.time()
        with self.db.write() as c:
            c.execute(
                "INSERT INTO uploads(id, repo, started, touched) VALUES (?,?,?,?)",
                (upload_id, repo, now, now),
            )
        return upload_id

    def offset(self, repo: str, upload_id: str) -> int:
        s = self._session(repo, upload_id)
        with s.lock:
            self._sync(s, upload_id)
            return s.offset

    def append(
        self, repo: str, upload_id: str, chunks: Iterable[bytes], start: int | None = None
    ) -> int:
        """Append a chunk; ``start`` (from Content-Range) must be where the upload stands."""
        s = self._session(repo, upload_id)
        with s.lock:
            self._sync(s, upload_id)
            self._check_start(s, repo, upload_id, start)
            self._touch(upload_id)
            self._write(s, upload_id, chunks)
            self._touch(upload_id)
            return s.offset

    def finish(
        self,
        repo: str,
        upload_id: str,
        digest: str,
        chunks: Iterable[bytes],
        start: int | None,
        commit: Callable[[Path, int], None],
    ) -> int:
        """Append the last chunk, verify the digest, fsync, and hand the file to ``commit``
        (which moves it into place and records it); returns the blob's size. A wrong digest
        ends the session and stores nothing."""
        s = self._session(repo, upload_id)
        with s.lock:
            self._sync(s, upload_id)
            self._check_start(s, repo, upload_id, start)
            self._write(s, upload_id, chunks)
            got = "sha256:" + s.hasher.hexdigest()
            if got != digest:
                self.drop(upload_id)
                raise RegistryError(
                    "DIGEST_INVALID",
                    f"provided digest {digest} did not match uploaded content ({got})",
                    detail={"digest": digest},
                )
            path = self.files.upload_path(upload_id)
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            commit(path, s.offset)
            with self._lock:
                self._sessions.pop(upload_id, None)
            return s.offset

    def cancel(self, repo: str, upload_id: str) -> None:
        s = self._session(repo, upload_id)
        with s.lock:
            self.drop(upload_id)

    def drop(self, upload_id: str) -> None:
        with self.db.write() as c:
            c.execute("DELETE FROM uploads WHERE id=?", (upload_id,))
        self.files.upload_path(upload_id).unlink(missing_ok=True)
        with self._lock:
            self._sessions.pop(upload_id, None)

    def _session(self, repo: str, upload_id: str) -> _Session:
        if not UPLOAD_ID_RE.fullmatch(upload_id):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id[:80]})
        row = self.db.conn.execute("SELECT repo FROM uploads WHERE id=?", (upload_id,)).fetchone()
        if row is None or row[0] != repo:
            with self._lock:
                self._sessions.pop(upload_id, None)
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id})
        with self._lock:
            return self._sessions.setdefault(upload_id, _Session())

    def _sync(self, s: _Session, upload_id: str) -> None:
        """Bring the running hash in line with the file (after a restart, or an error)."""
        path = self.files.upload_path(upload_id)
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", detail={"uuid": upload_id}) from None
        if s.hasher is not None and s.offset == size:
            return
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        s.hasher, s.offset = h, size

    @staticmethod
    def _check_start(s: _Session, repo: str, upload_id: str, start: int | None) -> None:
        if start is not None and start != s.offset:
            # The spec: a chunk out of order is 416, with where the upload really stands.
            raise RegistryError(
                "BLOB_UPLOAD_INVALID",
                f"chunk starts at {start}, the upload is at {s.offset}",
                status=416,
                headers=upload_headers(repo, upload_id, s.offset),
            )

    def _write(self, s: _Session, upload_id: str, chunks: Iterable[bytes]) -> None:
        fd = os.open(self.files.upload_path(upload_id), os.O_WRONLY | os.O_APPEND)
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    n = os.write(fd, view)
                    s.hasher.update(view[:n])
                    s.offset += n
                    view = view[n:]
        except BaseException:
            # The file holds what was written; the next request re-reads it if in doubt.
            s.hasher = None
            raise
        finally:
            os.close(fd)

    def _touch(self, upload_id: str) -> None:
        with self.db.write() as c:
            c.execute("UPDATE uploads SET touched=? WHERE id=?", (time.time(), upload_id))
