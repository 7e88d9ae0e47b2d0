"""The small verbs' lean path: plain forms are parsed from the flag table (cli/flags.py
``COMMAND_ARGS``, ``parse_lean``) without argparse, and their modules import little.

Each command runs in a fresh interpreter twice: as shipped, and with the lean parse switched
off (argparse built from the same table). Both must print the same bytes and exit alike; the
shipped run must not import what the answer does not need (the list per command below: a
module creeping back onto the path fails here, without timing anything).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.cli.flags import add_flags
from dockyard.cli.parser import make_parser
from dockyard.cli.verbs import COMMAND_ARGS, Command, add_to_parser, parse_lean
from tests.conftest import CLI

# argv: report file, mode ("lean" | "argparse"), then dockyard's own arguments.
BOOT = """
import os, sys
report, mode = sys.argv[1], sys.argv[2]
sys.argv[1:3] = []
if mode == "argparse":
    import dockyard.cli.verbs
    dockyard.cli.verbs.parse_lean = lambda *args: None
def dump():
    with open(report, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
real_exit = os._exit
def _exit(code):
    dump()
    real_exit(code)
os._exit = _exit
from dockyard.main import main
try:
    code = main()
finally:
    dump()
sys.exit(code)
"""

# Never on a small verb's path: argparse (~10 ms with gettext and locale), typing (~3 ms),
# dataclasses (inspect, ast, dis: ~10 ms), the sqlite3 package (datetime adapters; the store
# uses _sqlite3), subprocess.
NEVER = ("argparse", "typing", "dataclasses", "sqlite3", "subprocess", "gettext")
# ... and what each command does without: json and re (json's decoder compiles regexes),
# contextlib (the store's transaction and lock are classes), importlib (main uses __import__).
NO_RE = ("re", "json", "enum", "contextlib", "importlib")
# A stored row is rendered without the lifecycle code (it is loaded only to record the exit of
# a container whose monitor is gone), nor Docker JSON's reader, nor datetime for ages.
ROW = (
    "dockyard.engine.containers.lifecycle",
    "dockyard.model.docker.reading",
    "datetime",
)
# Nor functools and the collections it imports (~3 ms): the store loads _sqlite3 without them
# (dockyard/sqlite.py), cached_property is dockyard/lazy.py's and the image rows'
# NamedTuple model/values.py's own.
# Nor run/create's flag table (cli/flags.py: ~1 ms); their own is cli/verbs.py.
LEAN = ("functools", "collections", "dockyard.cli.flags")
# Listing reads the entry each row keeps (model/docker/listing.py): neither the model's
# classes nor the codec nor the shapes (with one running container, ~8 M of ~45 M
# instructions).
LISTED = ("dockyard.model.container", "dockyard.model.codec", "dockyard.model.docker.shapes")
CASES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # name: (arguments, modules it must not import)
    "ps": (("ps",), NEVER + NO_RE + ROW + LEAN + LISTED),
    "ps -a": (("ps", "-a", "--no-trunc"), NEVER + NO_RE + ROW + LEAN + LISTED),
    "ps -q": (("ps", "-aq"), NEVER + NO_RE + ROW + LEAN + LISTED),
    "container ls": (("container", "ls", "-a"), NEVER + NO_RE + ROW + LEAN + LISTED),
    "inspect": (("inspect", "idle"), NEVER + NO_RE + ROW + LEAN),
    "container inspect": (("container", "inspect", "idle"), NEVER + NO_RE + ROW + LEAN),
    "port": (("port", "idle"), NEVER + NO_RE + ROW + LEAN),
    "version": (("version",), NEVER + NO_RE + LEAN),
    "images": (("images",), NEVER + NO_RE + ("datetime",) + LEAN),
    "image ls": (("image", "ls", "-a"), NEVER + NO_RE + ("datetime",) + LEAN),
    "image inspect": (("image", "inspect", "busybox"), NEVER + NO_RE + LEAN),
    "system df": (("system", "df"), NEVER + NO_RE + LEAN + LISTED),
    "image prune": (
        ("image", "prune", "-f", "--filter", "label=nothing-has-it"),
        NEVER + NO_RE + LEAN,
    ),
    "volume ls": (("volume", "ls"), NEVER + NO_RE + LEAN + ("dockyard.cli.rows",)),
    "volume ls -q": (("volume", "ls", "-q"), NEVER + NO_RE + LEAN),
    "network ls": (("network", "ls"), NEVER + NO_RE + LEAN + ("dockyard.model.container",)),
    "network ls -q": (("network", "ls", "-q", "--no-trunc"), NEVER + NO_RE + LEAN),
}


def _steady(text: str) -> str:
    """``ps``'s CREATED column moves on between two runs ("Less than a second ago", "1 second
    ago"), and the table's padding with it."""
    text = re.sub(r"(Less than a second|About a minute|\d+ seconds?) ago", "N ago", text)
    return re.sub(r" {2,}", "  ", text)


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], modules: list[str]) -> None:
        self.returncode = proc.returncode
        self.stdout = _steady(proc.stdout)
        self.stderr = proc.stderr
        self.modules = modules


