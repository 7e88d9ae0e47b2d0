"""Helpers for build tests: a context dir per test and a check that nothing was left behind."""

from __future__ import annotations

import http.server
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CLI, remove_runtime_leftovers


class Ctx:
    def __init__(self, cli: CLI, path: Path) -> None:
        self.cli = cli
        self.path = path

    def write(self, files: dict[str, str | bytes]) -> None:
        for name, body in files.items():
            p = self.path / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(body, str):
                body = body.encode()
            p.write_bytes(body)

    def build(self, dockerfile: str | None = None, *args: str, check: bool = True):  # type: ignore[no-untyped-def]
        if dockerfile is not None:
            (self.path / "Dockerfile").write_text(dockerfile)
        return self.cli("build", *args, str(self.path), check=check, timeout=300)

    def inspect(self, ref: str) -> dict:  # type: ignore[type-arg]
        return json.loads(self.cli("image", "inspect", ref).stdout)[0]  # type: ignore[no-any-return]

    def run(self, ref: str, *cmd: str) -> str:
        return self.cli("run", "--rm", ref, *cmd).stdout


def leftovers(cli: CLI) -> list[str]:
    """Mounts, build containers and temp dirs a build must never leave behind."""
    out = []
    with open("/proc/self/mountinfo") as f:
        out += [f"mount {line.split()[4]}" for line in f if str(cli.root) in line.split()[4]]
    tmp = cli.root / "snapshots" / "tmp"
    if tmp.is_dir():
        out += [f"tmp {n}" for n in os.listdir(tmp)]
    btmp = cli.root / "build" / "tmp"
    if btmp.is_dir():
        out += [f"build tmp {n}" for n in os.listdir(btmp)]
    state = cli.run_root / "runc"
    if state.is_dir():
        out += [f"runc {n}" for n in os.listdir(state) if n.startswith("build-")]
    return out


@pytest.fixture
def ctx(bb: CLI, tmp_path: Path) -> Iterator[Ctx]:
    path = tmp_path / "ctx"
    path.mkdir()
    c = Ctx(bb, path)
    try:
        yield c
    finally:
        # Whatever a test did, no build container or mount outlives it.
        remove_runtime_leftovers(bb)


def tar_bytes(files: dict[str, bytes]) -> bytes:
    from tests.helpers import tar_of

    return tar_of(files, parents=False)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir(exist_ok=True)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", root
    finally:
        srv.shutdown()
        srv.server_close()
