"""The content store: immutable blobs addressed by digest.

Writes go to ``content/ingest/<pid>-<random>``, are hashed while written, fsynced, verified and
only then renamed into ``content/blobs/sha256/<hex>``; a blob is never visible half-written and a
wrong digest is refused with nothing stored (containerd's content store works the same way).
"""

from __future__ import annotations

import os

from dockyard.errors import CorruptData, NotFound
from dockyard.image.digest import CHUNK, hex_of, validate_digest

TYPE_CHECKING = False  # not typing's: the image listing path imports this module
if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType
    from typing import BinaryIO


class BlobWriter:
    """An open ingest. ``commit()`` verifies and publishes; leaving without it discards."""

    def __init__(self, store: ContentStore, expected: str | None, expected_size: int | None):
        self._store = store
        self._expected = validate_digest(expected) if expected else None
        self._expected_size = expected_size
        import hashlib  # here, not at import: listing commands never hash

        self._hash = hashlib.sha256()
        self.size = 0
        name = f"{os.getpid()}-{os.urandom(8).hex()}"
        self.path = os.path.join(store.ingest_dir, name)
        self._f: BinaryIO | None = open(self.path, "xb")  # noqa: SIM115 - closed in commit/abort
        self.digest = ""

    def write(self, data: bytes) -> int:
        assert self._f is not None
        self._hash.update(data)
        self.size += len(data)
        return self._f.write(data)

    def copy_from(self, src: BinaryIO) -> None:
        while chunk := src.read(CHUNK):
            self.write(chunk)

    def commit(self) -> str:
        """Verify and publish. Returns the digest; raises CorruptData on a mismatch."""
        assert self._f is not None
        f, self._f = self._f, None
        try:
            f.flush()
            os.fsync(f.fileno())
        finally:
            f.close()
        digest = "sha256:" + self._hash.hexdigest()
        if self._expected_size is not None and self.size != self._expected_size:
            os.unlink(self.path)
            raise CorruptData(
                f"size mismatch for {self._expected}: expected {self._expected_size} bytes, "
                f"got {self.size}"
            )
        if self._expected and digest != self._expected:
            os.unlink(self.path)
            raise CorruptData(f"digest mismatch: expected {self._expected}, got {digest}")
        final = self._store.path(digest)
        if os.path.exists(final):
            os.unlink(self.path)
        else:
            os.rename(self.path, final)
            self._store.sync_dir()
        self.digest = digest
        return digest

    def abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class ContentStore:
    def __init__(self, root: str):
        self.root = os.path.join(root, "content")
        self.blob_dir = os.path.join(self.root, "blobs", "sha256")
        self.ingest_dir = os.path.join(self.root, "ingest")
        os.makedirs(self.blob_dir, exist_ok=True)
        os.makedirs(self.ingest_dir, exist_ok=True)

    def path(self, digest: str) -> str:
        return os.path.join(self.blob_dir, hex_of(validate_digest(digest)))

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in the content store") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in the content store") from None

    def read(self, digest: str) -> bytes:
        with self.open(digest) as f:
            return f.read()

    def writer(self, expected: str | None = None, expected_size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected, expected_size)

    def ingest(
        self, src: BinaryIO, expected: str | None = None, expected_size: int | None = None
    ) -> tuple[str, int]:
        """Copy a stream into the store. If ``expected`` is already present, the stream is
        still read and verified (the caller asked for it), but nothing is rewritten."""
        with self.writer(expected, expected_size) as w:
            w.copy_from(src)
            digest = w.commit()
            return digest, w.size

    def ingest_bytes(self, data: bytes, expected: str | None = None) -> str:
        with self.writer(expected) as w:
            w.write(data)
            return w.commit()

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def blobs(self) -> Iterator[str]:
        for name in os.listdir(self.blob_dir):
            yield "sha256:" + name

    def ingests(self) -> list[str]:
        return [os.path.join(self.ingest_dir, n) for n in os.listdir(self.ingest_dir)]

    def verify(self, digest: str) -> bool:
        import hashlib

        h = hashlib.sha256()
        with self.open(digest) as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return "sha256:" + h.hexdigest() == digest

    def sync_dir(self) -> None:
        fd = os.open(self.blob_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    @staticmethod
    def remove_path(path: str) -> None:
        """Remove a file, a symlink or a whole directory; one already gone is no error."""
        if os.path.isdir(path) and not os.path.islink(path):
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def writer_alive(path: str) -> bool:
    """Temp files and dirs are named ``<pid>-<random>`` by the process writing them: one whose
    writer is gone is a leftover. Other names (``rm-...``, a removal cut short) never are."""
    head = os.path.basename(path).split("-", 1)[0]
    if not head.isdigit():
        return False
    try:
        os.kill(int(head), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
