"""Bad peers and bad input: each refused with a clear error, nothing corrupt stored."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import InvalidArgument
from tests.conftest import BIN, CLI, tree_snapshot
from tests.helpers import reference_docker
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


def _blobs(cli: CLI) -> list[str]:
    d = cli.root / "content" / "blobs" / "sha256"
    return sorted(os.listdir(d)) if d.is_dir() else []


def _ingest(cli: CLI) -> list[str]:
    d = cli.root / "content" / "ingest"
    return sorted(os.listdir(d)) if d.is_dir() else []


def _store_state(cli: CLI) -> dict[str, object]:
    cli("images")  # make sure the store exists
    return tree_snapshot(cli.root)


def _big_image() -> PeerImage:
    # Random bytes do not compress: the layer blob is ~2 MB on the wire.
    return make_image({"big.bin": os.urandom(2 << 20), "hello.txt": b"hello\n"})


def test_blob_with_wrong_digest_is_refused(dy: CLI, peer: Peer) -> None:
    img = make_image({"a.txt": b"real content\n"})
    peer.add_image("x/app", "1", img)
    peer.blobs[sha(img.layer)] = img.layer[:-8] + b"\0" * 8  # same size, wrong bytes
    before = _store_state(dy)
    r = dy("pull", f"{peer.addr}/x/app:1", check=False)
    assert r.returncode == 125
    assert "digest mismatch" in r.stderr and sha(img.layer) in r.stderr
    assert tree_snapshot(dy.root) == before  # no blob, no partial file, no snapshot
    assert dy("images", "-q").stdout == ""


def test_config_with_wrong_digest_is_refused(dy: CLI, peer: Peer) -> None:
    img = make_image({"a.txt": b"x\n"})
    peer.add_image("x/app", "1", img)
    peer.blobs[sha(img.config)] = img.config.replace(b"amd64", b"arm64")
    r = dy("pull", f"{peer.addr}/x/app:1", check=False)
    assert r.returncode == 125 and "digest mismatch" in r.stderr
    assert _blobs(dy) == [] and dy("images", "-q").stdout == ""


def test_manifest_not_matching_its_digest_is_refused(dy: CLI, peer: Peer) -> None:
    img = make_image({"a.txt": b"x\n"})
    other = make_image({"b.txt": b"y\n"})
    peer.add_image("x/app", "1", img)
    # Asked by digest, the peer answers with a different manifest.
    peer.manifests[f"x/app:{img.manifest_digest}"] = (
        other.manifest,
        "application/vnd.docker.distribution.manifest.v2+json",
    )
    r = dy("pull", f"{peer.addr}/x/app@{img.manifest_digest}", check=False)
    assert r.returncode == 125 and "manifest digest mismatch" in r.stderr
    assert _blobs(dy) == []


def test_manifest_over_4mb_is_refused(dy: CLI, peer: Peer) -> None:
    img = make_image({"a.txt": b"x\n"})
    peer.add_image("x/app", "1", img)
    doc = json.loads(img.manifest)
    doc["annotations"] = {"padding": "x" * (4 * 1024 * 1024 + 10)}
    huge = json.dumps(doc).encode()
    peer.manifests["x/app:1"] = (huge, "application/vnd.docker.distribution.manifest.v2+json")
    before = _store_state(dy)
    r = dy("pull", f"{peer.addr}/x/app:1", check=False)
    assert r.returncode == 125
    assert "manifest is larger than 4194304 bytes" in r.stderr
    assert tree_snapshot(dy.root) == before


@pytest.mark.parametrize(
    "challenge, message",
    [
        ('Bearer realm="file:///etc/passwd",service="x"', "is not an http(s) URL"),
        ('Bearer realm="",service="x"', "is not an http(s) URL"),
        ('Bearer service="x"', "is not an http(s) URL"),
        ('Bearer realm="http://127.0.0.1:1/token",service="x"', "cannot get a token"),
        ("Negotiate abc", "unsupported authentication scheme"),
    ],
)
def test_401_with_a_bad_realm(dy: CLI, peer: Peer, challenge: str, message: str) -> None:
    img = make_image({"a.txt": b"x\n"})
    peer.add_image("x/app", "1", img)

    def deny(h: BaseHTTPRequestHandler) -> bool:
        h.send(
            401,
            b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',  # type: ignore[attr-defined]
            {"WWW-Authenticate": challenge},
        )
        return True

    peer.before = deny
    r = dy("pull", f"{peer.addr}/x/app:1", check=False)
    assert r.returncode == 125
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert _blobs(dy) == []


def test_killed_pull_resumes_from_its_partial_file(dy: CLI, peer: Peer) -> None:
    img = _big_image()
    peer.add_image("x/app", "1", img)
    layer = sha(img.layer)
    half = len(img.layer) // 2
    sent_half = threading.Event()
    release = threading.Event()

    def stall(h: BaseHTTPRequestHandler) -> bool:
        if h.command == "GET" and h.path.endswith(layer) and not sent_half.is_set():
            h.send_response(200)
            h.send_header("Content-Length", str(len(img.layer)))
            h.end_headers()
            h.wfile.write(img.layer[:half])
            h.wfile.flush()
            sent_half.set()
            release.wait(30)
            h.close_connection = True
            return True
        return False

    peer.before = stall
    dy("images")
    proc = subprocess.Popen(
        [
            str(BIN),
            "--root",
            str(dy.root),
            "--run-root",
            str(dy.run_root),
            "pull",
            f"{peer.addr}/x/app:1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert sent_half.wait(60)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the client wrote what it received
            parts = [n for n in _ingest(dy) if "-pull-" in n]
            if parts and (dy.root / "content" / "ingest" / parts[0]).stat().st_size >= half:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the client did not put on disk all it had received")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert [n for n in _ingest(dy) if "-pull-" in n], "the partial download was kept"
    dy("pull", f"{peer.addr}/x/app:1")
    gets = [hd for m, p, hd in peer.seen if m == "GET" and p.endswith(layer)]
    assert gets[-1].get("Range") == f"bytes={half}-"
    assert _ingest(dy) == []
    assert layer.split(":")[1] in _blobs(dy)


def test_5xx_forever_gives_a_clear_error(
    dy: CLI, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's own words reach the user. (How often and how long apart the client
    asks: test_retries.py, on a fake clock.)"""
    monkeypatch.setenv("DOCKYARD_REGISTRY_ATTEMPTS", "1")

    def broken(h: BaseHTTPRequestHandler) -> bool:
        if h.path != "/v2/":
            h.send(500, b'{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}')  # type: ignore[attr-defined]
            return True
        return False

    peer.before = broken
    r = dy("pull", f"{peer.addr}/x/app:1", check=False)
    assert r.returncode == 125 and "unknown: disk on fire" in r.stderr
    assert "Traceback" not in r.stderr


