"""Which compression a stream uses, known by its magic bytes, and its decompressed bytes.

One sniffer for every caller: layer blobs (pull, load, import, snapshots), ADD archives, tar
build contexts and ``docker cp`` streams. The formats are Docker's DetectCompression list:
gzip, bzip2, xz and zstd (zstd through the ``zstandard`` package, a dependency: an install
without it says so in one line); anything else is taken as it is. Decompressors are imported
when a stream needs them: bz2, lzma and zlib cost start-up time that listing commands should
not pay.
"""

from __future__ import annotations

import importlib
import io
from collections.abc import Callable, Collection
from typing import Any, BinaryIO

from dockyard.errors import CorruptData, Unavailable

GZIP = "gzip"
BZIP2 = "bzip2"
XZ = "xz"
ZSTD = "zstd"

_MAGIC = (
    (b"\x1f\x8b", GZIP),
    (b"BZh", BZIP2),
    (b"\xfd7zXZ\x00", XZ),
    (b"\x28\xb5\x2f\xfd", ZSTD),
)
MAGIC_SIZE = 6  # the longest magic above: read this much to sniff

ALL_COMPRESSIONS = frozenset({GZIP, BZIP2, XZ, ZSTD})
# The OCI layer media types are tar, tar+gzip and tar+zstd: a layer blob in any other format
# could not be labelled when it is pushed again.
LAYER_COMPRESSIONS = frozenset({GZIP, ZSTD})

# Read size: 128 KiB buffers stay on the heap; 1 MiB ones were mapped and unmapped by malloc
# on every read (a gzip layer spent twice the system time in page faults).
CHUNK = 128 * 1024


def compression_of(head: bytes) -> str | None:
    """The compression whose magic ``head`` (a stream's first bytes) starts with, or None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


class _PrefixedRaw(io.RawIOBase):
    """The bytes already sniffed, then the rest of ``inner``: peeking on any stream.
    Closing it leaves ``inner`` open (the caller owns it)."""

    def __init__(self, prefix: bytes, inner: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        mv = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(mv), len(self._prefix))
            mv[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        readinto = getattr(self._inner, "readinto", None)
        if readinto is not None:
            return int(readinto(mv) or 0)
        data = self._inner.read(len(mv))
        mv[: len(data)] = data
        return len(data)


class _DecompressedRaw(io.RawIOBase):
    """A decompressor's output, its format errors turned into CorruptData."""

    def __init__(self, inner: Any, is_format_error: Callable[[BaseException], bool], what: str):
        super().__init__()
        self._inner = inner
        self._is_format_error = is_format_error
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        mv = memoryview(buffer).cast("B")
        try:
            data = self._inner.read(len(mv))
        except Exception as e:
            if not self._is_format_error(e):
                raise
            raise CorruptData(f"{self._what} stream is truncated or corrupt: {e}") from e
        mv[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._inner.close()
        super().close()


def zstandard(purpose: str) -> Any:
    """The ``zstandard`` module; Unavailable naming ``purpose`` (e.g. "zstd layers") when this
    install lacks it, never an ImportError's traceback."""
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        raise Unavailable(
            f"{purpose} need the zstandard Python package, which is not installed "
            "(pip install zstandard, or Debian's python3-zstandard)"
        ) from None


def _read_upto(f: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, looping over short reads (pipes)."""
    out = b""
    while len(out) < n:
        chunk = f.read(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def _decompressor(kind: str, raw: BinaryIO, what: str) -> tuple[Any, Callable[[Any], bool]]:
    """The reader of ``kind`` over ``raw`` and the test telling its format errors apart from
    I/O errors of the stream below (bz2 and gzip report bad data as OSError without errno)."""
    if kind == GZIP:
        import gzip
        import zlib

        def gzip_error(e: BaseException) -> bool:
            return isinstance(e, EOFError | zlib.error) or (
                isinstance(e, OSError) and e.errno is None
            )

        return gzip.GzipFile(fileobj=raw, mode="rb"), gzip_error
    if kind == BZIP2:
        import bz2

        def bz2_error(e: BaseException) -> bool:
            return isinstance(e, EOFError) or (isinstance(e, OSError) and e.errno is None)

        return bz2.BZ2File(raw), bz2_error
    if kind == XZ:
        import lzma

        return lzma.LZMAFile(raw), lambda e: isinstance(e, EOFError | lzma.LZMAError)
    zstd = zstandard(f"zstd-compressed {what}s")
    reader = zstd.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return reader, lambda e: isinstance(e, zstd.ZstdError)


def open_decompressed(
    f: BinaryIO,
    *,
    what: str = "layer",
    allowed: Collection[str] = ALL_COMPRESSIONS,
    buffer_size: int = CHUNK,
) -> BinaryIO:
    """The decompressed bytes of ``f``, whatever its compression (one of ``allowed``).

    Sniffs the magic bytes without seeking, so ``f`` may be a pipe. Closing the result does
    not close ``f``. ``what`` ("layer", "archive") names the stream in errors: corrupt or
    truncated compressed data raises CorruptData when it is read. Reads go ``buffer_size``
    at a time: to look at the first bytes only, ask for a small one (a decompressor that
    meets the break in a truncated stream fails the whole read).
    """
    prefix = _read_upto(f, MAGIC_SIZE)
    raw = io.BufferedReader(_PrefixedRaw(prefix, f), buffer_size)
    kind = compression_of(prefix)
    if kind is None:
        return raw
    if kind not in allowed:
        supported = ", ".join(["plain tar", *sorted(allowed)])
        raise CorruptData(f"{kind}-compressed {what}s are not supported ({supported})")
    reader, is_format_error = _decompressor(kind, raw, what)
    decompressed = _DecompressedRaw(reader, is_format_error, f"{what} {kind}")
    return io.BufferedReader(decompressed, buffer_size)
