"""``dockyard logs``' lean path (cli/logs_fast.py) against the normal argparse path: the same
exit code, stdout and stderr for every form, and the lean one without argparse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.cli.logs_fast import parse
from tests.conftest import CLI

# argv: report-file, mode ("lean" | "normal"), then dockyard's own arguments.
BOOT = """
import atexit, json, os, sys
report, mode = sys.argv[1], sys.argv[2]
sys.argv[1:3] = []
if mode == "normal":
    import dockyard.cli.logs_fast
    dockyard.cli.logs_fast.lean_logs = lambda *args: None
real_exit = os._exit
def _exit(code):
    with open(report, "w") as f:
        json.dump(sorted(sys.modules), f)
    real_exit(code)
os._exit = _exit
from dockyard.main import main
sys.exit(main())
"""


def run(cli: CLI, tmp_path: Path, mode: str, *args: str) -> tuple[int, bytes, bytes, list[str]]:
    report = tmp_path / f"report-{mode}.json"
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", BOOT, str(report), mode]
        + ["--root", str(cli.root), "--run-root", str(cli.run_root), "logs", *args],
        capture_output=True,
        timeout=120,
    )
    modules = json.loads(report.read_text()) if report.exists() else []
    return proc.returncode, proc.stdout, proc.stderr, modules


FORMS = [
    ["cc"],
    ["--tail", "2", "cc"],
    ["-n", "1", "cc"],
    ["--tail=0", "cc"],
    ["-t", "--tail", "1", "cc"],
    ["--timestamps", "--details", "cc"],
    ["--since", "2000-01-01", "cc"],
    ["--until=2000-01-01T00:00:00Z", "cc"],
    ["--since", "1h", "--until", "0", "cc"],
    ["--", "cc"],
    ["--tail", "x", "cc"],
    ["nosuch"],
    ["--since", "foo", "cc"],
    ["--until", "2026-13-01", "cc"],
    ["quiet"],
]


@pytest.fixture
def two(ctr: CLI) -> CLI:
    ctr("run", "--name", "cc", "busybox", "sh", "-c", "echo a; sleep 0.2; echo b >&2; echo c")
    ctr("run", "--name", "quiet", "--log-driver", "none", "busybox", "true")
    return ctr


@pytest.mark.parametrize("args", FORMS, ids=[" ".join(f) for f in FORMS])
def test_lean_and_normal_paths_agree(two: CLI, tmp_path: Path, args: list[str]) -> None:
    assert parse(args) is not None
    code, out, err, modules = run(two, tmp_path, "lean", *args)
    n_code, n_out, n_err, _ = run(two, tmp_path, "normal", *args)
    assert (code, out, err) == (n_code, n_out, n_err)
    if code == 0:
        assert "argparse" not in modules  # it took the lean path
    else:
        assert err.startswith(b"Error: ")  # the normal path explained it


@pytest.mark.parametrize(
    "args", [["-f", "cc"], ["-tf", "cc"], ["-h"], [], ["c", "d"], ["--bogus", "cc"], ["-n"]]
)
def test_other_forms_take_the_normal_path(args: list[str]) -> None:
    assert parse(args) is None


def test_a_named_container_is_read_without_opening_the_store(two: CLI, tmp_path: Path) -> None:
    """By name or full ID the lean path finds the log through the on-disk name index: no
    SQLite at all (engine/quicklogs.py); an ID prefix asks the store. All print the same."""
    cid = two("inspect", "--format", "{{.Id}}", "cc").stdout.strip()
    outputs = set()
    for ref, store in (("cc", False), ("/cc", False), (cid, False), (cid[:12], True)):
        code, out, err, modules = run(two, tmp_path, "lean", "--tail", "2", ref)
        assert code == 0, err
        assert ("_sqlite3" in modules) == store, ref
        outputs.add((out, err))
    assert outputs == {(b"c\n", b"b\n")}


def test_rename_rm_and_a_reused_name_read_the_right_log(ctr: CLI, tmp_path: Path) -> None:
    """The index never names the wrong container: after ``rename`` the old name is gone,
    after ``rm`` the name is free, and a new container with it shows its own log."""
    ctr("run", "--name", "first", "busybox", "echo", "one")
    ctr("rename", "first", "second")
    code, _, err, _ = run(ctr, tmp_path, "lean", "first")
    assert (code != 0, err) == (True, b"Error: No such container: first\n")
    code, out, _, modules = run(ctr, tmp_path, "lean", "--tail", "1", "second")
    assert (code, out) == (0, b"one\n") and "_sqlite3" not in modules
    ctr("rm", "second")
    code, _, err, _ = run(ctr, tmp_path, "lean", "second")
    assert (code != 0, err) == (True, b"Error: No such container: second\n")
    ctr("run", "--name", "second", "busybox", "echo", "two")
    ctr("run", "--rm", "--name", "gone", "busybox", "echo", "three")
    code, out, _, modules = run(ctr, tmp_path, "lean", "second")
    assert (code, out) == (0, b"two\n") and "_sqlite3" not in modules
    assert sorted(p.name for p in (ctr.root / "container-names").iterdir()) == ["second"]


def test_a_store_without_the_index_and_system_check(two: CLI, tmp_path: Path) -> None:
    """A store from before the index (or one whose links a crash lost) reads through SQLite;
    a link that disagrees with the table is a leftover ``system check --repair`` fixes."""
    import shutil

    index = two.root / "container-names"
    shutil.rmtree(index)
    code, out, _, modules = run(two, tmp_path, "lean", "cc")
    assert (code, out) == (0, b"a\nc\n") and "_sqlite3" in modules
    index.mkdir()
    (index / "nosuch").symlink_to("0" * 64)
    r = two("system", "check", check=False)
    assert "stale container name link 'nosuch'" in r.stdout
    r = two("system", "check", "--repair")
    assert "removed: stale container name link 'nosuch'" in r.stdout
    assert sorted(p.name for p in index.iterdir()) == ["cc", "quiet"]
    code, out, _, modules = run(two, tmp_path, "lean", "cc")
    assert (code, out) == (0, b"a\nc\n") and "_sqlite3" not in modules


def test_the_local_driver_is_read_without_the_store_too(ctr: CLI, tmp_path: Path) -> None:
    ctr("run", "--name", "loc", "--log-driver", "local", "busybox", "sh", "-c", "echo x; echo y")
    code, out, err, modules = run(ctr, tmp_path, "lean", "--tail", "1", "loc")
    assert (code, out, err) == run(ctr, tmp_path, "normal", "--tail", "1", "loc")[:3]
    assert (code, out) == (0, b"y\n") and "_sqlite3" not in modules
