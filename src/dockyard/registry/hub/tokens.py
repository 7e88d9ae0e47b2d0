"""Bearer tokens as Docker's token auth spec describes them: a JWT (HS256 under a key kept in
the data dir) whose ``access`` claim lists the repositories and actions it grants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ISSUER = "dockyard-hub"
KEY_BYTES = 32


def load_key(path: Path) -> bytes:
    """The signing key, created (mode 0600, atomically) on first use."""
    try:
        key = path.read_bytes()
        if len(key) >= KEY_BYTES:
            return key
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, os.urandom(KEY_BYTES))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # the first process to create the key wins; others read it
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str  # "" for anonymous
    audience: str
    expires: float
    access: dict[tuple[str, str], frozenset[str]]  # (type, name) -> actions

    def grants(self, typ: str, name: str, action: str) -> bool:
        acts = self.access.get((typ, name), frozenset())
        return action in acts or "*" in acts


class TokenSigner:
    def __init__(self, key: bytes, service: str, ttl: int):
        self.key = key
        self.service = service
        self.ttl = ttl

    def issue(self, subject: str, access: list[dict[str, Any]]) -> tuple[str, float]:
        now = time.time()
        payload = {
            "iss": ISSUER,
            "sub": subject,
            "aud": self.service,
            "iat": int(now),
            "nbf": int(now) - 1,
            "exp": int(now) + self.ttl,
            "jti": os.urandom(12).hex(),
            "access": access,
        }
        header = {"alg": "HS256", "typ": "JWT"}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        sig = hmac.new(self.key, signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{_b64(sig)}", now

    def verify(self, token: str) -> Claims | None:
        """The claims of a token this hub signed that is still valid, else None."""
        try:
            head, body, sig = token.split(".")
            want = hmac.new(self.key, f"{head}.{body}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(want, _unb64(sig)):
                return None
            if json.loads(_unb64(head)).get("alg") != "HS256":
                return None
            p = json.loads(_unb64(body))
            now = time.time()
            if p.get("aud") != self.service or p.get("iss") != ISSUER:
                return None
            if not (float(p["nbf"]) - 60 <= now < float(p["exp"])):
                return None
            access: dict[tuple[str, str], frozenset[str]] = {}
            for a in p.get("access") or []:
                key = (str(a["type"]), str(a["name"]))
                access[key] = access.get(key, frozenset()) | frozenset(map(str, a["actions"]))
            return Claims(str(p.get("sub") or ""), p["aud"], float(p["exp"]), access)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
