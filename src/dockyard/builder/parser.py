"""Dockerfile -> stages of instructions, parsed by BuildKit's own parser (``dockerfile``).

The ``dockerfile`` package wraps moby/buildkit's Go parser, so line continuations, the
``# escape=`` directive, comments, JSON forms and heredocs come out exactly as Docker reads
them. This module adds what the Go parser leaves to its callers: the known instructions and
their flags, stage boundaries and names, and heredoc details (quoted names, ``<<-``).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dockyard.errors import InvalidArgument

KNOWN = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK",
        "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME",
        "WORKDIR",
    }
)  # fmt: skip

# Flags each instruction accepts (BuildKit's names); others are a parse error.
FLAGS: dict[str, frozenset[str]] = {
    "FROM": frozenset({"platform"}),
    "COPY": frozenset({"from", "chown", "chmod", "link", "parents", "exclude"}),
    "ADD": frozenset({"chown", "chmod", "checksum", "link", "keep-git-dir", "exclude"}),
    "RUN": frozenset({"mount", "network", "security"}),
    "HEALTHCHECK": frozenset({"interval", "timeout", "start-period", "start-interval", "retries"}),
}

_BOOL_FLAGS = frozenset({"link", "parents", "keep-git-dir"})  # --flag alone means true

_HEREDOC_WORD = re.compile(r"^<<(-?)(['\"]?)([A-Za-z0-9_.-]+)\2$")


class BuildError(InvalidArgument):
    """A build that cannot go on: Docker's CLI exits 1 for these."""

    exit_code = 1


class Heredoc(NamedTuple):
    name: str
    content: str
    expand: bool  # unquoted name: variables in the content expand


class Instruction(NamedTuple):
    cmd: str  # upper case
    args: tuple[str, ...]
    flags: dict[str, list[str]]
    json: bool
    original: str
    line: int
    heredocs: tuple[Heredoc, ...] = ()

    def error(self, message: str) -> BuildError:
        return BuildError(f"Dockerfile:{self.line}: {message}")

    def flag(self, name: str) -> str | None:
        values = self.flags.get(name)
        return values[-1] if values else None

    @property
    def text(self) -> str:
        """The instruction as Docker prints it in step lines (first line of a heredoc)."""
        return self.original.split("\n", 1)[0] if self.heredocs else self.original


class Stage(NamedTuple):
    number: int
    name: str  # lower-cased "AS" name, or ""
    base: str  # the FROM word, unexpanded
    platform: str
    from_line: Instruction
    instructions: list[Instruction]


class Directives(NamedTuple):
    """The parser directives at the top of a Dockerfile."""

    escape: str = "\\"
    syntax: str = ""  # the frontend image: "docker/dockerfile:1"
    check: str = ""  # build checks: "skip=RuleA,RuleB;error=true"
    syntax_line: int = 0
    check_line: int = 0


class Dockerfile(NamedTuple):
    meta_args: list[Instruction]  # ARGs before the first FROM
    stages: list[Stage]
    escape: str
    directives: Directives = Directives()

    @property
    def step_count(self) -> int:
        return sum(1 + len(s.instructions) for s in self.stages)


_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.*?)[ \t]*$")
_KNOWN_DIRECTIVES = ("escape", "syntax", "check")


def directives(text: str) -> Directives:
    """Docker's parser directives: ``# key=value`` lines at the very top; the first line
    that is not a known directive (a comment, an empty line, an instruction) ends them."""
    found: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        m = _DIRECTIVE.match(line)
        if not m or m.group(1).lower() not in _KNOWN_DIRECTIVES:
            break
        key = m.group(1).lower()
        if key in found:
            raise BuildError(f"Dockerfile:{number}: only one {key} parser directive can be used")
        found[key] = (m.group(2), number)
    escape = found.get("escape", ("\\", 0))[0]
    if escape not in ("\\", "`"):
        raise BuildError(f"invalid escape token '{escape}' does not match ` or \\")
    syntax, syntax_line = found.get("syntax", ("", 0))
    check, check_line = found.get("check", ("", 0))
    return Directives(escape, syntax, check, syntax_line, check_line)


def _flags(cmd: str, raw: tuple[str, ...], line: int) -> dict[str, list[str]]:
    allowed = FLAGS.get(cmd, frozenset())
    out: dict[str, list[str]] = {}
    for f in raw:
        name, eq, value = f[2:].partition("=")
        if name not in allowed:
            raise BuildError(f"Dockerfile:{line}: unknown flag: --{name} for {cmd}")
        if not eq and name not in _BOOL_FLAGS:
            raise BuildError(f"Dockerfile:{line}: missing a value on flag: --{name}")
        out.setdefault(name, []).append(value if eq else "true")
    return out


