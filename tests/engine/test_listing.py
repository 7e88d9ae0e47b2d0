"""``ps`` and ``GET /containers/json`` list from the entry each row keeps
(model/docker/listing.py): the same entries the model gives for containers in every state,
with no container decoded; rows that kept none (written before) and rows that are not settled
(a monitor gone) are read through the model, and the first keep their entry from then on."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pytest

from dockyard.engine import Engine
from dockyard.engine.containers import records
from dockyard.model.container import (
    ContainerSpec,
    Healthcheck,
    Mount,
    PortBinding,
)
from dockyard.model.docker.shapes import list_shape
from tests.helpers import wait_until


def _run(engine: Engine, s: ContainerSpec) -> str:
    cid, code = engine.containers.run(s, detach=True, detach_keys="")
    assert code is None
    return cid


def _by_the_model(engine: Engine, all_containers: bool, now: float) -> list[dict[str, object]]:
    svc = engine.containers
    return [
        list_shape(c, svc._volume_path, now)  # noqa: SLF001 - the engine's own volume paths
        for c in svc.list_containers(all_containers=all_containers)
    ]


def _decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = records.decode

    def decode(text: str | bytes) -> object:
        seen.append(str(text)[:40])
        return real(text)

    monkeypatch.setattr(records, "decode", decode)
    return seen


def test_entries_kept_with_the_rows_are_the_models(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.networks.create("listnet", subnet="10.214.45.0/24")
    engine.volumes.create("listvol")
    engine.containers.create(
        ContainerSpec("busybox", name="made", cmd=("echo", "a b"), labels=(("team", "x"),))
    )
    _run(
        engine,
        ContainerSpec(
            "busybox",
            name="served",
            cmd=("sleep", "1000"),
            ports=(
                PortBinding(80, "tcp", "127.0.0.1", ""),
                PortBinding(81, "udp", "127.0.0.1", ""),
            ),
            exposed_ports=("82/tcp",),
            mounts=(Mount("volume", "/data", source="listvol"), Mount("volume", "/anon")),
        ),
    )
    _run(
        engine,
        ContainerSpec("busybox", name="netted", cmd=("sleep", "1000"), network_mode="listnet"),
    )
    engine.containers.pause("netted")
    engine.containers.create(ContainerSpec("busybox", name="failed", cmd=("sh", "-c", "exit 3")))
    engine.containers.start("failed")
    assert engine.containers.wait("failed") == 3

    now = time.time() + 7200  # "2 hours ago" for every one of them, in both readings
    monkeypatch.setattr(time, "time", lambda: now)
    for all_containers in (False, True):
        expected = _by_the_model(engine, all_containers, now)
        seen = _decodes(monkeypatch)
        listed = engine.containers.list_shapes(all_containers=all_containers)
        assert seen == []  # no row decoded
        monkeypatch.undo()
        monkeypatch.setattr(time, "time", lambda: now)
        assert listed == expected
        assert [list(e) for e in listed] == [list(e) for e in expected]  # Docker's key order
    statuses = {
        e["Names"][0]: e["Status"] for e in engine.containers.list_shapes(all_containers=True)
    }
    assert statuses == {
        "/made": "Created",
        "/served": "Up 2 hours",
        "/netted": "Up 2 hours (Paused)",
        "/failed": "Exited (3) 2 hours ago",
    }
    served = next(e for e in listed if e["Names"] == ["/served"])
    assert {p["PrivatePort"] for p in served["Ports"]} == {80, 81, 82}  # type: ignore[index]
    engine.containers.unpause("netted")


def test_a_running_row_whose_monitor_is_gone_lists_as_exited(engine: Engine) -> None:
    """The stored entry says running; the monitor died: listing reconciles the row (the exit
    is recorded) instead of showing the entry."""
    _run(engine, ContainerSpec("busybox", name="m1", cmd=("sleep", "1000")))
    os.kill(engine.containers.get("m1").state.monitor_pid, signal.SIGKILL)
    wait_until(
        lambda: engine.containers.list_shapes() == [], 20, "ps to stop listing the container"
    )
    (entry,) = engine.containers.list_shapes(all_containers=True)
    assert entry["State"] == "exited" and str(entry["Status"]).startswith("Exited (255)")


def test_health_is_read_live_not_from_the_entry(engine: Engine) -> None:
    _run(
        engine,
        ContainerSpec(
            "busybox",
            name="h1",
            cmd=("sleep", "1000"),
            healthcheck=Healthcheck(test=("CMD", "true"), interval=100_000_000),
        ),
    )
    wait_until(
        lambda: "(healthy)" in str(engine.containers.list_shapes()[0]["Status"]),
        30,
        "ps to show the container healthy",
    )


def test_rows_written_before_entries_are_listed_and_keep_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store of the previous schema (no entry column): opening it adds the column, listing
    reads those rows through the model once and keeps their entries."""
    engine.containers.create(ContainerSpec("busybox", name="old1", cmd=("true",)))
    engine.containers.create(ContainerSpec("busybox", name="old2", cmd=("true",)))
    now = time.time()
    expected = _by_the_model(engine, True, now)
    engine.close()
    db = os.path.join(engine.root, "metadata.db")
    conn = sqlite3.connect(db)
    # The table as schema 3 made it (its indexes are made again by the migration).
    conn.executescript(
        """BEGIN;
        CREATE TABLE v3 (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,
            image_id TEXT NOT NULL, created REAL NOT NULL, data TEXT NOT NULL);
        INSERT INTO v3 SELECT id, name, image_id, created, data FROM containers;
        DROP TABLE containers;
        ALTER TABLE v3 RENAME TO containers;
        PRAGMA user_version = 3;
        COMMIT;"""
    )
    conn.close()

    fresh = Engine(root=engine.root, run_root=engine.run_root)
    try:
        monkeypatch.setattr(time, "time", lambda: now)
        seen = _decodes(monkeypatch)
        assert fresh.containers.list_shapes(all_containers=True) == expected
        assert len(seen) == 2  # read through the model, this once
        seen.clear()
        assert fresh.containers.list_shapes(all_containers=True) == expected
        assert seen == []
        version = fresh.store.db.one("PRAGMA user_version")
        assert version is not None and version[0] == 4
    finally:
        fresh.close()


