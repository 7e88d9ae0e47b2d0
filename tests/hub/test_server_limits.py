"""The hub on the shared server layer: bad input on its routes gets the distribution spec's
errors (never a 500 or a hung connection) and stores nothing; many clients at once."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import tree_snapshot
from tests.httpd.conftest import read_to_close, status_of
from tests.hub.conftest import OCI_MANIFEST, Hub, basic


def _raw(hub: Hub, data: bytes) -> tuple[int, bytes]:
    """``data`` on a fresh connection; the status and the body of the reply."""
    with socket.create_connection((hub.host, hub.port), timeout=60) as s:
        s.sendall(data)
        reply = read_to_close(s)
    return status_of(reply), reply.split(b"\r\n\r\n", 1)[1]


def _snap(hub: Hub) -> dict[str, tuple[int, int, str]]:
    snap = tree_snapshot(hub.data)
    return {k: v for k, v in snap.items() if not k.startswith(("hub.db", "gc.lock"))}


def test_deeply_nested_manifest_is_manifest_invalid(hub: Hub) -> None:
    """Was: a 500 UNKNOWN from the decoder's RecursionError."""
    repo = "alice/nested"
    before = _snap(hub)
    manifest = b'{"schemaVersion": 2, "annotations": ' + b"[" * 50000 + b"]" * 50000 + b"}"
    r = hub.request(
        "PUT",
        f"/v2/{repo}/manifests/latest",
        manifest,
        {"Content-Type": OCI_MANIFEST},
        auth=hub.bearer("alice", repo),
    )
    assert (r.status, r.code) == (400, "MANIFEST_INVALID")
    assert "nested deeper than 100 levels" in r.json()["errors"][0]["message"]
    assert _snap(hub) == before


def test_malformed_chunked_upload_is_blob_upload_invalid(hub: Hub) -> None:
    repo = "alice/badchunks"
    auth = hub.bearer("alice", repo)
    r = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    loc = r.headers["location"]
    before = _snap(hub)
    status, body = _raw(
        hub,
        f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n".encode()
        + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    )
    assert status == 400
    assert json.loads(body)["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    # No blob was published; the session is still there for the client to go on or cancel.
    assert {k for k in _snap(hub) if k.startswith("blobs")} == {
        k for k in before if k.startswith("blobs")
    }
    assert hub.request("GET", loc, auth=auth).status == 204
    assert hub.request("DELETE", loc, auth=auth).status == 204


def test_oversized_headers_are_431_in_the_spec_envelope(hub: Hub) -> None:
    status, body = _raw(
        hub, b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    )
    assert status == 431
    assert json.loads(body)["errors"][0]["message"] == "request header fields too large"


def test_malformed_request_line_is_400(hub: Hub) -> None:
    status, body = _raw(hub, b"GET /v2/\r\n\r\n")
    assert status == 400
    assert json.loads(body)["errors"][0]["message"] == "malformed request line"


def test_unknown_endpoint_and_method(hub: Hub) -> None:
    r = hub.request("GET", "/nope")
    assert (r.status, r.code) == (404, "UNSUPPORTED")
    r = hub.request("POST", "/v2/_catalog", auth=basic("alice"))
    assert (r.status, r.code) == (405, "UNSUPPORTED")


def test_oversized_description_is_413_and_the_connection_survives(hub: Hub) -> None:
    repo = "alice/describe-big"
    auth = hub.bearer("alice", repo)
    hub.push_image(repo, "latest", [b"one layer"], auth)
    big = json.dumps({"description": "x" * (1 << 17)}).encode()
    r = hub.request("PUT", f"/hub/repositories/{repo}/description", big, auth=basic("alice"))
    assert (r.status, r.code) == (413, "SIZE_INVALID")
    info = hub.request("GET", f"/hub/repositories/{repo}", auth=basic("alice")).json()
    assert info.get("description", "") == ""


def test_ten_clients_a_hundred_calls(hub: Hub) -> None:
    def client(_: int) -> list[int]:
        return [hub.request("GET", "/v2/", auth=basic("bob")).status for _ in range(10)]

    with ThreadPoolExecutor(10) as pool:
        statuses = [s for batch in pool.map(client, range(10)) for s in batch]
    assert statuses == [200] * 100
