"""``dockyard exec`` on its lean path: the common forms become ``runc exec`` within a few ms.

``docker exec <c> true`` is a latency benchmark (issue 3: at most Docker's time), and most of
what our exec used to spend before handing over to the runtime was importing: argparse, typing,
the CLI's output helpers, subprocess. This module parses the everyday flags by hand and calls
the same engine code as the normal path (``Execs.spec``: lookup, liveness check, the process
spec; ``Execs.replace_process``: becoming the runtime), importing little more than json and
the _sqlite3 C module on the way.

Only the forms below take this path; everything else returns to the normal argparse path in
cli/containers.py, unchanged:

* ``-i``/``--interactive``, ``-t``/``--tty``, ``-d``/``--detach`` and their combinations
  (``-it``, ``-ti``, ``-d``; not ``-d`` with ``-t``);
* ``-e``/``--env``, ``-u``/``--user``, ``-w``/``--workdir`` with the value as the next
  argument, as ``--flag=value``, or after a combination (``-ie X=1``);
* ``--`` before the container.

Anything else: ``-dt``, ``--privileged``, ``--env-file``, ``--detach-keys``, ``-h``, attached
short values (``-eX=1``), abbreviations of long flags, a value that starts with ``-`` (argparse
would reject it), a missing container or command. Errors take the normal path too: when the
engine raises (no such container, not running, an unknown user), or the command is missing from
the container (Docker's 126/127 come from the runtime's answer), the lean path steps aside and
the normal path does the same work again and reports it in its usual words, so no message or
exit code exists twice. Nothing here writes state: a retry by the normal path is harmless.
"""

from __future__ import annotations

import gc
import sys

# Not typing's: importing typing would cost ~2 ms here (type checkers treat the name as true).
TYPE_CHECKING = False

_SWITCHES = {
    "-i": "interactive",
    "--interactive": "interactive",
    "-t": "tty",
    "--tty": "tty",
    "-d": "detach",
    "--detach": "detach",
}
_VALUES = {
    "-e": "env",
    "--env": "env",
    "-u": "user",
    "--user": "user",
    "-w": "workdir",
    "--workdir": "workdir",
}


class LeanExec:
    """The parsed form of a lean ``exec``: the same fields argparse would give."""

    __slots__ = ("container", "command", "interactive", "tty", "detach", "env", "user", "workdir")

    def __init__(self) -> None:
        self.container = ""
        self.command: list[str] = []
        self.interactive = False
        self.tty = False
        self.detach = False
        self.env: list[str] = []
        self.user = ""
        self.workdir = ""

    def set(self, field: str, value: str | None = None) -> None:
        if value is None:
            setattr(self, field, True)
        elif field == "env":
            self.env.append(value)
        else:
            setattr(self, field, value)  # the last -u/-w wins, as with argparse


def parse(argv: list[str]) -> LeanExec | None:
    """``exec``'s arguments (after the verb) if they are a lean form, else None."""
    a = LeanExec()
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        if arg == "--":
            i += 1
            break
        if not arg.startswith("-"):
            break
        i += 1
        if arg in _SWITCHES:
            a.set(_SWITCHES[arg])
            continue
        if arg.startswith("--"):
            flag, eq, value = arg.partition("=")
            if eq and flag in _VALUES:
                a.set(_VALUES[flag], value)
                continue
            if eq or flag not in _VALUES:
                return None
        elif len(arg) > 2:
            # A combination: switches, the last one possibly taking the next argument.
            if any(f"-{ch}" not in _SWITCHES for ch in arg[1:-1]):
                return None
            for ch in arg[1:-1]:
                a.set(_SWITCHES[f"-{ch}"])
            arg = f"-{arg[-1]}"
            if arg in _SWITCHES:
                a.set(_SWITCHES[arg])
                continue
        if arg not in _VALUES or i >= n or argv[i].startswith("-"):
            return None
        a.set(_VALUES[arg], argv[i])
        i += 1
    if n - i < 2 or argv[i].startswith("-"):
        return None  # no container or no command: the normal path's usage error
    if a.detach and a.tty:
        return None  # a detached terminal needs a console socket: the normal path's business
    a.container, a.command = argv[i], argv[i + 1 :]
    return a


def lean_exec(root: str | None, run_root: str | None, argv: list[str]) -> None:
    """Become ``runc exec`` for a lean form of ``dockyard exec ARGV``; return (having changed
    nothing) when the normal path must handle it."""
    a = parse(argv)
    if a is None:
        return
    # This process lives a few ms and then becomes runc: the collector's passes over what
    # the imports allocate would be pure cost (~1 ms). Back on for the normal path.
    gc.disable()
    from dockyard.cli.environ import resolve_env
    from dockyard.engine import Engine
    from dockyard.errors import DockyardError

    engine = Engine(root=root, run_root=run_root)
    try:
        execs = engine.containers.execs
        try:
            ex = execs.spec(
                a.container,
                a.command,
                tty=a.tty,
                env=resolve_env(a.env),
                user=a.user,
                workdir=a.workdir,
            )
        except OSError:
            return  # e.g. a container removed meanwhile: the normal path explains
        execs.replace_process(ex, tty=a.tty, interactive=a.interactive, detach=a.detach)
    except DockyardError:
        pass  # the normal path does it again and reports it
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        engine.close()
        gc.enable()
