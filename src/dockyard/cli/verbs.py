"""The small verbs' arguments (``ps``, ``inspect``, ``images``, ``port``, ...): one table,
``COMMAND_ARGS``, read by hand for the plain forms (``parse_lean``) and by argparse for the
rest, so both parse alike and every error message is argparse's.

Apart from cli/flags.py's run/create table, which these verbs do not load (~1 ms of their
start-up): a ``Flag`` is the same kind of entry in both tables.
"""

from __future__ import annotations

# Not typing's, and nothing else at the top: every small verb imports this module first.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from dockyard.cli.parser import ArgumentParser


class Flag:
    """One flag: its names, what it holds (``bool``, ``value`` or a repeatable ``list``),
    which verbs take it (``run``, ``create``, ``exec``), its help."""

    __slots__ = ("names", "kind", "dest", "default", "help", "verbs")
    UNSET = object()  # a value flag whose absence differs from "" (--entrypoint)

    def __init__(
        self,
        names: str,
        kind: str = "value",
        help: str = "",
        *,
        default: Any = None,
        verbs: str = "run create",
    ) -> None:
        self.names = tuple(names.split())
        self.kind = kind
        long = next(n for n in self.names if n.startswith("--"))
        self.dest = long[2:].replace("-", "_")
        if default is Flag.UNSET:
            default = None
        elif default is None:
            default = {"bool": False, "list": []}.get(kind, "")
        self.default = default
        self.help = help
        self.verbs = verbs.split()


F = Flag


def add_to_parser(p: ArgumentParser, flags: Sequence[Flag]) -> None:
    """``flags`` as argparse arguments (the slow path, and ``--help``)."""
    for f in flags:
        if f.kind == "bool":
            p.add_argument(*f.names, dest=f.dest, action="store_true", help=f.help)
        elif f.kind == "list":
            p.add_argument(*f.names, dest=f.dest, action="append", default=[], help=f.help)
        elif f.kind == "int":
            p.add_argument(*f.names, dest=f.dest, type=int, default=f.default, help=f.help)
        else:
            p.add_argument(*f.names, dest=f.dest, default=f.default, help=f.help)


class Command:
    """A small verb's arguments: usage line, description, flags and positionals (``dest``,
    argparse's ``nargs``: None for exactly one, "?", "+", or "..." for the rest of the line).
    ``Context.args`` builds argparse from it, and ``parse_lean`` reads the same entry."""

    __slots__ = ("usage", "description", "flags", "positionals")

    def __init__(
        self,
        usage: str,
        description: str,
        flags: tuple[Flag, ...] = (),
        positionals: tuple[tuple[str, str | None], ...] = (),
    ) -> None:
        self.usage = usage
        self.description = description
        self.flags = flags
        self.positionals = positionals


