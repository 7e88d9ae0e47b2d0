"""Registry credentials as Docker's clients send them to the daemon: ``X-Registry-Auth`` (one
AuthConfig, for a pull or push), ``X-Registry-Config`` (a map of them, for a build's pulls)
and ``POST /auth``'s body. Each is base64 (URL alphabet, padding optional) of JSON."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, NamedTuple

from dockyard.errors import InvalidArgument


class AuthConfig(NamedTuple):
    username: str = ""
    password: str = ""
    server: str = ""  # serveraddress
    identity_token: str = ""  # identitytoken: an OAuth refresh token

    @property
    def login(self) -> tuple[str, str] | None:
        """(user, password) when the config has them."""
        return (self.username, self.password) if self.username else None


def auth_from_json(doc: Any) -> AuthConfig:
    """An AuthConfig object; ``auth`` (base64 of user:password) stands for the two fields,
    as in Docker's config.json."""
    if not isinstance(doc, dict):
        raise InvalidArgument("invalid auth configuration: expected an object")
    for key in ("username", "password", "auth", "serveraddress", "identitytoken"):
        value = doc.get(key, "")
        if not isinstance(value, str | None):
            kind = {bool: "bool", list: "array", dict: "object"}.get(type(value), "number")
            raise InvalidArgument(
                f"json: cannot unmarshal {kind} into Go struct field AuthConfig.{key} of type "
                "string"
            )
    doc = {k: v for k, v in doc.items() if v is not None}
    user, password = doc.get("username", ""), doc.get("password", "")
    if not user and doc.get("auth"):
        try:
            user, _, password = base64.b64decode(doc["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("invalid auth configuration: bad auth field") from None
    return AuthConfig(user, password, doc.get("serveraddress", ""), doc.get("identitytoken", ""))


def _decode(header: str) -> Any:
    text = header.strip()
    text += "=" * (-len(text) % 4)
    return json.loads(base64.urlsafe_b64decode(text))


def registry_auth(header: str) -> AuthConfig | None:
    """``X-Registry-Auth``. Like moby, a header that does not decode counts as none: pulls
    and pushes work anonymously, and the registry says whether that is enough."""
    if not header:
        return None
    try:
        return auth_from_json(_decode(header))
    except (ValueError, InvalidArgument):
        return None


def registry_config(header: str) -> dict[str, AuthConfig]:
    """``X-Registry-Config``: registry -> credentials (decode errors ignored, as moby)."""
    if not header:
        return {}
    try:
        doc = _decode(header)
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    out = {}
    for registry, entry in doc.items():
        try:
            out[str(registry)] = auth_from_json(entry)
        except InvalidArgument:
            continue
    return out
