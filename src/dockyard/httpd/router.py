"""Routes by method and path pattern.

Patterns are literal paths with parameters: ``{name}`` is one non-empty segment, ``{name?}``
one segment that may be empty, ``{name*}`` the rest (image and repository names hold
slashes: ``/images/localhost:5000/a/b:1/json``); a pattern ending in ``/?`` also matches
without its trailing slash. The method ``*`` takes any method.

Two ways to resolve a path that several patterns match, one per front end:
- ``first_path_decides=False`` (the Engine API, as gorilla/mux in moby): the first route
  matching method and path wins; 405 when only other methods matched, else 404.
- ``first_path_decides=True`` (the hub): the first pattern matching the path decides; a
  method it does not take is a 405 (the distribution spec's UNSUPPORTED).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import unquote

_PARAM = re.compile(r"\{(\w+)([*?]?)\}")


class Match(NamedTuple):
    func: Callable[..., Any]
    params: dict[str, str]
    max_body: int | None  # the route's body limit (None: the server's)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    optional_slash = pattern.endswith("/?")
    if optional_slash:
        pattern = pattern[:-2]
    out, pos = [], 0
    for m in _PARAM.finditer(pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        kind = {"": "[^/]+", "?": "[^/]*", "*": ".+"}[m[2]]
        out.append(f"(?P<{m[1]}>{kind})")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("".join(out) + ("/?" if optional_slash else ""))


class Router:
    def __init__(self, *, decode: bool = True, first_path_decides: bool = False) -> None:
        self.decode = decode  # percent-decode parameters (the API) or not (the hub)
        self.first_path_decides = first_path_decides
        self._routes: list[tuple[re.Pattern[str], dict[str, tuple[Callable[..., Any], int | None]]]]
        self._routes = []
        self._by_pattern: dict[str, dict[str, tuple[Callable[..., Any], int | None]]] = {}

    def add(
        self, methods: str, pattern: str, func: Callable[..., Any], *, max_body: int | None = None
    ) -> None:
        """``methods``: one or several joined by ``|`` (``GET|HEAD``)."""
        table = self._by_pattern.get(pattern)
        if table is None:
            table = self._by_pattern[pattern] = {}
            self._routes.append((compile_pattern(pattern), table))
        for method in methods.split("|"):
            table[method] = (func, max_body)

    def route(
        self, methods: str, pattern: str, *, max_body: int | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            self.add(methods, pattern, func, max_body=max_body)
            return func

        return register

    def include(self, other: Router) -> None:
        """Every route of ``other``, after this router's own."""
        for pattern, table in other._by_pattern.items():
            for method, (func, max_body) in table.items():
                self.add(method, pattern, func, max_body=max_body)

    def match(self, method: str, path: str) -> Match | int:
        """The route for ``method`` and ``path``, or 404 / 405."""
        other_method = False
        for rx, table in self._routes:
            found = rx.fullmatch(path)
            if found is None:
                continue
            entry = table.get(method) or table.get("*")
            if entry is None:
                if self.first_path_decides:
                    return 405
                other_method = True
                continue
            params = found.groupdict()
            if self.decode:
                params = {k: unquote(v) for k, v in params.items()}
            return Match(entry[0], params, entry[1])
        return 405 if other_method else 404
