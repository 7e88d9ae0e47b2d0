"""Published ports at start: the host ports chosen for each binding.

(The ``-p``/``--expose`` grammar is the CLI's: cli/flags.py; the engine gets PortBindings.)
"""

from __future__ import annotations

TYPE_CHECKING = False  # not collections.abc: `run` loads this module
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


def free_port(proto: str, ip: str) -> int:
    """A port the kernel considers free on ``ip`` (it picks from its ephemeral range)."""
    import socket  # here: `run` without a random port never needs the module (~2 ms)

    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((ip or "0.0.0.0", 0))
        return int(s.getsockname()[1])


def resolve(
    bindings: Mapping[str, Sequence[Mapping[str, str]]],
    exposed: Iterable[str],
    publish_all: bool,
) -> list[tuple[str, str, int, int]]:
    """(proto, host ip, host port, container port) for every binding, random ports chosen;
    ``publish_all`` (-P) adds every exposed port without a binding on a random port."""
    out: list[tuple[str, str, int, int]] = []
    wanted: dict[str, list[Mapping[str, str]]] = {k: list(v) for k, v in bindings.items()}
    if publish_all:
        for key in exposed:
            wanted.setdefault(key, [{"HostIp": "", "HostPort": ""}])
    for key, binds in wanted.items():
        port_s, _, proto = key.partition("/")
        proto = proto or "tcp"
        for b in binds:
            ip = b.get("HostIp") or "0.0.0.0"
            hport = int(b["HostPort"]) if b.get("HostPort") else free_port(proto, ip)
            out.append((proto, ip, hport, int(port_s)))
    return out
