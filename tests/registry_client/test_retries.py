"""Retry and backoff, on the client's clock seam: a fake clock whose sleep returns at once,
against real HTTP servers on 127.0.0.1 (the scriptable peer, or a proxy in front of Debian's
distribution registry). Each test states the exact backoff sequence and the retry limit
(``DOCKYARD_REGISTRY_ATTEMPTS=4``, set for every test in conftest) and takes milliseconds,
not the seconds a real backoff would sleep. Timeouts are the kernel's, not the clock's: the
tests that stall use a stall timeout of a fraction of a second."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import InvalidArgument, NotFound, Unavailable
from dockyard.image.reference import parse_reference
from dockyard.registry.client import RegistryClient
from dockyard.registry.download import fetch_blob
from dockyard.registry.endpoint import endpoint_for
from dockyard.registry.errors import NetworkError, Unauthorized
from dockyard.registry.pull import pull_one
from dockyard.registry.push import push_image
from dockyard.registry.transport import HTTPTransport, Timeouts
from dockyard.store.store import Store
from tests.conftest import CLI
from tests.registry_client.conftest import (
    Distribution,
    FakeClock,
    Peer,
    PeerImage,
    Proxy,
    free_port,
    make_image,
    sha,
)

BACKOFF = [0.2, 0.4, 0.8]  # before attempts 2, 3 and 4


def client(addr: str, clock: FakeClock, stall: float = 30.0) -> RegistryClient:
    return RegistryClient(
        endpoint_for(addr), None, transport=HTTPTransport(Timeouts(5.0, stall)), clock=clock
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(str(tmp_path / "store"))
    yield s
    s.close()


def _requests(peer: Peer, fragment: str) -> list[dict[str, str]]:
    return [headers for method, path, headers in peer.seen if fragment in path]


def _big_image() -> PeerImage:
    return make_image({"big.bin": os.urandom(2 << 20)})


# ---------------------------------------------------------------------- statuses


def test_503_twice_then_success_waits_0_2_then_0_4(peer: Peer, clock: FakeClock) -> None:
    img = make_image({"a.txt": b"x\n"})
    peer.add_image("x/app", "1", img)
    failures: list[str] = []

    def flaky(h: Any) -> bool:
        if "/manifests/" in h.path and len(failures) < 2:
            failures.append(h.path)
            h.send(503, b"busy")
            return True
        return False

    peer.before = flaky
    data, _, digest = client(peer.addr, clock).get_manifest("x/app", "1")
    assert digest == img.manifest_digest
    assert clock.sleeps == [0.2, 0.4]
    assert len(_requests(peer, "/manifests/")) == 3


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_status_is_tried_four_times_then_reported(
    peer: Peer, clock: FakeClock, status: int
) -> None:
    def broken(h: Any) -> bool:
        if "/manifests/" in h.path:
            h.send(status, b'{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}')
            return True
        return False

    peer.before = broken
    with pytest.raises(Unavailable, match="unknown: disk on fire"):
        client(peer.addr, clock).get_manifest("x/app", "1")
    assert clock.sleeps == BACKOFF
    assert len(_requests(peer, "/manifests/")) == 4


def test_backoff_doubles_up_to_five_seconds(
    peer: Peer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKYARD_REGISTRY_ATTEMPTS", "10")

    def broken(h: Any) -> bool:
        h.send(503, b"")
        return True

    peer.before = broken
    with pytest.raises(Unavailable):
        client(peer.addr, clock).ping()
    assert clock.sleeps == pytest.approx([0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0, 5.0])
    assert len(_requests(peer, "/v2/")) == 10


@pytest.mark.parametrize(
    "status, error",
    [(404, NotFound), (401, Unauthorized), (400, InvalidArgument)],
)
def test_answers_that_retrying_cannot_change_are_not_retried(
    peer: Peer, clock: FakeClock, status: int, error: type[Exception]
) -> None:
    def answer(h: Any) -> bool:
        if "/manifests/" in h.path:
            h.send(status, b'{"errors":[{"code":"DENIED","message":"no"}]}')
            return True
        return False

    peer.before = answer
    with pytest.raises(error):
        client(peer.addr, clock).get_manifest("x/app", "1")
    assert clock.sleeps == []
    assert len(_requests(peer, "/manifests/")) == 1


# ---------------------------------------------------------------------- connections


def test_refused_connection_is_tried_four_times(clock: FakeClock) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(NetworkError) as err:
        client(f"127.0.0.1:{port}", clock).get_manifest("x/app", "1")
    assert str(err.value) == (
        f'Get "http://127.0.0.1:{port}/v2/x/app/manifests/1": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused (after 4 attempts)"
    )
    assert clock.sleeps == BACKOFF


def test_connection_dropped_before_the_answer_is_retried(peer: Peer, clock: FakeClock) -> None:
    img = make_image({"a.txt": b"x\n"})
    peer.add_image("x/app", "1", img)
    drops: list[str] = []

    def drop(h: Any) -> bool:
        if "/manifests/" in h.path and len(drops) < 2:
            drops.append(h.path)
            h.close_connection = True
            h.connection.shutdown(2)
            return True
        return False

    peer.before = drop
    assert client(peer.addr, clock).get_manifest("x/app", "1")[2] == img.manifest_digest
    assert clock.sleeps == [0.2, 0.4]


def test_manifest_body_that_stalls_is_retried_then_reported(peer: Peer, clock: FakeClock) -> None:
    """Headers, then silence: each attempt waits the stall timeout (0.2 s here), then the
    next begins after the backoff; the error names the URL and the registry."""

    def stall(h: Any) -> bool:
        if "/manifests/" in h.path:
            h.send_response(200)
            h.send_header("Content-Length", "1000")
            h.end_headers()
            h.wfile.flush()
            peer.done.wait(30)
            return True
        return False

    peer.before = stall
    with pytest.raises(NetworkError) as err:
        client(peer.addr, clock, stall=0.2).get_manifest("x/app", "1")
    assert str(err.value) == (
        f'Get "http://{peer.addr}/v2/x/app/manifests/1": no data from {peer.addr} for 0.2s '
        "(after 4 attempts)"
    )
    assert clock.sleeps == BACKOFF
    assert len(_requests(peer, "/manifests/")) == 4


# ---------------------------------------------------------------------- blob downloads


def test_connection_dropped_mid_blob_is_resumed(peer: Peer, clock: FakeClock, store: Store) -> None:
    img = _big_image()
    peer.add_image("x/app", "1", img)
    layer = sha(img.layer)
    half = len(img.layer) // 2
    dropped: list[bool] = []

    def drop_once(h: Any) -> bool:
        if h.command == "GET" and h.path.endswith(layer) and not dropped:
            dropped.append(True)
            h.send_response(200)
            h.send_header("Content-Length", str(len(img.layer)))
            h.end_headers()
            h.wfile.write(img.layer[:half])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the connection drops mid-body
            return True
        return False

    peer.before = drop_once
    messages: list[dict[str, Any]] = []
    ref = parse_reference(f"{peer.addr}/x/app:1")
    image_id, _ = pull_one(store, client(peer.addr, clock), ref, messages.append)
    assert image_id == img.image_id
    gets = _requests(peer, layer)
    assert [g.get("Range") for g in gets] == [None, f"bytes={half}-"]
    assert clock.sleeps == [0.2]
    assert {"status": "Retrying in 0.2 seconds", "id": layer[7:19]} in messages
    assert store.content.has(layer)
    assert os.listdir(store.content.ingest_dir) == []


def test_registry_that_ignores_range_restarts_cleanly(
    peer: Peer, clock: FakeClock, store: Store
) -> None:
    img = _big_image()
    peer.add_image("x/app", "1", img)
    layer = sha(img.layer)
    dropped: list[bool] = []

    def no_ranges(h: Any) -> bool:
        if h.command == "GET" and h.path.endswith(layer):
            if not dropped:
                dropped.append(True)
                h.send_response(200)
                h.send_header("Content-Length", str(len(img.layer)))
                h.end_headers()
                h.wfile.write(img.layer[:1000])
                h.close_connection = True
                h.connection.shutdown(2)
                return True
            h.send(200, img.layer)  # the whole blob, Range ignored
            return True
        return False

    peer.before = no_ranges
    ref = parse_reference(f"{peer.addr}/x/app:1")
    pull_one(store, client(peer.addr, clock), ref, lambda m: None)
    assert clock.sleeps == [0.2]
    assert store.content.has(layer)
    assert os.listdir(store.content.ingest_dir) == []


def test_blob_that_stalls_resumes_four_times_then_keeps_the_partial_file(
    peer: Peer, clock: FakeClock, store: Store
) -> None:
    """Half the blob, then silence; every resume asks for the rest (Range) and gets
    silence too. After four attempts: an error naming the blob and the registry, and the
    half on disk for the next pull."""
    img = _big_image()
    peer.add_image("x/app", "1", img)
    layer = sha(img.layer)
    half = len(img.layer) // 2

    def stall_after_half(h: Any) -> bool:
        if h.command == "GET" and h.path.endswith(layer):
            start = int(h.headers.get("Range", "bytes=0-")[6:].split("-")[0])
            h.send_response(206 if start else 200)
            if start:
                h.send_header("Content-Range", f"bytes {start}-{len(img.layer) - 1}/*")
            h.send_header("Content-Length", str(len(img.layer) - start))
            h.end_headers()
            h.wfile.write(img.layer[start:half])
            h.wfile.flush()
            peer.done.wait(30)
            return True
        return False

    peer.before = stall_after_half
    with pytest.raises(NetworkError) as err:
        fetch_blob(
            client(peer.addr, clock, stall=0.2),
            store.content,
            "x/app",
            layer,
            len(img.layer),
        )
    assert str(err.value) == (
        f"blob {layer}: no data from {peer.addr} for 0.2s (after 4 attempts; "
        f"{half} of {len(img.layer)} bytes kept for the next pull)"
    )
    assert [g.get("Range") for g in _requests(peer, layer)] == [None] + [f"bytes={half}-"] * 3
    assert clock.sleeps == BACKOFF
    (partial,) = os.listdir(store.content.ingest_dir)
    assert os.path.getsize(os.path.join(store.content.ingest_dir, partial)) == half
    assert not store.content.has(layer)


# ---------------------------------------------------------------------- push


def test_push_retries_after_a_reset_and_a_503(
    bb: CLI, dy: CLI, registry: Distribution, proxy: Proxy, clock: FakeClock, tmp_path: Path
) -> None:
    """Through a proxy that drops the first layer upload mid-request and answers the first
    manifest PUT with 503: the push starts the upload again (0.2 s later, said in a progress
    message) and repeats the manifest (0.2 s later), and what lands on the registry is
    whole."""
    from tests.registry_client.test_distribution import _image_id, _random_image

    ref = f"{proxy.addr}/t11/retry:1"
    image_id = _random_image(bb, tmp_path, ref, mb=1)
    injected: list[str] = []

    def fault(method: str, path: str) -> str | int | None:
        if method == "PATCH" and "PATCH" not in injected:
            injected.append("PATCH")
            return "reset"
        if method == "PUT" and "/manifests/" in path and "PUT" not in injected:
            injected.append("PUT")
            return 503
        return None

    proxy.fault = fault
    messages: list[dict[str, Any]] = []
    store = Store(str(bb.root))
    try:
        digest, _, uploaded = push_image(
            store, client(proxy.addr, clock), parse_reference(ref), messages.append
        )
    finally:
        store.close()
    assert injected == ["PATCH", "PUT"]
    assert clock.sleeps == [0.2, 0.2]  # the upload loop, then the manifest request
    assert [m["status"] for m in messages if m.get("status", "").startswith("Retrying")] == [
        "Retrying in 0.2 seconds"
    ]
    assert uploaded == 2  # the layer (on its second session) and the config
    direct = f"{registry.addr}/t11/retry:1"
    assert f"Digest: {digest}" in dy("pull", direct).stdout
    assert _image_id(dy, direct) == image_id


def test_push_whose_uploads_stall_is_tried_four_times(
    bb: CLI, peer: Peer, clock: FakeClock
) -> None:
    """A registry that takes the upload's body and never answers: each attempt is a new
    upload session, each waits the stall timeout, and the error names the layer and the
    registry."""
    sessions: list[str] = []

    def uploads_stall(h: Any) -> bool:
        path = h.path.split("?")[0]
        if h.command == "HEAD":
            h.send(404, b"")
            return True
        if h.command == "POST" and path.endswith("/blobs/uploads/"):
            sessions.append(f"/v2/x/app/blobs/uploads/{len(sessions)}")
            h.send(202, b"", {"Location": sessions[-1]})
            return True
        if "/blobs/uploads/" in path:
            peer.done.wait(30)  # takes nothing more, answers nothing
            return True
        return False

    peer.before = uploads_stall
    ref = f"{peer.addr}/x/app:1"
    bb("tag", "busybox", ref)
    store = Store(str(bb.root))
    try:
        with pytest.raises(NetworkError) as err:
            push_image(
                store, client(peer.addr, clock, stall=0.2), parse_reference(ref), lambda m: None
            )
        diff_id = store.images.layers(store.images.resolve(ref))[0].diff_id
    finally:
        store.close()
    # The client's own words for a stall while sending and for one while waiting differ;
    # which one a run meets depends on socket buffer sizes.
    reason = err.value.reason
    assert reason in (f"{peer.addr} took no data for 0.2s", f"no data from {peer.addr} for 0.2s")
    assert str(err.value) == f"push {ref}: layer {diff_id}: {reason} (after 4 attempts)"
    assert len(sessions) == 4
    assert clock.sleeps == BACKOFF
