"""Docker's daemon-side checks of values both front ends send: a restart policy, a
``--mount``/``HostConfig.Mounts`` entry, the ``--security-opt`` words. Apart from reading.py
(Docker's JSON -> the model), so that ``create``, which checks every spec, does not load the
API's body reader (~0.8 M instructions of a CLI ``create``)."""

from __future__ import annotations

from dockyard.errors import InvalidArgument
from dockyard.model.container import Mount, RestartPolicy, Security
from dockyard.model.mounts import PROPAGATIONS

RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")


def restart_policy_check(policy: RestartPolicy, auto_remove: bool) -> None:
    """Docker's checks of a restart policy."""
    if policy.name not in RESTART_POLICIES and policy.name != "":
        raise InvalidArgument(f"invalid restart policy '{policy.name}'")
    if policy.maximum_retry_count < 0:
        raise InvalidArgument("maximum retry count cannot be negative")
    if policy.maximum_retry_count and policy.name != "on-failure":
        raise InvalidArgument(
            f"maximum retry count cannot be used with restart policy '{policy.name}'"
        )
    if auto_remove and policy.name not in ("no", ""):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")


def check_mount(m: Mount) -> Mount:
    """The daemon's checks of a ``--mount``/``HostConfig.Mounts`` entry (a bind source's
    existence is checked when the container is created)."""

    def bad(why: str) -> InvalidArgument:
        return InvalidArgument(f'invalid mount config for type "{m.type}": {why}')

    if m.type not in ("bind", "volume", "tmpfs"):
        raise bad("mount type unknown")
    if not m.target:
        raise bad("field Target must not be empty")
    if not m.target.startswith("/"):
        raise bad(f"invalid mount path: '{m.target}' mount path must be absolute")
    if m.type == "bind":
        if not m.source:
            raise bad("field Source must not be empty")
        if not m.source.startswith("/"):
            raise bad(f"invalid mount path: '{m.source}' mount path must be absolute")
        if m.propagation and m.propagation not in PROPAGATIONS:
            raise bad(f"invalid propagation mode: {m.propagation}")
    if m.type == "tmpfs" and m.source:
        raise bad("field Source must not be specified")
    if m.type == "volume" and m.source and ("/" in m.source or m.source.startswith(".")):
        raise bad(f"invalid volume name: {m.source}")
    return m


def parse_security_opts(opts: tuple[str, ...] | list[str]) -> Security:
    """``HostConfig.SecurityOpt`` (what ``--security-opt`` sends: seccomp's profile already
    read into JSON by the client) -> the parsed Security fields (caps/privileged not set)."""
    seccomp, nnp, apparmor, label = "", False, "", []
    for opt in opts:
        if opt == "no-new-privileges":
            nnp = True
            continue
        if "=" not in opt and ":" not in opt:
            raise InvalidArgument(f"invalid --security-opt 1: {opt!r}")
        # Docker: "=" separates when there is one (a profile's JSON holds ":"), else the
        # older ":".
        key, _, value = opt.partition("=" if "=" in opt else ":")
        if key == "seccomp":
            seccomp = value
        elif key == "no-new-privileges":
            if value not in ("true", "false"):
                raise InvalidArgument(f"invalid --security-opt 2: {opt!r}")
            nnp = value == "true"
        elif key == "apparmor":
            apparmor = value
        elif key == "label":
            label.append(value)
        else:
            raise InvalidArgument(f"invalid --security-opt 2: {opt!r}")
    return Security(seccomp=seccomp, no_new_privileges=nnp, apparmor=apparmor, label=tuple(label))