def test_unreachable_registry(dy: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKYARD_REGISTRY_ATTEMPTS", "1")
    r = dy("pull", "127.0.0.1:1/x/app:1", check=False)
    assert r.returncode == 125
    # Docker: Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused
    assert r.stderr == (
        'Error: pull 127.0.0.1:1/x/app:1: Get "http://127.0.0.1:1/v2/x/app/manifests/1": '
        "dial tcp 127.0.0.1:1: connect: connection refused\n"
    )


def test_unreachable_registry_in_dockers_words(
    dy: CLI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``docker pull 127.0.0.1:1/x/app:1``: Docker says ``Error response from daemon: Get
    "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused`` and exits
    1; we name the same failure in the same words (and exit 125, as for every engine error)."""
    if not reference_docker():
        pytest.skip("no Docker daemon answers")
    monkeypatch.setenv("DOCKYARD_REGISTRY_ATTEMPTS", "1")
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    theirs = subprocess.run(
        ["docker", "pull", "127.0.0.1:1/x/app:1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    ours = dy("pull", "127.0.0.1:1/x/app:1", check=False)
    words = "dial tcp 127.0.0.1:1: connect: connection refused"
    assert theirs.returncode == 1 and words in theirs.stderr, theirs.stderr
    assert ours.returncode == 125 and words in ours.stderr, ours.stderr


@pytest.mark.parametrize(
    "name",
    [
        "127.0.0.1:5999/../etc/passwd",
        "127.0.0.1:5999/a/../../b",
        "127.0.0.1:5999/./x",
        "127.0.0.1:5999/x/..",
        "../../x",
        "127.0.0.1:5999/x:../y",
    ],
)
def test_path_tricks_in_names_are_refused(dy: CLI, name: str) -> None:
    for verb in ("pull", "push"):
        r = dy(verb, name, check=False)
        assert r.returncode == 125
        assert "invalid reference format" in r.stderr or "invalid tag format" in r.stderr


def test_path_tricks_from_the_registry_are_refused(dy: CLI, peer: Peer) -> None:
    img = make_image({"a.txt": b"x\n"})
    peer.add_image("x/app", "1", img)

    def tags(h: BaseHTTPRequestHandler) -> bool:
        if h.path.startswith("/v2/x/app/tags/list"):
            h.send(200, json.dumps({"name": "x/app", "tags": ["1", "../../evil"]}).encode())  # type: ignore[attr-defined]
            return True
        return False

    peer.before = tags
    r = dy("pull", "-a", f"{peer.addr}/x/app", check=False)
    assert r.returncode == 125 and "invalid tag format" in r.stderr
    # A manifest whose descriptors name a path instead of a digest.
    bad = json.loads(img.manifest)
    bad["layers"][0]["digest"] = "sha256:../../../../etc/passwd"
    peer.manifests["x/app:2"] = (
        json.dumps(bad).encode(),
        "application/vnd.docker.distribution.manifest.v2+json",
    )
    r = dy("pull", f"{peer.addr}/x/app:2", check=False)
    assert r.returncode == 125 and "invalid digest" in r.stderr
    assert not any("../" in p for _, p, _ in peer.seen if "/blobs/" in p)


def test_plain_http_only_for_loopback_or_listed_registries(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Docker's order for loopback and insecure registries: HTTPS without verification,
    plain HTTP if the server does not speak TLS. Everything else: verified HTTPS only."""
    from dockyard.registry.endpoint import endpoint_for

    monkeypatch.delenv("DOCKYARD_REGISTRY_MIRROR")
    monkeypatch.setenv("DOCKYARD_CERTS_DIR", str(tmp_path / "certs.d"))
    assert endpoint_for("docker.io").base == "https://registry-1.docker.io"
    for name in ("localhost:5000", "127.0.0.1:5001", "[::1]:5000", "127.1.2.3"):
        ep = endpoint_for(name)
        assert (ep.scheme, ep.verify_tls, ep.fallback_http) == ("https", False, True), name
    for name in ("registry.example.com", "10.0.0.1:5000", "localhost.example.com:5000"):
        ep = endpoint_for(name)
        assert (ep.scheme, ep.verify_tls, ep.fallback_http) == ("https", True, False), name
    monkeypatch.setenv("DOCKYARD_INSECURE_REGISTRIES", "10.0.0.1:5000, reg.lan")
    assert endpoint_for("10.0.0.1:5000").fallback_http
    assert not endpoint_for("10.0.0.1:5000").verify_tls
    assert endpoint_for("reg.lan").fallback_http
    assert endpoint_for("registry.example.com").verify_tls
    # A CA installed for a loopback registry means: verify it (dockerd would ignore it).
    (tmp_path / "certs.d" / "127.0.0.1:5001").mkdir(parents=True)
    (tmp_path / "certs.d" / "127.0.0.1:5001" / "ca.crt").write_text("")
    ep = endpoint_for("127.0.0.1:5001")
    assert (ep.scheme, ep.verify_tls, ep.fallback_http) == ("https", True, False)


def test_docker_hub_mirror_replaces_docker_io(dy: CLI, monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.registry.endpoint import endpoint_for, search_endpoint_for

    monkeypatch.setenv("DOCKYARD_REGISTRY_MIRROR", "http://127.0.0.1:5099/")
    assert endpoint_for("docker.io").base == "http://127.0.0.1:5099"
    assert search_endpoint_for("docker.io").base == "http://127.0.0.1:5099"
    assert endpoint_for("127.0.0.1:5001").netloc == "127.0.0.1:5001"  # others unchanged
    monkeypatch.setenv("DOCKYARD_REGISTRY_MIRROR", "ftp://x")
    with pytest.raises(InvalidArgument, match="DOCKYARD_REGISTRY_MIRROR"):
        endpoint_for("docker.io")
    # The suite's own setting (a closed loopback port): pulling a Docker Hub name fails here
    # with a clear error, and nothing is stored.
    monkeypatch.setenv("DOCKYARD_REGISTRY_MIRROR", "http://127.0.0.1:9")
    monkeypatch.setenv("DOCKYARD_REGISTRY_ATTEMPTS", "1")
    before = tree_snapshot(dy.root) if dy.root.exists() else {}
    r = dy("pull", "busybox:1.36", check=False)
    assert r.returncode == 125 and "127.0.0.1:9" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    after = tree_snapshot(dy.root) if dy.root.exists() else {}
    assert {k for k in after if "blobs/sha256/" in k} == {k for k in before if "blobs/sha256/" in k}


def _without_registry_cache(snapshot: dict[str, Any]) -> dict[str, Any]:
    # registry/ holds blobs.json (and its lock), what pushes found on registries: a cache a
    # killed push may rightly have updated; events/ the journal, which records the tags and
    # untags. Everything else must be as it was.
    return {
        k: v
        for k, v in snapshot.items()
        if k not in ("registry", "events") and not k.startswith(("registry/", "events/"))
    }


class _Hold:
    """A proxy fault that holds the ``at``-th request (from 1) until ``release``."""

    def __init__(self, at: int):
        self.at, self.seen = at, 0
        self.held, self.release = threading.Event(), threading.Event()

    def __call__(self, method: str, path: str) -> None:
        self.seen += 1
        if self.seen == self.at:
            self.held.set()
            self.release.wait(60)


@pytest.mark.slow
def test_killed_push_leaves_nothing_that_check_repair_does_not_clean(
    bb: CLI, dy: CLI, registry: Distribution, proxy: Proxy, tmp_path: Path
) -> None:
    """SIGKILL a push at random points: while it compresses and sends, and while it waits
    for the answer to its k-th request (the proxy holds it). After each: ``system check
    --repair`` (its store half) leaves a consistent store with no leftovers, the files as
    before; at the end a push succeeds and what it pushed pulls back whole."""
    from tests.registry_client.test_distribution import _random_image

    seed = int.from_bytes(os.urandom(4), "big")
    print(f"kill points from random.Random({seed})")
    rng = random.Random(seed)
    ref = f"{proxy.addr}/t-kill/app:1"
    image_id = _random_image(bb, tmp_path, ref, mb=4)
    # How long a whole push takes here (straight to the registry: the proxy's registry name
    # still has nothing to mount from), for kills at random times within it.
    probe = f"{registry.addr}/t-kill/probe:1"
    bb("tag", ref, probe)
    started = time.monotonic()
    bb("push", probe)
    took = time.monotonic() - started
    bb("rmi", probe)
    before = _without_registry_cache(tree_snapshot(bb.root))
    outcomes = []
    for i in range(8):
        target = f"{proxy.addr}/t-kill/app{i}:1"
        bb("tag", ref, target)
        hold = _Hold(rng.randint(1, 8) if i % 4 else 0)  # 0: a kill at a random time
        proxy.fault = hold
        proc = subprocess.Popen(
            [str(BIN), "--root", str(bb.root), "--run-root", str(bb.run_root), "push", target],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            if hold.at:
                deadline = time.monotonic() + 60
                # A push that needs fewer requests (it mounts, say) ends first.
                while not hold.held.wait(0.02) and proc.poll() is None:
                    assert time.monotonic() < deadline, "the push neither ended nor got there"
                time.sleep(rng.uniform(0, 0.05))
            else:
                time.sleep(rng.uniform(0, took))
            proc.send_signal(signal.SIGKILL)
            outcomes.append((hold.at, proc.wait(30)))
        finally:
            hold.release.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        repair_store(bb)
        assert store_leftovers(bb) == [], f"kill {i}"
        bb("rmi", target)
        assert _without_registry_cache(tree_snapshot(bb.root)) == before, f"kill {i}"
        cache = bb.root / "registry"
        assert not cache.exists() or sorted(os.listdir(cache)) == ["blobs.json", "blobs.lock"]
    print(f"(held request, exit status) per push: {outcomes}")
    assert sum(status == -signal.SIGKILL for _, status in outcomes) >= 4
    proxy.fault = None
    out = bb("push", ref).stdout
    digest = out.splitlines()[-1].split()[2]
    direct = f"{registry.addr}/t-kill/app:1"
    assert f"Digest: {digest}" in dy("pull", direct).stdout
    assert dy("image", "inspect", "--format", "{{.Id}}", direct).stdout.strip() == image_id


def test_blob_map_write_cut_short_is_cleaned_by_the_next(tmp_path: Path) -> None:
    """A push killed between writing registry/blobs.json's temp file and renaming it: the
    next push or pull that records blobs removes the temp file."""
    from dockyard.registry.blobmap import BlobMap

    blobmap = BlobMap(str(tmp_path))
    blobmap.record([("sha256:" + "1" * 64, "sha256:" + "2" * 64, 10, "gzip", "r:1", "a")])
    (tmp_path / "registry" / "blobs.json.999999.tmp").write_text("{half")
    blobmap.record([("sha256:" + "3" * 64, "sha256:" + "4" * 64, 10, "gzip", "r:1", "a")])
    assert sorted(os.listdir(tmp_path / "registry")) == ["blobs.json", "blobs.lock"]
    assert [k.digest for k in blobmap.lookup("sha256:" + "1" * 64)] == ["sha256:" + "2" * 64]
