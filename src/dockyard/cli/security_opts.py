"""``--security-opt seccomp=FILE`` as Docker's CLI sends it: the file's JSON, compacted.

Docker's client reads the profile, so a file the engine (or a daemon on another machine)
cannot see still works, and a file that is missing or is not JSON fails before anything is
created, with the client's messages.
"""

from __future__ import annotations

import os

from dockyard.errors import InvalidArgument

__all__ = ["inline_seccomp_profiles"]

# Values that name a profile rather than a file ("builtin": newer Docker's default profile).
_NAMED = ("unconfined", "builtin")


def inline_seccomp_profiles(options: list[str]) -> list[str]:
    """``options`` with each ``seccomp=FILE`` (or the old ``seccomp:FILE``) replaced by
    ``seccomp=<the file's compacted JSON>``."""
    out = []
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")  # Docker's old separator
        if key != "seccomp" or not sep or value in _NAMED:
            out.append(opt)
            continue
        out.append("seccomp=" + _read_profile(value))
    return out


def _go_error(e: OSError) -> str:
    """An errno as Go's error strings spell it (its table is strerror's, lower-cased)."""
    text = os.strerror(e.errno) if e.errno else str(e)
    return text[:1].lower() + text[1:]


def _read_profile(path: str) -> str:
    from dockyard import gojson

    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError as e:
        # Go opens a directory and fails on the read.
        raise InvalidArgument(
            f"opening seccomp profile ({path}) failed: read {path}: {_go_error(e)}"
        )
    except OSError as e:
        raise InvalidArgument(
            f"opening seccomp profile ({path}) failed: open {path}: {_go_error(e)}"
        )
    problem = gojson.syntax_error(data)
    if problem is not None:
        raise InvalidArgument(f"compacting json for seccomp profile ({path}) failed: {problem}")
    return gojson.compact(data.decode("utf-8", "replace"))
