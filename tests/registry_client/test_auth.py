"""Logins: Basic against distribution's htpasswd, Bearer tokens from a challenge, and
Docker's config.json format."""

from __future__ import annotations

import base64
import json
import stat
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.conftest import CLI
from tests.registry_client.conftest import PASSWORD, USER, Distribution, Peer, make_image


def _config(d: Path) -> dict[str, object]:
    return json.loads((d / "config.json").read_text())


def test_wrong_password_is_refused_and_nothing_saved(
    dy: CLI, auth_registry: Distribution, docker_config: Path
) -> None:
    r = dy(
        "login", "-u", USER, "--password-stdin", auth_registry.addr, input=b"wrong\n", check=False
    )
    assert r.returncode == 125
    assert "unauthorized: incorrect username or password" in r.stderr
    assert "Login Succeeded" not in r.stdout
    assert not (docker_config / "config.json").exists()


def test_login_push_pull_logout_with_basic_auth(
    bb: CLI, dy: CLI, auth_registry: Distribution, docker_config: Path
) -> None:
    ref = f"{auth_registry.addr}/{USER}/busybox:1"
    bb("tag", "busybox", ref)
    denied = bb("push", ref, check=False)
    assert denied.returncode == 125
    assert "no basic auth credentials" in denied.stderr and "dockyard login" in denied.stderr

    out = bb(
        "login", "-u", USER, "--password-stdin", auth_registry.addr, input=PASSWORD.encode() + b"\n"
    )
    assert out.stdout.strip() == "Login Succeeded"
    path = docker_config / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entry = _config(docker_config)["auths"][auth_registry.addr]  # type: ignore[index]
    assert base64.b64decode(entry["auth"]).decode() == f"{USER}:{PASSWORD}"

    bb("push", ref)
    dy("pull", ref)  # same DOCKER_CONFIG: the saved login is used
    assert dy("images", "-q").stdout.strip()

    out = dy("logout", auth_registry.addr).stdout
    assert out.strip() == f"Removing login credentials for {auth_registry.addr}"
    assert _config(docker_config)["auths"] == {}
    assert dy("logout", auth_registry.addr).stdout.strip() == (
        f"Not logged in to {auth_registry.addr}"
    )
    r = CLI(dy.root.parent / "other", dy.run_root)("pull", ref, check=False)
    assert r.returncode == 125 and "no basic auth credentials" in r.stderr


def test_login_keeps_other_entries_of_config_json(
    dy: CLI, auth_registry: Distribution, docker_config: Path
) -> None:
    docker_config.mkdir()
    (docker_config / "config.json").write_text(
        json.dumps(
            {
                "auths": {"other.example:5000": {"auth": base64.b64encode(b"bob:pw").decode()}},
                "psFormat": "table {{.ID}}",
            }
        )
    )
    dy("login", "-u", USER, "-p", PASSWORD, auth_registry.addr)
    cfg = _config(docker_config)
    assert cfg["psFormat"] == "table {{.ID}}"
    assert set(cfg["auths"]) == {"other.example:5000", auth_registry.addr}  # type: ignore[arg-type]


def test_login_without_tty_needs_a_password(dy: CLI, auth_registry: Distribution) -> None:
    r = dy("login", auth_registry.addr, check=False)
    assert r.returncode == 125 and "non TTY" in r.stderr
    r = dy("login", "--password-stdin", auth_registry.addr, input=b"x", check=False)
    assert r.returncode == 125 and "--username" in r.stderr


def _token_peer(peer: Peer) -> list[dict[str, list[str]]]:
    """Make ``peer`` a Bearer registry like Docker Hub: a token endpoint on /token that
    needs alice's password, and tokens that grant exactly the scopes asked for."""
    token_requests: list[dict[str, list[str]]] = []
    realm = f"http://{peer.addr}/token"

    def bearer(h: BaseHTTPRequestHandler) -> bool:
        path = urlsplit(h.path)
        if path.path == "/token":
            q = parse_qs(path.query)
            token_requests.append(q)
            creds = h.headers.get("Authorization", "")
            if creds != "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode():
                h.send(401, b'{"details":"bad credentials"}')  # type: ignore[attr-defined]
                return True
            tok = "tok|" + ",".join(sorted(q.get("scope", [])))
            h.send(200, json.dumps({"token": tok, "expires_in": 300}).encode())  # type: ignore[attr-defined]
            return True
        need = ""
        if path.path.startswith("/v2/") and path.path != "/v2/":
            repo = path.path[4:].rsplit("/", 2)[0]
            need = f"repository:{repo}:pull"
        auth = h.headers.get("Authorization", "")
        granted = (
            auth.removeprefix("Bearer tok|").split(",") if auth.startswith("Bearer ") else None
        )
        if granted is None or (need and need not in granted):
            challenge = f'Bearer realm="{realm}",service="test-registry"'
            if need:
                challenge += f',scope="{need}"'
            h.send(
                401,
                b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}',  # type: ignore[attr-defined]
                {"WWW-Authenticate": challenge},
            )
            return True
        return False

    peer.before = bearer
    return token_requests


def test_bearer_token_flow(dy: CLI, peer: Peer, docker_config: Path) -> None:
    img = make_image({"a.txt": b"token-protected\n"})
    peer.add_image(f"{USER}/app", "1", img)
    token_requests = _token_peer(peer)

    r = dy("login", "-u", USER, "--password-stdin", peer.addr, input=b"nope", check=False)
    assert r.returncode == 125 and "incorrect username or password" in r.stderr
    assert not (docker_config / "config.json").exists()

    dy("login", "-u", USER, "--password-stdin", peer.addr, input=PASSWORD.encode())
    token_requests.clear()
    dy("pull", f"{peer.addr}/{USER}/app:1")
    assert token_requests, "a token was requested for the pull"
    q = token_requests[0]
    assert q["service"] == ["test-registry"]
    assert q["scope"] == [f"repository:{USER}/app:pull"]
    assert q["account"] == [USER]
    # One token served the whole pull: manifest, config and layer.
    assert len(token_requests) == 1
