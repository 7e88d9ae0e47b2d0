"""The columns of ``ps``'s default table over an entry of the engine's container list (the
shape of ``GET /containers/json``): what docker/cli's ContainerContext prints for them.

``ps`` prints its default table with these functions alone; cli/rows.py's ``ContainerRow``
(what ``--format`` templates see) answers with the same ones. Apart from rows.py so that the
default table loads neither the other row contexts nor the template package's values
(~3 M instructions of a ~45 M ``ps``)."""

from __future__ import annotations

import time

from dockyard.cli.gotemplate.quote import go_quote
from dockyard.units import human_duration, human_size

TYPE_CHECKING = False  # not typing's: `ps` loads this module
if TYPE_CHECKING:
    from typing import Any

# Headers of the default table's columns (and of --size's), by template name.
HEADERS = {
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Command": "COMMAND",
    "RunningFor": "CREATED",
    "Status": "STATUS",
    "Ports": "PORTS",
    "Names": "NAMES",
    "Size": "SIZE",
}


def ellipsis(s: str, width: int) -> str:
    """formatter.Ellipsis: at most ``width`` runes, the last one "…" when cut."""
    if len(s) <= width:
        return s
    return s[: width - 1] + "…"


def container_id(d: dict[str, Any], trunc: bool) -> str:
    return str(d["Id"][:12] if trunc else d["Id"])


def names(d: dict[str, Any], trunc: bool = True) -> str:
    return ",".join(n.lstrip("/") for n in d["Names"] if "/" not in n.lstrip("/"))


def image(d: dict[str, Any], trunc: bool = True) -> str:
    return str(d.get("Image") or "<no image>")


def command(d: dict[str, Any], trunc: bool) -> str:
    cmd = str(d["Command"])
    return go_quote(ellipsis(cmd, 20) if trunc else cmd)


def running_for(d: dict[str, Any], trunc: bool = True) -> str:
    return human_duration(time.time() - int(d["Created"])) + " ago"


def status(d: dict[str, Any], trunc: bool = True) -> str:
    return str(d["Status"])


def ports(d: dict[str, Any], trunc: bool = True) -> str:
    return display_ports(d.get("Ports"))


def size(d: dict[str, Any], trunc: bool = True) -> str:
    rw = human_size(d.get("SizeRw") or 0)
    root = d.get("SizeRootFs") or 0
    return f"{rw} (virtual {human_size(root)})" if root > 0 else rw


# The default table, in docker/cli's order; ``--size`` adds SIZE.
TABLE = (
    ("ID", container_id),
    ("Image", image),
    ("Command", command),
    ("RunningFor", running_for),
    ("Status", status),
    ("Ports", ports),
    ("Names", names),
)


def display_ports(ports: list[dict[str, Any]] | None) -> str:
    """formatter.DisplayablePorts over a list entry's Ports: sorted, consecutive ports grouped
    ("8000-8002/tcp"), host mappings last unless they map to themselves."""
    plist = sorted(
        (int(p["PrivatePort"]), p.get("IP", ""), int(p.get("PublicPort") or 0), p["Type"])
        for p in ports or ()
    )
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for private, ip, public, proto in plist:
        key = proto
        if ip:
            if public != private:
                mappings.append(f"{ip}:{public}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        g = groups.get(key)
        if g is None:
            groups[key] = [private, private]
            order.append(key)
        elif private == g[1] + 1:
            g[1] = private
        else:
            result.append(_group(key, g))
            groups[key] = [private, private]
    result.extend(_group(k, groups[k]) for k in order)
    return ", ".join(result + mappings)


def _group(key: str, g: list[int]) -> str:
    ip, _, proto = key.rpartition("/")
    span = str(g[0]) if g[0] == g[1] else f"{g[0]}-{g[1]}"
    if ip:
        span = f"{ip}:{span}->{span}"
    return f"{span}/{proto}"
