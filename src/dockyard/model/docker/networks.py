"""The network routes' bodies (``POST /networks/create``, ``/networks/{id}/connect`` and
``/disconnect``) -> plain values, with Go's decoder messages for values of the wrong type
and a clear 400 for what this engine does not do (IPv6, other drivers, swarm scope)."""

from __future__ import annotations

from typing import Any, NamedTuple

from dockyard.errors import InvalidArgument

# The create body's typed reader: one decoder, one set of messages.
from dockyard.model.docker.reading import _Obj

BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


class NetworkCreate(NamedTuple):
    name: str
    subnet: str | None
    gateway: str | None
    labels: dict[str, str]
    options: dict[str, str]
    internal: bool
    attachable: bool


class Connect(NamedTuple):
    container: str
    aliases: tuple[str, ...]
    ipv4_address: str


def _name_or_id(text: str) -> str:
    if not text:
        raise InvalidArgument('invalid name or ID supplied: ""')
    return text


def network_create_from_body(doc: Any) -> NetworkCreate:
    body = _Obj(doc, "NetworkCreateRequest")
    name = body.text("Name")
    if not name:
        raise InvalidArgument("network name is required")  # as before: Docker says the same
    driver = body.text("Driver") or "bridge"
    if driver != "bridge":
        raise InvalidArgument(f"network driver {driver!r} is not supported: use bridge")
    if body.flag("EnableIPv6"):
        raise InvalidArgument("IPv6 networks are not supported")
    if body.flag("Ingress") or body.text("Scope") not in ("", "local"):
        raise InvalidArgument("swarm-scoped networks need swarm mode, which is not supported")
    if body.flag("ConfigOnly") or body.sub("ConfigFrom", "network.ConfigReference").text("Network"):
        raise InvalidArgument("config-only networks are not supported")
    ipam = body.sub("IPAM", "network.IPAM")
    if ipam.text("Driver") not in ("", "default"):
        raise InvalidArgument(f"IPAM driver {ipam.text('Driver')!r} is not supported: use default")
    configs = ipam.subs("Config", "network.IPAMConfig")
    if len(configs) > 1:
        raise InvalidArgument("only one IPAM config (subnet) per network is supported")
    subnet = gateway = None
    if configs:
        cfg = configs[0]
        if cfg.text("IPRange") or cfg.string_map("AuxiliaryAddresses"):
            raise InvalidArgument("IPAM IPRange and AuxiliaryAddresses are not supported")
        subnet = cfg.text("Subnet") or None
        gateway = cfg.text("Gateway") or None
    return NetworkCreate(
        name=name,
        subnet=subnet,
        gateway=gateway,
        labels=dict(body.string_map("Labels")),
        options=dict(body.string_map("Options")),
        internal=body.flag("Internal"),
        attachable=body.flag("Attachable"),
    )


def connect_from_body(doc: Any) -> Connect:
    body = _Obj(doc, "NetworkConnect")
    container = _name_or_id(body.text("Container"))
    ep = body.sub("EndpointConfig", "EndpointSettings.EndpointConfig")
    ipam = ep.sub("IPAMConfig", "network.EndpointIPAMConfig")
    if ipam.text("IPv6Address"):
        raise InvalidArgument("IPv6 addresses are not supported")
    return Connect(container, ep.strings("Aliases") or (), ipam.text("IPv4Address"))


def disconnect_from_body(doc: Any) -> tuple[str, bool]:
    """(container, force)."""
    body = _Obj(doc, "NetworkDisconnect")
    return _name_or_id(body.text("Container")), body.flag("Force")
