"""Where a registry name lives: host, scheme, TLS, and the key its credentials are saved under.

Docker's rules: ``docker.io`` is served by ``registry-1.docker.io`` (search by
``index.docker.io``); HTTPS verified with the system CAs and certs.d (``tls.py``), except for
loopback hosts and registries the user lists as insecure
(``DOCKYARD_INSECURE_REGISTRIES=host:port,...``): those get HTTPS without verification when
the server speaks TLS, plain HTTP when it does not (the client decides on first use). One
departure: a loopback registry whose certs.d directory holds a CA is verified with it
(dockerd ignores certs.d for every registry it considers insecure, loopback included).
``DOCKYARD_REGISTRY_MIRROR=http[s]://host[:port]`` (dockerd's ``--registry-mirror``) serves
docker.io instead of Docker Hub, with no fallback: air-gapped machines and the test suite use it
so that nothing ever reaches the Internet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from dockyard.errors import InvalidArgument

DOCKER_HUB = "docker.io"
HUB_API_HOST = "registry-1.docker.io"
HUB_INDEX_HOST = "index.docker.io"
# The key Docker writes Docker Hub credentials under in config.json.
HUB_CONFIG_KEY = "https://index.docker.io/v1/"
INSECURE_ENV = "DOCKYARD_INSECURE_REGISTRIES"
MIRROR_ENV = "DOCKYARD_REGISTRY_MIRROR"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One registry as seen from the client."""

    name: str  # as in references: "docker.io", "127.0.0.1:5000"
    netloc: str  # host[:port] to connect to
    scheme: str  # "http" or "https"
    verify_tls: bool = True
    # HTTPS without verification, or plain HTTP if the server does not speak TLS.
    fallback_http: bool = False

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def split_host(netloc: str) -> tuple[str, int | None]:
    """``host[:port]`` (IPv6 in brackets) -> (host without brackets, port)."""
    if netloc.startswith("["):
        host, _, rest = netloc[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = netloc.partition(":")
    if port and not port.isdigit():
        raise InvalidArgument(f"invalid registry address {netloc!r}")
    return host, int(port) if port else None


def is_loopback(netloc: str) -> bool:
    host, _ = split_host(netloc)
    return host in ("localhost", "::1") or host.startswith("127.")


def insecure_registries(extra: tuple[str, ...] = ()) -> frozenset[str]:
    listed = [x.strip() for x in os.environ.get(INSECURE_ENV, "").split(",")]
    return frozenset(x for x in (*listed, *extra) if x)


def normalize_registry(name: str) -> str:
    """What a user types for login/logout/search ("docker.io", "https://host:5000/v1/",
    "127.0.0.1:5001") -> the registry name references use."""
    n = name.strip()
    for prefix in ("https://", "http://"):
        if n.startswith(prefix):
            n = n[len(prefix) :]
    n = n.split("/", 1)[0]
    if not n:
        raise InvalidArgument(f"invalid registry name {name!r}")
    if n in (HUB_INDEX_HOST, HUB_API_HOST, "index.docker.io", DOCKER_HUB):
        return DOCKER_HUB
    split_host(n)  # validates the port
    return n


def hub_mirror() -> Endpoint | None:
    """The docker.io mirror from ``DOCKYARD_REGISTRY_MIRROR``, if one is set."""
    url = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    if not url:
        return None
    scheme, sep, netloc = url.partition("://")
    if not sep or scheme not in ("http", "https") or not netloc or "/" in netloc:
        raise InvalidArgument(f"{MIRROR_ENV}: want http[s]://host[:port], got {url!r}")
    split_host(netloc)  # validates the port
    return Endpoint(DOCKER_HUB, netloc, scheme, verify_tls=scheme == "https")


def endpoint_for(name: str, insecure: frozenset[str] | None = None) -> Endpoint:
    """The endpoint of registry ``name`` (already normalised)."""
    insecure = insecure_registries() if insecure is None else insecure
    if name == DOCKER_HUB:
        return hub_mirror() or Endpoint(name, HUB_API_HOST, "https")
    if name in insecure or (is_loopback(name) and not _has_ca(name)):
        return Endpoint(name, name, "https", verify_tls=False, fallback_http=True)
    return Endpoint(name, name, "https")


def _has_ca(name: str) -> bool:
    from dockyard.registry import tls

    return tls.has_ca(name)


def search_endpoint_for(name: str, insecure: frozenset[str] | None = None) -> Endpoint:
    if name == DOCKER_HUB:
        return hub_mirror() or Endpoint(name, HUB_INDEX_HOST, "https")
    return endpoint_for(name, insecure)


def config_key(name: str) -> str:
    """The ``auths`` key Docker uses for registry ``name``."""
    return HUB_CONFIG_KEY if name == DOCKER_HUB else name
