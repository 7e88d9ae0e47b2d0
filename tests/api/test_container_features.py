"""The real docker CLI against ``dockyard daemon`` for restart policies, health checks,
pause/unpause, update and export: the routes behind them (POST /containers/{id}/pause,
/unpause, /update, GET /containers/{id}/export, RestartPolicy in create bodies, the health
filter of GET /containers/json, wait?condition=)."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from typing import Any

from tests.api.conftest import Daemon
from tests.helpers import wait_until


def state(api: Daemon, name: str) -> dict[str, object]:
    r = api.docker("inspect", "-f", "{{json .State}}", name)
    assert r.returncode == 0, r.stderr
    doc: dict[str, object] = json.loads(r.stdout)
    return doc


def test_restart_policy_through_the_api(api: Daemon) -> None:
    r = api.docker(
        "run", "--name", "apiloop", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 5"
    )
    assert r.returncode == 5, r.stderr  # `docker run` waits for the next exit only
    wait_until(lambda: state(api, "apiloop")["Status"] == "exited", 60, "the end")
    r = api.docker(
        "inspect", "-f", "{{.RestartCount}} {{.HostConfig.RestartPolicy.Name}}", "apiloop"
    )
    assert r.stdout.split() == ["2", "on-failure"]
    # wait (condition not-running) returns only once the loop is over.
    api.docker(
        "run",
        "-d",
        "--name",
        "apiwait",
        "--restart",
        "on-failure:1",
        "busybox",
        "sh",
        "-c",
        "sleep 0.3; exit 6",
    )
    r = api.docker("wait", "apiwait")
    assert (r.returncode, r.stdout) == (0, "6\n")
    assert api.docker("inspect", "-f", "{{.RestartCount}}", "apiwait").stdout == "1\n"
    r = api.docker("run", "-d", "--restart", "bogus", "busybox", "true")
    assert r.returncode == 125 and "invalid restart policy 'bogus'" in r.stderr


def test_pause_unpause_update_export(api: Daemon) -> None:
    r = api.docker("run", "-d", "--name", "apipause", "busybox", "sleep", "300")
    assert r.returncode == 0, r.stderr
    assert api.docker("pause", "apipause").stdout == "apipause\n"
    assert state(api, "apipause")["Status"] == "paused"
    r = api.docker("pause", "apipause")
    assert r.returncode == 1 and "is already paused" in r.stderr
    assert api.docker("unpause", "apipause").stdout == "apipause\n"
    assert state(api, "apipause")["Status"] == "running"
    r = api.docker(
        "update", "--cpus", "0.5", "--pids-limit", "40", "--restart", "unless-stopped", "apipause"
    )
    assert (r.returncode, r.stdout) == (0, "apipause\n"), r.stderr
    r = api.docker(
        "inspect",
        "-f",
        "{{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}",
        "apipause",
    )
    assert r.stdout.split() == ["500000000", "40", "unless-stopped"]
    r = api.docker("update", "--memory", "64m", "apipause")
    assert r.returncode == 1 and "update the memoryswap at the same time" in r.stderr
    r = api.docker("update", "--cpus", "1", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    api_export = api.client.api.export("apipause")
    data = b"".join(api_export)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        names = tf.getnames()
    assert ".dockerenv" in names and "bin/busybox" in names
    r = api.docker("export", "nosuch")
    assert r.returncode == 1 and "No such container: nosuch" in r.stderr
    api.docker("rm", "-f", "apipause")


def test_health_status_and_filter_through_the_api(api: Daemon) -> None:
    r = api.docker(
        "run",
        "-d",
        "--name",
        "apihealthy",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "300",
    )
    assert r.returncode == 0, r.stderr
    wait_until(
        lambda: (
            api.docker("ps", "--filter", "health=healthy", "--format", "{{.Names}}").stdout
            == "apihealthy\n"
        ),
        30,
        "healthy",
    )
    r = api.docker("ps", "--format", "{{.Status}}")
    assert r.stdout.rstrip().endswith("(healthy)")
    health = api.docker("inspect", "-f", "{{json .State.Health}}", "apihealthy").stdout
    assert json.loads(health)["Log"][0]["ExitCode"] == 0
    r = api.docker("ps", "--filter", "health=bogus")
    assert r.returncode == 1 and "Unrecognised filter value for health: bogus" in r.stderr
    r = api.docker("create", "--health-interval", "1us", "--health-cmd", "true", "busybox")
    assert r.returncode != 0 and "Interval in Healthcheck cannot be less than 1ms" in r.stderr


def test_health_status_events_through_the_api(api: Daemon) -> None:
    """docker-py follows ``GET /events?filters={"event":["health_status"]}`` while the docker
    CLI runs a container whose check fails, then passes: the monitor's events reach the
    daemon's stream; ``docker events --since --until`` reads them back."""
    stream = api.client.events(decode=True, filters={"event": "health_status"})
    seen: list[dict[str, Any]] = []

    def read() -> None:
        for e in stream:
            seen.append(e)
            if len(seen) == 2:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    t0 = f"{time.time():.3f}"
    try:
        r = api.docker("run", "-d", "--name", "apiflip", "-l", "app=flip", "--health-cmd",
                       "test -e /tmp/ok", "--health-interval", "1s", "--health-retries", "1",
                       "busybox", "sleep", "300")  # fmt: skip
        assert r.returncode == 0, r.stderr
        wait_until(lambda: len(seen) >= 1, 30, "the unhealthy event")
        assert api.docker("exec", "apiflip", "touch", "/tmp/ok").returncode == 0
        reader.join(timeout=30)
    finally:
        stream.close()
    cid = r.stdout.strip()
    assert [(e["Action"], e["status"], e["id"], e["from"]) for e in seen] == [
        ("health_status: unhealthy", "health_status: unhealthy", cid, "busybox"),
        ("health_status: healthy", "health_status: healthy", cid, "busybox"),
    ]
    assert seen[0]["Actor"] == {
        "ID": cid,
        "Attributes": {"app": "flip", "image": "busybox", "name": "apiflip"},
    }
    t1 = f"{time.time():.3f}"
    r = api.docker("events", "--since", t0, "--until", t1, "--filter", "event=health_status",
                   "--format", "{{.Status}} {{.Actor.Attributes.name}}")  # fmt: skip
    assert r.stdout.splitlines() == [
        "health_status: unhealthy apiflip",
        "health_status: healthy apiflip",
    ]
    api.docker("rm", "-f", "apiflip")
