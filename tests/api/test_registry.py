"""Registries through the daemon: ``docker login`` (POST /auth), ``docker push`` and pulls
with X-Registry-Auth, ``docker search``, ``/distribution/{name}/json``, and ``docker import``
(``images/create?fromSrc``); against our hub (accounts, tokens), beside the reference
Docker talking to the same hub."""

from __future__ import annotations

import base64
import http.server
import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.api.conftest import DOCKER_20, Daemon, Reference
from tests.conftest import db_snapshot
from tests.helpers import tar_of
from tests.hub.conftest import Hub, hub  # noqa: F401 - the hub fixture

Docker = Callable[..., subprocess.CompletedProcess[str]]


def _normalized(text: str) -> str:
    text = re.sub(r"sha256:[0-9a-f]{64}", "DIGEST", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "LAYER", text)
    return re.sub(r"size: \d+", "size: N", text)


def _registry_session(
    docker_cli: Docker,
    hub: Hub,  # noqa: F811 - the fixture's value
    repo: str,
    config: Path,
) -> list[Any]:
    seen: list[Any] = []

    def step(*args: str, stdin: str | None = None) -> None:
        r = docker_cli(*args, input=stdin.encode() if stdin else None)
        err = _normalized(r.stderr).replace(str(config), "CONFIG")
        seen.append((args[0], r.returncode, _normalized(r.stdout), err))

    step("login", "-u", "alice", "--password-stdin", hub.addr, stdin="wrong\n")
    step("login", "-u", "alice", "--password-stdin", hub.addr, stdin="alice-pw\n")
    seen.append(json.loads((config / "config.json").read_text())["auths"].keys())
    docker_cli("tag", "busybox", f"{hub.addr}/{repo}:1")
    step("push", f"{hub.addr}/{repo}:1")
    step("push", f"{hub.addr}/{repo}:1")  # every layer is there now
    step("push", f"{hub.addr}/alice/nothing-here:1")
    step("search", f"{hub.addr}/{repo.split('/')[1]}")
    step("logout", hub.addr)
    # A repository of alice's: no anonymous push. (The registry's refusal is worded by each
    # daemon's registry client: Docker prints the hub's error list, we one line.)
    r = docker_cli("push", f"{hub.addr}/{repo}:1")
    seen.append((r.returncode, _normalized(r.stdout), "unauthorized" in r.stderr))
    docker_cli("rmi", f"{hub.addr}/{repo}:1")
    return seen


