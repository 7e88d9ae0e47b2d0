"""Bad input gets Docker's status and ``{"message": ...}``, and leaves nothing behind."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.api.conftest import Daemon
from tests.conftest import db_snapshot, tree_snapshot
from tests.runtime.test_containers import wait_for


@pytest.fixture
def unchanged(api: Daemon):  # type: ignore[no-untyped-def]
    """The store (files and rows) is the same after the test as before it."""
    root = api.cli.root

    def state() -> tuple[object, object]:
        # Earlier tests' containers are deleted in the background (".rm-<id>", see rm): walking
        # the tree while the remover deletes it would trip over vanishing files.
        ctrs = root / "containers"
        wait_for(lambda: not ctrs.is_dir() or not any(ctrs.glob(".rm-*")))
        tree = {k: v for k, v in tree_snapshot(root).items() if ".rm-" not in k}
        return tree, db_snapshot(root)

    before = state()
    yield api
    assert state() == before


def create_body(**fields: object) -> bytes:
    return json.dumps({"Image": "busybox", "Cmd": ["true"], **fields}).encode()


def test_unknown_route_and_method(unchanged: Daemon) -> None:
    assert unchanged.error("GET", "/nope") == (404, "page not found")
    assert unchanged.error("GET", "/v1.41/containers/x/nope") == (404, "page not found")
    assert unchanged.error("PUT", "/containers/json") == (405, "method not allowed")


def test_api_version_too_new(unchanged: Daemon) -> None:
    status, message = unchanged.error("GET", "/v1.99/version")
    assert status == 400
    assert message == "client version 1.99 is too new. Maximum supported API version is 1.45"


def test_unknown_image_is_404(unchanged: Daemon) -> None:
    body = create_body(Image="nosuchimage:1")
    status, message = unchanged.error("POST", "/containers/create", body)
    assert status == 404
    assert "nosuchimage:1" in message
    status, message = unchanged.error("GET", "/images/nosuchimage:1/json")
    assert status == 404 and "No such image" in message
    assert unchanged.error("DELETE", "/images/nosuchimage:1")[0] == 404


def test_unknown_objects_are_404(unchanged: Daemon) -> None:
    assert unchanged.error("GET", "/containers/nosuch/json") == (404, "No such container: nosuch")
    assert unchanged.error("POST", "/containers/nosuch/start")[0] == 404
    assert unchanged.error("POST", "/containers/nosuch/wait")[0] == 404
    assert unchanged.error("GET", "/containers/nosuch/logs?stdout=1")[0] == 404
    assert unchanged.error("DELETE", "/containers/nosuch")[0] == 404
    assert unchanged.error("GET", "/exec/nosuch/json") == (404, "No such exec instance: nosuch")
    assert unchanged.error("GET", "/volumes/nosuch")[0] == 404
    assert unchanged.error("GET", "/networks/nosuch")[0] == 404


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[1, 2]", b"", b'{"Image": 5}', b'{"Image": "busybox", "Cmd": [1]}'],
)
def test_bad_create_body_is_400(unchanged: Daemon, body: bytes) -> None:
    status, message = unchanged.error("POST", "/containers/create", body)
    assert status == 400, message


def test_bad_parameters_are_400(unchanged: Daemon) -> None:
    status, message = unchanged.error(
        "POST",
        "/containers/create?name=a",
        create_body(HostConfig={"PortBindings": {"80/tcp": [{"HostPort": "notaport"}]}}),
    )
    assert status == 400, message
    assert unchanged.error("GET", "/containers/json?filters={bad")[0] == 400
    assert unchanged.error("GET", "/containers/json?filters=" + quote('{"bogus": ["x"]}')) == (
        400,
        "invalid filter 'bogus'",
    )
    assert unchanged.error("POST", "/networks/create", b"{}")[0] == 400
    assert unchanged.error("POST", "/images/create")[0] == 400


def test_name_conflict_is_409(api: Daemon) -> None:
    status, _, data = api.request("POST", "/containers/create?name=twice", create_body())
    assert status == 201
    first = json.loads(data)["Id"]
    status, message = api.error("POST", "/containers/create?name=twice", create_body())
    assert status == 409
    assert message.startswith('Conflict. The container name "/twice" is already in use')
    assert api.container_rows() == [first]


@pytest.mark.parametrize(
    "name", ["../../escape", "..", "a/../../b", "/etc/passwd", "x\x00y", ".hidden"]
)
def test_traversal_in_names_creates_nothing(unchanged: Daemon, name: str) -> None:
    q = quote(name, safe="")
    status, _ = unchanged.error("POST", f"/containers/create?name={q}", create_body())
    assert status == 400
    status, _ = unchanged.error("POST", "/volumes/create", json.dumps({"Name": name}).encode())
    assert status == 400
    status, _ = unchanged.error("POST", "/networks/create", json.dumps({"Name": name}).encode())
    assert status == 400
    for path in (f"/images/{q}/json", f"/containers/{q}/json", f"/volumes/{q}"):
        assert unchanged.error("GET", path)[0] in (400, 404)
    status, _ = unchanged.error("POST", f"/images/busybox/tag?repo={q}")
    assert status == 400


def test_errors_keep_the_connection_usable(api: Daemon) -> None:
    """Keep-alive: after an error (with an unread body) the next request on the same
    connection is answered."""
    import http.client
    import socket

    conn = http.client.HTTPConnection("localhost", timeout=60)
    conn.sock = socket.socket(socket.AF_UNIX)
    conn.sock.connect(str(api.socket))
    try:
        for _ in range(3):
            conn.request("POST", "/nope", body=b"x" * 10000)
            resp = conn.getresponse()
            assert resp.status == 404
            resp.read()
            conn.request("GET", "/_ping")
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"OK")
    finally:
        conn.close()
