"""``.dockerignore`` with Docker's rules (moby/patternmatcher).

Each non-comment line is a pattern, cleaned like Go's ``filepath.Clean`` with any leading
``/`` dropped; ``!`` makes it an exception. ``*`` and ``?`` stop at ``/``, ``**`` spans any
number of directories, ``[...]`` is a class and the escape is ``\\``. A path is excluded when
the last pattern that matches it (or one of its parent directories) is not an exception.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from dockyard.errors import InvalidArgument


def _clean(pattern: str) -> str:
    p = posixpath.normpath(pattern.strip())
    if p.startswith("/"):
        p = p.lstrip("/") or "."
    return p


def _regex(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 1
                if i + 1 < n and pattern[i + 1] == "/":
                    i += 1
                    out.append("(.*/)?")  # "**/": zero or more directories
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]  # Go's classes negate with "^" only
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


class BadPattern(InvalidArgument):
    """Go's filepath.ErrBadPattern."""

    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


def check_pattern(pattern: str) -> None:
    """Go's filepath.Match syntax (Docker checks every .dockerignore line with it): a class
    ``[...]`` needs a closing ``]`` and at least one character or range, ``-`` and ``]``
    must be escaped inside it, and an escape ``\\`` needs a character after it."""
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise BadPattern()
            i += 2
        elif ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            ranges = 0
            while True:
                if i < n and pattern[i] == "]" and ranges:
                    i += 1
                    break
                i = _class_char(pattern, i)
                if i < n and pattern[i] == "-":
                    i = _class_char(pattern, i + 1)
                ranges += 1
        else:
            i += 1


def _class_char(pattern: str, i: int) -> int:
    """Go's getEsc: one (maybe escaped) character of a class; something must follow it."""
    n = len(pattern)
    if i >= n or pattern[i] in "-]":
        raise BadPattern()
    if pattern[i] == "\\":
        i += 1
        if i >= n:
            raise BadPattern()
    i += 1
    if i >= n:
        raise BadPattern()
    return i


class IgnoreRules:
    def __init__(self, lines: Sequence[str]) -> None:
        """Raises BadPattern for a pattern Go's filepath.Match would refuse."""
        self.patterns: list[tuple[bool, str, re.Pattern[str]]] = []
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            exception = line.startswith("!")
            if exception:
                line = line[1:].strip()
                if not line:
                    continue
            p = _clean(line)
            check_pattern(p)  # Docker's CLI refuses what Go's filepath.Match cannot take
            if p == ".":
                continue  # "." or "/" alone would exclude the whole context; Docker skips it
            self.patterns.append((exception, p, _regex(p)))
        self.has_exceptions = any(e for e, _, _ in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    @classmethod
    def parse(cls, text: str) -> IgnoreRules:
        """.dockerignore's text; a malformed pattern is BadPattern."""
        return cls(text.splitlines())

    def excluded(self, rel: str) -> bool:
        """Whether context path ``rel`` (slash-separated, no leading ``./``) is excluded."""
        if not self.patterns:
            return False
        parents = []
        parts = rel.split("/")
        for k in range(1, len(parts)):
            parents.append("/".join(parts[:k]))
        matched = False
        for exception, _, rx in self.patterns:
            if rx.match(rel) or any(rx.match(p) for p in parents):
                matched = not exception
        return matched

    def skip_dir(self, rel: str) -> bool:
        """Whether a whole directory can be skipped: excluded, and no exception could bring
        back something under it."""
        if not self.excluded(rel):
            return False
        if not self.has_exceptions:
            return True
        for exception, pattern, _ in self.patterns:
            if exception and (
                pattern.startswith(rel + "/") or rel.startswith(_literal_prefix(pattern))
            ):
                return False
        return True


def _literal_prefix(pattern: str) -> str:
    m = re.search(r"[*?\[\\]", pattern)
    return pattern[: m.start()] if m else pattern