@pytest.mark.parametrize("binary", [None, DOCKER_20])
def test_login_push_search_as_docker(
    api: Daemon,
    reference: Reference,
    hub: Hub,  # noqa: F811 - the fixture
    binary: str | None,
) -> None:
    def ours(*a: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return api.docker(*a, input=input, binary=binary)

    def theirs(*a: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return reference.docker(*a, input=input, binary=binary)

    tag = "newest" if binary is None else "debian"
    mine = _registry_session(ours, hub, f"alice/dyr-{tag}", api.cli.root.parent)
    their = _registry_session(theirs, hub, f"alice/ref-{tag}", reference.config)
    assert [_names(x, tag) for x in mine] == [_names(x, tag) for x in their]


def _names(step: object, tag: str) -> object:
    """The repositories each daemon pushed to, as one name (a layer may be mounted from an
    earlier test's repository)."""
    text = json.dumps(step, default=list)
    return json.loads(re.sub(r"\b(dyr|ref)-(newest|debian|alone)\b", "REPO", text))


def test_login_push_alone(api: Daemon, hub: Hub) -> None:  # noqa: F811
    seen = _registry_session(api.docker, hub, "alice/dyr-alone", api.cli.root.parent)
    assert seen[0] == (
        "login",
        1,
        "",
        f'Error response from daemon: Get "http://{hub.addr}/v2/": unauthorized: incorrect '
        "username or password\n",
    )
    assert seen[1][:3] == ("login", 0, "Login Succeeded\n")
    pushed = seen[3][2]
    assert seen[3][1] == 0 and ("LAYER: Pushed" in pushed or "LAYER: Mounted from" in pushed)
    assert "LAYER: Layer already exists" in seen[4][2]
    assert seen[6][2].splitlines()[1].split() == ["alice/dyr-alone", "0"]


def _auth_header(**fields: str) -> dict[str, str]:
    return {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()}


def test_docker_py_login_push_pull(api: Daemon, hub: Hub) -> None:  # noqa: F811
    """docker-py sends its logins with each request (X-Registry-Auth): a private repository
    is pushed, inspected and pulled with them, and refused without them."""
    c = api.client
    assert c.login("alice", "alice-pw", registry=hub.addr)["Status"] == "Login Succeeded"
    ref = f"{hub.addr}/alice/private-py"
    c.images.get("busybox").tag(ref, "1")
    try:
        auth = {"username": "alice", "password": "alice-pw"}
        messages = list(c.images.push(ref, "1", auth_config=auth, stream=True, decode=True))
        aux = [m["aux"] for m in messages if "aux" in m]
        assert aux and aux[0]["Tag"] == "1" and aux[0]["Digest"].startswith("sha256:"), messages
        hub.cli("repo", "private", "alice/private-py")
        data = c.images.get_registry_data(f"{ref}:1", auth_config=auth)
        assert data.id == aux[0]["Digest"]
        assert data.has_platform("linux/amd64")
        assert api.request("GET", f"/distribution/{ref}:1/json")[0] == 401
        c.images.remove(f"{ref}:1")
        anonymous = docker.DockerClient(base_url=api.url)  # c keeps its login in memory
        try:
            with pytest.raises(docker.errors.APIError):
                anonymous.images.pull(ref, "1")
        finally:
            anonymous.close()
        pulled = c.images.pull(ref, "1", auth_config=auth)
        assert pulled.id == c.images.get("busybox").id
        assert c.images.search(f"{hub.addr}/private-py") == []  # anonymous: not listed
    finally:
        api.cli("rmi", "-f", f"{ref}:1", check=False)


def test_push_with_a_wrong_password_sends_nothing(api: Daemon, hub: Hub) -> None:  # noqa: F811
    ref = f"{hub.addr}/alice/wrongpw"
    api.cli("tag", "busybox", f"{ref}:1")
    try:
        status, _, body = api.request(
            "POST", f"/images/{ref}/push?tag=1", None, _auth_header(username="alice", password="x")
        )
        last = json.loads(body.splitlines()[-1])
        assert status == 200 and "error" in last, body
        assert (
            hub.request(
                "GET", "/v2/alice/wrongpw/tags/list", auth=hub.bearer("alice", "alice/wrongpw")
            ).status
            == 404
        )
    finally:
        api.cli("rmi", f"{ref}:1", check=False)


def test_distribution_as_docker(api: Daemon, reference: Reference, hub: Hub) -> None:  # noqa: F811
    """The descriptor is the registry's: the same for both daemons. (Docker 20.10 leaves
    Platforms null for OCI and schema2 manifests; we read them from the config, as Docker
    25 does.)"""
    ref = f"{hub.addr}/alice/distro"
    api.cli("tag", "busybox", f"{ref}:1")
    auth = _auth_header(username="alice", password="alice-pw", serveraddress=hub.addr)
    try:
        assert api.client.images.push(
            ref, "1", auth_config={"username": "alice", "password": "alice-pw"}
        )
        path = f"/v1.41/distribution/{ref}:1/json"
        ours = json.loads(api.request("GET", path, None, auth)[2])
        theirs = json.loads(reference.request("GET", path, None, auth)[2])
        assert ours["Descriptor"] == theirs["Descriptor"]
        assert ours["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
        missing = f"/v1.41/distribution/{hub.addr}/alice/distro:nosuch/json"
        assert (
            api.request("GET", missing, None, auth)[0]
            == reference.request("GET", missing, None, auth)[0]
            == 404
        )
    finally:
        api.cli("rmi", f"{ref}:1", check=False)


# ---------------------------------------------------------------- /auth bad input


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty: a JSON object is required"),
        (b"{bad", "invalid JSON body"),
        (b'{"username": 5}', "json: cannot unmarshal number into Go struct field AuthConfig"),
        (b'{"username": "a"}', "Password is required"),
    ],
)
def test_auth_bad_input(api: Daemon, body: bytes, message: str) -> None:
    status, got = api.error("POST", "/auth", body)
    assert status == 400 and got.startswith(message), got


# ---------------------------------------------------------------- import


@pytest.fixture
def served_tar(tmp_path: Path) -> Iterator[str]:
    """A root filesystem tar served over HTTP on 127.0.0.1 (what ``docker import URL`` reads)."""
    (tmp_path / "rootfs.tar").write_bytes(tar_of({"etc/imported": b"from a URL\n"}))
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rootfs.tar"
    finally:
        server.shutdown()
        server.server_close()


def _import_session(docker_cli: Docker, prefix: str, url: str, tmp: Path) -> list[Any]:
    rootfs = tmp / "rootfs.tar"
    rootfs.write_bytes(tar_of({"hello.txt": b"hi\n", "bin/x": b"#!/bin/sh\n"}))
    seen: list[Any] = []
    for args in (
        ("import", "-c", 'CMD ["/bin/x"]', "-m", "from a file", str(rootfs), f"{prefix}-imp:1"),
        ("import", "-", f"{prefix}-imp:2"),
        ("import", url, f"{prefix}-imp:3"),
    ):
        r = docker_cli(*args, input=rootfs.read_bytes() if "-" in args else None)
        seen.append((r.returncode, r.stderr))
    fmt = "{{.Comment}} {{json .Config.Cmd}} {{len .RootFS.Layers}} {{.Os}}"
    for n in (1, 2, 3):
        comment = docker_cli("image", "inspect", "--format", fmt, f"{prefix}-imp:{n}").stdout
        seen.append(comment.replace(url, "URL"))
    r = docker_cli("import", "-c", "RUN x", str(rootfs), f"{prefix}-imp:4")
    seen.append((r.returncode, r.stderr))
    r = docker_cli("import", str(rootfs), "UPPER")
    seen.append((r.returncode, r.stderr))
    return seen


def test_docker_import_as_docker(
    api: Daemon, reference: Reference, served_tar: str, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        ours = _import_session(api.docker, reference.prefix, served_tar, tmp_path / "a")
        theirs = _import_session(reference.docker, reference.prefix, served_tar, tmp_path / "b")
        assert ours == theirs
    finally:
        for n in (1, 2, 3):
            api.cli("rmi", f"{reference.prefix}-imp:{n}", check=False)


def test_import_alone_and_bad_input(api: Daemon, served_tar: str, tmp_path: Path) -> None:
    try:
        seen = _import_session(api.docker, "alone", served_tar, tmp_path)
        assert seen[:3] == [(0, ""), (0, "")] + [(0, "")]
        assert seen[3] == 'from a file ["/bin/x"] 1 linux\n'
        assert seen[4] == "Imported from - null 1 linux\n"
        assert seen[5] == "Imported from URL null 1 linux\n"
        before = db_snapshot(api.cli.root)["images"]
        one = tar_of({"f": b"x"})
        for query, body, status, message in [
            ("fromSrc=-&repo=ok", b"not a tar at all" * 64, 400, "archive"),
            ("fromSrc=-&repo=BAD", one, 400, "must be lowercase"),
            ("fromSrc=-&changes=RUN%20x", one, 400, "run is not a valid change command"),
            ("fromSrc=ftp://x/y", b"", 400, "is not an http(s) URL"),
            ("fromSrc=http://127.0.0.1:9/x.tar", b"", 400, "dial tcp 127.0.0.1:9: connect: conn"),
            ("fromSrc=-&platform=linux/arm64", one, 400, "not supported"),
        ]:
            got = api.error("POST", f"/images/create?{query}", body)
            assert got[0] == status and message in got[1], got
        assert db_snapshot(api.cli.root)["images"] == before
    finally:
        for n in (1, 2, 3):
            api.cli("rmi", f"alone-imp:{n}", check=False)


def test_build_pulls_with_x_registry_config(api: Daemon, hub: Hub) -> None:  # noqa: F811
    """A build's FROM of a private repository: the credentials come in X-Registry-Config
    (what docker-py and Docker's CLI send from their config), never from the daemon's."""
    ref = f"{hub.addr}/alice/private-base"
    api.cli("tag", "busybox", f"{ref}:1")
    auth = {"username": "alice", "password": "alice-pw"}
    try:
        assert api.client.images.push(ref, "1", auth_config=auth)
        hub.cli("repo", "private", "alice/private-base")
        api.cli("rmi", f"{ref}:1")
        context = tar_of({"Dockerfile": f"FROM {ref}:1\nLABEL built=yes\n".encode()})
        json_type = {"Content-Type": "application/x-tar"}
        status, _, body = api.request("POST", "/build?t=frompriv:1", context, json_type)
        assert status == 200 and "error" in json.loads(body.splitlines()[-1]), body
        config = {hub.addr: {**auth, "serveraddress": hub.addr}}
        header = base64.urlsafe_b64encode(json.dumps(config).encode()).decode()
        status, _, body = api.request(
            "POST", "/build?t=frompriv:1", context, {**json_type, "X-Registry-Config": header}
        )
        assert json.loads(body.splitlines()[-1]) == {"stream": "Successfully tagged frompriv:1\n"}
    finally:
        api.cli("rmi", "-f", "frompriv:1", f"{ref}:1", check=False)
