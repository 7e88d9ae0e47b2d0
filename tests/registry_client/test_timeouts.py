"""Registries that stop talking: pull and push end with an error that names the registry
and the blob, exit 125, and leave nothing but a partial download that the next pull
continues from (and ``system check --repair`` removes: its store half, see conftest).

Real servers on 127.0.0.1 stall: after the headers, mid-body, before accepting a
connection, while an upload is sent and before it is answered. Timeouts are half a second
(``DOCKYARD_REGISTRY_TIMEOUT``, ``DOCKYARD_REGISTRY_CONNECT_TIMEOUT``) and each request is
tried once (``DOCKYARD_REGISTRY_ATTEMPTS=1``): how often and how long apart the client
retries is test_retries.py's subject, on a fake clock. Each command runs with a generous
subprocess timeout: that it returns at all is the point, not how fast.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from dockyard.registry.transport import READ_CHUNK
from tests.conftest import CLI, tree_snapshot
from tests.registry_client.conftest import (
    Distribution,
    Peer,
    PeerImage,
    Proxy,
    make_image,
    repair_store,
    sha,
    store_leftovers,
)

TIMEOUT = "0.5"
COMMAND_TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def short_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_REGISTRY_TIMEOUT", TIMEOUT)
    monkeypatch.setenv("DOCKYARD_REGISTRY_CONNECT_TIMEOUT", TIMEOUT)
    monkeypatch.setenv("DOCKYARD_REGISTRY_ATTEMPTS", "1")


def _ingest(cli: CLI) -> list[Path]:
    d = cli.root / "content" / "ingest"
    return sorted(d.iterdir()) if d.is_dir() else []


def _blobs(cli: CLI) -> list[str]:
    d = cli.root / "content" / "blobs" / "sha256"
    return sorted(os.listdir(d)) if d.is_dir() else []


def _assert_repaired_and_clean(cli: CLI) -> None:
    repair_store(cli)
    assert store_leftovers(cli) == []


class BlobServer:
    """Serves one blob (or the manifest at ``path``) itself, Range included, counting the
    bytes it writes, and stalls after byte ``stall_at`` while ``stalling`` is set."""

    def __init__(self, peer: Peer, data: bytes, stall_at: int, path: str = ""):
        self.peer, self.data, self.stall_at = peer, data, stall_at
        self.digest = sha(data)
        self.path = path or f"/blobs/{self.digest}"
        self.stalling = True
        self.sent = 0
        self.ranges: list[str | None] = []
        self.lock = threading.Lock()

    def __call__(self, h: Any) -> bool:
        if h.command != "GET" or not h.path.endswith(self.path):
            return False
        rng = h.headers.get("Range")
        self.ranges.append(rng)
        start = int(rng[6:].split("-")[0]) if rng else 0
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(self.data) - 1}/{len(self.data)}")
        h.send_header("Content-Length", str(len(self.data) - start))
        h.end_headers()
        end = max(start, self.stall_at) if self.stalling else len(self.data)
        h.wfile.write(self.data[start:end])
        h.wfile.flush()
        with self.lock:
            self.sent += end - start
        if self.stalling:
            self.peer.done.wait(60)
            h.close_connection = True
        return True


def _image(peer: Peer, mb: int = 2) -> PeerImage:
    img = make_image({"big.bin": os.urandom(mb << 20), "hello.txt": b"hello\n"})
    peer.add_image("x/app", "1", img)
    return img


# ---------------------------------------------------------------------- pull


@pytest.mark.parametrize("what", ["manifest", "config", "layer"])
def test_pull_from_a_registry_that_stalls_after_its_headers(dy: CLI, peer: Peer, what: str) -> None:
    img = _image(peer)
    ref = f"{peer.addr}/x/app:1"
    if what == "manifest":
        peer.before = BlobServer(peer, img.manifest, 0, "/manifests/1")
        failed = f'Get "http://{peer.addr}/v2/x/app/manifests/1"'
    else:
        data = img.config if what == "config" else img.layer
        peer.before = BlobServer(peer, data, 0)
        blob_url = f"http://{peer.addr}/v2/x/app/blobs/{sha(data)}"
        failed = f'Get "{blob_url}"' if what == "config" else f"blob {sha(data)}"
    r = dy("pull", ref, check=False, timeout=COMMAND_TIMEOUT)
    assert r.returncode == 125
    assert r.stderr == f"Error: pull {ref}: {failed}: no data from {peer.addr} for 0.5s\n"
    assert _blobs(dy) == [] and _ingest(dy) == []
    assert dy("images", "-q").stdout == ""
    _assert_repaired_and_clean(dy)

    peer.before = None  # the registry recovers: so does the pull
    dy("pull", ref, timeout=COMMAND_TIMEOUT)
    assert dy("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == img.image_id


def test_pull_that_stalls_mid_blob_continues_where_it_stopped(dy: CLI, peer: Peer) -> None:
    img = _image(peer)
    ref = f"{peer.addr}/x/app:1"
    half = len(img.layer) // 2
    server = BlobServer(peer, img.layer, half)
    peer.before = server
    r = dy("pull", ref, check=False, timeout=COMMAND_TIMEOUT)
    assert r.returncode == 125
    assert r.stderr == (
        f"Error: pull {ref}: blob {server.digest}: no data from {peer.addr} for 0.5s "
        f"({half} of {len(img.layer)} bytes kept for the next pull)\n"
    )
    # Nothing in the store but the partial download, which check calls a leftover.
    (partial,) = _ingest(dy)
    assert partial.stat().st_size == half
    assert _blobs(dy) == [] and dy("images", "-q").stdout == ""
    assert store_leftovers(dy) == [f"leftover: partial ingest {partial.name}"]

    server.stalling = False
    dy("pull", ref, timeout=COMMAND_TIMEOUT)
    assert server.ranges == [None, f"bytes={half}-"]
    # Across both pulls the registry sent the blob once (a chunk in flight at the stall
    # could be sent twice).
    assert len(img.layer) <= server.sent <= len(img.layer) + READ_CHUNK
    assert dy("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == img.image_id
    assert _ingest(dy) == []
    assert store_leftovers(dy) == []


def test_check_repair_removes_a_stale_partial_download(dy: CLI, peer: Peer) -> None:
    img = _image(peer)
    ref = f"{peer.addr}/x/app:1"
    server = BlobServer(peer, img.layer, len(img.layer) // 3)
    peer.before = server
    assert dy("pull", ref, check=False, timeout=COMMAND_TIMEOUT).returncode == 125
    (partial,) = _ingest(dy)
    assert repair_store(dy) == [f"partial ingest {partial.name}"]
    assert _ingest(dy) == []
    assert store_leftovers(dy) == []
    server.stalling = False
    dy("pull", ref, timeout=COMMAND_TIMEOUT)
    assert server.ranges[-1] is None  # nothing left to resume from: the whole blob
    assert dy("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip() == img.image_id


def test_pull_from_a_registry_that_never_accepts(dy: CLI, unanswered_port: int) -> None:
    addr = f"127.0.0.1:{unanswered_port}"
    ref = f"{addr}/x/app:1"
    r = dy("pull", ref, check=False, timeout=COMMAND_TIMEOUT)
    assert r.returncode == 125
    assert r.stderr == (
        f'Error: pull {ref}: Get "http://{addr}/v2/x/app/manifests/1": '
        f"dial tcp {addr}: i/o timeout (no answer for 0.5s)\n"
    )
    assert _blobs(dy) == [] and _ingest(dy) == []
    _assert_repaired_and_clean(dy)


def test_bad_timeout_setting_is_refused(dy: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("soon", "0", "-1", "inf"):
        monkeypatch.setenv("DOCKYARD_REGISTRY_TIMEOUT", bad)
        r = dy("pull", "127.0.0.1:1/x/app:1", check=False)
        assert r.returncode == 125
        assert r.stderr == (
            f"Error: DOCKYARD_REGISTRY_TIMEOUT: want a number of seconds above 0, got {bad!r}\n"
        )


# ---------------------------------------------------------------------- push


def _random_image(cli: CLI, tmp_path: Path, tag: str, mb: int) -> str:
    from tests.registry_client.test_distribution import _random_image as make

    return make(cli, tmp_path, tag, mb=mb)


@pytest.mark.parametrize(
    "fault, reason",
    [
        ("stall-reading", "{addr} took no data for 0.5s"),  # the upload's body is not read
        ("stall", "no data from {addr} for 0.5s"),  # it is read, and never answered
    ],
)
def test_push_to_a_registry_that_stalls_on_upload(
    bb: CLI,
    dy: CLI,
    registry: Distribution,
    proxy: Proxy,
    tmp_path: Path,
    fault: str,
    reason: str,
) -> None:
    """8 MiB of noise: more than the proxy's receive buffer and our send buffer hold, so
    a proxy that stops reading stops the upload."""
    ref = f"{proxy.addr}/t-stall/{fault}:1"
    image_id = _random_image(bb, tmp_path, ref, mb=8)
    (diff_id,) = json.loads(
        bb("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref).stdout
    )
    proxy.fault = lambda method, path: fault if method == "PATCH" else None
    before = tree_snapshot(bb.root)
    r = bb("push", ref, check=False, timeout=COMMAND_TIMEOUT)
    assert r.returncode == 125
    assert r.stderr == (f"Error: push {ref}: layer {diff_id}: {reason.format(addr=proxy.addr)}\n")
    assert tree_snapshot(bb.root) == before
    _assert_repaired_and_clean(bb)

    proxy.fault = None
    out = bb("push", ref, timeout=COMMAND_TIMEOUT).stdout
    digest = out.splitlines()[-1].split()[2]
    direct = f"{registry.addr}/t-stall/{fault}:1"
    assert f"Digest: {digest}" in dy("pull", direct, timeout=COMMAND_TIMEOUT).stdout
    assert dy("image", "inspect", "--format", "{{.Id}}", direct).stdout.strip() == image_id
