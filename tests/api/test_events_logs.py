"""``GET /events`` and ``GET /containers/{id}/logs`` with since/until, read by docker-py and
the docker CLI against ``dockyard daemon``."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.api.conftest import Daemon


def test_dockerpy_reads_past_events(api: Daemon) -> None:
    t0 = time.time()
    api.cli("run", "--name", "pyev", "busybox", "true")
    api.cli("rm", "pyev")
    t1 = time.time()
    evs = list(api.client.events(since=t0, until=t1, decode=True, filters={"type": "container"}))
    assert [e["Action"] for e in evs] == ["create", "attach", "start", "die", "destroy"]
    assert evs[0]["Actor"]["Attributes"] == {"image": "busybox", "name": "pyev"}
    assert evs[0]["status"] == "create" and evs[0]["from"] == "busybox"
    only = api.client.events(since=t0, until=t1, decode=True, filters={"event": "die"})
    assert [e["Actor"]["Attributes"]["exitCode"] for e in only] == ["0"]


def test_dockerpy_follows_events_written_by_another_process(api: Daemon) -> None:
    stream = api.client.events(decode=True, filters={"type": "container", "container": "live"})
    seen: list[dict[str, Any]] = []

    def read() -> None:
        for e in stream:
            seen.append(e)
            if e["Action"] == "destroy":
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        time.sleep(0.5)  # the daemon sends only what is written after the request
        api.cli("run", "--rm", "--name", "live", "busybox", "sh", "-c", "exit 2", check=False)
        reader.join(timeout=30)
    finally:
        stream.close()
    assert [e["Action"] for e in seen] == ["create", "attach", "start", "die", "destroy"]
    assert seen[3]["Actor"]["Attributes"]["exitCode"] == "2"


def test_docker_cli_events_and_since_until(api: Daemon) -> None:
    t0 = f"{time.time():.3f}"
    api.cli("volume", "create", "clievvol")
    api.cli("volume", "rm", "clievvol")
    t1 = f"{time.time():.3f}"
    r = api.docker("events", "--since", t0, "--until", t1, "--filter", "type=volume")
    assert r.returncode == 0, r.stderr
    ours = api.cli("events", "--since", t0, "--until", t1, "--filter", "type=volume").stdout
    assert r.stdout == ours
    assert [line.split()[1:4] for line in ours.splitlines()] == [
        ["volume", "create", "clievvol"],
        ["volume", "destroy", "clievvol"],
    ]
    bad = api.docker("events", "--since", t1, "--until", t0)
    assert "cannot be after `until` time" in bad.stderr


def test_logs_since_until_through_the_api(api: Daemon) -> None:
    ct = api.client.containers.run(
        "busybox", ["sh", "-c", "echo one; sleep 1.2; echo two; sleep 1.2; echo three"],
        detach=True,
    )  # fmt: skip
    ct.wait(timeout=60)
    stamped = ct.logs(timestamps=True).decode().splitlines()
    times = [line.split(" ", 1)[0] for line in stamped]
    from dockyard.units import parse_time

    second = parse_time(times[1])
    assert second is not None
    assert ct.logs(since=int(second)) == b"two\nthree\n"
    assert ct.logs(until=int(second)) == b"one\n"
    assert ct.logs(tail=1) == b"three\n"
    r = api.docker("logs", "--since", times[1], "--until", times[1], ct.id)
    assert r.stdout == "two\n"
    ct.remove()
