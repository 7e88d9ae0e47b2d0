"""/etc/hosts and /etc/resolv.conf for containers.

Names on user networks resolve through generated hosts files (see docs/architecture.md): each
running container's hosts file lists every running peer of every user network it shares, by
name, aliases and short ID. The files are rewritten in place (the container has them bind
mounted, so the inode must stay), under the metadata database's write lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

# The values' grammar is the model's (both front ends check them); re-exported here.
from dockyard.model.addresses import (
    HOST_GATEWAY,
    check_dns,
    check_dns_search,
    check_extra_host,
    is_loopback,
)

BASE = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")  # what Docker writes when none is left


__all__ = ["HOST_GATEWAY", "check_dns", "check_dns_search", "check_extra_host", "is_loopback"]


def hosts_text(
    own: Sequence[tuple[str, str]],
    peers: Iterable[tuple[str, Sequence[str]]],
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """The base lines, ``extra`` (--add-host: name, address), ``own`` (address, hostname)
    lines, then one line per peer: Docker's order."""
    out = [BASE]
    for name, addr in extra:
        out.append(f"{addr}\t{name}\n")
    for addr, hostname in own:
        out.append(f"{addr}\t{hostname}\n")
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for addr, names in peers:
        key = (addr, tuple(names))
        if names and key not in seen:
            seen.add(key)
            out.append(f"{addr}\t{' '.join(names)}\n")
    return "".join(out)


def extra_hosts(
    entries: Sequence[str] | None, host_gateway: Callable[[], str]
) -> list[tuple[str, str]]:
    """HostConfig.ExtraHosts ("name:address") as (name, address), ``host-gateway`` replaced
    by ``host_gateway()`` (asked only when it is used)."""
    out = []
    for entry in entries or ():
        name, _, addr = entry.partition(":")
        out.append((name, host_gateway() if addr == HOST_GATEWAY else addr))
    return out


def resolv_conf(
    host_text: str,
    dns: Sequence[str] = (),
    search: Sequence[str] = (),
    options: Sequence[str] = (),
    *,
    drop_loopback: bool = True,
) -> str:
    """A container's resolv.conf from the host's. Without --dns/--dns-search/--dns-option:
    the host's file minus loopback nameservers (unreachable from a container's own network
    namespace). With any of them, Docker's rebuilt file: search, nameservers, options, each
    the flag's values or else the host's ("." as the search list means none); Google's
    servers when no nameserver is left either way."""
    lines = []
    servers: list[str] = []
    host_search: list[str] = []
    host_options: list[str] = []
    for line in host_text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            if drop_loopback and is_loopback(words[1]):
                continue
            servers.append(words[1])
        elif words and words[0] == "search":
            host_search = words[1:]
        elif words and words[0] == "options":
            host_options += words[1:]
        lines.append(line)
    if not (dns or search or options):
        if not servers:
            lines += [f"nameserver {ns}" for ns in FALLBACK_NAMESERVERS]
        return "\n".join(lines) + "\n"
    out = []
    domains = list(search or host_search)
    if domains and " ".join(domains).strip() != ".":
        out.append("search " + " ".join(domains))
    out += [f"nameserver {ns}" for ns in (dns or servers or FALLBACK_NAMESERVERS)]
    opts = list(options or host_options)
    if opts and " ".join(opts).strip():
        out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n"


def write_in_place(path: str, text: str) -> None:
    """Replace a file's content keeping its inode (it may be bind mounted into a container)."""
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        data = text.encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
