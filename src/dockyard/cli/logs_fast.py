"""``dockyard logs`` on its lean path, and the writing of log records both paths share.

``logs --tail 10`` of a big log is a benchmark (issue "Container features": at most Docker's
time, flat as the log grows). Reading the end of the log costs well under a millisecond
(runtime/logfile.py); what is left is start-up, and argparse with the CLI's helpers is a
good part of it, opening the store another. The forms below are parsed by hand; a container
the on-disk name index knows is read without the store (engine/quicklogs.py), any other goes
to the same engine call as the normal path (``ContainerService.logs``):

* ``-t``/``--timestamps``, ``--details`` (accepted, as by the normal path);
* ``-n``/``--tail``, ``--since``, ``--until`` with the value as the next argument or after
  ``=``;
* one container, after the flags or ``--``.

Anything else (``-f``, combined short flags, ``-h``, a missing container) takes the normal
argparse path in cli/containers.py. So do errors: when the engine raises before anything was
written (no such container, the ``none`` driver, a bad ``--since``), the lean path steps
aside and the normal path does the same read again and reports it in its usual words.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: ~2 ms of start-up
if TYPE_CHECKING:
    from collections.abc import Iterable

_SWITCHES = {"-t": "timestamps", "--timestamps": "timestamps", "--details": "details"}
_VALUES = {"-n": "tail", "--tail": "tail", "--since": "since", "--until": "until"}


class LeanLogs:
    __slots__ = ("container", "timestamps", "details", "tail", "since", "until")

    def __init__(self) -> None:
        self.container = ""
        self.timestamps = self.details = False
        self.tail = "all"
        self.since = self.until = ""


def parse(argv: list[str]) -> LeanLogs | None:
    """``logs``' arguments (after the verb) if they are a lean form, else None."""
    a = LeanLogs()
    i, n = 0, len(argv)
    while i < n:
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-"):
            i -= 1
            break
        if arg in _SWITCHES:
            setattr(a, _SWITCHES[arg], True)
            continue
        flag, eq, value = arg.partition("=")
        if flag not in _VALUES:
            return None
        if not eq:
            if i >= n:
                return None
            value = argv[i]
            i += 1
        setattr(a, _VALUES[flag], value)
    if n - i != 1 or argv[i].startswith("-"):
        return None
    a.container = argv[i]
    return a


def tail_count(text: str) -> int | None:
    """``--tail``: a count, or None for all (Docker's daemon reads anything that is not a
    number as "all")."""
    try:
        return int(text)
    except ValueError:
        return None


def time_flag(value: str, name: str) -> int:
    """``--since``/``--until`` as Docker's CLI reads them (GetTimestamp), in ns; 0: unset."""
    if not value:
        return 0
    from dockyard.errors import InvalidArgument
    from dockyard.units import docker_timestamp, ts_ns

    try:
        return ts_ns(docker_timestamp(value))
    except ValueError as e:
        raise InvalidArgument(f'invalid value for "{name}": {e}') from None


def write_records(
    records: Iterable[tuple[str, str, str]], *, timestamps: bool, follow: bool
) -> None:
    """Each record to stdout or stderr, as ``docker logs`` prints them."""
    out, err = sys.stdout.buffer, sys.stderr.buffer
    for stream, text, ts in records:
        target = err if stream == "stderr" else out
        target.write(((ts + " " + text) if timestamps else text).encode())
        if follow:
            target.flush()
    out.flush()
    err.flush()


def lean_logs(root: str | None, run_root: str | None, argv: list[str]) -> int | None:
    """Run a lean form of ``dockyard logs ARGV``: its exit code, or None (having written
    nothing) when the normal path must handle it."""
    a = parse(argv)
    if a is None:
        return None
    import gc

    # A short-lived process: the collector's passes over what the imports allocate would be
    # pure cost. Back on for the normal path (or a long read).
    gc.disable()
    try:
        return _lean(root, run_root, a)
    finally:
        gc.enable()


def _lean(root: str | None, run_root: str | None, a: LeanLogs) -> int | None:
    from dockyard.engine import Engine
    from dockyard.engine.quicklogs import read
    from dockyard.errors import DockyardError

    engine = Engine(root=root, run_root=run_root)
    try:
        tail, since, until = (
            tail_count(a.tail),
            time_flag(a.since, "since"),
            time_flag(a.until, "until"),
        )
        # By the name index first: no store to open (engine/quicklogs.py).
        records = read(engine.root, a.container, tail=tail, since=since, until=until)
        if records is None:
            records = engine.containers.logs(a.container, tail=tail, since=since, until=until)
    except DockyardError:
        return None  # the normal path does it again and reports it
    try:
        write_records(records, timestamps=a.timestamps, follow=False)
    except BrokenPipeError:
        import os

        # Output piped into `head`: not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0
