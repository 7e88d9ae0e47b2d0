"""dockyard's own registry client against the hub: login, push, pull, search, logout."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import CLI
from tests.hub.conftest import Hub
from tests.registry_client.conftest import helpers_dir, write_config, write_helper

__all__ = ["helpers_dir"]  # a fixture shared with the client tests


def test_dockyard_login_push_pull_search(hub: Hub, bb: CLI, dy: CLI, docker_config: Path) -> None:
    ref = f"{hub.addr}/alice/dybb:1"
    r = bb("login", hub.addr, "-u", "alice", "--password-stdin", input=b"wrong\n", check=False)
    assert r.returncode != 0
    assert (
        not (docker_config / "config.json").exists()
        or hub.addr not in (docker_config / "config.json").read_text()
    )
    r = bb("login", hub.addr, "-u", "alice", "--password-stdin", input=b"alice-pw\n")
    assert "Login Succeeded" in r.stdout
    cfg = docker_config / "config.json"
    assert hub.addr in json.loads(cfg.read_text())["auths"]
    assert cfg.stat().st_mode & 0o777 == 0o600

    bb("tag", "busybox", ref)
    r = bb("push", ref)
    assert "Pushed" in r.stdout
    digest = hub.request("HEAD", "/v2/alice/dybb/manifests/1").headers["docker-content-digest"]
    assert digest in r.stdout
    # Pushed again: every layer is already there.
    r = bb("push", ref)
    assert "Layer already exists" in r.stdout and "Pushed" not in r.stdout

    # Someone else's namespace is refused, and nothing lands there.
    r = bb("tag", "busybox", f"{hub.addr}/bob/dybb:1")
    r = bb("push", f"{hub.addr}/bob/dybb:1", check=False)
    assert r.returncode != 0 and "denied" in r.stderr.lower()
    assert hub.request("GET", "/v2/bob/dybb/tags/list").status == 404

    # A fresh store pulls it back, by tag and by digest (anonymous: the repository is public).
    r = dy("pull", ref)
    assert digest in r.stdout
    assert dy("image", "inspect", ref).returncode == 0
    r = dy("pull", f"{hub.addr}/alice/dybb@{digest}")
    assert r.returncode == 0
    out = dy("run", "--rm", ref, "echo", "hello from the hub")
    assert "hello from the hub" in out.stdout

    assert hub.cli("repo", "describe", "alice/dybb", "busybox through dockyard").returncode == 0
    r = dy("search", f"{hub.addr}/dybb")
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "DESCRIPTION", "STARS"]
    assert any(
        line.startswith("alice/dybb") and "busybox through dockyard" in line for line in lines
    )

    r = bb("logout", hub.addr)
    assert r.returncode == 0
    assert hub.addr not in json.loads(cfg.read_text()).get("auths", {})
    r = bb("push", ref, check=False)
    assert r.returncode != 0
    assert os.environ["DOCKER_CONFIG"] == str(docker_config)


def test_login_push_pull_private_through_a_credential_helper(
    hub: Hub, bb: CLI, dy: CLI, docker_config: Path, helpers_dir: Path
) -> None:
    """Bearer tokens with the password from ``docker-credential-<name> get``."""
    helper = write_helper(helpers_dir, "hubtest")
    write_config(docker_config, credsStore="hubtest")
    r = bb("login", hub.addr, "-u", "alice", "--password-stdin", input=b"wrong\n", check=False)
    assert r.returncode == 125 and helper.calls() == []
    bb("login", hub.addr, "-u", "alice", "--password-stdin", input=b"alice-pw\n")
    assert helper.secrets() == {hub.addr: {"Username": "alice", "Secret": "alice-pw"}}
    assert json.loads((docker_config / "config.json").read_text())["auths"] == {hub.addr: {}}

    ref = f"{hub.addr}/alice/helperbb:1"
    bb("tag", "busybox", ref)
    assert "Pushed" in bb("push", ref).stdout
    assert hub.cli("repo", "private", "alice/helperbb").returncode == 0
    dy("pull", ref)  # private: only alice's token may read it
    assert ("get", hub.addr) in helper.calls()

    bb("logout", hub.addr)
    assert helper.secrets() == {}
    r = CLI(dy.root.parent / "fresh", dy.run_root)("pull", ref, check=False)
    assert r.returncode == 125 and "pull access denied" in r.stderr
