"""Who may pull and push: anonymous pulls, namespaces, official repositories, scoped tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

import pytest

from tests.hub.conftest import OCI_MANIFEST, Hub, basic, sha


def _denied_push(hub: Hub, repo: str, auth: str | None, layers: list[bytes]) -> int:
    """Try every push step; return the status of the first (all must agree) and check that
    nothing was written."""
    layers = [os.urandom(1000)]  # never pushed anywhere
    r1 = hub.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
    r2 = hub.request(
        "POST", f"/v2/{repo}/blobs/uploads/?digest={sha(layers[0])}", layers[0], auth=auth
    )
    r3 = hub.request(
        "PUT", f"/v2/{repo}/manifests/1", b"{}", {"Content-Type": OCI_MANIFEST}, auth=auth
    )
    assert r1.status == r2.status == r3.status, (r1.status, r2.status, r3.status)
    assert r1.status in (401, 403)
    assert hub.request("GET", f"/v2/{repo}/tags/list").code == "NAME_UNKNOWN"
    assert not (hub.data / "blobs" / "sha256" / sha(layers[0])[7:9] / sha(layers[0])[7:]).exists()
    return r1.status


def test_anonymous_pull_allowed_anonymous_push_denied(hub: Hub, layers: list[bytes]) -> None:
    hub.push_image("alice/public", "1", layers, hub.bearer("alice", "alice/public"))
    # Anonymous token for pull works; for push it grants nothing.
    tok = hub.token(None, "repository:alice/public:pull,push").json()
    claims = json.loads(base64.urlsafe_b64decode(tok["token"].split(".")[1] + "=="))
    assert claims["access"] == [{"type": "repository", "name": "alice/public", "actions": ["pull"]}]
    auth = "Bearer " + tok["token"]
    assert hub.request("GET", "/v2/alice/public/manifests/1", auth=auth).status == 200
    assert hub.request("GET", "/v2/alice/public/manifests/1").status == 200
    r = hub.request("POST", "/v2/alice/anon/blobs/uploads/")
    assert r.status == 401 and r.code == "UNAUTHORIZED"
    assert 'scope="repository:alice/anon:pull,push"' in r.headers["www-authenticate"]
    assert _denied_push(hub, "alice/anon", None, layers) == 401
    assert _denied_push(hub, "alice/anon", auth, layers) == 401


def test_user_cannot_push_to_another_namespace(hub: Hub, layers: list[bytes]) -> None:
    tok = hub.token("alice", "repository:bob/x:pull,push").json()["token"]
    assert _denied_push(hub, "bob/x", "Bearer " + tok, layers) == 403
    assert _denied_push(hub, "bob/x", basic("alice"), layers) == 403
    r = hub.request("POST", "/v2/bob/x/blobs/uploads/", auth=basic("alice"))
    assert r.code == "DENIED"


@pytest.mark.parametrize("repo", ["library/official", "toplevel"])
def test_only_admins_push_official_repositories(hub: Hub, layers: list[bytes], repo: str) -> None:
    assert _denied_push(hub, repo, hub.bearer("alice", repo), layers) == 403
    hub.push_image(repo, "1", layers, hub.bearer("root", repo))
    assert hub.request("GET", f"/v2/{repo}/manifests/1").status == 200


def test_token_for_one_repository_is_refused_on_another(hub: Hub, layers: list[bytes]) -> None:
    auth = hub.bearer("alice", "alice/one")
    hub.push_image("alice/one", "1", layers, auth)
    # Same owner, other repository: the token does not cover it; the challenge names the
    # scope to ask for.
    r = hub.request("POST", "/v2/alice/two/blobs/uploads/", auth=auth)
    assert r.status == 401
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="repository:alice/two:pull,push"' in r.headers["www-authenticate"]
    assert _denied_push(hub, "alice/two", auth, layers) == 401
    # A pull-only token does not push either.
    pull_only = hub.bearer("alice", "alice/one", "pull")
    r = hub.request("POST", "/v2/alice/one/blobs/uploads/", auth=pull_only)
    assert r.status == 401 and 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_wrong_password_and_forged_tokens(hub: Hub) -> None:
    r = hub.token("alice", "repository:alice/x:pull,push", password="wrong")
    assert r.status == 401 and r.code == "UNAUTHORIZED"
    assert "token" not in r.json()
    assert hub.token("nobody", "repository:alice/x:pull", password="x").status == 401
    assert hub.request("GET", "/v2/", auth=basic("alice", "wrong")).status == 401
    assert hub.request("GET", "/v2/", auth="Basic !!!notbase64").status == 401
    assert hub.request("GET", "/v2/", auth="Digest abc").status == 401

    # A token re-signed with another key, one with a widened access claim, an expired one.
    tok = hub.token("alice", "repository:alice/x:pull").json()["token"]
    head, body, sig = tok.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["access"] = [{"type": "repository", "name": "bob/x", "actions": ["push"]}]
    widened = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = f"{head}.{widened}.{sig}"
    r = hub.request("POST", "/v2/bob/x/blobs/uploads/", auth="Bearer " + forged)
    assert r.status == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]

    key = (hub.data / "token.key").read_bytes()
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["exp"] = int(time.time()) - 10
    old = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    mac = hmac.new(key, f"{head}.{old}".encode(), hashlib.sha256).digest()
    expired = f"{head}.{old}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert hub.request("GET", "/v2/", auth="Bearer " + expired).status == 401
    # The same claims, unexpired and properly signed, are accepted: the test is sound.
    claims["exp"] = int(time.time()) + 100
    ok = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    mac = hmac.new(key, f"{head}.{ok}".encode(), hashlib.sha256).digest()
    good = f"{head}.{ok}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    assert hub.request("GET", "/v2/", auth="Bearer " + good).status == 200


def test_token_endpoint_post_password_grant(hub: Hub) -> None:
    form = (
        "grant_type=password&username=alice&password=alice-pw&service=dockyard-hub"
        "&scope=repository%3Aalice%2Fp%3Apush%2Cpull&client_id=test"
    )
    r = hub.request(
        "POST", "/token", form.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status == 200
    assert r.json()["access_token"]
    bad = form.replace("alice-pw", "nope")
    r = hub.request(
        "POST", "/token", bad.encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.status == 401


def test_user_removed_loses_access(hub: Hub, layers: list[bytes]) -> None:
    r = hub.cli("user", "add", "carol", "--password-stdin", stdin="carol-pw\n")
    assert r.returncode == 0, r.stderr
    auth = basic("carol", "carol-pw")
    tok = (
        "Bearer "
        + hub.token("carol", "repository:carol/x:pull,push", password="carol-pw").json()["token"]
    )
    hub.push_image("carol/x", "1", layers, tok)
    assert hub.cli("user", "rm", "carol").returncode == 0
    assert hub.request("GET", "/v2/", auth=auth).status == 401
    assert hub.request("POST", "/v2/carol/x/blobs/uploads/", auth=tok).status == 401
    assert hub.request("GET", "/v2/carol/x/manifests/1").status == 200  # the images stay
