"""The suite runs every test in the tree: pytest skips some directory names by default
(``build``, ``dist``, ``venv``...), which once kept 128 builder tests out of every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_test_file_in_the_tree_is_collected() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    collected = {line.split("::", 1)[0] for line in out.stdout.splitlines() if "::" in line}
    in_tree = {
        str(p.relative_to(TESTS.parent))
        for p in TESTS.rglob("test_*.py")
        if "__pycache__" not in p.parts
    }
    assert in_tree - collected == set(), "test files the suite's command does not collect"
    assert collected <= in_tree


def test_the_fast_lane_names_modules_that_exist() -> None:
    from tests.conftest import FAST_MODULES

    missing = {m for m in FAST_MODULES if not (TESTS.parent / m).is_file()}
    assert missing == set()
