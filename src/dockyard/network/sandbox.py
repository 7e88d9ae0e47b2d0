"""A container's network namespace, made and wired while the OCI runtime creates the container.

A forked helper process (the *sandbox*) opens a netlink socket in the host's namespace,
starts the ``iptables-restore`` of the container's published ports, and then unshares a new
network namespace: the container joins it through ``/proc/<helper>/ns/net`` (the runtime's
``path``). While ``runc create`` runs, the helper loads the netlink message classes, creates
each veth pair with its peer born inside the new namespace, enslaves the host end to the
network's bridge, and sets lo, the addresses, MACs and the default route. The engine waits for
"configured" only before it lets the container's process start, so the whole network setup
overlaps the runtime instead of following it. Once the runtime has joined, the helper exits;
the namespace lives on with the container, and the kernel deletes the veth pair when the
container's namespace goes away, so a killed container leaks no interface.
"""

from __future__ import annotations

import _socket
import os

from dockyard.errors import DockyardError

# Not typing's, nor the socket module (its enums): every `run` on a bridge loads this module.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import NamedTuple

    from dockyard.network.embedded_dns import DNSConfig
else:
    from dockyard.model.values import NamedTuple

CLONE_NEWNET = 0x40000000


class Endpoint(NamedTuple):
    """One interface of a container on one bridge network."""

    ifname: str  # inside the container: eth0, eth1, ...
    host_veth: str  # the host end, enslaved to ``bridge``
    bridge: str
    address: str
    prefixlen: int
    gateway: str
    mac: str


def mac_for(address: str) -> str:
    """Docker's MAC for an address: 02:42 and the four address bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in _socket.inet_aton(address))


def _libc_call(name: str, *args: int) -> None:
    from dockyard.libc import errno, function

    if function(name)(*args) != 0:
        err = errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def _wire(host_nl: object, endpoints: Sequence[Endpoint], ns_pid: int, route: bool) -> None:
    """Create and configure ``endpoints``; runs in a process inside the target namespace,
    with ``host_nl`` a netlink socket opened in the host's."""
    import ipaddress

    from dockyard.network.netlink import Netlink, link_index

    host = host_nl
    assert isinstance(host, Netlink)
    for ep in endpoints:
        host.add_veth(ep.host_veth, ep.ifname, ns_pid, master=_bridge_index(ep.bridge))
        host.set_link(name=ep.host_veth, up=True, what=f"set {ep.host_veth} up")
    host.flush()
    with Netlink() as nl:
        nl.set_link(name="lo", up=True, what="set lo up")
        for ep in endpoints:
            nl.set_link(name=ep.ifname, up=True, mac=ep.mac, what=f"set {ep.ifname} up")
        nl.flush()
        first = 0
        for ep in endpoints:
            idx = link_index(ep.ifname)
            if idx is None:
                raise DockyardError(f"{ep.ifname} is missing in the container")
            first = first or idx
            bcast = ipaddress.IPv4Network(f"{ep.address}/{ep.prefixlen}", strict=False)
            nl.add_address(idx, ep.address, ep.prefixlen, str(bcast.broadcast_address))
        nl.flush()
        if route and endpoints:
            nl.add_default_route(endpoints[0].gateway, first)
            nl.flush()


_bridge_indexes: dict[str, int] = {}


def _bridge_index(name: str) -> int:
    return _bridge_indexes[name]


def _bridge_indexes_now(endpoints: Sequence[Endpoint]) -> None:
    for ep in endpoints:
        try:
            _bridge_indexes[ep.bridge] = _socket.if_nametoindex(ep.bridge)
        except OSError:
            raise DockyardError(f"bridge {ep.bridge} does not exist") from None


