"""The embedded DNS server of a container on a user network: Docker's 127.0.0.11.

One small process per such container, living in the container's network namespace. It is
started by the helper that wires the namespace (network/dnsproxy.py) as
``python -I -S resolver.py --pid PID --names FILE --udp FD --tcp FD [--upstream IP]...
[--ndots]``, with its two sockets already bound there (127.0.0.11 on random ports, which the
namespace's nat OUTPUT rules make 127.0.0.11:53, as Docker does, so the container's own
programs may still bind port 53).

It answers, from ``FILE`` (rewritten by the engine whenever a peer starts or stops; read
again when it changes):

* A for container names, network aliases, short IDs, ``name.network`` and, on the linking
  container, ``--link`` aliases (TTL 600, several addresses in random order, as Docker);
* AAAA for those names with an empty answer (no IPv6 here: the question is not forwarded);
* PTR for the addresses of the peers (``name.network``).

Everything else is forwarded, over the protocol it came on, to the upstream servers in order
(``--dns`` servers, or the host's non-loopback ones: Docker's choice), from inside the
container's namespace as Docker does; SERVFAIL when none answers. With ``--ndots`` (the user
set ndots), a single-label A/AAAA question that no container answers gets an empty answer
instead of going out, as Docker does.

The process ends when the container's init process does (a pidfd), so it never keeps a dead
container's namespace (and veth) alive. Like the monitor it is import-light: built-in
modules only, no dockyard imports.
"""

from __future__ import annotations

import _socket
import _thread
import os
import random
import select
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

TTL = 600  # Docker's answers' TTL
FORWARD_TIMEOUT = 4.0  # per upstream server (Docker's I/O timeout)
MAX_UPSTREAMS = 3  # a resolv.conf's worth
MAX_FORWARDS = 100  # concurrent forwarded questions (Docker's limit)
TCP_IDLE = 10.0  # a TCP client that sends nothing for this long is dropped
UDP_ANSWER_LIMIT = 512

TYPE_A, TYPE_PTR, TYPE_AAAA = 1, 12, 28
CLASS_IN = 1
RCODE_OK, RCODE_FORMERR, RCODE_SERVFAIL = 0, 1, 2
REVERSE_SUFFIX = ".in-addr.arpa"


# --------------------------------------------------------------------------- messages


class Question:
    """The one question of a query: its name (lower case, no final dot), type, class, and
    where the question ends in the message."""

    __slots__ = ("name", "qtype", "qclass", "end")

    def __init__(self, name: str, qtype: int, qclass: int, end: int) -> None:
        self.name, self.qtype, self.qclass, self.end = name, qtype, qclass, end


