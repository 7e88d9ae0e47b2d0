"""Setting up the embedded DNS server (network/resolver.py) in a container's network
namespace, from the helper that wires it (network/sandbox.py), as Docker sets up its
127.0.0.11:

1. :func:`listen`: UDP and TCP sockets on 127.0.0.11, on ports the kernel picks, and nat
   OUTPUT rules sending the container's 127.0.0.11:53 to them (``iptables-restore`` run in
   the namespace while the veths are wired). Port 53 itself stays free for the container's
   own programs (a DNS server in a container binds 0.0.0.0:53).
2. :meth:`Listening.wait`: the rules are in (before the container's process starts, so its
   first question is answered).
3. :meth:`Listening.spawn`: once the runtime has joined the namespace and the container's
   init is known, the resolver process starts with the two sockets (detached, in a session
   of its own); it lives until that init process ends.

The names the resolver answers come from a file the engine rewrites (engine/endpoints.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import NamedTuple

from dockyard.errors import DockyardError

ADDRESS = "127.0.0.11"  # what resolv.conf names, as in Docker
RESOLVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resolver.py")


def _loopback_up() -> None:
    """Set lo up in the current network namespace (two ioctls; wiring sets it again)."""
    import fcntl
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = fcntl.ioctl(s, siocgifflags, struct.pack("16sH14x", b"lo", 0))
        flags = struct.unpack("16sH14x", req)[1]
        if not flags & iff_up:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


class DNSConfig(NamedTuple):
    """What a container's resolver serves: the names file, the servers it forwards to, and
    whether the user set ndots (single-label names then stay in)."""

    names: str
    upstreams: tuple[str, ...]
    ndots_set: bool = False


def nat_rules(udp_port: int, tcp_port: int) -> str:
    """The namespace's nat OUTPUT rules: 127.0.0.11:53 is the resolver's ports."""
    out = ["*nat", ":OUTPUT ACCEPT [0:0]"]
    for proto, port in (("udp", udp_port), ("tcp", tcp_port)):
        out.append(
            f"-A OUTPUT -d {ADDRESS}/32 -p {proto} -m {proto} --dport 53 "
            f"-j DNAT --to-destination {ADDRESS}:{port}"
        )
    out.append("COMMIT")
    return "\n".join(out) + "\n"


class Listening:
    """The resolver's sockets in the current network namespace, and its rules on their way
    in."""

    def __init__(self) -> None:
        # lo first: a socket bound to 127.0.0.11 while lo is down (not a local address yet)
        # would answer from 127.0.0.1, and clients drop such answers.
        _loopback_up()
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for s in (self.udp, self.tcp):
            s.bind((ADDRESS, 0))
        self.tcp.listen(128)
        self.rules = subprocess.Popen(
            ["iptables-restore", "--noflush", "-w", "30"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.rules.stdin is not None
        self.rules.stdin.write(nat_rules(self.port(self.udp), self.port(self.tcp)).encode())
        self.rules.stdin.close()

    @staticmethod
    def port(s: socket.socket) -> int:
        return int(s.getsockname()[1])

    def wait(self) -> None:
        """Until the rules are in; DockyardError if iptables refused them."""
        assert self.rules.stderr is not None
        err = self.rules.stderr.read().decode(errors="replace").strip()
        if self.rules.wait() != 0:
            raise DockyardError(f"embedded DNS: iptables-restore failed: {err}")

    def close(self) -> None:
        if self.rules.poll() is None:
            self.rules.wait()
        self.udp.close()
        self.tcp.close()

    def spawn(self, config: DNSConfig, init_pid: int) -> None:
        """Start the resolver for the container whose init is ``init_pid``, detached (a
        grandchild in a session of its own, so neither a CLI's Ctrl-C nor a parent's wait
        concerns it); our copies of the sockets close."""
        argv = [sys.executable, "-I", "-S", RESOLVER, "--pid", str(init_pid)]
        argv += ["--names", config.names, "--udp", "3", "--tcp", "4"]
        for server in config.upstreams:
            argv += ["--upstream", server]
        if config.ndots_set:
            argv.append("--ndots")
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the forked child
            code = 127
            try:
                os.setsid()
                if os.fork() == 0:
                    import fcntl

                    # Out of the way first (either may be fd 3 or 4 already), then 3 and 4;
                    # dup2 makes them inheritable.
                    udp = fcntl.fcntl(self.udp.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
                    tcp = fcntl.fcntl(self.tcp.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
                    null = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                    os.dup2(udp, 3)
                    os.dup2(tcp, 4)
                    os.closerange(5, os.sysconf("SC_OPEN_MAX"))
                    os.execv(argv[0], argv)
                code = 0
            finally:
                os._exit(code)
        os.waitpid(child, 0)
        self.udp.close()
        self.tcp.close()
