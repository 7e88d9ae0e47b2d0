"""The OCI distribution API over real HTTP: routes, status codes, headers, error codes."""

from __future__ import annotations

import json
import os

from tests.hub.conftest import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Hub,
    basic,
    make_manifest,
    sha,
)

ALICE = basic("alice")


def test_base_endpoint_challenges_then_accepts_basic_and_bearer(hub: Hub) -> None:
    r = hub.request("GET", "/v2/")
    assert r.status == 401
    assert r.code == "UNAUTHORIZED"
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="http://{hub.addr}/token"' in challenge
    assert 'service="dockyard-hub"' in challenge
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"

    assert hub.request("GET", "/v2/", auth=ALICE).status == 200
    assert hub.request("GET", "/v2/", auth=basic("alice", "nope")).status == 401
    tok = hub.token("alice")
    assert tok.status == 200
    body = tok.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] > 0 and body["issued_at"].endswith("Z")
    assert hub.request("GET", "/v2/", auth="Bearer " + body["token"]).status == 200
    assert hub.request("GET", "/v2/", auth="Bearer not.a.token").status == 401


def test_monolithic_push_then_pull_by_tag_and_digest(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/mono"
    auth = hub.bearer("alice", repo)
    # Monolithic POST with ?digest= and the body.
    blob = layers[0]
    r = hub.request(
        "POST",
        f"/v2/{repo}/blobs/uploads/?digest={sha(blob)}",
        blob,
        {"Content-Type": "application/octet-stream"},
        auth=auth,
    )
    assert r.status == 201, r.body
    assert r.headers["location"] == f"/v2/{repo}/blobs/{sha(blob)}"
    assert r.headers["docker-content-digest"] == sha(blob)
    digest, manifest = hub.push_image(repo, "v1", layers, auth)
    assert digest == sha(manifest)

    for ref in ("v1", digest):
        r = hub.request("GET", f"/v2/{repo}/manifests/{ref}")  # public: anonymous pull
        assert r.status == 200
        assert r.body == manifest
        assert r.headers["content-type"] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == digest
        h = hub.request("HEAD", f"/v2/{repo}/manifests/{ref}")
        assert h.status == 200 and h.body == b""
        assert h.headers["content-length"] == str(len(manifest))
        assert h.headers["docker-content-digest"] == digest

    for blob in layers:
        r = hub.request("GET", f"/v2/{repo}/blobs/{sha(blob)}")
        assert r.status == 200 and r.body == blob
        assert r.headers["docker-content-digest"] == sha(blob)
        h = hub.request("HEAD", f"/v2/{repo}/blobs/{sha(blob)}")
        assert h.status == 200 and h.headers["content-length"] == str(len(blob))


def test_blob_range_requests(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/ranges"
    hub.push_image(repo, "1", layers, hub.bearer("alice", repo))
    blob = layers[1]
    path = f"/v2/{repo}/blobs/{sha(blob)}"
    r = hub.request("GET", path, headers={"Range": "bytes=10-99"})
    assert r.status == 206
    assert r.body == blob[10:100]
    assert r.headers["content-range"] == f"bytes 10-99/{len(blob)}"
    r = hub.request("GET", path, headers={"Range": "bytes=4000-"})
    assert r.status == 206 and r.body == blob[4000:]
    r = hub.request("GET", path, headers={"Range": "bytes=-7"})
    assert r.status == 206 and r.body == blob[-7:]
    r = hub.request("GET", path, headers={"Range": f"bytes={len(blob)}-"})
    assert r.status == 416
    assert r.headers["content-range"] == f"bytes */{len(blob)}"


def test_chunked_upload_with_content_range(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/chunked"
    auth = hub.bearer("alice", repo)
    blob = layers[1]
    r = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    assert r.status == 202
    loc = r.headers["location"]
    uuid = r.headers["docker-upload-uuid"]
    assert loc.endswith(uuid) and r.headers["range"] == "0-0"

    a, b = blob[:2000], blob[2000:]
    r = hub.request(
        "PATCH",
        loc,
        a,
        {"Content-Range": f"0-{len(a) - 1}", "Content-Type": "application/octet-stream"},
        auth=auth,
    )
    assert r.status == 202
    assert r.headers["range"] == f"0-{len(a) - 1}"

    # Out of order: 416, and the session is where it was.
    r = hub.request("PATCH", loc, b, {"Content-Range": f"{len(a) + 5}-{len(blob) + 4}"}, auth=auth)
    assert r.status == 416
    assert r.headers["range"] == f"0-{len(a) - 1}"
    r = hub.request("GET", loc, auth=auth)
    assert r.status == 204 and r.headers["range"] == f"0-{len(a) - 1}"

    # A chunk sent with chunked transfer encoding (what Go clients do for streams).
    chunked = (
        b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (b[:1000], b[1000:]))
        + b"0\r\n\r\n"
    )
    r = hub.request("PATCH", loc, chunked, {"Transfer-Encoding": "chunked"}, auth=auth)
    assert r.status == 202, r.body
    assert r.headers["range"] == f"0-{len(blob) - 1}"
    r = hub.request("PUT", f"{loc}?digest={sha(blob)}", b"", auth=auth)
    assert r.status == 201
    assert r.headers["docker-content-digest"] == sha(blob)
    assert hub.request("GET", f"/v2/{repo}/blobs/{sha(blob)}").body == blob
    # The session is gone once committed.
    assert hub.request("GET", loc, auth=auth).code == "BLOB_UPLOAD_UNKNOWN"


def test_wrong_digest_is_refused_and_nothing_stored(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/baddigest"
    auth = hub.bearer("alice", repo)
    lie = sha(b"something else")
    r = hub.request("POST", f"/v2/{repo}/blobs/uploads/?digest={lie}", layers[0], auth=auth)
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    r = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    loc = r.headers["location"]
    r = hub.request("PUT", f"{loc}?digest={lie}", layers[0], auth=auth)
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    for d in (lie, sha(layers[0])):
        assert hub.request("HEAD", f"/v2/{repo}/blobs/{d}", auth=auth).status == 404
        assert not (hub.data / "blobs" / "sha256" / d[7:9] / d[7:]).exists()
    r = hub.request("GET", f"/v2/{repo}/blobs/sha512:{'a' * 128}", auth=auth)
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    r = hub.request("GET", f"/v2/{repo}/blobs/{sha(b'never')}", auth=auth)
    assert r.status == 404 and r.code == "BLOB_UNKNOWN"


def test_manifest_validation(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/validate"
    auth = hub.bearer("alice", repo)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    # A manifest naming blobs the repository lacks.
    m = make_manifest(config, layers)
    r = hub.request("PUT", f"/v2/{repo}/manifests/x", m, {"Content-Type": OCI_MANIFEST}, auth=auth)
    assert r.status == 400 and r.code == "MANIFEST_BLOB_UNKNOWN"
    # Not JSON, schema 1, wrong media type.
    for body in (b"{nope", b'{"schemaVersion": 1, "name": "x"}', b"[]"):
        r = hub.request(
            "PUT", f"/v2/{repo}/manifests/x", body, {"Content-Type": OCI_MANIFEST}, auth=auth
        )
        assert r.status == 400 and r.code == "MANIFEST_INVALID", body
    # Over 4 MiB: 413 without storing anything.
    big = json.dumps({"schemaVersion": 2, "pad": "x" * (4 * 1024 * 1024)}).encode()
    r = hub.request(
        "PUT", f"/v2/{repo}/manifests/big", big, {"Content-Type": OCI_MANIFEST}, auth=auth
    )
    assert r.status == 413 and r.code == "MANIFEST_INVALID"
    assert not (hub.data / "blobs" / "sha256" / sha(big)[7:9] / sha(big)[7:]).exists()
    # Pushed by a digest that is not the body's.
    hub.push_image(repo, "ok", layers, auth)
    good = make_manifest(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
                "config": {},
            }
        ).encode(),
        layers,
    )
    r = hub.request(
        "PUT",
        f"/v2/{repo}/manifests/{sha(b'other')}",
        good,
        {"Content-Type": OCI_MANIFEST},
        auth=auth,
    )
    assert r.status == 400 and r.code == "DIGEST_INVALID"
    # A descriptor whose size is not the blob's.
    bad = json.loads(good)
    bad["layers"][0]["size"] += 1
    r = hub.request(
        "PUT",
        f"/v2/{repo}/manifests/y",
        json.dumps(bad).encode(),
        {"Content-Type": OCI_MANIFEST},
        auth=auth,
    )
    assert r.status == 400 and r.code == "MANIFEST_INVALID"
    # Invalid tag; unknown manifest; unknown repository.
    r = hub.request("GET", f"/v2/{repo}/manifests/-bad", auth=auth)
    assert r.status == 400 and r.code == "TAG_INVALID"
    assert hub.request("GET", f"/v2/{repo}/manifests/nope").code == "MANIFEST_UNKNOWN"
    assert hub.request("GET", "/v2/alice/never-pushed/manifests/1").code == "NAME_UNKNOWN"
    assert hub.request("GET", "/v2/alice/never-pushed/tags/list").code == "NAME_UNKNOWN"


def test_index_requires_its_manifests(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/multi"
    auth = hub.bearer("alice", repo)
    digest, manifest = hub.push_image(repo, "amd64", layers, auth)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(manifest),
                "platform": {"os": "linux", "architecture": "amd64"},
            },
        ],
    }
    body = json.dumps(index).encode()
    ct = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
    assert hub.request("PUT", f"/v2/{repo}/manifests/all", body, ct, auth=auth).status == 201
    r = hub.request("GET", f"/v2/{repo}/manifests/all")
    assert r.headers["content-type"] == "application/vnd.oci.image.index.v1+json"
    # The child cannot be deleted while the index names it.
    dauth = hub.bearer("alice", repo, "delete")
    assert hub.request("DELETE", f"/v2/{repo}/manifests/{digest}", auth=dauth).code == "DENIED"
    index["manifests"].append({"mediaType": OCI_MANIFEST, "digest": sha(b"x"), "size": 1})
    r = hub.request(
        "PUT", f"/v2/{repo}/manifests/broken", json.dumps(index).encode(), ct, auth=auth
    )
    assert r.code == "MANIFEST_BLOB_UNKNOWN"


