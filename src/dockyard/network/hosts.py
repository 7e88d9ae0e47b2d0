"""/etc/hosts and /etc/resolv.conf for containers.

Names on user networks resolve through generated hosts files (see docs/architecture.md): each
running container's hosts file lists every running peer of every user network it shares, by
name, aliases and short ID. The files are rewritten in place (the container has them bind
mounted, so the inode must stay), under the metadata database's write lock.
"""

from __future__ import annotations

# The values' grammar is the model's (both front ends check them); re-exported here.
from dockyard.model.addresses import (
    HOST_GATEWAY,
    check_dns,
    check_dns_search,
    check_extra_host,
    is_loopback,
)

TYPE_CHECKING = False  # not collections.abc: `run` loads this module
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

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


EMBEDDED_NAMESERVER = "127.0.0.11"  # Docker's embedded DNS server, on user networks


def host_resolv_conf() -> str | None:
    """The host's resolv.conf as Docker reads it: /etc/resolv.conf, or systemd-resolved's
    list of real servers when /etc/resolv.conf names only its local stub (127.0.0.53)."""
    try:
        with open("/etc/resolv.conf", "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    servers = [w[1] for w in (ln.split() for ln in text.splitlines()) if w[:1] == ["nameserver"]]
    if servers == ["127.0.0.53"]:
        try:
            with open("/run/systemd/resolve/resolv.conf", "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            pass
    return text


def embedded_resolv_conf(
    host_text: str,
    dns: Sequence[str] = (),
    search: Sequence[str] = (),
    options: Sequence[str] = (),
) -> tuple[str, list[str], bool]:
    """A user network container's resolv.conf, its DNS server's upstreams, and whether ndots
    is set, as Docker builds them: search (the flag's, else the host's), ``nameserver
    127.0.0.11`` and then the IPv6 servers (which the server does not forward to), options
    (the flag's, else the host's) ending in ``ndots:0`` unless they set ndots. Upstreams: the
    IPv4 --dns servers, else the host's that are not loopback, else Google's."""
    servers: list[str] = []
    host_search: list[str] = []
    host_options: list[str] = []
    for line in host_text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            if not is_loopback(words[1]):
                servers.append(words[1])
        elif words and words[0] == "search":
            host_search = words[1:]
        elif words and words[0] == "options":
            host_options += words[1:]
    chosen = list(dns) or servers
    upstreams = [s for s in chosen if ":" not in s] or ([] if dns else list(FALLBACK_NAMESERVERS))
    out = []
    domains = list(search or host_search)
    if domains and " ".join(domains).strip() != ".":
        out.append("search " + " ".join(domains))
    out.append(f"nameserver {EMBEDDED_NAMESERVER}")
    out += [f"nameserver {s}" for s in chosen if ":" in s]
    opts = [o for o in (options or host_options) if o.strip()]
    ndots_set = any(o.startswith("ndots:") for o in opts)
    if not ndots_set:
        opts.append("ndots:0")  # Docker's: names of containers are tried as they are first
    out.append("options " + " ".join(opts))
    return "\n".join(out) + "\n", upstreams, ndots_set


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