def _heredocs(cmd: object, args: tuple[str, ...]) -> tuple[Heredoc, ...]:
    docs = getattr(cmd, "heredocs", ()) or ()
    if not docs:
        return ()
    words = {}
    for w in args:
        m = _HEREDOC_WORD.match(w)
        if m:
            words[m.group(3)] = (bool(m.group(1)), bool(m.group(2)))
    out = []
    for h in docs:
        chomp, quoted = words.get(h.name, (False, False))
        content = h.content
        if chomp:  # <<-: leading tabs are stripped from every line
            content = "".join(ln.lstrip("\t") for ln in content.splitlines(keepends=True))
        out.append(Heredoc(h.name, content, not quoted))
    return tuple(out)


def to_instruction(cmd: object) -> Instruction:
    name = str(getattr(cmd, "cmd")).upper()  # noqa: B009
    line = int(getattr(cmd, "start_line"))  # noqa: B009
    original = str(getattr(cmd, "original"))  # noqa: B009
    if name not in KNOWN:
        raise BuildError(f"Dockerfile:{line}: unknown instruction: {name}")
    args = tuple(getattr(cmd, "value") or ())  # noqa: B009
    if name == "ONBUILD":
        sub = str(getattr(cmd, "sub_cmd") or "").upper()  # noqa: B009
        if not sub:
            raise BuildError(f"Dockerfile:{line}: ONBUILD requires at least one argument")
        if sub in ("ONBUILD", "FROM", "MAINTAINER"):
            raise BuildError(f"Dockerfile:{line}: {sub} isn't allowed as an ONBUILD trigger")
        if sub not in KNOWN:
            raise BuildError(f"Dockerfile:{line}: unknown instruction: {sub}")
        trigger = re.sub(r"(?is)^\s*onbuild\s+", "", original)
        return Instruction(name, (trigger,), {}, False, original, line)
    flags = _flags(name, tuple(getattr(cmd, "flags") or ()), line)  # noqa: B009
    return Instruction(
        name,
        args,
        flags,
        bool(getattr(cmd, "json")),  # noqa: B009
        original,
        line,
        _heredocs(cmd, args),
    )


def parse_instructions(text: str) -> list[Instruction]:
    import dockerfile  # type: ignore[import-not-found]

    try:
        cmds = dockerfile.parse_string(text)
    except dockerfile.GoParseError as e:
        line = _error_line(text, str(e))
        where = f"Dockerfile:{line}: " if line else ""
        raise BuildError(f"{where}dockerfile parse error: {e}") from None
    return [to_instruction(c) for c in cmds]


def _error_line(text: str, message: str) -> int:
    """The line a parse error is on: the Go parser does not always say, so find the shortest
    prefix of the file that fails the same way (only on the error path)."""
    import dockerfile

    lines = text.splitlines(keepends=True)
    for i in range(1, len(lines) + 1):
        try:
            dockerfile.parse_string("".join(lines[:i]))
        except dockerfile.GoParseError as e:
            if str(e) == message:
                return i
    return 0


_MIN_ARGS = {
    "ADD": 2, "COPY": 2, "ARG": 1, "ENV": 1, "EXPOSE": 1, "LABEL": 1, "USER": 1,
    "VOLUME": 1, "WORKDIR": 1, "STOPSIGNAL": 1, "FROM": 1, "MAINTAINER": 1, "SHELL": 1,
    "HEALTHCHECK": 1, "RUN": 1,
}  # fmt: skip


def parse(text: str) -> Dockerfile:
    """Parse a whole Dockerfile into its stages; every error names its line."""
    found = directives(text)
    escape = found.escape
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for ins in parse_instructions(text):
        need = _MIN_ARGS.get(ins.cmd, 0)
        if len([a for a in ins.args if a != ""]) < need and not ins.heredocs:
            raise ins.error(f"{ins.cmd} requires at least {need} argument{'s' if need > 1 else ''}")
        if ins.cmd == "FROM":
            args = ins.args
            name = ""
            if len(args) == 3 and args[1].lower() == "as":
                name = args[2].lower()
                if not re.match(r"^[a-z][a-z0-9_.-]*$", name):
                    raise ins.error(f"invalid name for build stage: {args[2]!r}")
                if any(s.name == name for s in stages):
                    raise ins.error(f"duplicate name {args[2]!r} for build stage")
            elif len(args) != 1:
                raise ins.error("FROM requires either one or three arguments")
            stages.append(Stage(len(stages), name, args[0], ins.flag("platform") or "", ins, []))
        elif not stages:
            if ins.cmd != "ARG":
                raise ins.error(
                    f"no build stage in current context: {ins.cmd} before the first FROM"
                )
            meta.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise BuildError("Dockerfile: no build stage in current context: the file has no FROM")
    return Dockerfile(meta, stages, escape, found)