def test_tags_pagination_and_catalog(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/paged"
    auth = hub.bearer("alice", repo)
    names = ["a", "b", "c", "d", "e"]
    for t in names:
        hub.push_image(repo, t, layers, auth)
    r = hub.request("GET", f"/v2/{repo}/tags/list")
    assert r.json() == {"name": repo, "tags": names}
    r = hub.request("GET", f"/v2/{repo}/tags/list?n=2")
    assert r.json()["tags"] == ["a", "b"]
    assert r.headers["link"] == f'</v2/{repo}/tags/list?n=2&last=b>; rel="next"'
    r = hub.request("GET", f"/v2/{repo}/tags/list?n=2&last=b")
    assert r.json()["tags"] == ["c", "d"]
    r = hub.request("GET", f"/v2/{repo}/tags/list?n=2&last=d")
    assert r.json()["tags"] == ["e"] and "link" not in r.headers
    r = hub.request("GET", f"/v2/{repo}/tags/list?n=x")
    assert r.status == 400 and r.code == "PAGINATION_NUMBER_INVALID"

    r = hub.request("GET", "/v2/_catalog")
    assert repo in r.json()["repositories"]
    r = hub.request("GET", "/v2/_catalog?n=1")
    assert len(r.json()["repositories"]) == 1 and 'rel="next"' in r.headers["link"]


def test_cross_repository_mount(hub: Hub, layers: list[bytes]) -> None:
    auth = hub.bearer("alice", "alice/mount-src")
    hub.push_image("alice/mount-src", "1", layers, auth)
    dst = "alice/mount-dst"
    dauth = (
        "Bearer "
        + hub.token(
            "alice", f"repository:{dst}:pull,push", "repository:alice/mount-src:pull"
        ).json()["token"]
    )
    d = sha(layers[0])
    r = hub.request("POST", f"/v2/{dst}/blobs/uploads/?mount={d}&from=alice/mount-src", auth=dauth)
    assert r.status == 201
    assert r.headers["location"] == f"/v2/{dst}/blobs/{d}"
    assert hub.request("GET", f"/v2/{dst}/blobs/{d}").body == layers[0]
    # A blob the source does not have: a plain upload session instead (202).
    r = hub.request(
        "POST", f"/v2/{dst}/blobs/uploads/?mount={sha(b'nope')}&from=alice/mount-src", auth=dauth
    )
    assert r.status == 202 and "docker-upload-uuid" in r.headers


def test_mount_from_a_private_repository_needs_access(hub: Hub, layers: list[bytes]) -> None:
    hub.push_image("bob/secret", "1", layers, hub.bearer("bob", "bob/secret"))
    assert hub.cli("repo", "private", "bob/secret").returncode == 0
    dst = "alice/thief"
    tok = hub.token("alice", f"repository:{dst}:pull,push", "repository:bob/secret:pull").json()
    auth = "Bearer " + tok["token"]
    r = hub.request(
        "POST", f"/v2/{dst}/blobs/uploads/?mount={sha(layers[0])}&from=bob/secret", auth=auth
    )
    assert r.status == 202  # no mount: a fresh upload session
    assert hub.request("HEAD", f"/v2/{dst}/blobs/{sha(layers[0])}", auth=auth).status == 404
    # Anonymous and other users cannot read the private repository at all.
    assert hub.request("GET", "/v2/bob/secret/manifests/1").status == 401
    assert hub.request("GET", "/v2/bob/secret/manifests/1", auth=basic("alice")).status == 403
    assert hub.request("GET", "/v2/bob/secret/manifests/1", auth=basic("bob")).status == 200
    assert "bob/secret" not in hub.request("GET", "/v2/_catalog").json()["repositories"]


def test_delete_manifest_tag_and_blob(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/deletes"
    auth = hub.bearer("alice", repo)
    digest, _ = hub.push_image(repo, "keep", layers, auth)
    hub.push_image(repo, "drop", layers, auth)
    dauth = hub.bearer("alice", repo, "delete")
    # Deleting by tag removes the tag only.
    assert hub.request("DELETE", f"/v2/{repo}/manifests/drop", auth=dauth).status == 202
    assert hub.request("GET", f"/v2/{repo}/manifests/drop").code == "MANIFEST_UNKNOWN"
    assert hub.request("GET", f"/v2/{repo}/manifests/keep").status == 200
    # A layer a manifest names cannot be unlinked.
    r = hub.request("DELETE", f"/v2/{repo}/blobs/{sha(layers[0])}", auth=dauth)
    assert r.status == 403 and r.code == "DENIED"
    # Anonymous and pull-only tokens cannot delete.
    assert hub.request("DELETE", f"/v2/{repo}/manifests/{digest}").status == 401
    assert hub.request("DELETE", f"/v2/{repo}/manifests/{digest}", auth=auth).status == 401
    assert hub.request("DELETE", f"/v2/{repo}/manifests/{digest}", auth=dauth).status == 202
    assert hub.request("GET", f"/v2/{repo}/manifests/{digest}").code == "MANIFEST_UNKNOWN"
    assert hub.request("GET", f"/v2/{repo}/manifests/keep").code == "MANIFEST_UNKNOWN"
    assert hub.request("DELETE", f"/v2/{repo}/blobs/{sha(layers[0])}", auth=dauth).status == 202
    assert hub.request("GET", f"/v2/{repo}/blobs/{sha(layers[0])}").code == "BLOB_UNKNOWN"


def test_cancel_upload(hub: Hub) -> None:
    repo = "alice/cancel"
    auth = hub.bearer("alice", repo)
    r = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    loc, uuid = r.headers["location"], r.headers["docker-upload-uuid"]
    assert hub.request("PATCH", loc, os.urandom(100), auth=auth).status == 202
    assert (hub.data / "uploads" / uuid).exists()
    assert hub.request("DELETE", loc, auth=auth).status == 204
    assert not (hub.data / "uploads" / uuid).exists()
    assert hub.request("PATCH", loc, b"x", auth=auth).code == "BLOB_UPLOAD_UNKNOWN"
    # Another repository's session is not reachable through this one.
    r = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    uuid = r.headers["docker-upload-uuid"]
    other = hub.bearer("alice", "alice/cancel2")
    r = hub.request("PATCH", f"/v2/alice/cancel2/blobs/uploads/{uuid}", b"x", auth=other)
    assert r.status == 404 and r.code == "BLOB_UPLOAD_UNKNOWN"


def test_referrers(hub: Hub, layers: list[bytes]) -> None:
    repo = "alice/refs"
    auth = hub.bearer("alice", repo)
    digest, manifest = hub.push_image(repo, "1", layers, auth)
    empty = b"{}"
    assert hub.push_blob(repo, empty, auth).status == 201
    sig = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sig",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": sha(empty),
            "size": 2,
        },
        "layers": [{"mediaType": OCI_LAYER, "digest": sha(layers[0]), "size": len(layers[0])}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)},
    }
    body = json.dumps(sig).encode()
    r = hub.request(
        "PUT", f"/v2/{repo}/manifests/{sha(body)}", body, {"Content-Type": OCI_MANIFEST}, auth=auth
    )
    assert r.status == 201 and r.headers["oci-subject"] == digest
    r = hub.request("GET", f"/v2/{repo}/referrers/{digest}")
    assert r.status == 200
    got = r.json()["manifests"]
    assert [m["digest"] for m in got] == [sha(body)]
    assert got[0]["artifactType"] == "application/vnd.example.sig"
    assert OCI_CONFIG  # the plain config type is what push_image used


