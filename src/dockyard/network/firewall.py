"""NAT and filtering with iptables, in chains of our own that live beside Docker's.

Docker (20.10, on these machines) sets the filter ``FORWARD`` policy to ``DROP`` and owns the
``DOCKER*`` chains. We add our own chains and one jump to each from the built-in chains:

- filter ``DOCKYARD-FORWARD`` (jumped to first from ``FORWARD``): what our bridges may forward;
- nat ``DOCKYARD`` (from ``PREROUTING`` and ``OUTPUT`` for local destinations): published
  ports, DNAT to the container;
- nat ``DOCKYARD-POSTROUTING`` (first in ``POSTROUTING``): outbound MASQUERADE per network,
  and the source rewrite that lets 127.0.0.1 reach a container (``route_localnet`` is set on
  our bridges, as Docker does when its userland proxy is off).

Every rule carries a comment naming its owner: ``dyn:<bridge>`` for a network's rules,
``dyc:<container id>:<bridge>`` for a container's published ports. Removal lists the rules by
comment (``iptables-save``) and deletes exactly those, so it is idempotent and finds leftovers.
All changes go through one ``iptables-restore --noflush`` per batch (one process, atomic).
"""

from __future__ import annotations

from dockyard.errors import DockyardError

TYPE_CHECKING = False  # not typing's: `run` loads this module
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import NamedTuple
else:
    from dockyard.model.values import NamedTuple

FORWARD_CHAIN = "DOCKYARD-FORWARD"
NAT_CHAIN = "DOCKYARD"
POST_CHAIN = "DOCKYARD-POSTROUTING"
NET_TAG = "dyn:"
CTR_TAG = "dyc:"


class FirewallError(DockyardError):
    pass


class Publish(NamedTuple):
    """One published port, resolved: host side and container side."""

    proto: str  # "tcp" | "udp" | "sctp"
    host_ip: str  # "0.0.0.0" for every address
    host_port: int
    container_port: int


