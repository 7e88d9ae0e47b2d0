"""The content store: verified, atomic ingest."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from dockyard.errors import CorruptData
from dockyard.image.digest import digest_bytes
from dockyard.store.content import ContentStore


def test_ingest_verifies_and_publishes(tmp_path: Path) -> None:
    cs = ContentStore(str(tmp_path))
    data = b"hello layer" * 1000
    digest, size = cs.ingest(io.BytesIO(data), expected=digest_bytes(data))
    assert digest == digest_bytes(data) and size == len(data)
    assert cs.read(digest) == data
    assert cs.verify(digest)
    assert cs.ingests() == []


def test_wrong_digest_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    cs = ContentStore(str(tmp_path))
    wrong = digest_bytes(b"something else")
    with pytest.raises(CorruptData, match="digest mismatch"):
        cs.ingest(io.BytesIO(b"payload"), expected=wrong)
    assert list(cs.blobs()) == []
    assert cs.ingests() == []
    assert not cs.has(digest_bytes(b"payload"))


def test_wrong_size_is_refused(tmp_path: Path) -> None:
    cs = ContentStore(str(tmp_path))
    with pytest.raises(CorruptData, match="size mismatch"):
        cs.ingest(io.BytesIO(b"payload"), expected=digest_bytes(b"payload"), expected_size=3)
    assert list(cs.blobs()) == [] and cs.ingests() == []


def test_interrupted_writer_leaves_no_blob(tmp_path: Path) -> None:
    cs = ContentStore(str(tmp_path))
    with pytest.raises(RuntimeError), cs.writer() as w:
        w.write(b"partial")
        raise RuntimeError("connection dropped")
    assert list(cs.blobs()) == [] and cs.ingests() == []


def test_blob_files_are_named_by_their_digest(tmp_path: Path) -> None:
    cs = ContentStore(str(tmp_path))
    d = cs.ingest_bytes(b"x")
    assert os.path.basename(cs.path(d)) == d.split(":")[1]
    assert cs.path(d).startswith(str(tmp_path / "content" / "blobs" / "sha256"))
