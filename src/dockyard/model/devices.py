"""Docker's grammar for devices: ``--device HOST[:CONTAINER][:PERMISSIONS]`` (the CLI's
parsing) and ``--device-cgroup-rule`` (the CLI checks it, the daemon reads it again at start).
Docker 20.10's messages. Pure: the CLI parses flags with it, the engine checks API bodies."""

from __future__ import annotations

from dockyard.errors import InvalidArgument
from dockyard.model.container import Device

_ACCESS = frozenset("rwm")


def valid_permissions(text: str) -> bool:
    """Docker's device mode: one to three of r, w, m, none twice."""
    return 0 < len(text) <= 3 and set(text) <= _ACCESS and len(set(text)) == len(text)


def parse_device(text: str) -> Device:
    """``--device`` as Docker's CLI reads it: ``/dev/x``, ``/dev/x:/dev/y``, ``/dev/x:rw``,
    ``/dev/x:/dev/y:rw`` (a second field that is a valid mode is the mode)."""
    parts = text.split(":")
    if not text or len(parts) > 3:
        raise InvalidArgument(f"bad format for path: {text}")
    host, inside, perms = parts[0], parts[0], "rwm"
    if len(parts) == 3:
        inside, perms = parts[1], parts[2]
        if not valid_permissions(perms):
            raise InvalidArgument(f"bad mode specified: {perms}")
    elif len(parts) == 2:
        if valid_permissions(parts[1]):
            perms = parts[1]
        else:
            inside = parts[1]
    for path in (host, inside):
        if not path.startswith("/"):
            raise InvalidArgument(f"{path} is not an absolute path")
    return Device(host, inside, perms)


def check_device(d: Device) -> Device:
    """An API body's ``HostConfig.Devices`` entry, with the CLI's defaults filled in (the
    container path defaults to the host's, the permissions to rwm)."""
    inside = d.path_in_container or d.path_on_host
    perms = d.cgroup_permissions or "rwm"
    if not valid_permissions(perms):
        raise InvalidArgument(f"bad mode specified: {perms}")
    for path in (d.path_on_host, inside):
        if not path.startswith("/"):
            raise InvalidArgument(f"{path} is not an absolute path")
    return Device(d.path_on_host, inside, perms)


def parse_cgroup_rule(text: str) -> tuple[str, int | None, int | None, str]:
    """``TYPE MAJOR:MINOR ACCESS`` (``c 1:3 rwm``, ``b 7:* r``, ``a *:* m``; ``*`` is any)
    -> (type, major, minor, access), None for ``*``."""
    fields = text.split(" ")
    bad = InvalidArgument(f"invalid device cgroup format '{text}'")
    if len(fields) != 3 or fields[0] not in ("a", "b", "c"):
        raise bad
    major, colon, minor = fields[1].partition(":")
    access = fields[2]
    if not colon or not 0 < len(access) <= 3 or not set(access) <= _ACCESS:
        raise bad  # Docker's pattern takes one to three of r, w, m (repeats too)
    numbers: list[int | None] = []
    for n in (major, minor):
        if n == "*":
            numbers.append(None)
        elif n.isascii() and n.isdigit():
            numbers.append(int(n))
        else:
            raise bad
    return fields[0], numbers[0], numbers[1], access


def check_cgroup_rule(text: str) -> str:
    parse_cgroup_rule(text)
    return text


def device_missing(path: str) -> str:
    """Docker's message for a --device whose host path does not exist."""
    return (
        f'error gathering device information while adding custom device "{path}": '
        "no such file or directory"
    )
