"""What the hub accepts as a repository name, tag, digest, user name and token scope.

Names are checked against the distribution spec's grammar on the raw request path (never
percent-decoded), so ``..``, ``%2e%2e``, empty or absolute components cannot match. Nothing on
disk is named after a repository anyway: blobs live under their digest, names only in SQLite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.registry.hub.errors import RegistryError

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_RE = re.compile(r"sha256:[a-f0-9]{64}")
_ANY_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
USER_RE = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
UPLOAD_ID_RE = re.compile(r"[a-f0-9]{32}")
NAME_MAX = 255
USER_MAX = 64
# Top-level names and library/... are the official images: only admins push there.
OFFICIAL_NAMESPACE = "library"


def check_name(name: str) -> str:
    if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        raise RegistryError("NAME_INVALID", f"invalid repository name {name[:100]!r}")
    return name


def check_digest(digest: str) -> str:
    if DIGEST_RE.fullmatch(digest):
        return digest
    if _ANY_DIGEST_RE.fullmatch(digest) and not digest.startswith("sha256:"):
        raise RegistryError(
            "DIGEST_INVALID", f"unsupported digest algorithm in {digest[:80]!r}: use sha256"
        )
    raise RegistryError("DIGEST_INVALID", f"invalid digest {digest[:80]!r}")


def is_digest(ref: str) -> bool:
    return ":" in ref


def check_reference(ref: str) -> str:
    """A manifest reference: a tag or a sha256 digest."""
    if is_digest(ref):
        return check_digest(ref)
    if not TAG_RE.fullmatch(ref):
        raise RegistryError("TAG_INVALID", f"invalid tag {ref[:130]!r}")
    return ref


def check_user(name: str) -> str:
    """User names double as namespaces, so they follow the path-component grammar."""
    if len(name) > USER_MAX or not USER_RE.fullmatch(name):
        from dockyard.errors import InvalidArgument

        raise InvalidArgument(
            f"invalid user name {name[:80]!r}: use lowercase letters, digits and . _ - "
            f"between them, at most {USER_MAX} characters"
        )
    if name == OFFICIAL_NAMESPACE:
        from dockyard.errors import InvalidArgument

        raise InvalidArgument(f"{name!r} is reserved for official repositories")
    return name


def namespace_of(name: str) -> str | None:
    """The user namespace a repository lives in, or None for official repositories."""
    head, sep, _ = name.partition("/")
    if not sep or head == OFFICIAL_NAMESPACE:
        return None
    return head


def is_official(name: str) -> bool:
    return namespace_of(name) is None


@dataclass(frozen=True, slots=True)
class Scope:
    """One ``type:name:actions`` entry of a token request (Docker's token auth spec)."""

    type: str
    name: str
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


def parse_scopes(values: list[str]) -> list[Scope]:
    """``scope`` parameters; each may hold several space-separated scopes. Malformed entries
    are dropped: a token for them simply grants nothing."""
    out: list[Scope] = []
    for value in values:
        for item in value.split():
            head, sep, actions = item.rpartition(":")
            typ, sep2, name = head.partition(":")
            if not sep or not sep2 or not typ or not name:
                continue
            acts = tuple(dict.fromkeys(a for a in actions.split(",") if a))
            out.append(Scope(typ, name, acts))
    return out
