"""``pause``/``unpause`` (the freezer), ``update`` of a running container's limits and restart
policy, ``export``, ``wait --condition``, ``top`` with ps options: each as Docker's docs write
it, compared with Docker, with Docker's messages for bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime.cgroups import container_path
from tests.conftest import CLI
from tests.helpers import wait_until
from tests.lifecycle.conftest import Docker, consistent

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done"


def inspect(cli: CLI | Docker, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(cli("inspect", name).stdout)[0]
    return doc


def cgroup_file(cid: str, controller: str, name: str) -> str:
    path = Path("/sys/fs/cgroup", controller) / container_path(cid).lstrip("/") / name
    if not path.exists():  # a pure cgroup v2 host: one hierarchy
        path = Path("/sys/fs/cgroup") / container_path(cid).lstrip("/") / name
    return path.read_text().strip()


def counter(cli: CLI, name: str) -> int:
    # Read through the host (cp), which works on a frozen container where exec does not.
    data = cli.raw("cp", f"{name}:/tmp/count", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        f = tf.extractfile("count")
        assert f is not None
        return int(f.read().decode().strip() or 0)


def errors_as_docker(
    ctr: CLI, docker: Docker, args: list[str], ours_name: str, theirs_name: str
) -> str:
    """Run ``args`` + a container on both engines: same exit code, same message (the
    container's ID in it made the same); our message."""
    ours = ctr(*args, ours_name, check=False)
    theirs = docker(*args, theirs_name, check=False)
    assert ours.returncode == theirs.returncode == 1, (ours, theirs)
    assert ours.stdout == theirs.stdout == ""
    mine = ours.stderr.removeprefix("Error: ").strip()
    other = theirs.stderr.removeprefix("Error response from daemon: ").strip()
    for cli, name, text in ((ctr, ours_name, "mine"), (docker, theirs_name, "other")):
        r = cli("inspect", "-f", "{{.Id}}", name, check=False)
        if r.returncode == 0:
            cid = r.stdout.strip()
            if text == "mine":
                mine = mine.replace(cid, "<id>")
            else:
                other = other.replace(cid, "<id>")
    assert mine.replace(ours_name, "<name>") == other.replace(theirs_name, "<name>")
    return ours.stderr


def test_pause_freezes_and_unpause_thaws(ctr: CLI, docker: Docker) -> None:
    ctr("run", "-d", "--name", "counter", "busybox", "sh", "-c", COUNTER)
    cid = inspect(ctr, "counter")["Id"]
    wait_until(lambda: counter(ctr, "counter") > 3, 30, "the counter going")
    assert ctr("pause", "counter").stdout == "counter\n"
    assert cgroup_file(cid, "freezer", "freezer.state") == "FROZEN"
    frozen = counter(ctr, "counter")
    time.sleep(0.5)  # ten steps of the counter, were it running
    assert counter(ctr, "counter") == frozen
    state = inspect(ctr, "counter")["State"]
    assert (state["Status"], state["Running"], state["Paused"]) == ("paused", True, True)
    status = ctr("ps", "--format", "{{.Status}} {{.State}}").stdout
    assert status.endswith(" (Paused) paused\n")
    assert ctr("unpause", "counter").stdout == "counter\n"
    wait_until(lambda: counter(ctr, "counter") > frozen, 30, "the counter going on")
    assert inspect(ctr, "counter")["State"]["Status"] == "running"
    # A paused container stops (and is removed) as on Docker: thawed to take its signal.
    ctr("pause", "counter")
    ctr("stop", "-t", "1", "counter")
    assert inspect(ctr, "counter")["State"]["Status"] == "exited"
    assert consistent(ctr)


def test_pause_bad_input_as_docker(ctr: CLI, docker: Docker) -> None:
    theirs = docker.name("pp")
    ctr("create", "--name", "pp", "busybox", "sleep", "300")
    docker("create", "--name", theirs, "busybox", "sleep", "300")
    msg = errors_as_docker(ctr, docker, ["pause"], "pp", theirs)
    assert msg.endswith("is not running\n") and msg.startswith("Error: Container ")
    errors_as_docker(ctr, docker, ["unpause"], "pp", theirs)
    ctr("start", "pp")
    docker("start", theirs)
    errors_as_docker(ctr, docker, ["unpause"], "pp", theirs)  # not paused
    ctr("pause", "pp")
    docker("pause", theirs)
    errors_as_docker(ctr, docker, ["pause"], "pp", theirs)  # already paused
    # No exec into a paused container (exec's own exit code is another matter).
    ours = ctr("exec", "pp", "true", check=False).stderr
    assert ours == "Error: Container pp is paused, unpause the container before exec\n"
    assert f"Container {theirs} is paused" in docker("exec", theirs, "true", check=False).stderr
    ours = ctr("rm", "pp", check=False)
    assert ours.returncode == 1 and "Unpause and then stop the container" in ours.stderr
    assert "Unpause and then stop the container" in docker("rm", theirs, check=False).stderr
    errors_as_docker(ctr, docker, ["pause"], "nosuch", "nosuch")
    ctr("rm", "-f", "pp")  # a paused container goes with -f
    assert ctr("ps", "-aq").stdout == ""


def test_update_a_running_container(ctr: CLI, docker: Docker) -> None:
    """``docker update --memory 64m --memory-swap 128m --cpus 0.5 --pids-limit 50``: the
    cgroup files change at once, inspect shows what Docker shows."""
    theirs = docker.name("uu")
    ctr("run", "-d", "--name", "uu", "busybox", "sleep", "300")
    docker("run", "-d", "--name", theirs, "busybox", "sleep", "300")
    cid = inspect(ctr, "uu")["Id"]
    flags = ["--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "50"]
    assert ctr("update", *flags, "uu").stdout == "uu\n"
    docker("update", *flags, theirs)
    assert cgroup_file(cid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert cgroup_file(cid, "memory", "memory.memsw.limit_in_bytes") == str(128 << 20)
    assert cgroup_file(cid, "cpu", "cpu.cfs_quota_us") == "50000"
    assert cgroup_file(cid, "cpu", "cpu.cfs_period_us") == "100000"
    assert cgroup_file(cid, "pids", "pids.max") == "50"
    keys = ("Memory", "MemorySwap", "NanoCpus", "PidsLimit", "CpuQuota", "CpuPeriod")
    ours, other = inspect(ctr, "uu")["HostConfig"], inspect(docker, theirs)["HostConfig"]
    assert {k: ours[k] for k in keys} == {k: other[k] for k in keys}
    # Unlimited again: -1 as Docker takes it.
    ctr("update", "--pids-limit", "-1", "uu")
    assert cgroup_file(cid, "pids", "pids.max") == "max"
    # What a restart applies: the limits are the container's own now.
    ctr("restart", "-t", "0", "uu")
    assert cgroup_file(cid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert cgroup_file(cid, "cpu", "cpu.cfs_quota_us") == "50000"


def test_update_restart_policy_of_a_running_container(ctr: CLI) -> None:
    ctr("run", "-d", "--name", "later", "busybox", "sh", "-c", "sleep 1; exit 1")
    ctr("update", "--restart", "always", "later")
    policy = inspect(ctr, "later")["HostConfig"]["RestartPolicy"]
    assert policy == {"Name": "always", "MaximumRetryCount": 0}
    wait_until(lambda: inspect(ctr, "later")["RestartCount"] >= 1, 30, "a restart")
    ctr("update", "--restart", "no", "later")
    ctr("stop", "-t", "0", "later")


@pytest.mark.parametrize(
    "args",
    [
        ["--memory", "96m"],  # over the swap limit already set (none: 0)
        ["--restart", "bogus"],
        ["--restart", "on-failure:-1"],
        ["--memory", "1k", "--memory-swap", "2m"],
        ["--cpus", "100"],
    ],
)
def test_update_bad_input_as_docker(ctr: CLI, docker: Docker, args: list[str]) -> None:
    theirs = docker.name("ub")
    ctr("run", "-d", "--name", "ub", "busybox", "sleep", "300")
    docker("run", "-d", "--name", theirs, "busybox", "sleep", "300")
    before = inspect(ctr, "ub")["HostConfig"]
    errors_as_docker(ctr, docker, ["update", *args], "ub", theirs)
    assert inspect(ctr, "ub")["HostConfig"] == before  # nothing changed


def test_update_removed_or_without_flags(ctr: CLI, docker: Docker) -> None:
    ctr("create", "--name", "gone", "busybox", "true")
    ctr("rm", "gone")
    errors_as_docker(ctr, docker, ["update", "--cpus", "1"], "gone", "dyt-gone-nosuch")
    ctr("create", "--name", "cc", "--rm", "busybox", "true")
    r = ctr("update", "--restart", "always", "cc", check=False)
    assert r.returncode == 1
    assert "Restart policy cannot be updated because AutoRemove is enabled" in r.stderr
    r = ctr("update", "cc", check=False)
    assert (r.returncode, r.stderr) == (
        1,
        "Error: you must provide one or more flags when using this command\n",
    )


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return sorted(m.name + ("/" if m.isdir() else "") for m in tf.getmembers())


def test_export_has_dockers_file_list(ctr: CLI, docker: Docker, tmp_path: Path) -> None:
    """``docker export`` of the same container (the same image, the same command) lists the
    same files on both engines: the image, Docker's init layer, the container's changes."""
    image = tmp_path / "busybox.tar"
    docker("save", "-o", str(image), "busybox:latest")
    ctr("load", "-i", str(image))  # Docker's own busybox, so both start from the same files
    cmd = ["sh", "-c", "echo hi > /hello; mkdir -p /data/sub; rm /bin/vi"]
    theirs = docker.name("ee")
    ctr("run", "--name", "ee", "-v", "/vol", "busybox", *cmd)
    docker("run", "--name", theirs, "-v", "/vol", "busybox", *cmd)
    ours = ctr.raw("export", "ee").stdout
    other = subprocess.run(["docker", "export", theirs], capture_output=True, check=True).stdout
    assert _names(ours) == _names(other)
    assert "hello" in _names(ours) and ".dockerenv" in _names(ours)
    assert "bin/vi" not in _names(ours)
    # -o: the same archive in a file; a running container too.
    out = tmp_path / "e.tar"
    assert ctr("export", "-o", str(out), "ee").stdout == ""
    assert _names(out.read_bytes()) == _names(ours)
    ctr("run", "-d", "--name", "live", "busybox", "sleep", "300")
    assert "etc/hostname" in _names(ctr.raw("export", "live").stdout)
    assert consistent(ctr)


def test_export_bad_input(ctr: CLI, docker: Docker, tmp_path: Path) -> None:
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    out = tmp_path / "missing.tar"
    ours = ctr("export", "-o", str(out), "nosuch", check=False)
    theirs = docker("export", "-o", str(tmp_path / "theirs.tar"), "nosuch", check=False)
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr == "Error: No such container: nosuch\n"
    assert "No such container: nosuch" in theirs.stderr
    assert sorted(os.listdir(tmp_path)) == []  # no file, not even a partial one


def test_wait_conditions_and_top(ctr: CLI, docker: Docker) -> None:
    ctr(
        "run",
        "-d",
        "--name",
        "ww",
        "--restart",
        "on-failure:1",
        "busybox",
        "sh",
        "-c",
        "sleep 0.5; exit 4",
    )
    # next-exit: the first exit, although the policy runs it again; not-running: the end.
    assert ctr("wait", "--condition", "next-exit", "ww").stdout == "4\n"
    assert ctr("wait", "ww").stdout == "4\n"
    assert inspect(ctr, "ww")["RestartCount"] == 1
    r = ctr("wait", "--condition", "bogus", "ww", check=False)
    assert r.returncode == 1 and r.stderr == "Error: invalid condition: 'bogus'\n"
    # top takes ps's options, as Docker's does.
    theirs = docker.name("tt")
    ctr("run", "-d", "--name", "tt", "busybox", "sleep", "300")
    docker("run", "-d", "--name", theirs, "busybox", "sleep", "300")
    for opts in (["aux"], ["-o", "pid,comm"], ["-eo", "pid,user,args"]):
        ours = ctr("top", "tt", *opts).stdout.splitlines()
        other = docker("top", theirs, *opts).stdout.splitlines()
        assert ours[0].split() == other[0].split()
        assert [line.split()[-1] for line in ours[1:]] == [line.split()[-1] for line in other[1:]]
    ours_err = ctr("top", "tt", "-o", "comm", check=False)
    theirs_err = docker("top", theirs, "-o", "comm", check=False)
    assert ours_err.stderr == "Error: Couldn't find PID field in ps output\n"
    assert "Couldn't find PID field in ps output" in theirs_err.stderr
