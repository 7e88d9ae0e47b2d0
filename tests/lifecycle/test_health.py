"""Health checks: ``HEALTHCHECK`` in a Dockerfile and ``--health-*``, run by the container's
monitor; ``State.Health`` in inspect and the STATUS words of ``ps`` as Docker shows them,
``--filter health=``, ``--no-healthcheck``, bad values, and a monitor killed mid-check."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime.healthcheck import go_duration
from tests.conftest import CLI
from tests.helpers import wait_until
from tests.lifecycle.conftest import Docker, consistent


def health(cli: CLI | Docker, name: str) -> dict[str, Any] | None:
    doc = json.loads(cli("inspect", name).stdout)[0]
    h: dict[str, Any] | None = doc["State"].get("Health")
    return h


def health_is(cli: CLI | Docker, name: str, want: str) -> Callable[[], bool]:
    return lambda: (health(cli, name) or {}).get("Status") == want


def results(cli: CLI | Docker, name: str) -> list[dict[str, Any]]:
    log: list[dict[str, Any]] = (health(cli, name) or {}).get("Log") or []
    return log


def status(cli: CLI | Docker, name: str) -> str:
    return cli("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}").stdout.strip()


def shape(h: dict[str, Any] | None) -> Any:
    """State.Health without its times: what both engines must agree on."""
    if h is None:
        return None
    log = [(e["ExitCode"], e["Output"], sorted(e)) for e in h["Log"]]
    return (sorted(h), h["Status"], h["FailingStreak"], log)


def test_go_durations() -> None:
    # The timeout message quotes Go's Duration.String().
    cases = {200_000_000: "200ms", 30 * 10**9: "30s", 90 * 10**9: "1m30s", 1_500_000_000: "1.5s"}
    cases |= {3600 * 10**9: "1h0m0s", 1_000: "1µs", 0: "0s", 2_500_000: "2.5ms"}
    assert {ns: go_duration(ns) for ns in cases} == cases


def test_health_cmd_unhealthy_then_healthy_as_docker(ctr: CLI, docker: Docker) -> None:
    """``--health-cmd 'test -e /tmp/ok'`` every second, 2 retries, on a container that makes
    /tmp/ok after a few seconds: starting, unhealthy, healthy, in inspect and ps, as Docker."""
    flags = ["--health-cmd", "test -e /tmp/ok", "--health-interval", "1s", "--health-retries", "2"]
    # The file appears only when the test says so: the same sequence for both engines.
    script = "while [ ! -e /tmp/go ]; do sleep 0.1; done; touch /tmp/ok; sleep 300"
    name = docker.name("health")
    ctr("run", "-d", "--name", "health", *flags, "busybox", "sh", "-c", script)
    docker("run", "-d", "--name", name, *flags, "busybox", "sh", "-c", script)
    for cli, n in ((ctr, "health"), (docker, name)):
        # (A first check may have failed already: not counted as unhealthy before 2.)
        assert status(cli, n).endswith("(health: starting)")
        assert (health(cli, n) or {}).get("Status") == "starting"
    # Each engine's health as first seen unhealthy, both watched at once: the checks go on
    # every second, so one read later would count more failures.
    first: dict[str, Any] = {}

    def both_unhealthy() -> bool:
        for cli, n in ((ctr, "health"), (docker, name)):
            h = health(cli, n) if n not in first else None
            if h is not None and h.get("Status") == "unhealthy":
                first[n] = shape(h)
        return len(first) == 2

    wait_until(both_unhealthy, 30, "both unhealthy")
    for cli, n in ((ctr, "health"), (docker, name)):
        assert status(cli, n).endswith("(unhealthy)")
    assert first["health"] == first[name]
    assert ctr("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}").stdout == "health\n"
    ctr("exec", "health", "touch", "/tmp/go")
    docker("exec", name, "touch", "/tmp/go")
    for cli, n in ((ctr, "health"), (docker, name)):
        wait_until(health_is(cli, n, "healthy"), 30, f"{n} healthy")
        assert status(cli, n).endswith("(healthy)")
    ours, theirs = health(ctr, "health"), health(docker, name)
    assert ours is not None and theirs is not None
    assert ours["FailingStreak"] == theirs["FailingStreak"] == 0
    assert ours["Log"][-1]["ExitCode"] == 0
    assert ctr("ps", "--filter", "health=healthy", "--format", "{{.Names}}").stdout == "health\n"
    assert ctr("ps", "--filter", "health=unhealthy", "-q").stdout == ""
    # Stopped: Docker keeps the last results, the status becomes unhealthy.
    ctr("stop", "-t", "0", "health")
    docker("stop", "-t", "0", name)
    ours, theirs = health(ctr, "health"), health(docker, name)
    assert ours is not None and theirs is not None
    assert ours["Status"] == theirs["Status"] == "unhealthy"
    assert ours["FailingStreak"] == theirs["FailingStreak"] == 0
    assert status(ctr, "health").startswith("Exited (137)")


def test_output_and_timeout_as_docker(ctr: CLI, docker: Docker) -> None:
    """Output is stdout and stderr together; a check over its timeout is -1 with Docker's
    message; the log keeps the last 5."""
    noisy = ["--health-cmd", "echo out; echo err >&2; exit 2", "--health-interval", "1s"]
    slow = ["--health-cmd", "sleep 3", "--health-interval", "1s", "--health-timeout", "200ms"]
    for flags, n in ((noisy, "noisy"), (slow, "slow")):
        theirs = docker.name(n)
        ctr("run", "-d", "--name", n, *flags, "busybox", "sleep", "300")
        docker("run", "-d", "--name", theirs, *flags, "busybox", "sleep", "300")
        for cli, name in ((ctr, n), (docker, theirs)):
            wait_until(lambda c=cli, x=name: len(results(c, x)) >= 2, 30, f"2 results of {name}")
        ours = health(ctr, n)
        assert shape(ours)[0] == shape(health(docker, theirs))[0]
        entry, other = results(ctr, n)[0], results(docker, theirs)[0]
        assert sorted(entry) == sorted(other) == ["End", "ExitCode", "Output", "Start"]
        # stdout and stderr are two pipes: no order between them (Docker's neither).
        assert (entry["ExitCode"], sorted(entry["Output"].splitlines())) == (
            other["ExitCode"],
            sorted(other["Output"].splitlines()),
        )
    assert sorted(results(ctr, "noisy")[0]["Output"].splitlines(keepends=True)) == [
        "err\n",
        "out\n",
    ]
    first = results(ctr, "slow")[0]
    assert (first["ExitCode"], first["Output"]) == (-1, "Health check exceeded timeout (200ms)")
    # The timed-out checks' processes are killed (3 s each, one a second: without that 3 or
    # more would be running now): the container's own sleep and at most the current check.
    wait_until(lambda: len(results(ctr, "slow")) >= 3, 30, "3 results")
    top = ctr("top", "slow", "-o", "pid,comm").stdout.splitlines()
    assert 1 <= len(top[1:]) <= 2, top
    # The log keeps the last 5; the streak counts on.
    wait_until(lambda: (health(ctr, "noisy") or {}).get("FailingStreak", 0) >= 6, 30, "6 checks")
    assert len(results(ctr, "noisy")) == 5


def test_healthcheck_in_a_dockerfile(ctr: CLI, tmp_path: Path) -> None:
    """The tutorial's form: ``HEALTHCHECK --interval=1s CMD ...`` in the image; the container
    runs it; ``--no-healthcheck`` turns it off."""
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(
        "FROM busybox\n"
        "HEALTHCHECK --interval=1s --timeout=3s --retries=2 CMD test -e /etc/hostname || exit 1\n"
        'CMD ["sleep", "300"]\n'
    )
    ctr("build", "-t", "checked", str(tmp_path / "ctx"), timeout=300)
    ctr("run", "-d", "--name", "from-image", "checked")
    wait_until(lambda: (health(ctr, "from-image") or {}).get("Status") == "healthy", 30, "healthy")
    assert status(ctr, "from-image").endswith("(healthy)")
    config = json.loads(ctr("inspect", "from-image").stdout)[0]["Config"]["Healthcheck"]
    assert config == {
        "Test": ["CMD-SHELL", "test -e /etc/hostname || exit 1"],
        "Interval": 1_000_000_000,
        "Timeout": 3_000_000_000,
        "Retries": 2,
    }
    ctr("run", "-d", "--name", "unchecked", "--no-healthcheck", "checked")
    assert health(ctr, "unchecked") is None
    assert not status(ctr, "unchecked").endswith(")")
    names = ctr("ps", "--filter", "health=none", "--format", "{{.Names}}").stdout.split()
    assert names == ["unchecked"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--health-interval", "500us"], "Interval in Healthcheck cannot be less than 1ms"),
        (["--health-timeout", "0.5ms"], "Timeout in Healthcheck cannot be less than 1ms"),
        (["--health-start-period", "1us"], "StartPeriod in Healthcheck cannot be less than 1ms"),
        (["--health-retries", "-1"], "--health-retries cannot be negative"),
        (["--health-interval=-1s"], "--health-interval cannot be negative"),
        (["--no-healthcheck"], "--no-healthcheck conflicts with --health-* options"),
    ],
)
def test_bad_health_values(ctr: CLI, docker: Docker, flags: list[str], message: str) -> None:
    ours = ctr("create", *flags, "--health-cmd", "true", "busybox", "true", check=False)
    theirs = docker("create", *flags, "--health-cmd", "true", "busybox", "true", check=False)
    assert ours.returncode == 125 and theirs.returncode != 0
    assert ours.stderr == f"Error: {message}\n"
    assert message in theirs.stderr
    assert ctr("ps", "-aq").stdout == ""


def test_bad_health_filter(ctr: CLI, docker: Docker) -> None:
    ours = ctr("ps", "--filter", "health=bogus", check=False)
    theirs = docker("ps", "--filter", "health=bogus", check=False)
    assert ours.stderr == "Error: Unrecognised filter value for health: bogus\n"
    assert "Unrecognised filter value for health: bogus" in theirs.stderr


def test_monitor_killed_during_a_check(ctr: CLI) -> None:
    """The monitor is SIGKILLed while a check runs: the container is recorded as ended,
    `system check` finds nothing wrong, and the next `start` runs it with its checks."""
    ctr(
        "run", "-d", "--name", "victim", "--health-cmd", "sleep 5", "--health-interval", "1s",
        "busybox", "sleep", "300",
    )  # fmt: skip
    doc = json.loads(ctr("inspect", "victim").stdout)[0]
    run_dir = ctr.run_root / "containers" / doc["Id"]
    wait_until(lambda: (run_dir / ".health.pid").exists(), 30, "a check running")
    monitor = int((run_dir / "monitor.pid").read_text())
    os.kill(monitor, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{monitor}").exists(), 10, "the monitor gone")
    state = json.loads(ctr("inspect", "victim").stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 255)
    assert state["Health"]["Status"] == "unhealthy"
    assert consistent(ctr)
    ctr("start", "victim")
    assert status(ctr, "victim").endswith("(health: starting)")
    ctr("rm", "-f", "victim")
