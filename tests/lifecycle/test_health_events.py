"""``health_status: <status>`` events: the container's monitor appends one to the store's
event journal at each change of its health status, as Docker's daemon does (checked against
Docker 20.10: once per change, not per check; none at the start or the stop; the name as it
is when the event is logged, so after a ``rename`` the new one)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import CLI, terminate
from tests.helpers import reference_docker, wait_until
from tests.lifecycle.conftest import Docker
from tests.lifecycle.test_health import health, results


@pytest.fixture
def maybe_docker() -> Iterator[Docker | None]:
    """The reference Docker when it runs here (its containers removed afterwards), else
    None: the comparison is then left out, the test of dockyard itself still runs."""
    if not reference_docker():
        yield None
        return
    d = Docker()
    try:
        yield d
    finally:
        d.cleanup()


def now() -> str:
    return f"{time.time():.9f}"


def cid_of(cli: CLI | Docker, name: str) -> str:
    doc: dict[str, Any] = json.loads(cli("inspect", name).stdout)[0]
    return str(doc["Id"])


def checked(cli: CLI | Docker, name: str, status: str, runs: int) -> None:
    """Wait until ``name`` is ``status`` with at least ``runs`` results in its log (later
    checks of the same status must not be events)."""

    def done() -> bool:
        h = health(cli, name) or {}
        return h.get("Status") == status and len(h.get("Log") or []) >= runs

    wait_until(done, 60, f"{name} {status} after {runs} checks")


def health_events(cli: CLI | Docker, since: str, *flags: str) -> list[str]:
    """``events --since --until now --filter event=health_status`` as the user types it."""
    out = cli("events", "--since", since, "--until", now(), "--filter", "event=health_status",
              *flags).stdout  # fmt: skip
    return out.splitlines()


class DockerEvents:
    """``docker events --filter event=health_status`` followed while a test runs. Docker
    keeps only its last 256 events, which the other tests using the reference Docker on this
    machine overflow within a minute: its ``--since`` cannot be relied on here."""

    def __init__(self, *flags: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["docker", "events", "--filter", "event=health_status", *flags],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def until(self, count: int) -> list[str]:
        """The first ``count`` lines, once they came; the follower ends."""
        try:
            wait_until(lambda: len(self.lines) >= count, 60, f"{count} docker events")
        finally:
            terminate(self.proc)
            self.reader.join(10)
        return self.lines


def scenario(cli: CLI | Docker, healthy: str, unhealthy: str) -> str:
    """The issue's commands: a healthy container, then an unhealthy one, each checked a few
    times, then stopped. The ``--since`` time it began."""
    start = now()
    cli("run", "-d", "--name", healthy, "-l", "tier=web", "--health-cmd", "true",
        "--health-interval", "1s", "busybox", "sleep", "30")  # fmt: skip
    checked(cli, healthy, "healthy", 3)
    cli("run", "-d", "--name", unhealthy, "--health-cmd", "false", "--health-retries", "1",
        "--health-interval", "1s", "busybox", "sleep", "30")  # fmt: skip
    checked(cli, unhealthy, "unhealthy", 3)
    cli("stop", "-t", "0", healthy, unhealthy)
    return start


def lines_shape(lines: list[str], names: dict[str, str], ids: dict[str, str]) -> list[str]:
    """Docker's default event lines without their times, IDs and names made symbolic."""
    out = []
    for line in lines:
        _, rest = line.split(" ", 1)
        for real, symbol in (*ids.items(), *names.items()):
            rest = re.sub(rf"\b{re.escape(real)}\b", symbol, rest)
        out.append(rest)
    return out


