"""Saved logins, in Docker's ``config.json`` format so both tools share them.

``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``)::

    {"auths": {"127.0.0.1:5001": {"auth": base64("user:password")}}}

With ``credHelpers`` (per registry host) or ``credsStore`` set, the secret goes to that
credential helper instead (``credhelper.py``) and ``auths`` keeps an empty entry for the
server, as Docker's CLI does: that entry is how ``logout`` knows there is something to erase.

The file is written to a temp name with mode 0600 and renamed over the old one; keys other
than the entry being changed are kept as they were.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from dockyard.errors import DockyardError, InvalidArgument
from dockyard.registry import credhelper
from dockyard.registry.endpoint import HUB_CONFIG_KEY, config_key, normalize_registry


def config_dir() -> str:
    return os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def config_path() -> str:
    return os.path.join(config_dir(), "config.json")


def _load() -> dict[str, Any]:
    try:
        with open(config_path(), "rb") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise InvalidArgument(f"cannot read {config_path()}: {e}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{config_path()} is not a JSON object")
    return data


def _save(data: dict[str, Any]) -> None:
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent="\t")
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _key_matches(key: str, registry: str) -> bool:
    try:
        return normalize_registry(key) == registry
    except InvalidArgument:
        return False


def helper_for(data: dict[str, Any], registry: str) -> str:
    """The credential helper that keeps ``registry``'s secrets: its ``credHelpers`` entry
    (keyed by host, "index.docker.io" for Docker Hub), else ``credsStore``; "" for the file."""
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict):
        for key, name in helpers.items():
            if _key_matches(key, registry) and isinstance(name, str) and name:
                return name
    store = data.get("credsStore")
    return store if isinstance(store, str) else ""


def _auths(data: dict[str, Any]) -> dict[str, Any]:
    auths = data.get("auths") or {}
    if not isinstance(auths, dict):
        raise InvalidArgument(f"'auths' in {config_path()} is not an object")
    return auths


def get(registry: str) -> tuple[str, str] | None:
    """Saved (user, password) for ``registry`` (a normalised registry name), if any."""
    data = _load()
    helper = helper_for(data, registry)
    if helper:
        creds = credhelper.get(helper, config_key(registry))
        if creds and creds[0] == credhelper.TOKEN_USERNAME:
            raise InvalidArgument(
                f"{credhelper.program(helper)} holds an identity token for {registry}, which "
                f"dockyard cannot use: run 'dockyard login {registry}' with a password"
            )
        return creds
    auths = data.get("auths") or {}
    if not isinstance(auths, dict):
        return None
    exact = config_key(registry)
    keys = [exact] if exact in auths else [k for k in auths if _key_matches(k, registry)]
    for key in keys:
        entry = auths.get(key) or {}
        if not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                raise InvalidArgument(f"invalid auth entry for {key} in {config_path()}") from None
            return user, password
        if entry.get("username"):
            return str(entry["username"]), str(entry.get("password", ""))
    return None


def store(registry: str, user: str, password: str) -> str | None:
    """Save a login. Returns the file the password was written to in clear, or None when a
    credential helper took it."""
    data = _load()
    auths = data.setdefault("auths", {})
    if not isinstance(auths, dict):
        raise InvalidArgument(f"'auths' in {config_path()} is not an object")
    helper = helper_for(data, registry)
    if helper:
        # The helper first: when it fails, config.json is left as it was.
        credhelper.store(helper, config_key(registry), user, password)
    for key in [k for k in auths if k != config_key(registry) and _key_matches(k, registry)]:
        del auths[key]
    if helper:
        auths[config_key(registry)] = {}
    else:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        auths[config_key(registry)] = {"auth": token}
    _save(data)
    return None if helper else config_path()


def erase(registry: str) -> bool:
    """Forget a login (in its helper too). False when none was saved. A helper that fails
    raises, and the entries it still holds stay in config.json."""
    data = _load()
    auths = _auths(data)
    keys = [k for k in auths if k == config_key(registry) or _key_matches(k, registry)]
    if not keys:
        return False
    helper = helper_for(data, registry)
    failure: DockyardError | None = None
    removed = 0
    for key in keys:
        try:
            if helper:
                credhelper.erase(helper, key)  # "not found" there is fine: drop the entry
            del auths[key]
            removed += 1
        except DockyardError as e:
            failure = e
    if removed:
        _save(data)
    if failure:
        raise failure
    return True


__all__ = ["HUB_CONFIG_KEY", "config_path", "erase", "get", "helper_for", "store"]
