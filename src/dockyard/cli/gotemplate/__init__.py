"""Go's text/template, as Docker's CLI runs it for ``--format``: ``Template(text)`` parses
once, ``execute`` runs it on each value. Errors are ``TemplateError`` with Go's wording.

Importing the package is cheap (the row contexts use ``values`` for every ``ps``); the
parser and executor load when a template is first parsed.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: `ps` loads this package for its rows
if TYPE_CHECKING:
    from typing import Any

    from dockyard.cli.gotemplate.errors import TemplateError
    from dockyard.cli.gotemplate.funcs import Func


def __getattr__(name: str) -> Any:
    """``TemplateError`` on first use (PEP 562): ``ps``'s default table imports the package
    for its quoting only."""
    if name == "TemplateError":
        from dockyard.cli.gotemplate.errors import TemplateError

        return TemplateError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Template", "TemplateError"]


class Template:
    """A parsed template with Docker's function map (``templates.Parse("")`` in docker/cli)."""

    def __init__(self, text: str, funcs: dict[str, Func] | None = None) -> None:
        from dockyard.cli.gotemplate.funcs import BUILTINS, DOCKER_FUNCS
        from dockyard.cli.gotemplate.parser import parse

        self.funcs = {**BUILTINS, **(DOCKER_FUNCS if funcs is None else funcs)}
        self.trees = parse(text, self.funcs.__contains__)

    def execute(
        self,
        data: Any,
        *,
        missing_key_error: bool = False,
        funcs: dict[str, Func] | None = None,
    ) -> str:
        """Run on ``data``; ``funcs`` replaces functions by name, as Go's ``Funcs`` does
        after parsing (Docker's table headers)."""
        from dockyard.cli.gotemplate.executor import execute

        fmap = self.funcs if funcs is None else {**self.funcs, **funcs}
        return execute(self.trees, data, fmap, missing_key_error=missing_key_error)