def test_health_status_events_as_docker(ctr: CLI, maybe_docker: Docker | None) -> None:
    start = scenario(ctr, "hc", "uc")
    ours = health_events(ctr, start)
    shape = lines_shape(ours, {"hc": "NAME1", "uc": "NAME2"},
                        {cid_of(ctr, "hc"): "ID1", cid_of(ctr, "uc"): "ID2"})  # fmt: skip
    assert shape == [
        "container health_status: healthy ID1 (image=busybox, name=NAME1, tier=web)",
        "container health_status: unhealthy ID2 (image=busybox, name=NAME2)",
    ]
    assert health_events(ctr, start, "--format", "{{.Status}}") == [
        "health_status: healthy",
        "health_status: unhealthy",
    ]
    # The JSON message is Docker's: status/id/from beside Type/Action/Actor.
    first = json.loads(health_events(ctr, start, "--format", "{{json .}}")[0])
    assert list(first) == ["status", "id", "from", "Type", "Action", "Actor", "scope", "time",
                           "timeNano"]  # fmt: skip
    assert (first["status"], first["from"], first["Type"]) == (
        "health_status: healthy",
        "busybox",
        "container",
    )
    assert first["Actor"] == {
        "ID": cid_of(ctr, "hc"),
        "Attributes": {"image": "busybox", "name": "hc", "tier": "web"},
    }
    # Only these: no event per check, none for the start's "starting" or the stop.
    assert len(results(ctr, "hc")) >= 3
    # Filters work on them as on any event.
    by_name = health_events(ctr, start, "--filter", "container=uc", "--format", "{{.Status}}")
    assert by_name == ["health_status: unhealthy"]
    by_label = health_events(ctr, start, "--filter", "label=tier=web", "--format", "{{.ID}}")
    assert by_label == [cid_of(ctr, "hc")]
    exact = ctr(
        "events",
        "--since",
        start,
        "--until",
        now(),
        "--filter",
        "event=health_status: unhealthy",
        "--format",
        "{{.Actor.Attributes.name}}",
    )
    assert exact.stdout == "uc\n"

    docker = maybe_docker
    if docker is None:
        return  # no reference Docker here: the comparison is left out
    h, u = docker.name("h"), docker.name("u")
    follower = DockerEvents()
    scenario(docker, h, u)
    theirs = follower.until(2)
    ids = {cid_of(docker, h): "ID1", cid_of(docker, u): "ID2"}
    assert lines_shape(theirs, {h: "NAME1", u: "NAME2"}, ids) == shape


NAMED = "{{.Status}} {{.Actor.Attributes.name}}"


def renamed_and_restarted(
    cli: CLI | Docker, first: str, second: str, seen: Callable[[], int]
) -> None:
    """Unhealthy as ``first``, renamed ``second``, made healthy, restarted (healthy again:
    the restart begins at ``starting``); ``seen``: how many health events there are."""
    cli("run", "-d", "--name", first, "--health-cmd", "test -e /tmp/ok", "--health-retries",
        "1", "--health-interval", "1s", "busybox", "sleep", "300")  # fmt: skip
    checked(cli, first, "unhealthy", 1)
    cli("rename", first, second)
    cli("exec", second, "touch", "/tmp/ok")
    checked(cli, second, "healthy", 1)
    cli("restart", "-t", "0", second)
    wait_until(lambda: seen() >= 3, 60, "healthy again after the restart")


def test_rename_and_restart_as_docker(ctr: CLI, maybe_docker: Docker | None) -> None:
    start = now()
    renamed_and_restarted(ctr, "before", "after", lambda: len(health_events(ctr, start)))
    ours = health_events(ctr, start, "--format", NAMED)
    assert ours == [
        "health_status: unhealthy before",
        "health_status: healthy after",
        "health_status: healthy after",
    ]
    docker = maybe_docker
    if docker is None:
        return  # no reference Docker here: the comparison is left out
    first, second = docker.name("before"), docker.name("after")
    follower = DockerEvents("--format", NAMED)
    renamed_and_restarted(docker, first, second, lambda: len(follower.lines))
    theirs = follower.until(3)
    assert [line.replace(first, "before").replace(second, "after") for line in theirs] == ours


def test_a_journal_that_cannot_be_written_does_not_stop_the_checks(ctr: CLI) -> None:
    """``<root>/events`` is not a directory: no event is recorded, the check runs on."""
    (ctr.root / "events").write_text("not a directory\n")
    start = now()
    ctr("run", "-d", "--name", "mute", "--health-cmd", "true", "--health-interval", "1s",
        "busybox", "sleep", "30")  # fmt: skip
    checked(ctr, "mute", "healthy", 2)
    assert health_events(ctr, start) == []
    assert (ctr.root / "events").read_text() == "not a directory\n"
    ctr("rm", "-f", "mute")


def test_the_monitors_event_writer_stays_lean() -> None:
    """The monitor of a container with a check imports runtime/healthcheck.py, and with it
    the event journal's writer (store/journal.py, not its readers): as the monitor does
    (``python -I -S``, the package root on sys.path), that brings no more of dockyard than
    these, and neither the store's database nor the json package (each monitor's memory is
    measured against Docker's shim)."""
    import dockyard

    root = os.path.dirname(os.path.dirname(os.path.abspath(dockyard.__file__)))
    code = (
        f"import sys; sys.path.append({root!r}); import dockyard.runtime.healthcheck; "
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert {m for m in loaded if m.startswith("dockyard")} == {
        "dockyard",
        "dockyard.imports",  # the package's own module finder (dockyard/__init__.py)
        "dockyard.fastjson",
        "dockyard.runtime",
        "dockyard.runtime.healthcheck",
        "dockyard.store",
        "dockyard.store.journal",
    }
    assert not loaded & {"json", "sqlite3", "_sqlite3", "typing", "re"}
