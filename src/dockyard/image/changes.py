"""``--change`` instructions for ``import`` and ``commit`` (a subset of Dockerfile syntax).

Docker accepts CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR and
STOPSIGNAL here; each edits the container config of the new image.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from dockyard.errors import InvalidArgument

ALLOWED = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
    "STOPSIGNAL",
)


def _json_or_shell(arg: str) -> list[str]:
    """Exec form (a JSON array of strings) or shell form wrapped in /bin/sh -c."""
    text = arg.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return value
    return ["/bin/sh", "-c", text]


def _volume_list(arg: str) -> list[str]:
    text = arg.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise InvalidArgument(f"VOLUME: malformed JSON array: {text}") from None
        if isinstance(value, list) and all(isinstance(x, str) for x in value):
            return value
        raise InvalidArgument("VOLUME: the JSON form must be an array of strings")
    return text.split()


def _pairs(arg: str, what: str) -> dict[str, str]:
    """``k=v k2="v 2"`` or the legacy ``k v`` form."""
    try:
        words = shlex.split(arg)
    except ValueError as e:
        raise InvalidArgument(f"{what}: {e}") from None
    if not words:
        raise InvalidArgument(f"{what} requires at least one argument")
    if "=" not in words[0]:
        if len(words) < 2:
            raise InvalidArgument(f"{what} requires at least one argument")
        return {words[0]: arg.split(None, 1)[1].strip()}
    out = {}
    for w in words:
        if "=" not in w:
            raise InvalidArgument(
                f"{what}: syntax error - can't find = in {w!r}. Must be of the form: name=value"
            )
        k, v = w.split("=", 1)
        out[k] = v
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """A new container config with ``changes`` applied (the input is not modified)."""
    cfg: dict[str, Any] = json.loads(json.dumps(config))
    for change in changes:
        parts = change.strip().split(None, 1)
        if not parts:
            continue
        instr = parts[0].upper()
        arg = parts[1] if len(parts) > 1 else ""
        if instr not in ALLOWED:
            raise InvalidArgument(f"{parts[0].lower()} is not a valid change command")
        if instr == "CMD":
            cfg["Cmd"] = _json_or_shell(arg)
        elif instr == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(arg)
        elif instr == "ENV":
            env = [e for e in cfg.get("Env") or []]
            for k, v in _pairs(arg, "ENV").items():
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif instr == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            labels.update(_pairs(arg, "LABEL"))
            cfg["Labels"] = labels
        elif instr == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in arg.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif instr == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _volume_list(arg):
                vols[v] = {}
            cfg["Volumes"] = vols
        elif instr == "USER":
            cfg["User"] = arg.strip()
        elif instr == "WORKDIR":
            cfg["WorkingDir"] = arg.strip()
        elif instr == "STOPSIGNAL":
            cfg["StopSignal"] = arg.strip()
        elif instr == "ONBUILD":
            cfg["OnBuild"] = [*(cfg.get("OnBuild") or []), arg.strip()]
    return cfg


def merge_commit_config(user: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """What ``docker commit`` records: the config the client sent (with its ``--change``
    lines applied) completed by the container's, as moby's commit merges them: empty user
    fields take the container's; Env, ExposedPorts, Volumes and Labels take the container's
    entries whose keys the user did not set, after the user's; without a user Entrypoint,
    an unset Cmd and an absent Entrypoint are the container's."""
    out: dict[str, Any] = json.loads(json.dumps(user))
    for key in ("User", "WorkingDir", "StopSignal", "Healthcheck", "OnBuild"):
        if not out.get(key) and container.get(key):
            out[key] = container[key]
    if not out.get("Env"):
        if container.get("Env"):
            out["Env"] = list(container["Env"])
    else:
        keys = {str(e).split("=", 1)[0] for e in out["Env"]}
        out["Env"] = [*out["Env"], *(e for e in container.get("Env") or [] if
                                     str(e).split("=", 1)[0] not in keys)]  # fmt: skip
    for key in ("ExposedPorts", "Volumes", "Labels"):
        merged = dict(out.get(key) or {})
        for k, v in (container.get(key) or {}).items():
            merged.setdefault(k, v)
        if merged:
            out[key] = merged
        else:
            out.pop(key, None)
    if not out.get("Entrypoint"):
        if not out.get("Cmd") and container.get("Cmd"):
            out["Cmd"] = container["Cmd"]
        if out.get("Entrypoint") is None and container.get("Entrypoint"):
            out["Entrypoint"] = container["Entrypoint"]
    return out
