"""The ``# syntax=`` directive: which Dockerfile frontend a file asks for.

BuildKit pulls and runs the frontend image the directive names. This builder *is* the
docker/dockerfile frontend (version 1: BuildKit's stable syntax), so a file asking for it,
in any 1.x version, labs channel or pinned digest, builds here; any other frontend (a
different language, or a version this builder is not) is refused by name.
"""

from __future__ import annotations

import re

from dockyard.builder.parser import BuildError, Directives

_OURS = re.compile(
    r"^(?:docker\.io/)?docker/dockerfile(?:-upstream)?"
    r"(?::(?:1(?:\.\d+){0,2}(?:-labs)?|labs|latest|master|master-labs))?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)


def check_frontend(found: Directives) -> None:
    syntax = found.syntax.strip()
    if not syntax or _OURS.match(syntax):
        return
    raise BuildError(
        f"Dockerfile:{found.syntax_line}: unsupported frontend {syntax!r}: this builder runs "
        "the docker/dockerfile:1 syntax only (feature: # syntax= with another frontend image)"
    )