class Sandbox:
    """The helper process; see the module doc. Use :meth:`wait_namespace` before the runtime
    runs, :meth:`wait_configured` before the container's process starts, :meth:`close` after
    the runtime has joined (or on failure)."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        firewall: str = "",
        netd: str = "",
        dns: DNSConfig | None = None,
    ) -> None:
        self.endpoints = list(endpoints)
        self._firewall = firewall
        self._netd = netd
        self._dns = dns  # the embedded DNS server to set up (user networks)
        self._state = ""  # "n" namespace ready, "k" configured
        self._sock: _socket.socket | None = None
        self._pid = 0
        self._status = self._ctl = -1
        if not (netd and self._ask_netd(netd)):
            self._fork()

    def _fork(self) -> None:
        status_r, status_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the helper
            code = 1
            try:
                # Only our two pipes: a copy of another thread's pipe or netd socket would
                # keep that sandbox's helper from seeing its EOF (parallel build stages).
                _close_fds_except({0, 1, 2, status_w, ctl_r})
                code = _helper(self.endpoints, self._firewall, status_w, ctl_r, self._dns)
            finally:
                os._exit(code)
        os.close(status_w)
        os.close(ctl_r)
        self._pid = pid
        self._status = status_r
        self._ctl = ctl_w
        if self._netd:
            from dockyard.network.netd import spawn

            spawn(self._netd)  # for the next start

    def _ask_netd(self, path: str) -> bool:
        """Have the network helper daemon (netd.py) fork the helper: it has the netlink
        classes loaded already, so the helper's work is only the netlink calls. Its pid is
        read when first needed, so netd works while we mount and write the bundle."""
        from dockyard import fastjson as json

        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            sock.connect(path)
            request = {
                # "veths", not the first protocol's "endpoints": a netd of an earlier
                # version fails on this request before doing anything (see pid)
                "veths": [list(e) for e in self.endpoints],
                "firewall": self._firewall,
                "dns": list(self._dns) if self._dns else None,
            }
            sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError:
            sock.close()
            return False
        self._sock = sock
        return True

    @property
    def pid(self) -> int:
        if not self._pid and self._sock is not None:
            line = b""
            try:
                while not line.endswith(b"\n"):
                    chunk = self._sock.recv(1)
                    if not chunk:
                        raise OSError("netd closed the connection")
                    line += chunk
                self._pid = int(line)
                self._status = self._ctl = self._sock.fileno()
            except (OSError, ValueError):
                # netd went away meanwhile, or it is of an earlier version (it dropped a
                # request it cannot read, untouched): retire it, fork our own helper (which
                # starts a new netd for the next start).
                self._sock.close()
                self._sock = None
                from dockyard.network.netd import stop

                stop(os.path.dirname(self._netd))
                self._fork()
        return self._pid

    @property
    def netns_path(self) -> str:
        return f"/proc/{self.pid}/ns/net"

    def _read(self, want: str) -> None:
        self.pid  # noqa: B018 - the helper must exist (netd answers its pid first)
        while self._state != want and self._state != "k":
            byte = os.read(self._status, 1)
            if not byte:
                raise DockyardError("network setup failed: the sandbox helper exited")
            if byte == b"e":
                msg = b""
                while chunk := os.read(self._status, 4096):
                    msg += chunk
                raise DockyardError(f"network setup failed: {msg.decode(errors='replace')}")
            self._state = byte.decode()

    def wait_namespace(self) -> None:
        self._read("n")

    def wait_configured(self) -> None:
        self._read("k")

    def close(self, init_pid: int = 0) -> None:
        """Let the helper go. ``init_pid``: the runtime has joined the namespace with this
        init process, whose life the embedded DNS server (if any) now follows; without it
        (a failed start) the helper just exits."""
        message = f"{init_pid}\n".encode() if init_pid else b""
        if self._sock is not None:
            try:
                if message:
                    self._sock.sendall(message)
            except OSError:
                pass
            self._sock.close()  # EOF: the helper exits (netd reaps it)
            self._sock = None
            self._ctl = -1
        elif self._ctl >= 0:
            try:
                if message:
                    os.write(self._ctl, message)
            except OSError:
                pass
            os.close(self._ctl)  # EOF: the helper exits
            self._ctl = -1
            os.close(self._status)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass


def _close_fds_except(keep: set[int]) -> None:
    fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own fd, gone already


def _helper(
    endpoints: list[Endpoint],
    firewall: str,
    status: int,
    ctl: int,
    dns: DNSConfig | None = None,
) -> int:
    from dockyard.network.netlink import Netlink

    fw = None
    listening = None
    try:
        _bridge_indexes_now(endpoints)
        host = Netlink()  # bound to the host's namespace for good
        if firewall:
            import subprocess

            fw = subprocess.Popen(
                ["iptables-restore", "--noflush", "-w", "30"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            assert fw.stdin is not None
            fw.stdin.write(firewall.encode())
            fw.stdin.close()
        _libc_call("unshare", CLONE_NEWNET)
        os.write(status, b"n")
        # Docker lets unprivileged ICMP sockets ping (NET_RAW is not granted); a --sysctl
        # given by the user is applied later by the runtime and wins.
        with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:
            f.write("0 2147483647")
        if dns is not None:
            from dockyard.network.embedded_dns import Listening

            listening = Listening()  # its rules go in while we wire
        _wire(host, endpoints, os.getpid(), route=True)
        if listening is not None:
            listening.wait()
        if fw is not None:
            assert fw.stderr is not None
            err = fw.stderr.read().decode(errors="replace").strip()
            if fw.wait() != 0:
                raise DockyardError(f"iptables-restore failed: {err}")
        os.write(status, b"k")
    except BaseException as e:  # noqa: BLE001 - reported to the engine, which raises it
        try:
            os.write(status, b"e" + str(e).encode(errors="replace"))
        except OSError:
            pass
        if fw is not None:
            fw.wait()
        if listening is not None:
            listening.close()
        return 1
    # Until the engine closes it: the runtime has joined our namespace (and the engine
    # names the container's init, which the DNS server follows).
    said = b""
    while chunk := os.read(ctl, 64):
        said += chunk
    if listening is not None and dns is not None:
        if said.strip().isdigit():
            listening.spawn(dns, int(said))
        listening.close()
    return 0


def attach(pid: int, endpoints: Sequence[Endpoint], dns: DNSConfig | None = None) -> None:
    """Add ``endpoints`` to the running container whose init is ``pid`` (network connect);
    with ``dns``, start its embedded DNS server too (its first user network)."""
    status_r, status_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the helper
        code = 1
        try:
            os.close(status_r)
            from dockyard.network.netlink import Netlink

            _bridge_indexes_now(endpoints)
            host = Netlink()
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            _libc_call("setns", fd, CLONE_NEWNET)
            _wire(host, endpoints, pid, route=False)
            if dns is not None:
                from dockyard.network.embedded_dns import Listening

                listening = Listening()
                listening.wait()
                listening.spawn(dns, pid)
            os.write(status_w, b"k")
            code = 0
        except BaseException as e:  # noqa: BLE001
            try:
                os.write(status_w, b"e" + str(e).encode(errors="replace"))
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(status_w)
    msg = b""
    while chunk := os.read(status_r, 4096):
        msg += chunk
    os.close(status_r)
    os.waitpid(child, 0)
    if msg != b"k":
        raise DockyardError(f"network connect failed: {msg[1:].decode(errors='replace')}")


def detach(endpoints: Sequence[Endpoint]) -> None:
    """Remove the veth pairs of ``endpoints`` (network disconnect of a running container)."""
    from dockyard.network.netlink import Netlink, link_index

    with Netlink() as nl:
        for ep in endpoints:
            idx = link_index(ep.host_veth)
            if idx is not None:
                nl.delete_link(index=idx)
