"""Docker's grammar for the network values of a container spec: ``--add-host``, ``--dns``,
``--dns-search`` (Docker 20.10's messages). Pure: the CLI checks flags with it, the engine
checks what API callers send."""

from __future__ import annotations

from dockyard.errors import InvalidArgument

HOST_GATEWAY = "host-gateway"  # --add-host name:host-gateway: the default bridge's gateway


def _ip(text: str) -> str | None:
    """``text`` as an IPv4 or IPv6 address in canonical form; None if it is none."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def check_extra_host(text: str) -> str:
    """An --add-host value, "name:address" or "name:host-gateway" (split at the first colon,
    so IPv6 addresses work); Docker 20.10's messages for the rest."""
    name, colon, addr = text.partition(":")
    if not colon or not name:
        raise InvalidArgument(f'bad format for add-host: "{text}"')
    if addr != HOST_GATEWAY and _ip(addr) is None:
        raise InvalidArgument(f'invalid IP address in add-host: "{addr}"')
    return text


def check_dns(text: str) -> str:
    """A --dns server: an IP address, returned canonical (as Docker stores it)."""
    addr = _ip(text)
    if addr is None:
        raise InvalidArgument(f"{text} is not an ip address")
    return addr


def check_dns_search(text: str) -> str:
    """A --dns-search domain ("." alone means no search list): labels of letters, digits and
    inner hyphens, at least one letter, an optional final dot, under 255 characters."""
    value = text.strip(" ")
    if value == ".":
        return value
    name = value.rstrip(" ")
    labels = (name[:-1] if name.endswith(".") else name).split(".")
    ok = (
        any(ch.isascii() and ch.isalpha() for ch in name)
        and len(name) < 255
        and all(
            label
            and label.isascii()
            and label.replace("-", "").isalnum()
            and not label.startswith("-")
            and not label.endswith("-")
            for label in labels
        )
    )
    if not ok:
        raise InvalidArgument(f"{text} is not a valid domain")
    return name


def is_loopback(addr: str) -> bool:
    """127.0.0.0/8 or ::1 (string checks: ipaddress costs ~1.5 ms of every create)."""
    import _socket  # not the socket module (its enums): create and run call this

    host = addr.split("%", 1)[0]
    try:
        if ":" in host:
            return _socket.inet_pton(_socket.AF_INET6, host) == bytes(15) + b"\x01"
        return _socket.inet_aton(host)[0] == 127 and host.count(".") == 3
    except OSError:
        return False
