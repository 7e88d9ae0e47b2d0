"""What every command gets: the global options, a lazily opened engine, a parser factory."""

from __future__ import annotations

from dockyard.lazy import cached_property

# Not typing's: importing typing costs ~3 ms of every command's start-up; argparse (~10 ms)
# is imported only when a verb builds a parser (cli/parser.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.cli.parser import ArgumentParser
    from dockyard.engine import Engine


class Context:
    def __init__(self, root: str | None, run_root: str | None, prog: str):
        self.root = root
        self.run_root = run_root
        self.prog = prog

    @cached_property
    def engine(self) -> Engine:
        from dockyard.engine import Engine

        return Engine(root=self.root, run_root=self.run_root)

    def parser(self, usage: str, description: str, *, add_help: bool = True) -> ArgumentParser:
        from dockyard.cli.parser import make_parser

        return make_parser(self.prog, usage, description, add_help=add_help)

    def args(self, name: str, argv: list[str]) -> Any:
        """``argv`` parsed for the small verb ``name`` (cli/verbs.py ``COMMAND_ARGS``): by
        hand for the plain forms, else by argparse built from the same table."""
        from dockyard.cli.verbs import COMMAND_ARGS, add_to_parser, parse_lean

        cmd = COMMAND_ARGS[name]
        a = parse_lean(cmd, argv)
        if a is not None:
            return a
        import argparse

        p = self.parser(cmd.usage, cmd.description)
        for dest, nargs in cmd.positionals:
            p.add_argument(dest, nargs=argparse.REMAINDER if nargs == "..." else nargs)
        add_to_parser(p, cmd.flags)
        return p.parse_args(argv)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.close()
