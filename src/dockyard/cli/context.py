"""What every command gets: the global options, a lazily opened engine, a parser factory."""

from __future__ import annotations

import argparse
import os
import sys
from functools import cached_property

# Not typing's: importing typing costs ~3 ms of every command's start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from dockyard.engine import Engine


def _formatter(prog: str) -> argparse.HelpFormatter:
    # argparse asks shutil for the terminal width on every add_argument, and shutil loads
    # bz2/lzma/zlib: 3 ms of start-up. os.get_terminal_size answers the same question.
    try:
        width = os.get_terminal_size(sys.stdout.fileno()).columns - 2
    except (OSError, ValueError):
        width = int(os.environ.get("COLUMNS", "80")) - 2
    return argparse.HelpFormatter(prog, width=max(width, 40))


class ArgumentParser(argparse.ArgumentParser):
    """Docker prints flag errors and exits 125, not argparse's 2."""

    def error(self, message: str) -> NoReturn:
        print(f"Error: {message}\nSee '{self.prog} --help'.", file=sys.stderr)
        raise SystemExit(125)


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
        return ArgumentParser(
            prog=f"dockyard {self.prog}",
            usage=f"dockyard {self.prog} {usage}",
            description=description,
            add_help=add_help,
            formatter_class=_formatter,
        )

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.close()
