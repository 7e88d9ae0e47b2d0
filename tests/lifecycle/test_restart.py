"""Restart policies (``docker run --restart``): Docker's back-off, ``RestartCount``, ``stop``
ending the loop, ``on-failure:N``, ``unless-stopped``/``always`` across a simulated reboot with
``system restore``, and a restarter killed between two runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.engine.containers.restarts import next_delay_ms
from tests.conftest import CLI
from tests.helpers import wait_until
from tests.lifecycle.conftest import Docker, consistent


def inspect(cli: CLI | Docker, name: str) -> dict[str, Any]:
    doc: list[dict[str, Any]] = json.loads(cli("inspect", name).stdout)
    return doc[0]


def state_is(cli: CLI | Docker, name: str, status: str) -> Callable[[], bool]:
    return lambda: inspect(cli, name)["State"]["Status"] == status


def log_times(cli: CLI | Docker, name: str) -> list[float]:
    """When each run wrote its line (``logs -t``): the start of every run, in seconds."""
    from dockyard.units import parse_time

    out = []
    for line in cli("logs", "-t", name).stdout.splitlines():
        t = parse_time(line.split()[0])
        assert t is not None, line
        out.append(t)
    return out


def restarters(cli: CLI, cid: str) -> list[int]:
    """Processes of this store still waiting to restart ``cid``."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"_restart" in argv and cid.encode() in argv and str(cli.run_root).encode() in argv:
            out.append(int(pid))
    return out


def store_processes(cli: CLI) -> list[int]:
    """The monitors, exit commands and restarters of this store (their command lines name
    its run root): what a reboot ends."""
    out = []
    mine = str(cli.run_root).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        words = cmdline.split(b"\0")
        if mine in cmdline and (
            any(w.endswith(b"monitor.py") for w in words)
            or b"_restart" in words
            or b"_exited" in words
        ):
            out.append(int(pid))
    return out


def simulate_reboot(cli: CLI) -> None:
    """What a reboot does to a store: every monitor and restarter gone, every container
    process gone with the runtime's state, the run root (a tmpfs) emptied, mounts gone."""
    for pid in store_processes(cli):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    state = cli.run_root / "runc"
    for cid in os.listdir(state) if state.is_dir() else []:
        subprocess.run(
            ["runc", "--root", str(state), "kill", "--all", cid, "KILL"], capture_output=True
        )
        subprocess.run(
            ["runc", "--root", str(state), "delete", "--force", cid], capture_output=True
        )
    subprocess.run(["rm", "-rf", str(cli.run_root / "containers")], check=True)
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f]
    for m in sorted(mounts, reverse=True):
        if m.startswith(str(cli.root)):
            subprocess.run(["umount", "-l", m], check=False)


def test_backoff_policy() -> None:
    # moby's restart manager: 100 ms, doubled up to a minute, reset after 10 s of running.
    delays, last = [], 0
    for _ in range(12):
        last = next_delay_ms(last, 0.5)
        delays.append(last)
    assert delays == [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]
    assert next_delay_ms(60000, 10.0) == 100
    assert next_delay_ms(400, 9.9) == 800


@pytest.mark.slow
def test_restart_always_backs_off_like_docker(ctr: CLI, docker: Docker) -> None:
    """``docker run -d --restart always busybox sh -c 'exit 1'`` on both engines, side by
    side, until each has run 6 times: the delays between runs (from the log's timestamps) are
    Docker's back-off for both, each at least 100 ms, 200 ms, 400 ms... (no upper bound: that
    would be a timing assertion on a shared machine)."""
    cmd = ["busybox", "sh", "-c", "echo run; exit 1"]
    name = docker.name("always")
    ctr("run", "-d", "--name", "always", "--restart", "always", *cmd)
    docker("run", "-d", "--name", name, "--restart", "always", *cmd)
    # Until both have run 6 times: the 6th run starts ~3.1 s of back-off after the first.
    wait_until(lambda: len(log_times(ctr, "always")) >= 6, 60, "6 runs of ours")
    wait_until(lambda: len(log_times(docker, name)) >= 6, 60, "6 runs of Docker's")
    ours, theirs = log_times(ctr, "always"), log_times(docker, name)
    for times in (ours, theirs):
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        for k, gap in enumerate(gaps):
            assert gap >= 0.1 * 2**k, (k, gaps)
    ins = inspect(ctr, "always")
    assert ins["RestartCount"] >= 5
    assert ins["HostConfig"]["RestartPolicy"] == {"Name": "always", "MaximumRetryCount": 0}
    # The same state words as Docker's while it waits: restarting, the last exit code.
    wait_until(state_is(ctr, "always", "restarting"), 30, "restarting")
    state = inspect(ctr, "always")["State"]
    assert (state["Status"], state["Running"], state["Pid"], state["ExitCode"]) == (
        "restarting",
        True,
        0,
        1,
    )
    assert ctr("ps", "--filter", "name=always", "--format", "{{.Status}}").stdout.startswith(
        "Restarting (1) "
    )
    # `stop` ends the loop at once: no restarter left, stopped for good.
    cid = ins["Id"]
    ctr("stop", "always")
    state = inspect(ctr, "always")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 1)
    assert restarters(ctr, cid) == []
    docker("stop", name)
    # `start` begins a new loop: the count starts over.
    ctr("start", "always")
    assert inspect(ctr, "always")["RestartCount"] <= 1


