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
