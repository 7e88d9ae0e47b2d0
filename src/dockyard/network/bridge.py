"""The host's Linux bridge devices, through netlink (:mod:`dockyard.network.netlink`).

The netlink client loads pyroute2's message classes on first use, so importing this module
(and every CLI command that never touches a bridge) stays cheap.
"""

from __future__ import annotations

from dockyard.errors import DockyardError

IFNAMSIZ = 15  # the kernel's limit on interface names (16 with the NUL)


class BridgeError(DockyardError):
    """A netlink operation on a bridge device failed."""


def _check_name(name: str) -> None:
    if not name or len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise BridgeError(f"invalid bridge name {name!r}")


def bridge_exists(name: str) -> bool:
    import os

    return os.path.isdir(f"/sys/class/net/{name}/bridge")


OWNER = "dockyard:"  # the alias of our bridges: dockyard:<the store's metadata.db>


def ensure_bridge(name: str, gateway: str, prefixlen: int, owner: str = "") -> None:
    """Create the bridge ``name`` if missing, give it ``gateway/prefixlen`` and set it up.
    ``owner``: the store's metadata.db, kept as the device's alias so that the bridge of a
    store that was deleted can be found and reclaimed (:func:`orphans`)."""
    import ipaddress

    from dockyard.network.netlink import Netlink, NetlinkError, link_index

    _check_name(name)
    iface = ipaddress.IPv4Interface(f"{gateway}/{prefixlen}")
    try:
        with Netlink() as nl:
            if link_index(name) is None:
                nl.add_bridge(name)  # EEXIST is fine: someone else made it meanwhile
            idx = link_index(name)
            if idx is None:
                raise BridgeError(f"bridge {name} vanished after creation")
            if (str(iface.ip), prefixlen) not in nl.addresses(idx):
                nl.add_address(idx, str(iface.ip), prefixlen, str(iface.network.broadcast_address))
            alias = (OWNER + owner)[:255] if owner else ""
            nl.set_link(idx, up=True, alias=alias, what=f"set bridge {name} up")
            nl.flush()
    except NetlinkError as e:
        raise BridgeError(f"failed to set up bridge {name}: {e}") from e


def delete_bridge(name: str) -> None:
    """Remove the bridge ``name``; a missing device is fine."""
    from dockyard.network.netlink import Netlink, NetlinkError, link_index

    idx = link_index(name)
    if idx is None:
        return
    try:
        with Netlink() as nl:
            nl.delete_link(index=idx)
    except NetlinkError as e:
        raise BridgeError(f"failed to delete bridge {name}: {e}") from e


def list_bridges(prefix: str = "") -> list[str]:
    """Names of the host's bridge devices that start with ``prefix``."""
    from dockyard.network.netlink import Netlink

    with Netlink() as nl:
        return sorted(
            link["name"]
            for link in nl.links()
            if link["kind"] == "bridge" and link["name"].startswith(prefix)
        )


def bridge_ports(name: str) -> list[str]:
    """The interfaces enslaved to bridge ``name`` (sysfs: no netlink needed)."""
    import os

    try:
        return sorted(os.listdir(f"/sys/class/net/{name}/brif"))
    except OSError:
        return []


def orphans() -> list[str]:
    """Our bridges whose store is gone (its metadata.db no longer exists) and that have no
    interface left: a store deleted without ``network rm`` leaves them behind."""
    import os

    from dockyard.network.netlink import Netlink

    with Netlink() as nl:
        links = nl.links()
    out = []
    for link in links:
        alias = link["alias"]
        if link["kind"] == "bridge" and alias.startswith(OWNER):
            db = alias[len(OWNER) :]
            if not os.path.exists(db) and not bridge_ports(link["name"]):
                out.append(str(link["name"]))
    return sorted(out)