def test_on_failure_stops_after_the_retries(ctr: CLI, docker: Docker) -> None:
    cmd = ["busybox", "sh", "-c", "echo run; exit 3"]
    name = docker.name("onfail")
    for cli, n in ((ctr, "onfail"), (docker, name)):
        # Attached: the first exit code comes back while the container goes on restarting.
        r = cli("run", "--name", n, "--restart", "on-failure:3", *cmd, check=False)
        assert (r.returncode, r.stdout) == (3, "run\n")
    for cli, n in ((ctr, "onfail"), (docker, name)):
        wait_until(state_is(cli, n, "exited"), 60, f"{n} exited")
    ours, theirs = inspect(ctr, "onfail"), inspect(docker, name)
    assert ours["RestartCount"] == theirs["RestartCount"] == 3
    assert ours["State"]["ExitCode"] == theirs["State"]["ExitCode"] == 3
    assert ctr("logs", "onfail").stdout == docker("logs", name).stdout == "run\n" * 4
    # An exit 0 is not a failure: no restart at all.
    ctr("run", "--name", "fine", "--restart", "on-failure", "busybox", "true")
    assert inspect(ctr, "fine")["RestartCount"] == 0
    assert inspect(ctr, "fine")["State"]["Status"] == "exited"


def test_kill_and_rm_of_policy_containers(ctr: CLI, docker: Docker) -> None:
    name = docker.name("loop")
    ctr("run", "-d", "--name", "loop", "--restart", "always", "busybox", "sh", "-c", "exit 1")
    docker("run", "-d", "--name", name, "--restart", "always", "busybox", "sh", "-c", "exit 1")
    for cli, n in ((ctr, "loop"), (docker, name)):
        wait_until(state_is(cli, n, "restarting"), 30, f"{n} restarting")
    ours = ctr("rm", "loop", check=False)
    theirs = docker("rm", name, check=False)
    cid = inspect(ctr, "loop")["Id"]
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr == (
        f"Error: You cannot remove a restarting container {cid}. Stop the container before "
        "attempting removal or force remove\n"
    )
    # Docker says "restarting" or, caught between two runs, "running".
    assert re.search("You cannot remove a (restarting|running) container", theirs.stderr)
    ctr("rm", "-f", "loop")
    assert ctr("ps", "-aq").stdout == "" and restarters(ctr, cid) == []
    # A user's kill ends the loop (Docker: the container stays stopped).
    ctr("run", "-d", "--name", "sleeper", "--restart", "always", "busybox", "sleep", "300")
    ctr("kill", "sleeper")
    state = inspect(ctr, "sleeper")["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    assert inspect(ctr, "sleeper")["RestartCount"] == 0


def test_reboot_then_system_restore(ctr: CLI) -> None:
    """``always`` comes back after ``system restore`` (also when a user had stopped it, as
    Docker's daemon brings it back when it starts); ``unless-stopped`` comes back unless a
    user stopped it; ``no`` stays down."""
    sleep = ["busybox", "sleep", "300"]
    ctr("run", "-d", "--name", "always", "--restart", "always", *sleep)
    ctr("run", "-d", "--name", "always-stopped", "--restart", "always", *sleep)
    ctr("run", "-d", "--name", "unless", "--restart", "unless-stopped", *sleep)
    ctr("run", "-d", "--name", "unless-stopped", "--restart", "unless-stopped", *sleep)
    ctr("run", "-d", "--name", "failing", "--restart", "on-failure:5", *sleep)
    ctr("run", "-d", "--name", "plain", *sleep)
    ctr("create", "--name", "never-started", "--restart", "always", *sleep)
    ctr("stop", "-t", "0", "always-stopped", "unless-stopped")

    simulate_reboot(ctr)
    r = ctr("system", "restore")
    assert sorted(r.stdout.split()) == ["always", "always-stopped", "failing", "unless"]
    status = dict(
        line.split()
        for line in ctr("ps", "-a", "--format", "{{.Names}} {{.State}}").stdout.splitlines()
    )
    assert status == {
        "always": "running",
        "always-stopped": "running",
        "unless": "running",
        "failing": "running",
        "unless-stopped": "exited",
        "plain": "exited",
        "never-started": "created",
    }
    assert inspect(ctr, "always")["RestartCount"] == 0  # a start, as at Docker's daemon start
    assert consistent(ctr)
    # unless-stopped, stopped by a user, stays down across any number of reboots.
    simulate_reboot(ctr)
    ctr("system", "restore")
    assert inspect(ctr, "unless-stopped")["State"]["Status"] == "exited"
    assert inspect(ctr, "unless")["State"]["Status"] == "running"


def test_restarter_killed_between_restarts(ctr: CLI) -> None:
    """The process waiting out the back-off is SIGKILLed: the container is stopped
    (consistent, nothing left behind), and the next ``start`` runs it."""
    ctr("run", "-d", "--name", "crash", "--restart", "always", "busybox", "sh", "-c", "exit 1")
    cid = inspect(ctr, "crash")["Id"]
    # By the 4th restart the back-off is 800 ms: time to find the waiting restarter.
    wait_until(lambda: inspect(ctr, "crash")["RestartCount"] >= 4, 60, "4 restarts")
    wait_until(lambda: restarters(ctr, cid), 30, "a restarter waiting")
    for pid in restarters(ctr, cid):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not restarters(ctr, cid), 10, "the restarter gone")
    # Before anything reconciles it, `system check` names it (a leftover, not a problem),
    # and --repair records it stopped.
    r = ctr("system", "check")
    assert (
        f"container {cid[:12]} is recorded as restarting, but the process restarting it is gone"
        in r.stdout
    )
    ctr("system", "check", "--repair")
    assert consistent(ctr)
    state = inspect(ctr, "crash")["State"]
    assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 1)
    assert (
        state["Error"]
        == "the restart was interrupted: the process restarting the container is gone"
    )
    ctr("start", "crash")
    wait_until(lambda: inspect(ctr, "crash")["RestartCount"] >= 1, 30, "a new loop")
    ctr("stop", "crash")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--restart", "bogus"], "invalid restart policy 'bogus'"),
        (["--restart", "on-failure:-1"], "maximum retry count cannot be negative"),
        (
            ["--restart", "always:3"],
            "maximum retry count cannot be used with restart policy 'always'",
        ),
        (
            ["--rm", "--restart", "always"],
            "conflicting options: cannot specify both --restart and --rm",
        ),
    ],
)
def test_bad_restart_policies(ctr: CLI, docker: Docker, flags: list[str], message: str) -> None:
    ours = ctr("run", "-d", *flags, "busybox", "true", check=False)
    theirs = docker("run", "-d", *flags, "busybox", "true", check=False)
    assert ours.returncode == theirs.returncode == 125
    assert ours.stderr == f"Error: {message}\n"
    assert message in theirs.stderr
    assert ctr("ps", "-aq").stdout == ""


def test_monitor_killed_under_a_policy_container(ctr: CLI) -> None:
    """The monitor of a running ``always`` container is SIGKILLed: the run is recorded as
    ended (255, its processes released) and the policy brings the container back, as
    Docker's restart manager does when a container's task dies."""
    ctr("run", "-d", "--name", "kept", "--restart", "always", "busybox", "sleep", "300")
    doc = inspect(ctr, "kept")
    monitor = int((ctr.run_root / "containers" / doc["Id"] / "monitor.pid").read_text())
    os.kill(monitor, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{monitor}").exists(), 10, "the monitor gone")
    ctr("ps")  # any command notices
    wait_until(lambda: inspect(ctr, "kept")["State"]["Status"] == "running", 30, "running again")
    doc = inspect(ctr, "kept")
    assert doc["RestartCount"] == 1 and doc["State"]["Pid"] > 0
    assert consistent(ctr)