def test_upload_resumes_after_a_dropped_connection(hub: Hub) -> None:
    """A client that dies mid-PATCH: the session keeps exactly the bytes that arrived, the
    client asks where it stands (GET) and sends the rest; the blob verifies."""
    import socket
    import time

    repo = "alice/dropped"
    auth = hub.bearer("alice", repo)
    blob = os.urandom(3_000_000)
    r = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    loc = r.headers["location"]
    with socket.create_connection((hub.host, hub.port)) as s:
        head = (
            f"PATCH {loc} HTTP/1.1\r\nHost: {hub.addr}\r\nAuthorization: {auth}\r\n"
            f"Content-Length: {len(blob)}\r\nContent-Range: 0-{len(blob) - 1}\r\n\r\n"
        )
        s.sendall(head.encode() + blob[:1_000_000])
        time.sleep(0.5)
    # The server notices the close, keeps what it got; wait for the session to settle.
    offset, deadline = -1, time.monotonic() + 30
    while time.monotonic() < deadline:
        st = hub.request("GET", loc, auth=auth)
        assert st.status == 204
        now = int(st.headers["range"].split("-")[1]) + 1
        if now == offset:
            break
        offset = now
        time.sleep(0.3)
    assert 0 < offset <= 1_000_000
    r = hub.request(
        "PATCH", loc, blob[offset:], {"Content-Range": f"{offset}-{len(blob) - 1}"}, auth=auth
    )
    assert r.status == 202, r.body
    r = hub.request("PUT", f"{loc}?digest={sha(blob)}", b"", auth=auth)
    assert r.status == 201, r.body
    assert hub.request("GET", f"/v2/{repo}/blobs/{sha(blob)}").body == blob