def run(cli: CLI, tmp_path: Path, mode: str, *args: str) -> Run:
    report = tmp_path / f"modules-{mode}.txt"
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", BOOT, str(report), mode]
        + ["--root", str(cli.root), "--run-root", str(cli.run_root), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(proc, report.read_text().split() if report.exists() else [])


@pytest.fixture
def store(ctr: CLI) -> CLI:
    ctr("create", "--name", "idle", "-p", "127.0.0.1:18080:80", "busybox", "sleep", "100")
    ctr("volume", "create", "lean-vol")
    ctr("network", "create", "lean-net")
    return ctr


def test_small_verbs_import_little_and_print_what_argparse_path_prints(
    store: CLI, tmp_path: Path
) -> None:
    for name, (args, forbidden) in CASES.items():
        lean = run(store, tmp_path, "lean", *args)
        slow = run(store, tmp_path, "argparse", *args)
        assert (lean.returncode, lean.stdout, lean.stderr) == (
            slow.returncode,
            slow.stdout,
            slow.stderr,
        ), name
        assert lean.returncode == 0, (name, lean.stderr)
        assert "argparse" in slow.modules, name  # the switch did switch
        loaded = [m for m in forbidden if m in lean.modules]
        assert not loaded, f"{name} imported {loaded}"
    assert json.loads(run(store, tmp_path, "lean", "inspect", "idle").stdout)[0]["Name"] == (
        "/idle"
    )


def test_unusual_forms_take_argparse_and_its_messages(store: CLI, tmp_path: Path) -> None:
    for args in (
        ("ps", "--bogus"),
        ("ps", "-n", "x"),
        ("ps", "--al"),  # an abbreviation: argparse's business
        ("inspect",),
        ("port",),
        ("images", "a", "b"),
        ("inspect", "-h"),
    ):
        lean = run(store, tmp_path, "lean", *args)
        slow = run(store, tmp_path, "argparse", *args)
        assert (lean.returncode, lean.stdout, lean.stderr) == (
            slow.returncode,
            slow.stdout,
            slow.stderr,
        ), args
        assert "argparse" in lean.modules, args
    bad = run(store, tmp_path, "lean", "ps", "-n", "x")
    assert bad.returncode == 125
    assert bad.stderr.startswith("Error: argument -n/--last: invalid int value: 'x'")
    # An abbreviation still works, through argparse.
    assert run(store, tmp_path, "lean", "ps", "--al", "-q").stdout.strip()


# ------------------------------------------------------------------ the parser itself


def _argparse(cmd: Command, name: str, argv: list[str]) -> dict[str, object]:
    import argparse

    p = make_parser(name, cmd.usage, cmd.description, add_help=True)
    for dest, nargs in cmd.positionals:
        p.add_argument(dest, nargs=argparse.REMAINDER if nargs == "..." else nargs)
    add_to_parser(p, cmd.flags)
    return vars(p.parse_args(argv))


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("ps", []),
        ("ps", ["-a"]),
        ("ps", ["-aq", "--no-trunc"]),
        ("ps", ["-af", "status=exited", "--filter", "name=x"]),
        ("ps", ["-n", "3", "--last=2", "-s", "--format", "{{.ID}}"]),
        ("ps", ["--format="]),
        ("images", ["busybox"]),
        ("images", ["-a", "--digests", "busybox:latest", "--format", "table {{.ID}}"]),
        ("images", ["--", "busybox"]),
        ("inspect", ["a", "b", "-f", "{{.Id}}"]),
        ("inspect", ["--type=image", "-s", "a"]),
        ("image inspect", ["-f", "{{json .}}", "busybox"]),
        ("image prune", ["-af", "--filter", "until=1h"]),
        ("port", ["c", "80/tcp"]),
        ("port", ["c"]),
        ("top", ["c"]),
        ("top", ["c", "-ef", "--forest"]),
        ("version", []),
        ("system df", ["-v"]),
        ("volume ls", ["-q", "-f", "dangling=true", "--filter=name=a"]),
        ("volume ls", ["--format", "{{.Name}}"]),
        ("network ls", ["-q", "--no-trunc"]),
        ("network ls", ["--format={{.ID}}"]),
    ],
)
def test_lean_parse_agrees_with_argparse(name: str, argv: list[str]) -> None:
    cmd = COMMAND_ARGS[name]
    a = parse_lean(cmd, argv)
    assert a is not None, argv
    assert vars(a) == _argparse(cmd, name, argv)


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("ps", ["-h"]),
        ("ps", ["--help"]),
        ("ps", ["--all=1"]),
        ("ps", ["-n", "-1"]),  # a value that looks like a flag
        ("ps", ["-n5"]),  # an attached short value
        ("ps", ["-f=label=a"]),
        ("ps", ["-fq"]),  # -f takes "q" in argparse
        ("ps", ["--no-t"]),  # an abbreviation
        ("ps", ["--format"]),
        ("ps", ["extra"]),
        ("inspect", []),
        ("inspect", ["a", "-f", "x", "b"]),  # positionals split by a flag
        ("port", []),
        ("port", ["a", "b", "c"]),
        ("images", ["a", "b"]),
        ("version", ["x"]),
        ("volume ls", ["extra"]),
        ("network ls", ["-f", "driver=bridge"]),  # not a flag of ours: argparse's error
    ],
)
def test_lean_parse_leaves_the_rest_to_argparse(name: str, argv: list[str]) -> None:
    assert parse_lean(COMMAND_ARGS[name], argv) is None


