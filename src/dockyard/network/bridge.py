"""The host's Linux bridge devices, through netlink (pyroute2).

pyroute2 is imported inside each function so that importing this module (and every CLI
command that never touches a bridge) stays cheap.
"""

from __future__ import annotations

from typing import Any

from dockyard.errors import DockyardError

IFNAMSIZ = 15  # the kernel's limit on interface names (16 with the NUL)


class BridgeError(DockyardError):
    """A netlink operation on a bridge device failed."""


def _ipr() -> Any:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    return IPRoute()


def _index(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def _check_name(name: str) -> None:
    if not name or len(name) > IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise BridgeError(f"invalid bridge name {name!r}")


def bridge_exists(name: str) -> bool:
    with _ipr() as ipr:
        return _index(ipr, name) is not None


def ensure_bridge(name: str, gateway: str, prefixlen: int) -> None:
    """Create the bridge ``name`` if missing, give it ``gateway/prefixlen`` and set it up."""
    import ipaddress

    from pyroute2 import NetlinkError

    _check_name(name)
    iface = ipaddress.IPv4Interface(f"{gateway}/{prefixlen}")
    try:
        with _ipr() as ipr:
            idx = _index(ipr, name)
            if idx is None:
                try:
                    ipr.link("add", ifname=name, kind="bridge")
                except NetlinkError as e:
                    if e.code != 17:  # EEXIST: someone else made it meanwhile
                        raise
                idx = _index(ipr, name)
                if idx is None:
                    raise BridgeError(f"bridge {name} vanished after creation")
            have = {
                (a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                for a in ipr.get_addr(index=idx, family=2)
            }
            if (str(iface.ip), prefixlen) not in have:
                try:
                    ipr.addr(
                        "add",
                        index=idx,
                        address=str(iface.ip),
                        prefixlen=prefixlen,
                        broadcast=str(iface.network.broadcast_address),
                    )
                except NetlinkError as e:
                    if e.code != 17:
                        raise
            ipr.link("set", index=idx, state="up")
    except NetlinkError as e:
        raise BridgeError(f"failed to set up bridge {name}: {e}") from e


def delete_bridge(name: str) -> None:
    """Remove the bridge ``name``; a missing device is fine."""
    from pyroute2 import NetlinkError

    try:
        with _ipr() as ipr:
            idx = _index(ipr, name)
            if idx is None:
                return
            try:
                ipr.link("del", index=idx)
            except NetlinkError as e:
                if e.code != 19:  # ENODEV: gone meanwhile
                    raise
    except NetlinkError as e:
        raise BridgeError(f"failed to delete bridge {name}: {e}") from e


def list_bridges(prefix: str = "") -> list[str]:
    """Names of the host's bridge devices that start with ``prefix``."""
    out = []
    with _ipr() as ipr:
        for link in ipr.get_links():
            name = link.get_attr("IFLA_IFNAME")
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            if kind == "bridge" and name and name.startswith(prefix):
                out.append(str(name))
    return sorted(out)
