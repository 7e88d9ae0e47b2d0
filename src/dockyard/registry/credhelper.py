"""Docker credential helpers: ``docker-credential-<name> store|get|erase`` on $PATH.

The protocol (docker-credential-helpers): ``store`` reads ``{"ServerURL", "Username",
"Secret"}`` on stdin; ``get`` reads the server URL and prints that JSON object; ``erase``
reads the server URL. A helper that has nothing for the URL says so on stdout with the
message below and a non-zero exit. Failures read as Docker's CLI words them
("error storing credentials - err: exit status 1, out: `...`").
"""

from __future__ import annotations

import json
import subprocess

from dockyard.errors import CorruptData, Unavailable

NOT_FOUND = "credentials not found in native keychain"
# The username a helper returns for an identity (OAuth refresh) token rather than a password.
TOKEN_USERNAME = "<token>"
_VERBS = {"store": "storing", "get": "getting", "erase": "erasing"}


class NotStored(Exception):
    """The helper has no credentials for that server URL."""


def program(helper: str) -> str:
    return f"docker-credential-{helper}"


def _run(helper: str, action: str, stdin: str) -> str:
    what = f"error {_VERBS[action]} credentials"
    try:
        proc = subprocess.run(
            [program(helper), action], input=stdin.encode(), capture_output=True, check=False
        )
    except FileNotFoundError:
        raise Unavailable(
            f'{what} - err: exec: "{program(helper)}": executable file not found in $PATH, out: ``'
        ) from None
    except OSError as e:
        raise Unavailable(f'{what} - err: exec: "{program(helper)}": {e.strerror or e}') from None
    out = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0:
        if NOT_FOUND in out:
            raise NotStored(out)
        err = out or proc.stderr.decode(errors="replace").strip()
        raise Unavailable(f"{what} - err: exit status {proc.returncode}, out: `{err[:500]}`")
    return out


def store(helper: str, server_url: str, username: str, secret: str) -> None:
    payload = {"ServerURL": server_url, "Username": username, "Secret": secret}
    _run(helper, "store", json.dumps(payload))


def get(helper: str, server_url: str) -> tuple[str, str] | None:
    """(username, secret) the helper keeps for ``server_url``; None when it has none."""
    try:
        out = _run(helper, "get", server_url)
    except NotStored:
        return None
    try:
        data = json.loads(out)
        user, secret = data["Username"], data["Secret"]
    except (ValueError, TypeError, KeyError):
        data = user = secret = None
    if not isinstance(user, str) or not isinstance(secret, str):
        raise CorruptData(
            f"error getting credentials - {program(helper)} printed no credentials JSON "
            f"for {server_url}: {out[:200]!r}"
        )
    return user, secret


def erase(helper: str, server_url: str) -> bool:
    """Remove the helper's credentials for ``server_url``; False when it had none."""
    try:
        _run(helper, "erase", server_url)
    except NotStored:
        return False
    return True