@pytest.mark.parametrize(
    "argv",
    [
        ["busybox"],
        ["-it", "--name", "web", "-p", "127.0.0.1:8080:80", "-e", "A=1", "--env=B=2", "busybox"],
        ["-ip", "80:80", "-h", "host", "--restart=always", "-v", "/a:/b", "--", "busybox"],
        ["--entrypoint=", "-l", "k=v", "--label", "x", "--memory", "64m", "busybox"],
    ],
)
def test_create_flags_parse_as_argparse_parses_them(argv: list[str]) -> None:
    from dockyard.cli.flags import flags_for

    table = Command("", "", tuple(flags_for("create")), (("image", None),))
    a = parse_lean(table, argv)
    assert a is not None, argv
    p = make_parser("create", "", "", add_help=False)
    add_flags(p, "create")
    p.add_argument("image")
    assert vars(a) == vars(p.parse_args(argv))


def test_create_takes_no_argparse_and_reports_flag_errors_as_before(
    ctr: CLI, tmp_path: Path
) -> None:
    ctr("create", "busybox")  # the first one makes the default network (a one-off)
    args = ("create", "--name", "made", "-e", "A=1", "-p", "127.0.0.1:18081:80", "busybox", "true")
    lean = run(ctr, tmp_path, "lean", *args)
    assert lean.returncode == 0, lean.stderr
    assert not [m for m in ("argparse", "typing", "dataclasses", "sqlite3") if m in lean.modules]
    env = ctr("inspect", "-f", "{{.Config.Env}} {{.HostConfig.PortBindings}}", "made").stdout
    assert env.startswith("[A=1 PATH=") and "map[80/tcp:[{127.0.0.1 18081}]]" in env
    # Errors in flag values still come from argparse's parser, in Docker's words.
    for bad in (
        ("create", "-p", "x:y:z:w", "busybox"),
        ("create", "--dns", "not-an-ip", "busybox"),
        ("create", "--memory", "lots", "busybox"),
        ("create", "--nosuchflag", "busybox"),
        ("create",),
    ):
        lean = run(ctr, tmp_path, "lean", *bad)
        slow = run(ctr, tmp_path, "argparse", *bad)
        assert (lean.returncode, lean.stdout, lean.stderr) == (
            slow.returncode,
            slow.stdout,
            slow.stderr,
        ), bad
        assert lean.returncode == 125 and lean.stderr.startswith("Error: "), bad