_INSPECT_FLAGS = (
    F("-f --format", help="Format the output using the given Go template", default=Flag.UNSET),
    F("-s --size", "bool", "Display total file sizes"),
    F("--type", help="Return JSON for specified type", default=Flag.UNSET),
)
COMMAND_ARGS: dict[str, Command] = {
    "ps": Command(
        "[OPTIONS]",
        "List containers",
        (
            F("-a --all", "bool"),
            F("-q --quiet", "bool"),
            F("--no-trunc", "bool"),
            F("-f --filter", "list"),
            F("-n --last", "int", default=-1),
            F("-l --latest", "bool"),
            F("-s --size", "bool"),
            F("--format", default=Flag.UNSET),
        ),
    ),
    "images": Command(
        "[OPTIONS] [REPOSITORY[:TAG]]",
        "List images",
        (
            F("-a --all", "bool", "Show all images (incl. intermediate)"),
            F("-q --quiet", "bool", "Only show image IDs"),
            F("--no-trunc", "bool", "Don't truncate output"),
            F("--digests", "bool", "Show digests"),
            F("-f --filter", "list", "Filter output"),
            F("--format", help="Pretty-print images using a Go template", default=Flag.UNSET),
        ),
        (("reference", "?"),),
    ),
    "inspect": Command(
        "[OPTIONS] NAME|ID [NAME|ID...]",
        "Return low-level information on objects",
        _INSPECT_FLAGS,
        (("names", "+"),),
    ),
    "container inspect": Command(
        "[OPTIONS] CONTAINER [CONTAINER...]",
        "Display detailed information on containers",
        _INSPECT_FLAGS,
        (("names", "+"),),
    ),
    "image inspect": Command(
        "[OPTIONS] IMAGE [IMAGE...]",
        "Display detailed information on images",
        _INSPECT_FLAGS,
        (("names", "+"),),
    ),
    "image prune": Command(
        "[OPTIONS]",
        "Remove unused images",
        (
            F("-a --all", "bool", "Remove all unused images"),
            F("-f --force", "bool", "Do not prompt for confirmation"),
            F("--filter", "list", 'Provide filter values (e.g. "until=<timestamp>")'),
        ),
    ),
    "port": Command(
        "CONTAINER [PRIVATE_PORT[/PROTO]]",
        "List port mappings for the container",
        (),
        (("container", None), ("port", "?")),
    ),
    "top": Command(
        "CONTAINER [ps OPTIONS]",
        "Display the running processes of a container",
        (),
        (("container", None), ("ps_args", "...")),
    ),
    "version": Command("", "Show the version information"),
    "volume ls": Command(
        "[OPTIONS]",
        "List volumes",
        (
            F("-q --quiet", "bool", "Only display volume names"),
            F("-f --filter", "list", "Provide filter values (e.g. 'dangling=true')"),
            F("--format", help="Pretty-print volumes using a Go template", default=Flag.UNSET),
        ),
    ),
    "network ls": Command(
        "[OPTIONS]",
        "List networks",
        (
            F("-q --quiet", "bool", "Only display network IDs"),
            F("--no-trunc", "bool", "Do not truncate the output"),
            F("--format", help="Pretty-print networks using a Go template", default=Flag.UNSET),
        ),
    ),
    "system df": Command(
        "[OPTIONS]",
        "Show dockyard disk usage",
        (F("-v --verbose", "bool", "Show detailed information"),),
    ),
}


class Args:
    """What ``parse_lean`` found: the attributes argparse's Namespace would have."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # for mypy: attributes are set per command
        raise AttributeError(name)


def parse_lean(cmd: Command, argv: Sequence[str]) -> Args | None:
    """``argv`` parsed as argparse would parse it for ``cmd``, without argparse (~10 ms of
    a small verb's start-up), or None for anything outside the plain forms: ``-h``, an
    unknown flag or an abbreviation, an attached short value (``-fX``), a value that starts
    with ``-``, ``=`` after a switch, a bad integer, positionals split by flags, too few or
    too many positionals. argparse then parses it and reports whatever is wrong, so no
    message exists twice."""
    by_name = {n: f for f in cmd.flags for n in f.names}
    values: dict[str, Any] = {f.dest: f.default for f in cmd.flags}
    for f in cmd.flags:
        if f.kind == "list":
            values[f.dest] = []
    rest = cmd.positionals[-1][1] == "..." if cmd.positionals else False
    words: list[str] = []
    ended = False  # after "--", or the first word of a "..." remainder's line
    split = False  # a flag came after positionals
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if ended or not arg.startswith("-") or arg == "-":
            if split:
                return None
            words.append(arg)
            if rest and len(words) >= len(cmd.positionals) - 1:
                words += argv[i:]
                break
            continue
        if arg == "--":
            ended = True
            continue
        split = bool(words)
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if len(name) > 2 and not name.startswith("--"):
            # -aq: switches, the last one possibly taking the next word
            shorts = [by_name.get(f"-{ch}") for ch in name[1:]]
            if any(f is None or f.kind != "bool" for f in shorts[:-1]) or shorts[-1] is None:
                return None
            for switch in shorts[:-1]:
                if switch is not None:
                    values[switch.dest] = True
            name = f"-{name[-1]}"
        flag = by_name.get(name)
        if flag is None:
            return None
        if flag.kind == "bool":
            if eq:
                return None
            values[flag.dest] = True
            continue
        if not eq:
            if i >= n or argv[i].startswith("-"):
                return None
            value = argv[i]
            i += 1
        if flag.kind == "int":
            try:
                values[flag.dest] = int(value)
            except ValueError:
                return None
        elif flag.kind == "list":
            values[flag.dest].append(value)
        else:
            values[flag.dest] = value
    for dest, nargs in cmd.positionals:
        if nargs is None:
            if not words:
                return None
            values[dest] = words.pop(0)
        elif nargs == "?":
            values[dest] = words.pop(0) if words else None
        elif nargs == "+":
            if not words:
                return None
            values[dest], words = words, []
        else:
            values[dest], words = words, []
    return None if words else Args(values)
