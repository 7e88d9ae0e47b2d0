"""The daemon records the exits of the containers it starts (api/exits.py): the monitor
then starts no exit command (a whole ``dockyard`` process per container). A daemon that is
gone leaves that to the monitors again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import docker

from dockyard.api.exits import ExitWatcher
from dockyard.engine import Engine
from dockyard.model.container import ContainerSpec
from tests.api.test_server_load import own_daemon  # noqa: F401 - a fixture
from tests.conftest import CLI
from tests.engine.conftest import engine  # noqa: F401 - a fixture
from tests.helpers import wait_until


def test_an_exit_is_recorded_by_the_watcher_not_an_exit_command(
    engine: Engine,  # noqa: F811
    tmp_path: Path,
) -> None:
    """What the start route does: the watcher connects while the monitor holds the start,
    so even `true` cannot end unseen. Was: `dockyard container _exited` after every run."""
    marker = tmp_path / "exit-command-ran"
    # What the monitor would run instead of `dockyard container _exited ID PID`.
    engine.containers.lifecycle.command = ["/bin/sh", "-c", 'touch "$0"', str(marker)]
    cid = engine.containers.create(ContainerSpec("busybox", cmd=("sh", "-c", "exit 3")))
    watcher = ExitWatcher(engine.root, engine.run_root)
    sessions = engine.containers.sessions
    sessions.start_attached(cid, lambda: watcher.watch(sessions, cid))
    assert watcher.wait_recorded(cid, 30)
    c = engine.containers.records.load(cid)  # the row as stored: no reconciliation
    assert c.state.status == "exited" and c.state.exit_code == 3
    run_dir = Path(engine.containers.records.run_dir_of(cid))
    wait_until(lambda: not (run_dir / "monitor.pid").exists(), 20, "the monitor's end")
    assert not marker.exists()
    assert not Path(engine.run_root, "runc", cid).exists()  # the monitor released it


def _stored_status(cli: CLI, cid: str) -> str:
    """The container's status as its row says, read without dockyard (every dockyard read
    reconciles an ended container, which would record the exit itself)."""
    db = sqlite3.connect(cli.root / "metadata.db")
    try:
        (data,) = db.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
    finally:
        db.close()
    status: str = json.loads(data)["state"]["status"]
    return status


def test_a_killed_daemons_containers_still_record_their_exits(
    own_daemon: tuple[CLI, subprocess.Popen[bytes]],  # noqa: F811
) -> None:
    cli, proc = own_daemon
    client = docker.DockerClient(base_url=f"unix://{cli.run_root}/dockyard.sock", timeout=120)
    try:
        script = "while [ ! -e /go ]; do sleep 0.05; done; exit 5"
        ctr = client.containers.run("busybox", ["sh", "-c", script], detach=True)
    finally:
        client.close()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert _stored_status(cli, ctr.id) == "running"
    cli("exec", ctr.id, "touch", "/go")
    # Its monitor's exit command records it, as for a container the CLI started.
    wait_until(lambda: _stored_status(cli, ctr.id) == "exited", 30, "the exit recorded")
    assert json.loads(cli("inspect", ctr.id).stdout)[0]["State"]["ExitCode"] == 5
