"""Reading a tar archive once, front to back, from a stream: a pipe, a blob, a spooled upload.

Headers are parsed by the standard library (``TarInfo.fromtarfile``: ustar, GNU long names
and sparse maps, PAX records), but the walk over the archive is ours, for three reasons:

* strictness: tarfile ends an archive quietly at a bad or short header past the first one;
  here only an empty read or a zero block ends it, anything else is CorruptData;
* memory: tarfile's TarFile keeps every member it has read, and a layer can have millions;
* speed: file data goes from the stream into one reused buffer and from there to the file
  (``readinto`` + ``os.write``), where tarfile's stream copies each chunk several times and
  its buffer is copied again on every small read (a 10k-file archive was 5x slower).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Collection, Iterator
from typing import Any, BinaryIO, Self, cast

from dockyard.errors import CorruptData
from dockyard.image.compression import ALL_COMPRESSIONS, open_decompressed

CHUNK = 128 * 1024  # as compression.CHUNK: one reused buffer, small enough for the heap
BLOCK = tarfile.BLOCKSIZE


def is_tar_header(block: bytes) -> bool:
    """Whether ``block`` starts a tar archive (Docker's IsArchive): a ustar magic, or an old
    v7 header whose checksum field matches the block."""
    if len(block) < BLOCK:
        return False
    if block[257:262] == b"ustar":
        return True
    try:
        want = int(block[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    got = sum(block[:148]) + 8 * 32 + sum(block[156:BLOCK])
    return want == got


class _Source:
    """The uncompressed stream, read forward only. Counts (and, for a layer's diff_id,
    hashes) every byte, so the digest comes out of the same single pass as the files."""

    def __init__(self, inner: BinaryIO, digest: bool) -> None:
        self._inner = inner
        self._hash = hashlib.sha256() if digest else None
        self.count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._inner.read(size)
        if self._hash is not None:
            self._hash.update(data)
        self.count += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        n = self._inner.readinto(buffer)  # type: ignore[attr-defined]
        if self._hash is not None:
            self._hash.update(buffer[:n])
        self.count += n
        return int(n)

    def tell(self) -> int:
        return self.count

    def digest(self) -> str:
        assert self._hash is not None, "opened without digest"
        return "sha256:" + self._hash.hexdigest()


class _Headers:
    """What ``TarInfo.fromtarfile`` needs of a TarFile: the stream, the name encoding, the
    offset of the next header and the global PAX records."""

    def __init__(self, source: _Source) -> None:
        self.fileobj = source
        self.encoding = "utf-8"
        self.errors = "surrogateescape"  # names are bytes on Linux: keep undecodable ones
        self.offset = 0
        self.pax_headers: dict[str, str] = {}


class _HeaderProblem(Exception):
    def __init__(self, detail: str, truncated: bool) -> None:
        super().__init__(detail)
        self.truncated = truncated


_END_OF_ARCHIVE: tuple[type[Exception], ...] = (
    vars(tarfile)["EmptyHeaderError"],  # nothing more to read
    vars(tarfile)["EOFHeaderError"],  # a zero block (POSIX: two of them end the archive)
)
_TRUNCATED_HEADER: tuple[type[Exception], ...] = (
    vars(tarfile)["TruncatedHeaderError"],
    vars(tarfile)["SubsequentHeaderError"],
)


class TarStream:
    """A tar archive from ``stream``, which may be compressed (one of ``compressions``) and
    may be a pipe. ``noun`` ("layer", "archive") names it in errors. With ``digest``, the
    sha256 of the uncompressed stream is computed on the way (a layer's diff_id). An empty
    stream is an empty archive (Go's archive/tar, so Docker, agrees)."""

    def __init__(
        self,
        stream: BinaryIO,
        *,
        noun: str = "archive",
        compressions: Collection[str] = ALL_COMPRESSIONS,
        digest: bool = False,
    ) -> None:
        self.noun = noun
        self._plain = open_decompressed(stream, what=noun, allowed=compressions)
        self._source = _Source(self._plain, digest)
        self._headers = _Headers(self._source)
        self._peeked: tarfile.TarInfo | None = None
        self._ended = False
        self._buffer: bytearray | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._plain.close()

    def truncated(self) -> CorruptData:
        return CorruptData(f"{self.noun} tar is truncated")

    def _skip_to(self, offset: int) -> None:
        """Past the rest of the current entry's data and its padding."""
        while self._source.count < offset:
            if not self._source.read(min(offset - self._source.count, CHUNK)):
                raise self.truncated()

    def _next(self) -> tarfile.TarInfo | None:
        if self._ended:
            return None
        self._skip_to(self._headers.offset)
        start = self._headers.offset = self._source.count
        try:
            return tarfile.TarInfo.fromtarfile(cast(Any, self._headers))
        except _END_OF_ARCHIVE:
            if self._source.count - start > BLOCK:
                # The end came inside an entry's extra headers (a long name, PAX records).
                raise self.truncated() from None
            self._ended = True
            return None
        except (tarfile.HeaderError, ValueError) as e:
            if start and isinstance(e, _TRUNCATED_HEADER):
                raise self.truncated() from None
            raise CorruptData(f"{self.noun} is not a valid tar archive: {e}") from None

    def peek(self) -> tarfile.TarInfo | None:
        """The next entry, left for ``entries``."""
        if self._peeked is None:
            self._peeked = self._next()
        return self._peeked

    def entries(self) -> Iterator[tarfile.TarInfo]:
        while True:
            ti, self._peeked = self._peeked or self._next(), None
            if ti is None:
                return
            yield ti

    def _copy(self, fd: int, size: int) -> None:
        if self._buffer is None:
            self._buffer = bytearray(CHUNK)
        view = memoryview(self._buffer)
        while size > 0:
            n = self._source.readinto(view[: min(size, CHUNK)])
            if not n:
                raise self.truncated()
            size -= n
            done = 0
            while done < n:
                done += os.write(fd, view[done:n])

    def copy_data(self, ti: tarfile.TarInfo, fd: int) -> None:
        """Write regular file ``ti``'s data (the entry ``entries`` just gave) to ``fd``, a new
        empty file. Sparse entries keep their holes."""
        assert self._source.count == ti.offset_data, "data read out of order"
        sparse = cast("list[tuple[int, int]] | None", ti.sparse)
        if sparse is None:
            self._copy(fd, ti.size)
            return
        for offset, length in sparse:
            os.lseek(fd, offset, os.SEEK_SET)
            self._copy(fd, length)
        os.ftruncate(fd, ti.size)

    def drain(self) -> None:
        """Read to the end of the stream: a diff_id covers the end-of-archive blocks and any
        padding after them."""
        while self._source.read(CHUNK):
            pass

    @property
    def size(self) -> int:
        """Bytes of the uncompressed stream read so far."""
        return self._source.count

    def digest(self) -> str:
        return self._source.digest()
