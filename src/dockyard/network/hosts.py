"""/etc/hosts and /etc/resolv.conf for containers.

Names on user networks resolve through generated hosts files (see docs/architecture.md): each
running container's hosts file lists every running peer of every user network it shares, by
name, aliases and short ID. The files are rewritten in place (the container has them bind
mounted, so the inode must stay), under the metadata database's write lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

BASE = (
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4")  # what Docker writes when none is left


def hosts_text(own: Sequence[tuple[str, str]], peers: Iterable[tuple[str, Sequence[str]]]) -> str:
    """The base lines, ``own`` (address, hostname) lines, then one line per peer."""
    out = [BASE]
    for addr, hostname in own:
        out.append(f"{addr}\t{hostname}\n")
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for addr, names in peers:
        key = (addr, tuple(names))
        if names and key not in seen:
            seen.add(key)
            out.append(f"{addr}\t{' '.join(names)}\n")
    return "".join(out)


def _loopback(addr: str) -> bool:
    """127.0.0.0/8 or ::1 (string checks: ipaddress costs ~1.5 ms of every create)."""
    import socket

    host = addr.split("%", 1)[0]
    try:
        if ":" in host:
            return socket.inet_pton(socket.AF_INET6, host) == bytes(15) + b"\x01"
        return socket.inet_aton(host)[0] == 127 and host.count(".") == 3
    except OSError:
        return False


def resolv_conf(host_text: str) -> str:
    """The host's resolv.conf minus loopback nameservers (unreachable from a container's own
    network namespace); Google's when none is left, as Docker does."""
    lines = []
    servers = 0
    for line in host_text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            if _loopback(words[1]):
                continue
            servers += 1
        lines.append(line)
    if not servers:
        lines += [f"nameserver {ns}" for ns in FALLBACK_NAMESERVERS]
    return "\n".join(lines) + "\n"


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
