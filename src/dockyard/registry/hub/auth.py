"""Who is asking, and may they: the hub's side of Docker's token auth.

No credentials -> anonymous; ``Basic`` -> the user, checked against the rules directly (what
``docker login`` does at ``/v2/``); ``Bearer`` -> a token from ``/token`` that must grant the
repository and action. A request the rules would allow but the token does not cover gets a 401
whose challenge names the scope (the client fetches a new token); a request the rules refuse
for a known user gets 403 DENIED; an anonymous one gets the challenge, so it can log in.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.registry.hub.accounts import User, allowed
from dockyard.registry.hub.errors import RegistryError
from dockyard.registry.hub.names import check_name, parse_scopes
from dockyard.registry.hub.store import HubStore
from dockyard.registry.hub.tokens import Claims, TokenSigner

_ACTIONS = ("pull", "push", "delete", "*")


@dataclass(frozen=True, slots=True)
class Identity:
    user: User | None
    claims: Claims | None  # None unless a bearer token was presented

    @property
    def anonymous(self) -> bool:
        return self.user is None and self.claims is None


def parse_basic(cred: str) -> tuple[str, str] | None:
    try:
        text = base64.b64decode(cred.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None


def valid_name(name: str) -> bool:
    try:
        check_name(name)
    except RegistryError:
        return False
    return True


class Gate:
    def __init__(
        self, store: HubStore, signer: TokenSigner, realm: str | None = None, scheme: str = "http"
    ):
        self.store = store
        self.signer = signer
        self.realm = realm
        self.scheme = scheme  # of the default realm: the hub's own

    def challenge(
        self, host: str, scope: str | None, error: str | None = None, message: str = ""
    ) -> RegistryError:
        realm = self.realm or f"{self.scheme}://{host}/token"
        parts = [f'realm="{realm}"', f'service="{self.signer.service}"']
        if scope:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        return RegistryError(
            "UNAUTHORIZED",
            message or None,
            headers={"WWW-Authenticate": "Bearer " + ",".join(parts)},
        )

    def identify(self, authorization: str, host: str, scope: str | None) -> Identity:
        """Bad credentials are a 401, never a silent fall back to anonymous."""
        scheme, _, cred = authorization.partition(" ")
        if scheme.lower() == "basic":
            pair = parse_basic(cred)
            user = self.store.accounts.authenticate(*pair) if pair else None
            if user is None:
                raise self.challenge(host, scope, message="incorrect username or password")
            return Identity(user, None)
        if scheme.lower() == "bearer":
            claims = self.signer.verify(cred.strip())
            if claims is None:
                raise self.challenge(host, scope, "invalid_token", "invalid or expired token")
            user = None
            if claims.subject:
                user = self.store.accounts.get(claims.subject)
                if user is None:
                    raise self.challenge(host, scope, "invalid_token", "the account is gone")
            return Identity(user, claims)
        if authorization:
            raise self.challenge(host, scope, message="unsupported authorization scheme")
        return Identity(None, None)

    def require(
        self, ident: Identity, host: str, repo: str, actions: tuple[str, ...]
    ) -> User | None:
        scope = f"repository:{repo}:{','.join(actions)}"
        user = ident.user
        private = self.store.is_private(repo)
        refused = [a for a in actions if not allowed(user, repo, a, private)]
        if ident.claims is not None:
            missing = [a for a in actions if not ident.claims.grants("repository", repo, a)]
            if missing and not (refused and user is not None):
                raise self.challenge(host, scope, "insufficient_scope")
        if refused:
            if user is None:
                raise self.challenge(host, scope)
            raise RegistryError(
                "DENIED",
                detail=[{"Type": "repository", "Name": repo, "Action": a} for a in refused],
            )
        return user

    def token(self, creds: tuple[str, str] | None, scopes: list[str]) -> dict[str, Any]:
        """The token endpoint's answer: a token granting, of what was asked, only what the
        rules allow this user (or anonymous)."""
        user: User | None = None
        if creds is not None:
            user = self.store.accounts.authenticate(*creds)
            if user is None:
                raise RegistryError("UNAUTHORIZED", "incorrect username or password")
        access = []
        for s in parse_scopes(scopes):
            if s.type == "repository" and valid_name(s.name):
                private = self.store.is_private(s.name)
                granted = [
                    a for a in s.actions if a in _ACTIONS and allowed(user, s.name, a, private)
                ]
                access.append({"type": "repository", "name": s.name, "actions": granted})
            elif s.type == "registry" and s.name == "catalog":
                granted = ["*"] if user is not None and user.admin else []
                access.append({"type": "registry", "name": "catalog", "actions": granted})
        token, issued = self.signer.issue(user.name if user else "", access)
        stamp = datetime.fromtimestamp(issued, UTC).isoformat().replace("+00:00", "Z")
        return {
            "token": token,
            "access_token": token,
            "expires_in": self.signer.ttl,
            "issued_at": stamp,
        }
