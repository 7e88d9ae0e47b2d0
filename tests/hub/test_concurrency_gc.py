"""Concurrent pushes of the same layers, and garbage collection while pushes are in flight:
afterwards every manifest the hub accepted is complete, blob for blob."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import BIN
from tests.hub.conftest import OCI_MANIFEST, Hub, Response, make_manifest, sha


def _config(i: int, layers: list[bytes]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
            "config": {"Env": [f"N={i}"]},
        }
    ).encode()


def _push_all_blobs(
    hub: Hub, repo: str, tag: str, blobs: list[bytes], config: bytes, auth: str
) -> Response:
    """Upload every blob (no HEAD first: all pushers race on the same digests), chunked in
    two PATCHes, then the manifest."""
    for blob in [*blobs, config]:
        r = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
        assert r.status == 202, r.body
        loc = r.headers["location"]
        half = len(blob) // 2
        r = hub.request("PATCH", loc, blob[:half], {"Content-Range": f"0-{half - 1}"}, auth=auth)
        assert r.status == 202, r.body
        r = hub.request(
            "PATCH", loc, blob[half:], {"Content-Range": f"{half}-{len(blob) - 1}"}, auth=auth
        )
        assert r.status == 202, r.body
        r = hub.request("PUT", f"{loc}?digest={sha(blob)}", b"", auth=auth)
        assert r.status == 201, r.body
    return hub.request(
        "PUT",
        f"/v2/{repo}/manifests/{tag}",
        make_manifest(config, blobs),
        {"Content-Type": OCI_MANIFEST},
        auth=auth,
    )


def _assert_complete(hub: Hub, repo: str) -> int:
    """Every tag's manifest and every blob it names can be pulled and verified."""
    tags = hub.request("GET", f"/v2/{repo}/tags/list").json()["tags"]
    for tag in tags:
        r = hub.request("GET", f"/v2/{repo}/manifests/{tag}")
        assert r.status == 200
        m = json.loads(r.body)
        for d in [m["config"], *m["layers"]]:
            b = hub.request("GET", f"/v2/{repo}/blobs/{d['digest']}")
            assert b.status == 200, (tag, d["digest"], b.body)
            assert sha(b.body) == d["digest"] and len(b.body) == d["size"]
    return len(tags)


def test_fifty_concurrent_pushes_of_the_same_layers(hub: Hub) -> None:
    repo = "alice/fifty"
    auth = hub.bearer("alice", repo)
    shared = [os.urandom(200_000), os.urandom(50_000), os.urandom(1000)]

    def push(i: int) -> int:
        return _push_all_blobs(hub, repo, f"t{i}", shared, _config(i, shared), auth).status

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(push, range(50)))
    assert statuses == [201] * 50
    assert _assert_complete(hub, repo) == 50
    # One file per distinct blob; no upload session left behind.
    for blob in shared:
        d = sha(blob)
        assert (hub.data / "blobs" / "sha256" / d[7:9] / d[7:]).read_bytes() == blob
    assert not any(
        hub.request("GET", f"/v2/{repo}/blobs/uploads/{u.name}", auth=auth).status == 204
        for u in (hub.data / "uploads").iterdir()
    )


def test_gc_during_pushes_keeps_every_referenced_blob(hub: Hub) -> None:
    repo = "alice/gcrace"
    auth = hub.bearer("alice", repo)
    shared = [os.urandom(100_000), os.urandom(20_000)]
    # An unreferenced blob from before: gc with no grace must remove it.
    orphan = os.urandom(5000)
    assert hub.push_blob(repo, orphan, auth).status == 201

    gc_runs: list[str] = []
    pushing = threading.Event()
    pushing.set()

    def collector() -> None:
        # Collect again and again while the pushers work, at least a few times.
        while pushing.is_set() and len(gc_runs) < 4:
            r = hub.cli("gc", "--grace", "0")
            assert r.returncode == 0, r.stderr
            gc_runs.append(r.stdout)
        pushing.clear()

    accepted: list[str] = []
    lost_races = 0
    lock = threading.Lock()

    def push(i: int) -> None:
        nonlocal lost_races
        n = 0
        while pushing.is_set() or n == 0:
            tag = f"g{i}-{n}"
            own = [*shared, os.urandom(10_000)]
            for _ in range(50):
                r = _push_all_blobs(hub, repo, tag, own, _config(i, own), auth)
                if r.status == 201:
                    with lock:
                        accepted.append(tag)
                    break
                # GC with no grace may take a blob between its upload and the manifest: the
                # push is refused (never half-accepted) and the client uploads again.
                assert r.status == 400 and r.code == "MANIFEST_BLOB_UNKNOWN", r.body
                with lock:
                    lost_races += 1
            else:
                raise AssertionError("push never got through")
            n += 1

    gc = threading.Thread(target=collector)
    gc.start()
    try:
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(push, range(10)))
    finally:
        pushing.clear()
        gc.join(120)
    print(f"gc runs: {len(gc_runs)}, pushes: {len(accepted)}, refused and retried: {lost_races}")
    assert len(gc_runs) >= 3
    tags = _assert_complete(hub, repo)
    assert tags == len(accepted) >= 10
    # A last collection with no grace still keeps everything the manifests name...
    r = hub.cli("gc", "--grace", "0")
    assert r.returncode == 0, r.stderr
    assert _assert_complete(hub, repo) == tags
    # ...and the orphan is gone, file and all.
    assert hub.request("HEAD", f"/v2/{repo}/blobs/{sha(orphan)}").status == 404
    assert not (hub.data / "blobs" / "sha256" / sha(orphan)[7:9] / sha(orphan)[7:]).exists()


def test_gc_grace_dry_run_and_abandoned_uploads(hub: Hub) -> None:
    repo = "alice/gcgrace"
    auth = hub.bearer("alice", repo)
    blob = os.urandom(7000)
    assert hub.push_blob(repo, blob, auth).status == 201
    path = hub.data / "blobs" / "sha256" / sha(blob)[7:9] / sha(blob)[7:]
    r = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    upload = hub.data / "uploads" / r.headers["docker-upload-uuid"]
    assert upload.exists()

    r = hub.cli("gc")  # default grace: a blob uploaded just now stays
    assert r.returncode == 0 and path.exists() and upload.exists()
    r = hub.cli("gc", "--grace", "0", "--dry-run")
    assert r.returncode == 0 and "Would delete blobs:" in r.stdout
    assert path.exists()
    r = hub.cli("gc", "--grace", "0", "--upload-grace", "0")
    assert r.returncode == 0, r.stderr
    assert "Deleted upload sessions: 1" in r.stdout or not upload.exists()
    assert not path.exists() and not upload.exists()
    assert hub.cli("gc", "--grace", "-1").returncode == 125


def test_gc_runs_only_one_at_a_time_and_leaves_the_store_consistent(hub: Hub) -> None:
    procs = [
        subprocess.Popen(
            [str(BIN), "hub", "gc", "--grace", "0", "--data", str(hub.data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    # Every row names a file and every file has a row.
    import sqlite3

    conn = sqlite3.connect(hub.data / "hub.db")
    try:
        rows = {r[0] for r in conn.execute("SELECT digest FROM blobs")}
    finally:
        conn.close()
    files = {
        "sha256:" + f.name for d in (hub.data / "blobs" / "sha256").iterdir() for f in d.iterdir()
    }
    assert rows == files
