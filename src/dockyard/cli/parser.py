"""argparse as the verbs use it: Docker's exit code 125 for flag errors, the terminal's width
without shutil. Imported only when a verb builds a parser (the small verbs' plain forms are
parsed from the flag table without argparse: cli/verbs.py ``parse_lean``)."""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


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


def make_parser(prog: str, usage: str, description: str, *, add_help: bool) -> ArgumentParser:
    return ArgumentParser(
        prog=f"dockyard {prog}",
        usage=f"dockyard {prog} {usage}",
        description=description,
        add_help=add_help,
        formatter_class=_formatter,
    )