def _run(args: Sequence[str], stdin: str | None = None) -> str:
    import subprocess  # only when rules change: `run` of a container without ports loads us

    try:
        proc = subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise FirewallError(f"{args[0]} not found: install the iptables package") from None
    if proc.returncode != 0:
        raise FirewallError(f"{args[0]} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def restore(text: str) -> None:
    """Apply an ``iptables-restore`` batch without flushing anything else."""
    _run(["iptables-restore", "--noflush", "-w", "30"], text)


def save(table: str) -> list[str]:
    return _run(["iptables-save", "-t", table]).splitlines()


def _batch(tables: dict[str, list[str]]) -> str:
    out = []
    for table, lines in tables.items():
        if lines:
            out += [f"*{table}", *lines, "COMMIT"]
    return "\n".join(out) + "\n" if out else ""


def _base_lines(filter_rules: list[str], nat_rules: list[str]) -> dict[str, list[str]]:
    """The chains and jumps that are missing from the given ``iptables-save`` listings."""
    f: list[str] = []
    n: list[str] = []
    if not any(r.startswith(f":{FORWARD_CHAIN} ") for r in filter_rules):
        f.append(f":{FORWARD_CHAIN} - [0:0]")
    if f"-A FORWARD -j {FORWARD_CHAIN}" not in filter_rules:
        f.append(f"-I FORWARD 1 -j {FORWARD_CHAIN}")
    for chain in (NAT_CHAIN, POST_CHAIN):
        if not any(r.startswith(f":{chain} ") for r in nat_rules):
            n.append(f":{chain} - [0:0]")
    for hook in ("PREROUTING", "OUTPUT"):
        if f"-A {hook} -m addrtype --dst-type LOCAL -j {NAT_CHAIN}" not in nat_rules:
            n.append(f"-A {hook} -m addrtype --dst-type LOCAL -j {NAT_CHAIN}")
    if f"-A POSTROUTING -j {POST_CHAIN}" not in nat_rules:
        n.append(f"-I POSTROUTING 1 -j {POST_CHAIN}")
    return {"filter": f, "nat": n}


def _network_lines(bridge: str, subnet: str) -> dict[str, list[str]]:
    tag = f"-m comment --comment {NET_TAG}{bridge}"
    return {
        "filter": [
            f"-A {FORWARD_CHAIN} -i {bridge} {tag} -j ACCEPT",
            f"-A {FORWARD_CHAIN} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED"
            f" {tag} -j ACCEPT",
        ],
        "nat": [
            f"-A {NAT_CHAIN} -i {bridge} {tag} -j RETURN",
            f"-A {POST_CHAIN} -s {subnet} ! -o {bridge} {tag} -j MASQUERADE",
            f"-A {POST_CHAIN} -o {bridge} -m addrtype --src-type LOCAL {tag} -j MASQUERADE",
        ],
    }


def _sysctl(path: str, value: str) -> None:
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise FirewallError(f"cannot set {path}: {e.strerror}") from None


def setup_network(bridge: str, subnet: str) -> None:
    """Our chains, the network's forward/NAT rules, IP forwarding and route_localnet on the
    bridge (127.0.0.1 may then be DNATed to a container). Idempotent."""
    _sysctl("/proc/sys/net/ipv4/ip_forward", "1")
    _sysctl(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "1")
    filt, nat = save("filter"), save("nat")
    base = _base_lines(filt, nat)
    net = _network_lines(bridge, subnet)
    have = {line.replace('"', "") for line in (*filt, *nat)}
    tables = {t: base[t] + [line for line in net[t] if line not in have] for t in ("filter", "nat")}
    text = _batch(tables)
    if text:
        restore(text)


def _ours(line: str, match: Callable[[str], bool]) -> bool:
    if not line.startswith("-A ") or "--comment " not in line:
        return False
    comment = line.split("--comment ", 1)[1].split(" ", 1)[0].strip('"')
    return comment.startswith((NET_TAG, CTR_TAG)) and match(comment)


def rules(match: Callable[[str], bool] = lambda c: True) -> list[tuple[str, str]]:
    """(table, rule) of every rule of ours whose comment ``match`` accepts."""
    out = []
    for table in ("filter", "nat"):
        for line in save(table):
            if _ours(line, match):
                out.append((table, line))
    return out


def remove(match: Callable[[str], bool]) -> int:
    """Delete every rule of ours whose comment ``match`` accepts; returns how many.

    Listing and deleting are two steps, and a batch fails whole when one of its rules is
    gone: another process may delete the same rules meanwhile (a container's exit handling
    beside `network rm` or `rm -f`, or `system check --repair`), so a failed batch is listed
    and tried again."""
    for attempt in range(5):
        found = rules(match)
        tables: dict[str, list[str]] = {"filter": [], "nat": []}
        for table, line in found:
            tables[table].append("-D " + line[3:])
        text = _batch(tables)
        if not text:
            return 0
        try:
            restore(text)
        except FirewallError as e:
            # Another process deleted some of them since we listed them (a container's exit
            # handling beside `network rm`, or `system check --repair`): a table's batch is
            # all or nothing, so list what is left and try again.
            if "Bad rule" not in str(e) or attempt == 4:
                raise
            continue
        return len(found)
    return 0


def teardown_network(bridge: str) -> None:
    """Remove a network's rules and any container rules left on it."""
    remove(lambda c: c == NET_TAG + bridge or (c.startswith(CTR_TAG) and c.endswith(":" + bridge)))


def comment_of(line: str) -> str:
    return (
        line.split("--comment ", 1)[1].split(" ", 1)[0].strip('"') if "--comment " in line else ""
    )


def container_batch(cid: str, bridge: str, address: str, ports: Iterable[Publish]) -> str:
    """The iptables-restore text that publishes ``ports`` of the container at ``address``."""
    tag = f"-m comment --comment {CTR_TAG}{cid}:{bridge}"
    filt: list[str] = []
    nat: list[str] = []
    for p in ports:
        dst = "" if p.host_ip in ("", "0.0.0.0") else f"-d {p.host_ip}/32 "
        nat.append(
            f"-A {NAT_CHAIN} {dst}! -i {bridge} -p {p.proto} -m {p.proto} --dport {p.host_port}"
            f" {tag} -j DNAT --to-destination {address}:{p.container_port}"
        )
        nat.append(
            f"-A {POST_CHAIN} -s {address}/32 -d {address}/32 -p {p.proto} -m {p.proto}"
            f" --dport {p.container_port} {tag} -j MASQUERADE"
        )
        filt.append(
            f"-A {FORWARD_CHAIN} -d {address}/32 ! -i {bridge} -o {bridge} -p {p.proto}"
            f" -m {p.proto} --dport {p.container_port} {tag} -j ACCEPT"
        )
    return _batch({"filter": filt, "nat": nat})


def remove_container(cid: str) -> int:
    return remove(lambda c: c.startswith(f"{CTR_TAG}{cid}:"))
