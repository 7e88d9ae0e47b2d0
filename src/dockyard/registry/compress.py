"""Parallel, deterministic gzip and zstd for pushing layers (``push --compression``).

gzip: pigz's scheme: the input is cut into 1 MiB blocks, each compressed as raw deflate by its own
compressor (primed with the previous block's last 32 KiB, so little ratio is lost) and ended
with a sync flush; the blocks are concatenated inside one gzip member whose CRC and length
cover the whole input. zlib drops the GIL, so the blocks compress on several cores.

A block whose 64 KiB sample does not shrink is stored (deflate level 0): random or already
compressed data costs a CRC instead of a full deflate pass, and the stream stays ordinary
gzip. The output depends only on the input, so pushing the same layer twice yields the same
digest.

zstd: zstandard's multi-threaded mode at level 3 (zstd's default, which containerd and BuildKit use
for ``+zstd`` layers) with a content checksum. Its output depends on the input and the level,
not on the number of worker threads (as long as there is one), so it is deterministic too.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from dockyard.image.compression import GZIP, ZSTD, zstandard

BLOCK = 1 << 20
WINDOW = 32 << 10
SAMPLE = 64 << 10
LEVEL = 6  # Go's gzip.DefaultCompression, what docker push uses
ZSTD_LEVEL = 3
PUSH_COMPRESSIONS = (GZIP, ZSTD)
# gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown" (as Go writes).
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
FINAL_EMPTY_BLOCK = b"\x03\x00"


def _deflate(block: bytes, dictionary: bytes, level: int) -> bytes:
    if level and len(block) >= SAMPLE:
        probe = zlib.compressobj(1, zlib.DEFLATED, -15)
        sample = probe.compress(block[:SAMPLE]) + probe.flush(zlib.Z_SYNC_FLUSH)
        if len(sample) > SAMPLE * 0.97:
            level = 0
    if dictionary and level:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    return c.compress(block) + c.flush(zlib.Z_SYNC_FLUSH)


def gzip_stream(src: BinaryIO, level: int = LEVEL, threads: int | None = None) -> Iterator[bytes]:
    """Yield the gzip encoding of ``src`` piece by piece."""
    threads = threads or min(4, os.cpu_count() or 1)
    crc = 0
    total = 0
    yield HEADER
    with ThreadPoolExecutor(threads) as pool:
        pending: deque[Future[bytes]] = deque()
        previous = b""
        while True:
            block = src.read(BLOCK)
            if block:
                crc = zlib.crc32(block, crc)
                total += len(block)
                pending.append(pool.submit(_deflate, block, previous[-WINDOW:], level))
                previous = block
            while pending and (len(pending) > threads * 2 or not block):
                yield pending.popleft().result()
            if not block:
                break
    yield FINAL_EMPTY_BLOCK
    yield struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF)


def zstd_stream(
    src: BinaryIO, level: int = ZSTD_LEVEL, threads: int | None = None
) -> Iterator[bytes]:
    """Yield the zstd encoding of ``src`` piece by piece (one frame, with a checksum)."""
    zstd = zstandard("zstd-compressed pushes")
    threads = max(1, threads or min(4, os.cpu_count() or 1))  # 0 would be another encoding
    compressor = zstd.ZstdCompressor(level=level, threads=threads, write_checksum=True)
    for piece in compressor.read_to_iter(src, read_size=BLOCK, write_size=BLOCK):
        yield bytes(piece)


def compressed_stream(src: BinaryIO, compression: str) -> Iterator[bytes]:
    """``src`` in ``compression`` (one of PUSH_COMPRESSIONS)."""
    return zstd_stream(src) if compression == ZSTD else gzip_stream(src)
