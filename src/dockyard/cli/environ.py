"""``-e NAME`` without a value: the CLI fills it in from its own environment, as Docker's does
(the daemon never looks at its environment for a container). Its own module: ``exec``'s lean
path uses it without importing the flag parser."""

from __future__ import annotations

import os


def resolve_env(entries: list[str]) -> list[str]:
    """Each bare ``NAME`` set in this process's environment becomes ``NAME=value``; an unset
    one stays bare (the engine then leaves NAME unset in the container)."""
    return [f"{e}={os.environ[e]}" if "=" not in e and e in os.environ else e for e in entries]
