"""The two mount grammars Docker's daemon itself parses, so both front ends share them:
``Binds`` entries (the ``-v`` syntax) and ``Tmpfs`` options (``--tmpfs``).
(``--mount``'s CSV syntax is the CLI's own: cli/flags.py.)"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument
from dockyard.model.container import Mount

BIND_OPTIONS = frozenset(
    ("ro", "rw", "z", "Z", "private", "rprivate", "shared", "rshared", "slave", "rslave", "nocopy")
)
PROPAGATIONS = frozenset(("private", "rprivate", "shared", "rshared", "slave", "rslave"))
_VOLUME_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"


def parse_bind(spec: str) -> Mount:
    """``-v [SRC:]DST[:OPTS]`` -> a Mount: a host path (absolute SRC), a named volume (SRC a
    name) or an anonymous volume (no SRC)."""
    parts = spec.split(":")
    if len(parts) == 1:
        src, dst, mode = "", parts[0], ""
    elif len(parts) == 2 and parts[1] in ("ro", "rw"):
        src, dst, mode = "", parts[0], parts[1]
    elif len(parts) == 2:
        src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if not dst.startswith("/"):
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': invalid mount config for type \"volume\": "
            f"invalid mount path: '{dst}' mount path must be absolute"
        )
    opts = [o for o in mode.split(",") if o]
    for o in opts:
        if o not in BIND_OPTIONS:
            raise InvalidArgument(f"invalid mode: {o}")
    read_only = "ro" in opts
    if src.startswith("/"):
        propagation = next((o for o in opts if o in PROPAGATIONS), "rprivate")
        return Mount(
            "bind",
            dst,
            os.path.normpath(src),
            read_only,
            origin="bind",
            mode=mode,
            propagation=propagation,
        )
    if src.startswith(".") or "/" in src:
        raise InvalidArgument(
            f'create {src}: "{src}" includes invalid characters for a local volume name, only '
            f'"{_VOLUME_NAME_CHARS}" are allowed. If you intended to pass a host directory, '
            "use absolute path"
        )
    return Mount(
        "volume",
        dst,
        src,
        read_only,
        origin="bind" if src else "anonymous",
        mode=mode,
        no_copy="nocopy" in opts,
    )


def bind_text(m: Mount) -> str:
    """A ``-v``-made mount as Docker keeps it in ``HostConfig.Binds``."""
    return f"{m.source}:{m.target}" + (f":{m.mode}" if m.mode else "")


def parse_tmpfs(target: str, options: str = "") -> Mount:
    """``--tmpfs /path[:OPTIONS]`` / ``Tmpfs: {path: options}``: options as mount(8) takes them
    for tmpfs; size and mode are kept as numbers, the rest as given."""
    if not target.startswith("/"):
        raise InvalidArgument(f"invalid tmpfs mount path: {target}")
    size, mode, rest = 0, 0, []
    for opt in (o.strip() for o in options.split(",")):
        if not opt:
            continue
        key, eq, value = opt.partition("=")
        if key == "size" and eq:
            size = tmpfs_size(value)
        elif key == "mode" and eq:
            try:
                mode = int(value, 8)
            except ValueError:
                raise InvalidArgument(f"invalid tmpfs option: {opt}") from None
        else:
            rest.append(opt)
    return Mount(
        "tmpfs",
        target,
        origin="tmpfs",
        mode=options,
        tmpfs_size=size,
        tmpfs_mode=mode,
        tmpfs_options=tuple(rest),
    )


def tmpfs_size(text: str) -> int:
    """tmpfs' size= (a number with k/m/g, binary multiples, or a % of RAM is refused here)."""
    t = text.strip().lower()
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    factor = 1
    if t[-1:] in mult:
        factor, t = mult[t[-1]], t[:-1]
    if not t.isdigit():
        raise InvalidArgument(f"invalid tmpfs size: {text}")
    return int(t) * factor
