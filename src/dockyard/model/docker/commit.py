"""``POST /commit``'s body (a container ``Config``) -> the image config fields a commit
records, with the create body's Go-decoder messages for values of the wrong type."""

from __future__ import annotations

from typing import Any

# The create body's typed reader: one decoder, one set of messages.
from dockyard.model.docker.reading import _Obj

COMMITTED = (
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
)


def commit_config_from_body(doc: Any) -> dict[str, Any]:
    """The fields of ``COMMITTED`` that ``doc`` sets, type-checked (Cmd and Entrypoint are
    StrSlices: a bare string is a one-element list); the rest of a Config is ignored, as
    moby ignores it."""
    obj = _Obj(doc, "container.Config")
    out: dict[str, Any] = {}
    for key in ("User", "WorkingDir", "StopSignal"):
        if obj.text(key):
            out[key] = obj.text(key)
    for key in ("Cmd", "Entrypoint"):
        value = obj.strings(key, str_slice=True)
        if value is not None:
            out[key] = list(value)
    for key in ("Env", "OnBuild"):
        value = obj.strings(key)
        if value:
            out[key] = list(value)
    for key in ("ExposedPorts", "Volumes"):
        keys = obj.set_keys(key)
        if keys:
            out[key] = {k: {} for k in keys}
    if obj.string_map("Labels"):
        out["Labels"] = dict(obj.string_map("Labels"))
    health = obj.doc.get("Healthcheck")
    if health is not None:
        h = obj.sub("Healthcheck", "container.HealthConfig")
        test = h.strings("Test")
        out["Healthcheck"] = {
            **({"Test": list(test)} if test is not None else {}),
            **{k: h.number(k) for k in ("Interval", "Timeout", "StartPeriod") if h.number(k)},
            **({"Retries": h.number("Retries", "int")} if h.number("Retries", "int") else {}),
        }
    return out
