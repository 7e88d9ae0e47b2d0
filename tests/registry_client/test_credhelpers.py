"""Docker credential helpers (``credsStore``, ``credHelpers``) against distribution with
htpasswd: login stores through the helper, pull/push read with ``get``, logout ``erase``s;
a helper that is missing, fails or prints garbage is a clear error that loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CLI
from tests.registry_client.conftest import (
    PASSWORD,
    USER,
    CredHelper,
    Distribution,
    write_config,
    write_helper,
)


def _login(cli: CLI, addr: str, password: str = PASSWORD, check: bool = True):  # type: ignore[no-untyped-def]
    return cli("login", "-u", USER, "--password-stdin", addr, input=password.encode(), check=check)


def test_login_pull_push_logout_through_creds_store(
    bb: CLI, dy: CLI, auth_registry: Distribution, docker_config: Path, cred_helper: CredHelper
) -> None:
    write_config(docker_config, credsStore=cred_helper.name, psFormat="table {{.ID}}")
    r = _login(bb, auth_registry.addr)
    assert r.stdout.strip() == "Login Succeeded"
    assert "unencrypted" not in r.stderr  # the password is not in config.json
    assert cred_helper.calls() == [
        (
            "store",
            json.dumps({"ServerURL": auth_registry.addr, "Username": USER, "Secret": PASSWORD}),
        )
    ]
    assert cred_helper.secrets() == {auth_registry.addr: {"Username": USER, "Secret": PASSWORD}}
    cfg = json.loads((docker_config / "config.json").read_text())
    # Docker keeps an empty entry: the secret lives only in the helper.
    assert cfg == {
        "auths": {auth_registry.addr: {}},
        "credsStore": cred_helper.name,
        "psFormat": "table {{.ID}}",
    }
    assert PASSWORD not in (docker_config / "config.json").read_text()

    ref = f"{auth_registry.addr}/{USER}/helper-bb:1"
    bb("tag", "busybox", ref)
    bb("push", ref)
    dy("pull", ref)
    assert dy("images", "-q").stdout.strip()
    gets = [c for c in cred_helper.calls() if c[0] == "get"]
    assert gets and all(c == ("get", auth_registry.addr) for c in gets)

    out = dy("logout", auth_registry.addr).stdout
    assert out.strip() == f"Removing login credentials for {auth_registry.addr}"
    assert cred_helper.calls()[-1] == ("erase", auth_registry.addr)
    assert cred_helper.secrets() == {}
    assert json.loads((docker_config / "config.json").read_text())["auths"] == {}
    r = CLI(dy.root.parent / "other", dy.run_root)("pull", ref, check=False)
    assert r.returncode == 125 and "no basic auth credentials" in r.stderr


def test_cred_helpers_entry_wins_over_creds_store(
    dy: CLI, auth_registry: Distribution, docker_config: Path, cred_helper: CredHelper
) -> None:
    # credsStore names a helper that does not exist: only the per-registry one may be used.
    write_config(
        docker_config,
        credsStore="not-installed",
        credHelpers={auth_registry.addr: cred_helper.name},
    )
    _login(dy, auth_registry.addr)
    assert cred_helper.secrets() == {auth_registry.addr: {"Username": USER, "Secret": PASSWORD}}
    dy("logout", auth_registry.addr)
    assert cred_helper.secrets() == {}


def test_wrong_password_reaches_no_helper(
    dy: CLI, auth_registry: Distribution, docker_config: Path, cred_helper: CredHelper
) -> None:
    write_config(docker_config, credsStore=cred_helper.name)
    before = (docker_config / "config.json").read_text()
    r = _login(dy, auth_registry.addr, "wrong-pw", check=False)
    assert r.returncode == 125
    assert "unauthorized: incorrect username or password" in r.stderr
    assert cred_helper.calls() == []
    assert (docker_config / "config.json").read_text() == before


BROKEN = {
    "missing": (
        None,
        'exec: "docker-credential-missing": executable file not found in $PATH',
    ),
    "fails": ('echo "keyring is locked"; exit 3', "err: exit status 3, out: `keyring is locked`"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_login_with_a_broken_helper_stores_nothing(
    dy: CLI, auth_registry: Distribution, docker_config: Path, helpers_dir: Path, kind: str
) -> None:
    body, message = BROKEN[kind]
    if body is not None:
        write_helper(helpers_dir, kind, body)
    write_config(docker_config, credsStore=kind)
    before = (docker_config / "config.json").read_text()
    r = _login(dy, auth_registry.addr, check=False)
    assert r.returncode == 125, r.stderr
    assert "Error saving credentials: error storing credentials - " in r.stderr
    assert message in r.stderr
    assert "Login Succeeded" not in r.stdout
    assert (docker_config / "config.json").read_text() == before


@pytest.mark.parametrize(
    ("kind", "body", "message"),
    [
        ("missing", None, 'exec: "docker-credential-missing": executable file not found'),
        ("fails", 'echo "keyring is locked"; exit 3', "exit status 3, out: `keyring is locked`"),
        ("garbage", 'echo "<html>not json</html>"', "printed no credentials JSON"),
        ("partial", 'echo \'{"Username": "alice"}\'', "printed no credentials JSON"),
    ],
)
def test_pull_with_a_broken_helper_is_a_clear_error(
    dy: CLI,
    auth_registry: Distribution,
    docker_config: Path,
    helpers_dir: Path,
    kind: str,
    body: str | None,
    message: str,
) -> None:
    if body is not None:
        write_helper(helpers_dir, kind, body)
    write_config(docker_config, credsStore=kind, auths={auth_registry.addr: {}})
    before = (docker_config / "config.json").read_text()
    r = dy("pull", f"{auth_registry.addr}/{USER}/anything:1", check=False)
    assert r.returncode == 125
    assert "error getting credentials - " in r.stderr and message in r.stderr
    assert "Traceback" not in r.stderr
    assert dy("images", "-q").stdout.strip() == ""
    assert (docker_config / "config.json").read_text() == before


def test_anonymous_pull_never_runs_the_helper(
    bb: CLI, dy: CLI, registry: Distribution, docker_config: Path, helpers_dir: Path
) -> None:
    """Credentials are read when a registry asks for them: a registry without auth pulls
    even with a broken helper configured, and the helper is not run."""
    helper = write_helper(helpers_dir, "fails", 'echo "keyring is locked"; exit 3')
    ref = f"{registry.addr}/anon/helper-bb:1"
    bb("tag", "busybox", ref)
    write_config(docker_config, credsStore="fails")
    bb("push", ref)
    dy("pull", ref)
    assert dy("images", "-q").stdout.strip()
    assert helper.calls() == []


def test_logout_with_a_failing_helper_keeps_the_entry(
    dy: CLI, auth_registry: Distribution, docker_config: Path, helpers_dir: Path
) -> None:
    helper = write_helper(helpers_dir, "fails", 'echo "keyring is locked"; exit 3')
    write_config(docker_config, credsStore="fails", auths={auth_registry.addr: {}})
    r = dy("logout", auth_registry.addr, check=False)
    assert r.returncode == 125
    assert "error erasing credentials - err: exit status 3, out: `keyring is locked`" in r.stderr
    assert helper.calls() == [("erase", "")]
    cfg = json.loads((docker_config / "config.json").read_text())
    assert cfg["auths"] == {auth_registry.addr: {}}  # still known: the secret was not erased


def test_logout_of_a_login_the_helper_lost(
    dy: CLI, auth_registry: Distribution, docker_config: Path, cred_helper: CredHelper
) -> None:
    """config.json names the server but the helper has nothing (erased by another tool):
    logout clears the entry instead of failing on the helper's "not found"."""
    write_config(docker_config, credsStore=cred_helper.name, auths={auth_registry.addr: {}})
    out = dy("logout", auth_registry.addr).stdout
    assert out.strip() == f"Removing login credentials for {auth_registry.addr}"
    assert cred_helper.calls() == [("erase", auth_registry.addr)]
    assert json.loads((docker_config / "config.json").read_text())["auths"] == {}


def test_identity_token_from_a_helper_is_refused_clearly(
    dy: CLI, auth_registry: Distribution, docker_config: Path, cred_helper: CredHelper
) -> None:
    cred_helper.store.write_text(
        json.dumps({auth_registry.addr: {"Username": "<token>", "Secret": "refresh-token"}})
    )
    write_config(docker_config, credsStore=cred_helper.name, auths={auth_registry.addr: {}})
    r = dy("pull", f"{auth_registry.addr}/{USER}/anything:1", check=False)
    assert r.returncode == 125
    assert "identity token" in r.stderr and "dockyard login" in r.stderr
