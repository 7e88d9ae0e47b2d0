"""Path tricks in repository names, upload IDs and digests: NAME_INVALID (or the matching
code), and nothing written anywhere, inside or outside the data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import tree_snapshot
from tests.hub.conftest import OCI_MANIFEST, Hub, basic, sha

ROOT = basic("root")  # an admin: the rules would let it push anywhere a name is valid

BAD_NAMES = [
    "../../etc",
    "..",
    "alice/../../../tmp/x",
    "%2e%2e/%2e%2e/tmp",
    "alice/%2e%2e%2f%2e%2e%2fetc",
    "alice/..%2f..%2fx",
    "/etc/passwd",
    "alice//x",
    "alice/./x",
    "Alice/x",
    "alice/x/",
    "alice/x%00y",
    "-alice/x",
    "alice/" + "a" * 300,
]


def _snap(hub: Hub) -> dict[str, tuple[int, int, str]]:
    snap = tree_snapshot(hub.data)
    return {k: v for k, v in snap.items() if not k.startswith(("hub.db", "gc.lock"))}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_everywhere(hub: Hub, name: str, tmp_path: Path) -> None:
    before = _snap(hub)
    outside = set(os.listdir(hub.data.parent))
    blob = os.urandom(100)
    calls = [
        ("GET", f"/v2/{name}/manifests/latest", None),
        ("HEAD", f"/v2/{name}/blobs/{sha(blob)}", None),
        ("GET", f"/v2/{name}/tags/list", None),
        ("POST", f"/v2/{name}/blobs/uploads/", None),
        ("POST", f"/v2/{name}/blobs/uploads/?digest={sha(blob)}", blob),
        ("PUT", f"/v2/{name}/manifests/latest", b'{"schemaVersion": 2}'),
        ("DELETE", f"/v2/{name}/manifests/{sha(blob)}", None),
    ]
    for method, path, body in calls:
        r = hub.request(method, path, body, {"Content-Type": OCI_MANIFEST}, auth=ROOT)
        assert r.status in (400, 404), (method, path, r.status)
        if method != "HEAD" and r.status == 400:
            assert r.code == "NAME_INVALID", (method, path, r.body)
    assert _snap(hub) == before
    assert set(os.listdir(hub.data.parent)) == outside
    # Asking for a token for such a name grants nothing.
    tok = hub.token("root", f"repository:{name}:pull,push")
    assert tok.status == 200
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(tok.json()["token"].split(".")[1] + "=="))
    assert claims["access"] == []


@pytest.mark.parametrize(
    "upload_id",
    ["..%2f..%2fhub.db", "../../hub.db", "%2e%2e", "0" * 31, "g" * 32, "A" * 32],
)
def test_bad_upload_ids(hub: Hub, upload_id: str) -> None:
    before = _snap(hub)
    auth = hub.bearer("alice", "alice/uploads")
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        path = f"/v2/alice/uploads/blobs/uploads/{upload_id}"
        if method == "PUT":
            path += f"?digest={sha(b'x')}"
        r = hub.request(method, path, b"x" if method in ("PATCH", "PUT") else None, auth=auth)
        assert r.status in (400, 404), (method, upload_id, r.status)
    assert _snap(hub) == before
    assert (hub.data / "hub.db").exists()


@pytest.mark.parametrize(
    "digest", ["sha256:../../../etc/passwd", "sha256:" + "A" * 64, "sha256:abc", "md5:" + "a" * 32]
)
def test_bad_digests(hub: Hub, digest: str) -> None:
    r = hub.request("GET", f"/v2/alice/public/blobs/{digest}")
    assert r.status in (400, 404)
    if r.status == 400:
        assert r.code == "DIGEST_INVALID"
    auth = hub.bearer("alice", "alice/digests")
    r = hub.request("POST", f"/v2/alice/digests/blobs/uploads/?digest={digest}", b"x", auth=auth)
    assert r.status == 400 and r.code == "DIGEST_INVALID"
