"""Registry auth: anonymous, Basic, and Bearer tokens from the ``WWW-Authenticate`` challenge.

Docker Hub's flow (the distribution token spec): a request answers 401 with
``Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="..."``;
the client asks the realm for a token for the scopes it needs (with Basic credentials when
it has them) and repeats the request with ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from dockyard.errors import InvalidArgument, Unavailable
from dockyard.registry.endpoint import Endpoint, is_loopback
from dockyard.registry.errors import Unauthorized
from dockyard.registry.transport import NETWORK_ERRORS, HTTPTransport, Transport

_PARAM_RE = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))')
MAX_TOKEN_RESPONSE = 1 << 20
Creds = tuple[str, str] | None


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="x",service="y"`` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = value.strip().partition(" ")
    params = {}
    for m in _PARAM_RE.finditer(rest):
        raw = m.group(2) if m.group(2) is not None else m.group(3)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw)
    return scheme.lower(), params


class Auth:
    """The credentials of one registry and the tokens obtained with them (per scope set).
    Shared by the threads of one pull or push.

    ``creds`` may be a function: it is called once, when the registry first asks for
    credentials, so an anonymous pull never runs a credential helper."""

    def __init__(
        self,
        endpoint: Endpoint,
        creds: Creds | Callable[[], Creds],
        transport: Transport | None = None,
    ):
        self.endpoint = endpoint
        self._creds = creds
        self._transport = transport or HTTPTransport()
        self._scheme = ""  # "" until a challenge tells us: "basic" or "bearer"
        self._params: dict[str, str] = {}
        self._tokens: dict[tuple[str, ...], str] = {}
        self._lock = threading.Lock()

    @property
    def creds(self) -> Creds:
        if callable(self._creds):
            self._creds = self._creds()
        return self._creds

    @property
    def scheme(self) -> str:
        """What the registry asked for: "" (nothing yet), "basic" or "bearer"."""
        return self._scheme

    def headers(self, scopes: tuple[str, ...]) -> dict[str, str]:
        if self._scheme == "basic" and self.creds:
            return {"Authorization": "Basic " + _basic(self.creds)}
        if self._scheme == "bearer":
            return {"Authorization": "Bearer " + self.token(scopes)}
        return {}

    def challenge(self, value: str, scopes: tuple[str, ...]) -> None:
        """Take a 401's ``WWW-Authenticate``; the next ``headers()`` answers it."""
        scheme, params = parse_challenge(value)
        with self._lock:
            if scheme == "basic":
                if not self.creds:
                    raise Unauthorized(
                        f"{self.endpoint.name}: authentication required (no basic auth "
                        f"credentials): run 'dockyard login {self.endpoint.name}'"
                    )
                self._scheme = "basic"
                return
            if scheme != "bearer":
                raise Unauthorized(
                    f"{self.endpoint.name}: unsupported authentication scheme {scheme!r}"
                )
            self._check_realm(params.get("realm", ""))
            if self._scheme == "bearer" and self._params == params:
                # The same challenge again after we sent a token: it was not good enough.
                self._tokens.pop(scopes, None)
            self._scheme, self._params = "bearer", params

    def token(self, scopes: tuple[str, ...]) -> str:
        with self._lock:
            tok = self._tokens.get(scopes)
            if tok is None:
                tok = self._tokens[scopes] = self._fetch_token(scopes)
            return tok

    def forget(self, scopes: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(scopes, None)

    def _check_realm(self, realm: str) -> None:
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Unauthorized(
                f"{self.endpoint.name}: invalid auth challenge: realm {realm!r} is not an "
                "http(s) URL"
            )
        if parts.scheme == "http" and not (
            is_loopback(parts.netloc) or self.endpoint.scheme == "http"
        ):
            # Credentials never travel in clear text to a host we were not told to trust.
            raise Unauthorized(f"{self.endpoint.name}: refusing plain-HTTP token realm {realm!r}")

    def _fetch_token(self, scopes: tuple[str, ...]) -> str:
        realm = self._params["realm"]
        query: list[tuple[str, str]] = []
        if self._params.get("service"):
            query.append(("service", self._params["service"]))
        query += [("scope", s) for s in scopes]
        headers = {}
        if self.creds:
            query.append(("account", self.creds[0]))
            headers["Authorization"] = "Basic " + _basic(self.creds)
        url = realm + ("&" if "?" in realm else "?") + urlencode(query) if query else realm
        try:
            resp = self._transport.request("GET", url, headers, verify_tls=self.endpoint.verify_tls)
            body = resp.read(MAX_TOKEN_RESPONSE, "token response")
        except NETWORK_ERRORS as e:
            raise Unavailable(f"{self.endpoint.name}: cannot get a token from {realm}: {e}")
        if resp.status in (401, 403):
            raise Unauthorized(
                f"{self.endpoint.name}: unauthorized: incorrect username or password"
                if self.creds
                else f"{self.endpoint.name}: the token server refused anonymous access"
            )
        if resp.status != 200:
            raise Unauthorized(f"{self.endpoint.name}: token server {realm} answered {resp.status}")
        try:
            data = json.loads(body)
            tok = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            tok = None
        if not isinstance(tok, str) or not tok:
            raise Unauthorized(f"{self.endpoint.name}: token server {realm} sent no token")
        return tok


def _basic(creds: tuple[str, str]) -> str:
    return base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()


def scope(repository: str, actions: str = "pull") -> str:
    if ":" in repository or "," in repository:
        raise InvalidArgument(f"invalid repository name {repository!r}")
    return f"repository:{repository}:{actions}"
