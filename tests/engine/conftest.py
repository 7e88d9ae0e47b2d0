"""An ``Engine`` driven in-process on its own store (a copy of the session's busybox store):
the model and every container operation tested without a subprocess per assertion. Real
runc, overlayfs and bridges all the same; everything is removed afterwards, also on failure."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine import Engine
from tests.conftest import CLI, _cleanup_containers


@pytest.fixture
def engine(tmp_path: Path, busybox_template: Path) -> Iterator[Engine]:
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", str(busybox_template), str(root)], check=True)
    e = Engine(root=str(root), run_root=str(tmp_path / "run"))
    try:
        yield e
    finally:
        e.close()
        _cleanup_containers(CLI(root, tmp_path / "run"))
