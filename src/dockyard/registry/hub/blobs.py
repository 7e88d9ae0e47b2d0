"""Blob files of the hub: ``blobs/sha256/<2 hex>/<hex>``, immutable, written to a temp file in
the same filesystem, fsynced, verified and renamed into place.

``gc.lock`` orders publishing against garbage collection across processes: whoever puts a
blob file in place and records it holds the lock shared; the collector holds it exclusive
while it decides what is unreferenced and deletes it, so it never removes a file that a
concurrent upload has just published and is about to record.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dockyard.registry.hub.names import DIGEST_RE, UPLOAD_ID_RE


class BlobFiles:
    def __init__(self, root: Path):
        self.root = root
        self.blobs = root / "blobs" / "sha256"
        self.uploads = root / "uploads"
        self.tmp = root / "tmp"
        for d in (self.blobs, self.uploads, self.tmp):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock_path = root / "gc.lock"

    def path(self, digest: str) -> Path:
        # Only validated digests reach here; the assert keeps a future caller honest.
        assert DIGEST_RE.fullmatch(digest), digest
        hex_ = digest[7:]
        return self.blobs / hex_[:2] / hex_

    def upload_path(self, upload_id: str) -> Path:
        assert UPLOAD_ID_RE.fullmatch(upload_id), upload_id
        return self.uploads / upload_id

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def publish(self, src: Path, digest: str) -> None:
        """Move a verified, fsynced file into place (call with the lock held shared)."""
        final = self.path(digest)
        if final.is_file():
            # Content-addressed: the bytes already there are the same bytes.
            src.unlink()
            return
        final.parent.mkdir(exist_ok=True, mode=0o700)
        os.replace(src, final)
        _fsync_dir(final.parent)

    def write_bytes(self, data: bytes, digest: str) -> None:
        """Write a small blob (a manifest) whose digest the caller computed from ``data``."""
        if self.exists(digest):
            return
        tmp = self.tmp / f"{os.getpid()}-{os.urandom(8).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        self.publish(tmp, digest)

    @contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def stored_digests(self) -> Iterator[str]:
        for sub in os.scandir(self.blobs):
            if not sub.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(sub.path):
                d = f"sha256:{entry.name}"
                if DIGEST_RE.fullmatch(d) and entry.name.startswith(sub.name):
                    yield d


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
