"""The client against our own hub (``dockyard hub serve``): Bearer tokens, namespaces, search."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN, CLI
from tests.registry_client.conftest import stop

ACCOUNTS = {"alice": "alice-hub-pw", "bob": "bob-hub-pw"}


def _hub_available() -> bool:
    r = subprocess.run([str(BIN), "hub", "--help"], capture_output=True, text=True)
    return r.returncode == 0 and "serve" in r.stdout


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not _hub_available():
        pytest.skip("dockyard hub is not built yet")
    base = tmp_path_factory.mktemp("client-hub")
    data = base / "data"
    for name, pw in ACCOUNTS.items():
        subprocess.run(
            [str(BIN), "hub", "user", "add", name, "--password-stdin", "--data", str(data)],
            input=pw + "\n",
            text=True,
            check=True,
            timeout=60,
            capture_output=True,
        )
    log = base / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN), "hub", "serve", "--addr", "127.0.0.1:0", "--data", str(data)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        port = 0
        while time.monotonic() < deadline and not port:
            m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", log.read_bytes())
            if m:
                port = int(m.group(1))
            elif proc.poll() is not None:
                break
            time.sleep(0.05)
        assert port, log.read_text(errors="replace")
        yield f"127.0.0.1:{port}"
    finally:
        stop(proc)


def _login(
    cli: CLI, hub: str, user: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    pw = ACCOUNTS[user] if password is None else password
    return cli("login", "-u", user, "--password-stdin", hub, input=pw.encode(), check=False)


def test_login_push_pull_search_on_our_hub(bb: CLI, dy: CLI, hub: str, docker_config: Path) -> None:
    bad = _login(bb, hub, "alice", "wrong")
    assert bad.returncode == 125 and "incorrect username or password" in bad.stderr
    assert not (docker_config / "config.json").exists()
    ok = _login(bb, hub, "alice")
    assert ok.returncode == 0 and ok.stdout.strip() == "Login Succeeded"

    ref = f"{hub}/alice/kubia:1"
    bb("tag", "busybox", ref)
    first = bb("push", ref).stdout
    assert ": Pushed" in first
    digest = first.splitlines()[-1].split()[2]
    again = bb("push", ref).stdout
    assert ": Layer already exists" in again and again.splitlines()[-1].split()[2] == digest

    # Another user's namespace is denied, with a clear one-line error.
    bb("tag", "busybox", f"{hub}/bob/kubia:1")
    denied = bb("push", f"{hub}/bob/kubia:1", check=False)
    assert denied.returncode == 125
    assert "denied" in denied.stderr and "Traceback" not in denied.stderr

    # Public pulls are anonymous: a store with no login at all.
    anon_cfg = docker_config.parent / "anon-config"
    env = {**os.environ, "DOCKER_CONFIG": str(anon_cfg)}
    pulled = subprocess.run(
        [str(BIN), "--root", str(dy.root), "--run-root", str(dy.run_root), "pull", ref],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert f"Digest: {digest}" in pulled.stdout
    ids = {
        c("image", "inspect", "--format", "{{.Id}}", r).stdout.strip()
        for c, r in ((bb, "busybox"), (dy, ref))
    }
    assert len(ids) == 1

    out = dy("search", f"{hub}/kubia").stdout.splitlines()
    assert out[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]  # 20.10
    assert any(line.split()[0] == "alice/kubia" for line in out[1:])

    # skopeo reads what we pushed to the hub.
    inspect = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        timeout=120,
    )
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["Digest"] == digest

    bb("logout", hub)
    anon_push = bb("push", ref, check=False)
    assert anon_push.returncode == 125
