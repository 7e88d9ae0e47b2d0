"""Accounts and who may do what.

Passwords are stored as salted scrypt hashes. The access rules, checked for every request and
every token grant:

- ``pull``: anyone on a public repository; the owner and admins on a private one;
- ``push`` and ``delete``: a logged-in user under their own namespace (``alice/...``);
  official repositories (``library/...`` and top-level names) only admins;
- admins may do anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.registry.hub.db import Database
from dockyard.registry.hub.names import check_user, namespace_of

# scrypt with N=2^14, r=8 needs 16 MiB per hash: cap how many run at once.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1
_HASHING = threading.BoundedSemaphore(2)
PASSWORD_MAX = 1024


@dataclass(frozen=True, slots=True)
class User:
    name: str
    admin: bool


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    with _HASHING:
        key = hashlib.scrypt(
            password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
        )
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def _check_hash(password: str, stored: str) -> bool:
    try:
        algo, n, r, p, salt, key = stored.split("$")
        if algo != "scrypt":
            return False
        want = base64.b64decode(key)
        with _HASHING:
            got = hashlib.scrypt(
                password.encode(),
                salt=base64.b64decode(salt),
                n=int(n),
                r=int(r),
                p=int(p),
                dklen=len(want),
            )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


class Accounts:
    # A client logs in once per scope it needs; remembering a verified password for a minute
    # (as an HMAC under a per-process key, never the password) spares a scrypt per request.
    _CACHE_TTL = 60.0

    def __init__(self, db: Database):
        self.db = db
        self._cache_key = os.urandom(32)
        self._verified: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def add(self, name: str, password: str, admin: bool = False) -> None:
        check_user(name)
        _check_password(password)
        hashed = hash_password(password)
        with self.db.write() as c:
            if c.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise Conflict(f"user {name!r} already exists")
            c.execute(
                "INSERT INTO users(name, password, admin, created) VALUES (?,?,?,?)",
                (name, hashed, int(admin), time.time()),
            )

    def set_password(self, name: str, password: str) -> None:
        _check_password(password)
        hashed = hash_password(password)
        with self.db.write() as c:
            if c.execute("UPDATE users SET password=? WHERE name=?", (hashed, name)).rowcount == 0:
                raise NotFound(f"no such user: {name}")

    def set_admin(self, name: str, admin: bool) -> None:
        with self.db.write() as c:
            if c.execute("UPDATE users SET admin=? WHERE name=?", (int(admin), name)).rowcount == 0:
                raise NotFound(f"no such user: {name}")

    def remove(self, name: str) -> None:
        with self.db.write() as c:
            if c.execute("DELETE FROM users WHERE name=?", (name,)).rowcount == 0:
                raise NotFound(f"no such user: {name}")
            c.execute("DELETE FROM stars WHERE user=?", (name,))

    def list(self) -> list[tuple[str, bool, float]]:
        rows = self.db.conn.execute("SELECT name, admin, created FROM users ORDER BY name")
        return [(n, bool(a), float(t)) for n, a, t in rows]

    def get(self, name: str) -> User | None:
        row = self.db.conn.execute("SELECT admin FROM users WHERE name=?", (name,)).fetchone()
        return User(name, bool(row[0])) if row else None

    def authenticate(self, name: str, password: str) -> User | None:
        """The user, if ``password`` is theirs; None otherwise (unknown user included)."""
        if len(password) > PASSWORD_MAX:
            return None
        row = self.db.conn.execute(
            "SELECT password, admin FROM users WHERE name=?", (name,)
        ).fetchone()
        if row is None:
            # As slow as a wrong password, so that timing does not tell which names exist.
            _check_hash(password, _DUMMY_HASH)
            return None
        stored, admin = row
        tag = hmac.new(self._cache_key, f"{name}\0{password}\0{stored}".encode(), "sha256")
        key = tag.digest()
        now = time.monotonic()
        with self._lock:
            seen = self._verified.get(key)
        if seen is None or now - seen > self._CACHE_TTL:
            if not _check_hash(password, stored):
                return None
            with self._lock:
                if len(self._verified) > 4096:
                    self._verified.clear()
                self._verified[key] = now
        return User(name, bool(admin))


_DUMMY_HASH = (
    f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}$"
    + base64.b64encode(b"\0" * 16).decode()
    + "$"
    + base64.b64encode(b"\0" * 32).decode()
)


def _check_password(password: str) -> None:
    if not password:
        raise InvalidArgument("the password must not be empty")
    if len(password) > PASSWORD_MAX:
        raise InvalidArgument(f"the password is longer than {PASSWORD_MAX} characters")
    if "\n" in password or "\r" in password:
        raise InvalidArgument("the password must be one line")


def allowed(user: User | None, repo: str, action: str, private: bool) -> bool:
    """Whether ``user`` (None: anonymous) may do ``action`` on repository ``repo``."""
    if user is not None and user.admin:
        return True
    owner = namespace_of(repo)
    own = user is not None and owner == user.name
    if action == "pull":
        return not private or own
    if action in ("push", "delete", "*"):
        return own
    return False
