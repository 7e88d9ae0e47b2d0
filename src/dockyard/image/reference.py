"""Image references (``[domain/]path[:tag][@digest]``), parsed and normalised as Docker does.

The grammar and the error messages follow github.com/distribution/reference (v0.6), which
``docker pull/tag/run`` use through ``ParseNormalizedNamed`` + ``TagNameOnly``::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] remote-name
    domain           := host [":" port-number]
    host             := domain-name | "[" IPv6address "]"
    domain-name      := domain-component ("." domain-component)*
    domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
    remote-name      := path-component ("/" path-component)*
    path-component   := alpha-numeric (separator alpha-numeric)*
    alpha-numeric    := /[a-z0-9]+/
    separator        := /[_.]|__|[-]+/
    tag              := /[\\w][\\w.-]{0,127}/
    digest           := algorithm ":" /[0-9a-fA-F]{32,}/

Only sha256 digests are supported; other registered algorithms are refused.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from dockyard.errors import InvalidArgument
from dockyard.image.digest import validate_digest

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
LOCALHOST = "localhost"
# Docker limits the path (not domain + path) since distribution/reference v0.6.
NAME_TOTAL_LENGTH_MAX = 255

# Character classes are spelled out in ASCII: Go's \w and [[:xdigit:]] are ASCII-only,
# Python's \w is not.
_ALPHANUMERIC = r"[a-z0-9]+"
# "[-]*" in the documented grammar; "[-]+" is the same language without the
# catastrophic backtracking an empty separator would cause.
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6_ADDRESS = r"\[[a-fA-F0-9:]+\]"
_DOMAIN_AND_PORT = rf"(?:{_DOMAIN_NAME}|{_IPV6_ADDRESS})(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"(?P<name>(?:{_DOMAIN_AND_PORT}/)?{_REMOTE_NAME})"
    rf"(?::(?P<tag>{_TAG}))?"
    rf"(?:@(?P<digest>{_DIGEST}))?"
)
_NAME_RE = re.compile(rf"(?:(?P<domain>{_DOMAIN_AND_PORT})/)?(?P<path>{_REMOTE_NAME})")
_DOMAIN_RE = re.compile(_DOMAIN_AND_PORT)
_PATH_RE = re.compile(_REMOTE_NAME)
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
# go-digest's own (stricter on the algorithm) digest grammar, used to tell
# "unsupported" from "malformed" for algorithms it does not know.
_GO_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
# Algorithms Docker registers, with their hex length.
_KNOWN_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+")
_IMAGE_ID_RE = re.compile(r"(?:sha256:)?[a-f0-9]{1,64}")

_ERR_FORMAT = "invalid reference format"


@dataclass(frozen=True, slots=True)
class Reference:
    """A parsed image reference in Docker's canonical form.

    ``domain`` is empty only for the rare names Docker parses without one (a first
    component such as ``a_b.c`` that looks like a domain but is only a valid path).
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.domain and not _DOMAIN_RE.fullmatch(self.domain):
            raise InvalidArgument(_ERR_FORMAT)
        if not _PATH_RE.fullmatch(self.path):
            raise InvalidArgument(_ERR_FORMAT)
        if len(self.path) > NAME_TOTAL_LENGTH_MAX:
            raise InvalidArgument(_name_too_long())
        if self.tag is not None and not _TAG_RE.fullmatch(self.tag):
            raise InvalidArgument("invalid tag format")
        if self.digest is not None:
            if not _DIGEST_RE.fullmatch(self.digest):
                raise InvalidArgument("invalid digest format")
            _check_digest(self.digest)

    @property
    def name(self) -> str:
        """``domain/path``, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def repository(self) -> str:
        """The path without the domain, e.g. ``library/busybox``."""
        return self.path

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar_name(self) -> str:
        """The name as Docker shows it: no ``docker.io/``, and no ``library/`` for
        official images (only when nothing nested follows it, like FamiliarName)."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_REPO_PREFIX):
            rest = self.path[len(OFFICIAL_REPO_PREFIX) :]
            if "/" not in rest:
                return rest
        return self.path

    def familiar(self) -> str:
        """``familiar_name()`` with the tag and/or digest, e.g. ``busybox:latest``."""
        return self.familiar_name() + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        """The same reference with ``tag``; a digest is kept (like WithTag)."""
        if not _TAG_RE.fullmatch(tag):
            raise InvalidArgument("invalid tag format")
        return dataclasses.replace(self, tag=tag)

    def with_digest(self, digest: str) -> Reference:
        """The same reference with ``digest``; a tag is kept (like WithDigest)."""
        if not _DIGEST_RE.fullmatch(digest):
            raise InvalidArgument("invalid digest format")
        _check_digest(digest)
        return dataclasses.replace(self, digest=digest)

    def _suffix(self) -> str:
        out = ""
        if self.tag is not None:
            out += ":" + self.tag
        if self.digest is not None:
            out += "@" + self.digest
        return out


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse a reference as ``docker pull`` does: ``busybox`` becomes
    ``docker.io/library/busybox:latest``. ``latest`` is added only when there is neither
    a tag nor a digest and ``default_tag`` is true."""
    ref = _parse_normalized_named(text)
    if default_tag and ref.tag is None and ref.digest is None:
        ref = dataclasses.replace(ref, tag=DEFAULT_TAG)
    return ref


def parse_repository(text: str) -> Reference:
    """Parse a bare repository name (no tag, no digest), e.g. for ``push --all-tags``."""
    ref = _parse_normalized_named(text)
    if ref.tag is not None or ref.digest is not None:
        raise InvalidArgument(
            f"invalid repository name ({text}): a repository name cannot have a tag or digest"
        )
    return ref


def looks_like_image_id(text: str) -> bool:
    """True for ``sha256:<1..64 hex>`` or bare ``<1..64 lowercase hex>``.

    Short hex strings are also valid names, so callers try the name first and the ID
    prefix second, as Docker does.
    """
    return _IMAGE_ID_RE.fullmatch(text) is not None


def _parse_normalized_named(text: str) -> Reference:
    """ParseNormalizedNamed: normalise the familiar form, then parse it strictly."""
    # A bare 64-hex string is an image ID, never a repository name.
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(text)
    # Docker checks case on everything before the first ":" of the remainder (the tag
    # separator, or the digest algorithm's); tags themselves may be upper case.
    remote = remainder.split(":", 1)[0]
    if _go_lower(remote) != remote:
        raise InvalidArgument(f"{_ERR_FORMAT}: repository name ({remote}) must be lowercase")
    return _parse(f"{domain}/{remainder}")


def _split_docker_domain(text: str) -> tuple[str, str]:
    """splitDockerDomain: decide whether the first component is a registry."""
    first, sep, rest = text.partition("/")
    if not sep:
        # A single component is always an official Docker Hub image ("localhost:5000"
        # is the image "localhost" with tag "5000").
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + text
    if first == LOCALHOST or "." in first or ":" in first or _go_lower(first) != first:
        # localhost, something with a "." or ":", or anything upper case (which can
        # never be a path component) is taken as a domain.
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, text
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _parse(text: str) -> Reference:
    """reference.Parse on an already-normalised string."""
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        lowered = _go_lower(text)
        if lowered != text and _REFERENCE_RE.fullmatch(lowered):
            raise InvalidArgument("repository name must be lowercase")
        raise InvalidArgument(_ERR_FORMAT)
    # Re-split the name on its own, as Docker does: a first component that
    # splitDockerDomain took for a domain but that only fits the path grammar
    # (e.g. "a_b.c") ends up in the path with an empty domain.
    name = _NAME_RE.fullmatch(match["name"])
    if name is None:  # pragma: no cover - the same sub-grammar just matched
        raise InvalidArgument(_ERR_FORMAT)
    path = name["path"]
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(_name_too_long())
    digest = match["digest"]
    if digest is not None:
        _check_digest(digest)
    return Reference(domain=name["domain"] or "", path=path, tag=match["tag"], digest=digest)


def _check_digest(digest: str) -> None:
    """go-digest's Validate (v1.0.0) for a string that already fits the digest grammar."""
    algorithm, _, encoded = digest.partition(":")
    size = _KNOWN_ALGORITHMS.get(algorithm)
    if size is None:
        if not _GO_DIGEST_RE.fullmatch(digest):
            raise InvalidArgument("invalid checksum digest format")
        raise InvalidArgument("unsupported digest algorithm")
    if len(encoded) != size:
        raise InvalidArgument("invalid checksum digest length")
    if not _LOWER_HEX_RE.fullmatch(encoded):
        raise InvalidArgument("invalid checksum digest format")
    if algorithm != "sha256":
        # Docker accepts well-formed sha384/sha512; dockyard's content store is sha256-only.
        raise InvalidArgument("unsupported digest algorithm")
    validate_digest(digest)


def _go_lower(text: str) -> str:
    """Go's strings.ToLower: per-rune simple case mapping. Python's full mapping
    differs only for U+0130, which Go lowers to a plain "i"."""
    return text.replace("\u0130", "i").lower()


def _name_too_long() -> str:
    return f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
