"""A ``Container`` as stored in the ``containers`` table: JSON with a schema version.

Only fields that differ from their defaults are written, so a row is small and a listing of
many containers decodes quickly. Rows without a version were written by dockyard before the
typed model (Docker's inspect JSON): they are read through model/docker.py's
``container_from_inspect`` and rewritten in this form by the next change to the container.
"""

from __future__ import annotations

from dockyard import fastjson as json  # the C codec without importing re: exec is hot
from dockyard.errors import CorruptData
from dockyard.model.container import (
    Container,
    ContainerSpec,
    ContainerState,
    Device,
    Endpoint,
    EndpointSpec,
    Health,
    Healthcheck,
    HealthResult,
    LogConfig,
    Mount,
    PortBinding,
    PublishedPort,
    Resources,
    RestartPolicy,
    Security,
    Ulimit,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import MISSING as _MISSING
    from dataclasses import fields
    from typing import Any
else:
    from dockyard.model.values import _MISSING, fields

SCHEMA_VERSION = 1

# For each class, the fields holding model values (a class, a tuple of a class, or name ->
# class pairs); every other list in a row is a tuple of plain values (or of pairs).
_NESTED: dict[type, dict[str, Any]] = {
    Container: {
        "spec": ContainerSpec,
        "state": ContainerState,
        "endpoints": ("pairs", Endpoint),
        "published": ("tuple", PublishedPort),
    },
    ContainerSpec: {
        "healthcheck": Healthcheck,
        "mounts": ("tuple", Mount),
        "networks": ("tuple", EndpointSpec),
        "ports": ("tuple", PortBinding),
        "resources": Resources,
        "security": Security,
        "restart_policy": RestartPolicy,
        "log_config": LogConfig,
        "devices": ("tuple", Device),
    },
    ContainerState: {"health": Health},
    Health: {"log": ("tuple", HealthResult)},
    Resources: {"ulimits": ("tuple", Ulimit)},
}
_DEFAULTS: dict[type, dict[str, Any]] = {}


def _defaults(cls: type) -> dict[str, Any]:
    """Each field's default (required fields have none): what encoding leaves out."""
    d = _DEFAULTS.get(cls)
    if d is None:
        d = {}
        for f in fields(cls):
            if f.default is not _MISSING:
                d[f.name] = f.default
            elif f.default_factory is not _MISSING:
                d[f.name] = f.default_factory()
        _DEFAULTS[cls] = d
    return d


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return _encode_obj(value)
    return value


def _encode_obj(obj: Any) -> dict[str, Any]:
    defaults = _defaults(type(obj))
    out: dict[str, Any] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in defaults and value == defaults[f.name]:
            continue
        out[f.name] = _plain(value)
    return out


def encode(c: Container) -> str:
    doc = _encode_obj(c)
    doc["v"] = SCHEMA_VERSION
    return json.dumps(doc)


def _tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuple(v) for v in value)
    return value


def _decode_obj(cls: type, doc: dict[str, Any]) -> Any:
    nested = _NESTED.get(cls, {})
    known = cls.__dataclass_fields__  # type: ignore[attr-defined]  # name -> field
    kwargs: dict[str, Any] = {}
    for key, value in doc.items():
        if key not in known:
            continue  # written by a newer minor version: ignored
        kind = nested.get(key)
        if kind is None or value is None:
            kwargs[key] = _tuple(value)
        elif isinstance(kind, type):
            kwargs[key] = _decode_obj(kind, value)
        elif kind[0] == "tuple":
            kwargs[key] = tuple(_decode_obj(kind[1], v) for v in value)
        else:  # pairs: [[name, {...}], ...]
            kwargs[key] = tuple((str(n), _decode_obj(kind[1], v)) for n, v in value)
    return cls(**kwargs)


def decode(text: str | bytes) -> Container:
    """A stored row: this schema, or an inspect document written before it."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise CorruptData(f"container record is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise CorruptData("container record is not a JSON object")
    version = doc.pop("v", None)
    try:
        if version is None:
            from dockyard.model.docker import container_from_inspect

            return container_from_inspect(doc)
        if version > SCHEMA_VERSION:
            raise CorruptData(
                f"container {doc.get('id', '?')} was written by a newer dockyard "
                f"(record version {version}, this one reads up to {SCHEMA_VERSION})"
            )
        c: Container = _decode_obj(Container, doc)
        return c
    except (TypeError, KeyError, AttributeError, ValueError) as e:
        raise CorruptData(f"container record {doc.get('id', '?')!s:.12}: {e}") from None