def parse_question(msg: bytes) -> Question | None:
    """A standard query's single question; None for anything else (an answer, another
    opcode, several or no questions, a name that runs off the message)."""
    if len(msg) < 12:
        return None
    flags, qdcount = struct.unpack("!2xHH", msg[:6])
    if flags & 0x8000 or (flags >> 11) & 0xF or qdcount != 1:
        return None
    labels = []
    i = 12
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0 or i + 1 + n > len(msg):
            return None  # a question's name is never compressed
        labels.append(msg[i + 1 : i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    if i + 4 > len(msg):
        return None
    qtype, qclass = struct.unpack("!HH", msg[i : i + 4])
    return Question(".".join(labels), qtype, qclass, i + 4)


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        data = label.encode("ascii", "replace")[:63]
        out += bytes([len(data)]) + data
    return out + b"\0"


def reply(query: bytes, q: Question, records: Sequence[bytes], rcode: int = RCODE_OK) -> bytes:
    """An answer to ``query``: its ID, its question, the RD bit it set; RA set (we recurse,
    by forwarding), not authoritative (as Docker answers)."""
    qid, qflags = struct.unpack("!HH", query[:4])
    flags = 0x8000 | (qflags & 0x0100) | 0x0080 | rcode
    head = struct.pack("!HHHHHH", qid, flags, 1, len(records), 0, 0)
    return head + query[12 : q.end] + b"".join(records)


def failure(query: bytes, rcode: int) -> bytes | None:
    """An error answer echoing whatever question ``query`` had (None if it has no header)."""
    if len(query) < 12:
        return None
    qid, qflags = struct.unpack("!HH", query[:4])
    flags = 0x8000 | (qflags & 0x7900) | 0x0080 | rcode
    return struct.pack("!HHHHHH", qid, flags, 0, 0, 0, 0)


def a_record(address: str) -> bytes:
    # The owner is the question's name: a pointer to offset 12.
    return b"\xc0\x0c" + struct.pack("!HHIH", TYPE_A, CLASS_IN, TTL, 4) + _inet_aton(address)


def ptr_record(name: str) -> bytes:
    data = encode_name(name)
    return b"\xc0\x0c" + struct.pack("!HHIH", TYPE_PTR, CLASS_IN, TTL, len(data)) + data


def _inet_aton(address: str) -> bytes:
    return bytes(int(p) for p in address.split("."))


# --------------------------------------------------------------------------- names


class Names:
    """The engine's table for this container: ``a NAME ADDRESS...`` and ``p ADDRESS NAME``
    lines (names in lower case). Read again whenever the file changes."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stamp: tuple[int, int, int] | None = None
        self.a: dict[str, list[str]] = {}
        self.ptr: dict[str, str] = {}

    def current(self) -> Names:
        try:
            st = os.stat(self.path)
        except OSError:
            self.stamp, self.a, self.ptr = None, {}, {}
            return self
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self.stamp:
            self.load()
            self.stamp = stamp
        return self

    def load(self) -> None:
        a: dict[str, list[str]] = {}
        ptr: dict[str, str] = {}
        try:
            with open(self.path, encoding="utf-8", errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            lines = []
        for line in lines:
            words = line.split()
            if len(words) >= 3 and words[0] == "a":
                a[words[1]] = words[2:]
            elif len(words) == 3 and words[0] == "p":
                ptr[words[1]] = words[2]
        self.a, self.ptr = a, ptr


def reverse_address(name: str) -> str | None:
    """``4.3.2.1.in-addr.arpa`` -> ``1.2.3.4``."""
    if not name.endswith(REVERSE_SUFFIX):
        return None
    parts = name[: -len(REVERSE_SUFFIX)].split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    return ".".join(reversed(parts))


def local_answer(query: bytes, names: Names, ndots_set: bool, udp: bool) -> bytes | None:
    """Our answer to ``query``; None when it is to be forwarded, b"" when it is dropped."""
    if len(query) < 12 or query[2] & 0x80:
        return b""  # not a query: dropped, never answered (no loops with a peer)
    q = parse_question(query)
    if q is None:
        return failure(query, RCODE_FORMERR) or b""
    if q.qclass != CLASS_IN:
        return None
    table = names.current()
    if q.qtype in (TYPE_A, TYPE_AAAA):
        addresses = table.a.get(q.name)
        if addresses is not None:
            if q.qtype == TYPE_AAAA:
                return reply(query, q, [])  # known, with no IPv6 address: Docker's answer
            shuffled = random.sample(addresses, len(addresses))
            records = [a_record(ip) for ip in shuffled]
            if udp:
                room = (UDP_ANSWER_LIMIT - q.end) // 16
                if len(records) > room:
                    out = bytearray(reply(query, q, records[:room]))
                    out[2] |= 0x02  # TC: the rest over TCP
                    return bytes(out)
            return reply(query, q, records)
        if ndots_set and "." not in q.name:
            return reply(query, q, [])  # Docker keeps these in: the search list is next
        return None
    if q.qtype == TYPE_PTR:
        address = reverse_address(q.name)
        name = table.ptr.get(address) if address else None
        if name:
            return reply(query, q, [ptr_record(name)])
    return None


# --------------------------------------------------------------------------- forwarding


def _rcode(msg: bytes) -> int:
    return msg[3] & 0x0F if len(msg) >= 4 else RCODE_SERVFAIL


def forward_udp(query: bytes, upstreams: Sequence[str]) -> bytes | None:
    """The first good answer of the upstream servers, asked in order over UDP."""
    for server in upstreams[:MAX_UPSTREAMS]:
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        try:
            sock.settimeout(FORWARD_TIMEOUT)
            sock.connect((server, 53))
            sock.send(query)
            while True:
                answer = sock.recv(65535)
                if answer[:2] == query[:2]:
                    break
        except OSError:
            continue
        finally:
            sock.close()
        if _rcode(answer) in (RCODE_SERVFAIL, 5):  # SERVFAIL, REFUSED: try the next one
            continue
        return answer
    return None


def _recv_exact(sock: _socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def forward_tcp(query: bytes, upstreams: Sequence[str]) -> bytes | None:
    for server in upstreams[:MAX_UPSTREAMS]:
        sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            sock.settimeout(FORWARD_TIMEOUT)
            sock.connect((server, 53))
            sock.sendall(struct.pack("!H", len(query)) + query)
            (size,) = struct.unpack("!H", _recv_exact(sock, 2))
            answer = _recv_exact(sock, size)
        except OSError:
            continue
        finally:
            sock.close()
        if answer[:2] != query[:2] or _rcode(answer) in (RCODE_SERVFAIL, 5):
            continue
        return answer
    return None


# --------------------------------------------------------------------------- serving


class Server:
    def __init__(
        self,
        udp: _socket.socket,
        tcp: _socket.socket,
        names: Names,
        upstreams: Sequence[str],
        ndots_set: bool,
    ) -> None:
        self.udp, self.tcp, self.names = udp, tcp, names
        self.upstreams = list(upstreams)
        self.ndots_set = ndots_set
        self.lock = _thread.allocate_lock()
        self.forwards = 0

    def _claim(self) -> bool:
        with self.lock:
            if self.forwards >= MAX_FORWARDS:
                return False
            self.forwards += 1
            return True

    def _release(self) -> None:
        with self.lock:
            self.forwards -= 1

    def on_udp(self) -> None:
        try:
            query, peer = self.udp.recvfrom(65535)
        except (BlockingIOError, InterruptedError):
            return
        answer = local_answer(query, self.names, self.ndots_set, udp=True)
        if answer is not None:
            if answer:
                self._send_udp(answer, peer)
        elif self._claim():
            _thread.start_new_thread(self._forward_udp, (query, peer))
        # else: dropped, as Docker drops over its limit; the client asks again

    def _send_udp(self, answer: bytes, peer: tuple[str, int]) -> None:
        try:
            self.udp.sendto(answer, peer)
        except OSError:
            pass

    def _forward_udp(self, query: bytes, peer: tuple[str, int]) -> None:
        try:
            answer = forward_udp(query, self.upstreams) or failure(query, RCODE_SERVFAIL)
            if answer is not None:
                self._send_udp(answer, peer)
        finally:
            self._release()

    def on_tcp(self) -> None:
        try:
            fd, _ = self.tcp._accept()  # type: ignore[attr-defined] # _socket's: an fd
        except OSError:
            return
        conn = _socket.socket(fileno=fd)
        conn.setblocking(True)
        if self._claim():
            _thread.start_new_thread(self._serve_tcp, (conn,))
        else:
            conn.close()

    def _serve_tcp(self, conn: _socket.socket) -> None:
        try:
            conn.settimeout(TCP_IDLE)
            while True:
                (size,) = struct.unpack("!H", _recv_exact(conn, 2))
                query = _recv_exact(conn, size)
                answer = local_answer(query, self.names, self.ndots_set, udp=False)
                if answer is None:
                    answer = forward_tcp(query, self.upstreams) or failure(query, RCODE_SERVFAIL)
                if not answer:
                    return
                conn.sendall(struct.pack("!H", len(answer)) + answer)
        except OSError:
            pass
        finally:
            conn.close()
            self._release()

    def serve(self, until_fd: int) -> None:
        """Answer until ``until_fd`` (the container init's pidfd) becomes readable."""
        self.udp.setblocking(False)
        self.tcp.setblocking(False)
        watched = [self.udp.fileno(), self.tcp.fileno(), until_fd]
        while True:
            try:
                ready, _, _ = select.select(watched, [], [])
            except InterruptedError:
                continue
            if until_fd in ready:
                return
            if self.udp.fileno() in ready:
                self.on_udp()
            if self.tcp.fileno() in ready:
                self.on_tcp()


def main(argv: Sequence[str]) -> int:
    pid, names, udp_fd, tcp_fd, ndots = 0, "", -1, -1, False
    upstreams: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--ndots":
            ndots = True
            i += 1
            continue
        if i + 1 >= len(argv):
            print(f"resolver: {arg} needs a value", file=sys.stderr)
            return 2
        value = argv[i + 1]
        if arg == "--pid":
            pid = int(value)
        elif arg == "--names":
            names = value
        elif arg == "--udp":
            udp_fd = int(value)
        elif arg == "--tcp":
            tcp_fd = int(value)
        elif arg == "--upstream":
            upstreams.append(value)
        else:
            print(f"resolver: unknown argument {arg!r}", file=sys.stderr)
            return 2
        i += 2
    try:
        until = os.pidfd_open(pid)
    except OSError:
        return 0  # the container is gone already
    udp = _socket.socket(fileno=udp_fd)
    tcp = _socket.socket(fileno=tcp_fd)
    Server(udp, tcp, Names(names), upstreams, ndots).serve(until)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
