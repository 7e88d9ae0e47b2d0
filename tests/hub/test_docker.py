"""The real docker CLI (Docker 20.10, when the anchor daemon runs) against the hub: login,
push, pull, search, and the refusals. Skipped when no Docker daemon answers."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import needs_docker
from tests.hub.conftest import Hub

Run = Callable[..., subprocess.CompletedProcess[str]]


pytestmark = needs_docker


@pytest.fixture
def docker(tmp_path: Path, hub: Hub) -> Iterator[Run]:
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    made: list[str] = []

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        if args[0] == "tag":
            made.append(args[2])
        return subprocess.run(
            ["docker", *args], input=stdin, capture_output=True, text=True, env=env, timeout=180
        )

    try:
        yield run
    finally:
        if made:
            subprocess.run(["docker", "rmi", "-f", *made], capture_output=True, env=env)


def test_docker_login_push_pull_search(hub: Hub, docker: Run, tmp_path: Path) -> None:
    run = docker
    tag = f"{hub.addr}/alice/dockerbb:{os.getpid()}"
    r = run("login", hub.addr, "-u", "alice", "--password-stdin", stdin="wrong\n")
    assert r.returncode != 0 and "incorrect username or password" in r.stderr
    assert (
        not (tmp_path / "docker-config" / "config.json").exists()
        or hub.addr not in (tmp_path / "docker-config" / "config.json").read_text()
    )
    r = run("login", hub.addr, "-u", "alice", "--password-stdin", stdin="alice-pw\n")
    assert r.returncode == 0 and "Login Succeeded" in r.stdout, r.stderr
    assert run("tag", "busybox:latest", tag).returncode == 0
    r = run("push", tag)
    assert r.returncode == 0, r.stderr
    assert "digest: sha256:" in r.stdout
    r = run("rmi", tag)
    assert r.returncode == 0, r.stderr
    r = run("pull", tag)
    assert r.returncode == 0, r.stderr
    assert hub.request("GET", f"/v2/alice/dockerbb/manifests/{os.getpid()}").status == 200

    other = f"{hub.addr}/bob/dockerbb:{os.getpid()}"
    assert run("tag", "busybox:latest", other).returncode == 0
    r = run("push", other)
    assert r.returncode != 0 and "denied" in r.stderr

    assert hub.cli("repo", "describe", "alice/dockerbb", "busybox via docker").returncode == 0
    r = run("search", f"{hub.addr}/dockerbb")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"] or (
        lines[0].split()[:4] == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL"]
    )
    assert any(line.startswith("alice/dockerbb") and "busybox via docker" in line for line in lines)
