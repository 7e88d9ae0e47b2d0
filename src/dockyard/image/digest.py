"""Content digests (``sha256:<64 hex>``), as the OCI image spec defines them."""

from __future__ import annotations

from dockyard.errors import InvalidArgument

# Neither typing nor re: the image listing and inspect paths import this module (~4 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

_HEX = frozenset("0123456789abcdef")
CHUNK = 1 << 20


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256 digest, else raise InvalidArgument."""
    if not (len(digest) == 71 and digest.startswith("sha256:") and _HEX.issuperset(digest[7:])):
        raise InvalidArgument(f"invalid digest {digest[:80]!r}: expected sha256:<64 hex digits>")
    return digest


def digest_bytes(data: bytes) -> str:
    import hashlib  # loading OpenSSL costs ~2 ms: only commands that hash pay for it

    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_file(f: BinaryIO) -> tuple[str, int]:
    """Digest and size of the rest of a binary stream."""
    import hashlib

    h = hashlib.sha256()
    size = 0
    while chunk := f.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def hex_of(digest: str) -> str:
    """The hex part of ``sha256:<hex>``."""
    return digest.split(":", 1)[1]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Chain IDs per the OCI image spec: ChainID(L0) = DiffID(L0),
    ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln))."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append(digest_bytes(f"{out[-1]} {diff_id}".encode()))
    return out
