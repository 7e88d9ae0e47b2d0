"""Docker's legacy links (``--link NAME[:ALIAS]``, ``HostConfig.Links``): the grammar, and
what a link gives a container on the default bridge: environment variables describing the
linked container and a hosts entry. (On user networks a link is an alias only the linking
container's DNS resolver knows: engine/endpoints.py.) Pure values in, values out."""

from __future__ import annotations

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


def parse_link(text: str) -> tuple[str, str]:
    """``name:alias`` or ``name`` (the alias is the name), or the stored form Docker's
    inspect shows, ``/name:/container/alias``, as the daemon reads them."""
    if not text:
        raise InvalidArgument("empty string specified for links")
    parts = text.split(":")
    if len(parts) > 2:
        raise InvalidArgument(f"bad format for links: {text}")
    if len(parts) == 1:
        return text.lstrip("/"), text.lstrip("/")
    name, alias = parts
    if name.startswith("/"):
        return name[1:], alias.rsplit("/", 1)[-1]
    return name, alias


def link_alias(alias: str) -> str:
    """The name a link is known by: the last part of its path (Docker names a link
    ``/container/alias``)."""
    return alias.rsplit("/", 1)[-1]


def link_text(child: str, parent: str, alias: str) -> str:
    """The form inspect's ``HostConfig.Links`` shows."""
    return f"/{child}:/{parent}/{alias}"


def _port_sort_key(port: tuple[int, str]) -> tuple[int, int]:
    return port[0], 0 if port[1] == "tcp" else 1  # TCP first among equal numbers


def link_env(
    alias: str,
    parent: str,
    child_ip: str,
    child_ports: Sequence[str],
    child_env: Sequence[str],
) -> list[str]:
    """The variables Docker sets for a link, in Docker's order (a repeated name keeps its
    first place and takes its last value when the environment is merged, as in Docker):
    ``<ALIAS>_PORT`` (the lowest port), ranges of adjacent ports as ``..._START``/``_END``,
    each port's ``_PORT_<n>_<PROTO>[_ADDR|_PORT|_PROTO]``, ``<ALIAS>_NAME``, and the linked
    container's own variables as ``<ALIAS>_ENV_<NAME>`` (but HOME and PATH)."""
    name = link_alias(alias)
    prefix = name.upper().replace("-", "_")
    ports: list[tuple[int, str]] = []
    for text in child_ports:
        number, _, proto = text.partition("/")
        if number.isdigit():
            ports.append((int(number), (proto or "tcp").lower()))
    ports.sort(key=_port_sort_key)
    env: list[str] = []

    def url(port: tuple[int, str]) -> str:
        return f"{port[1]}://{child_ip}:{port[0]}"

    if ports:
        env.append(f"{prefix}_PORT={url(ports[0])}")
    i = 0
    while i < len(ports):
        # Docker's run of "contiguous" ports: each later entry at most one above the last
        # (entries of the same number, as 80/tcp and 80/udp, count as steps too).
        j, value = i, ports[i][0]
        while j + 1 < len(ports) and ports[j + 1][0] <= value + 1:
            j, value = j + 1, value + 1
        if j > i + 1:  # Docker names a run of three entries or more a range
            first, last = ports[i], ports[j]
            key = f"{prefix}_PORT_{first[0]}"
            proto = first[1].upper()
            env += [
                f"{key}_{proto}_START={url(first)}",
                f"{key}_{proto}_ADDR={child_ip}",
                f"{key}_{proto}_PROTO={first[1]}",
                f"{key}_{proto}_PORT_START={first[0]}",
                f"{key}_{last[1].upper()}_END={url(last)}",
                f"{key}_{last[1].upper()}_PORT_END={last[0]}",
            ]
            i = j + 1
        else:
            i += 1
    for p in ports:
        key = f"{prefix}_PORT_{p[0]}_{p[1].upper()}"
        env += [f"{key}={url(p)}", f"{key}_ADDR={child_ip}", f"{key}_PORT={p[0]}"]
        env.append(f"{key}_PROTO={p[1]}")
    env.append(f"{prefix}_NAME=/{parent}/{alias}")
    for entry in child_env:
        var, eq, text = entry.partition("=")
        if eq and var not in ("HOME", "PATH"):
            env.append(f"{prefix}_ENV_{var}={text}")
    return env


def link_hosts_names(alias: str, child_hostname: str, child_name: str) -> str:
    """The names of a link's hosts entry: the alias, the linked container's hostname, and
    its name unless the alias is the name."""
    words = [link_alias(alias), child_hostname]
    if link_alias(alias) != child_name:
        words.append(child_name)
    return " ".join(words)