def test_a_running_container_reads_lean_until_its_monitor_is_gone(ctr: CLI, tmp_path: Path) -> None:
    """`inspect`, `port` and `ps` render a live container's row as stored; once its monitor is
    killed they report it exited, as Docker reports a container whose shim died."""
    cid = ctr("run", "-d", "--name", "live", "-p", "127.0.0.1::80", "busybox", "sleep", "100")
    cid_text = cid.stdout.strip()
    for args in (("inspect", "live"), ("port", "live"), ("ps",)):
        lean = run(ctr, tmp_path, "lean", *args)
        assert lean.returncode == 0, (args, lean.stderr)
        assert "dockyard.engine.containers.lifecycle" not in lean.modules, args
    assert run(ctr, tmp_path, "lean", "port", "live", "80").stdout.startswith("127.0.0.1:")
    assert cid_text[:12] in run(ctr, tmp_path, "lean", "ps").stdout
    state = json.loads(run(ctr, tmp_path, "lean", "inspect", "live").stdout)[0]["State"]
    assert (state["Status"], state["Running"]) == ("running", True)
    os.kill(_monitor_pid(ctr, cid_text), signal.SIGKILL)
    gone = run(ctr, tmp_path, "lean", "inspect", "live")
    assert "dockyard.engine.containers.lifecycle" in gone.modules  # it recorded the exit
    state = json.loads(gone.stdout)[0]["State"]
    assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 255)
    assert "monitor" in state["Error"]
    assert run(ctr, tmp_path, "lean", "ps", "-q").stdout == ""
    assert run(ctr, tmp_path, "lean", "port", "live").stdout == ""
    assert "Exited (255)" in run(ctr, tmp_path, "lean", "ps", "-a").stdout


def _monitor_pid(cli: CLI, cid: str) -> int:
    with open(cli.run_root / "containers" / cid / "monitor.pid") as f:
        return int(f.read().split()[0])


# `run`'s start-up: none of the standard library's heavier modules (each was pulled in by one
# dockyard module for one name), nor the runtime's driver (the monitor runs the runtime).
RUN_NEVER = (
    *NEVER,
    *NO_RE,
    "socket",
    "selectors",
    "threading",
    "ctypes",
    "collections",
    "functools",
    "dockyard.runtime.oci",
)


def test_run_rm_starts_without_the_heavy_modules(ctr: CLI, tmp_path: Path) -> None:
    ctr("run", "--rm", "busybox", "true")  # the first one makes the default network
    for args in (
        ("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"),
        ("run", "--rm", "-e", "A=1", "--name", "lean-run", "busybox", "true"),
    ):
        r = run(ctr, tmp_path, "lean", *args)
        loaded = [m for m in RUN_NEVER if m in r.modules]
        assert not loaded, (args, loaded)
    r = run(ctr, tmp_path, "lean", "run", "--rm", "busybox", "sh", "-c", "echo out; exit 3")
    assert (r.returncode, r.stdout) == (3, "out\n")
    assert ctr("ps", "-aq").stdout == ""