def test_an_entry_of_another_form_is_read_through_the_model(engine: Engine) -> None:
    """An entry of an older form is replaced by the first listing; one a newer release wrote
    is not trusted (the row is read), and left as it is."""
    old = engine.containers.create(ContainerSpec("busybox", name="o1", cmd=("true",)))
    new = engine.containers.create(ContainerSpec("busybox", name="n1", cmd=("true",)))
    newer = '{"_state": {"v": 9}}'
    conn = sqlite3.connect(os.path.join(engine.root, "metadata.db"))
    with conn:
        conn.execute("UPDATE containers SET entry = ? WHERE id = ?", ('{"Id": "x"}', old))
        conn.execute("UPDATE containers SET entry = ? WHERE id = ?", (newer, new))
    conn.close()
    for _ in range(2):
        listed = engine.containers.list_shapes(all_containers=True)
        assert [(e["Id"], e["Status"]) for e in listed] == [(new, "Created"), (old, "Created")]
    kept = dict(engine.store.db.query("SELECT id, entry FROM containers"))
    assert kept[new] == newer
    assert '"v": 1' in kept[old]


def test_a_moved_store_lists_its_volumes_where_they_are_now(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Paths are never stored: a volume's Source follows the store's root."""
    engine.volumes.create("movedvol")
    engine.containers.create(
        ContainerSpec(
            "busybox", name="v1", cmd=("true",), mounts=(Mount("volume", "/d", source="movedvol"),)
        )
    )
    engine.close()
    moved = tmp_path / "moved-root"
    subprocess.run(["cp", "-a", engine.root, str(moved)], check=True)
    there = Engine(root=str(moved), run_root=str(tmp_path / "moved-run"))
    try:
        (entry,) = there.containers.list_shapes(all_containers=True)
        assert [m["Source"] for m in entry["Mounts"]] == [  # type: ignore[attr-defined]
            str(moved / "volumes" / "movedvol" / "_data")
        ]
    finally:
        there.close()
