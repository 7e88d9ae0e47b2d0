"""The ``run`` options of namespaces, devices, resources, MAC addresses, legacy links and
storage, as Docker's docs write them, seen from inside the container and compared with the
reference Docker where it runs; bad values get Docker's messages and create nothing.

Containers reach only the bridges and namespaces the tests make; the ``ctr`` fixture
removes containers and bridges. Devices read are harmless: /dev/null, and an unattached
loop device (reading it returns nothing), never written.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLI, db_snapshot
from tests.helpers import needs_docker, reference_docker
from tests.runtime.test_seccomp_profile import docker, docker_message

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def inspect(dy: CLI, name: str) -> dict[str, Any]:
    return dict(json.loads(dy("inspect", name).stdout)[0])


def ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def both(ctr: CLI, *args: str) -> tuple[str, str | None]:
    """``run --rm ARGS`` with dockyard and, where it runs, Docker: their outputs."""
    ours = ctr("run", "--rm", *args).stdout
    if not reference_docker():
        return ours, None
    r = docker("run", "--rm", *args)
    assert r.returncode == 0, r.stderr
    return ours, r.stdout


# --------------------------------------------------------------------------- namespaces


def test_pid_ipc_uts_cgroupns_host(ctr: CLI) -> None:
    script = (
        "for n in pid ipc cgroup; do readlink /proc/self/ns/$n; done; hostname; "
        "echo $HOSTNAME; ps -o pid | grep -c ."
    )
    args = ["--pid", "host", "--ipc", "host", "--uts", "host", "--cgroupns", "host"]
    ours, theirs = both(ctr, *args, "busybox", "sh", "-c", script)
    for out in filter(None, (ours, theirs)):
        lines = out.splitlines()
        assert lines[:3] == [ns("pid"), ns("ipc"), ns("cgroup")]
        assert lines[3] == socket.gethostname()  # the host's UTS namespace
        assert re.fullmatch(r"[0-9a-f]{12}", lines[4])  # HOSTNAME stays the container's
        assert int(lines[5]) > 10  # the host's processes
    # and the defaults: new pid, ipc and uts namespaces, Docker's cgroupns on cgroup v1 hosts
    out = ctr("run", "--rm", "busybox", "sh", "-c", script).stdout.splitlines()
    assert out[0] != ns("pid") and out[1] != ns("ipc") and out[3] != socket.gethostname()
    private = ctr(
        "run", "--rm", "--cgroupns", "private", "busybox", "readlink", "/proc/self/ns/cgroup"
    )
    assert private.stdout.strip() != ns("cgroup")


def test_ipc_host_shares_the_hosts_dev_shm(ctr: CLI, tmp_path: Path) -> None:
    name = f"dockyard-test-{os.getpid()}"
    Path("/dev/shm", name).write_text("from the host\n")
    try:
        out = ctr("run", "--rm", "--ipc", "host", "busybox", "cat", f"/dev/shm/{name}").stdout
    finally:
        Path("/dev/shm", name).unlink()
    assert out == "from the host\n"


def test_pid_and_ipc_of_another_container(ctr: CLI) -> None:
    ctr("run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sleep", "300")
    ctr("exec", "donor", "sh", "-c", "echo shared > /dev/shm/f")
    donor_ipc = ctr("exec", "donor", "readlink", "/proc/self/ns/ipc").stdout
    out = ctr(
        "run", "--rm", "--pid", "container:donor", "--ipc", "container:donor", "busybox",
        "sh", "-c", "ps -o pid,args; readlink /proc/self/ns/ipc; cat /dev/shm/f",
    ).stdout.splitlines()  # fmt: skip
    assert out[1].split() == ["1", "sleep", "300"]  # the donor's processes, its init first
    assert out[-2:] == [donor_ipc.strip(), "shared"]
    donor = inspect(ctr, "donor")
    made = ctr("create", "--name", "joiner", "--pid", "container:donor", "busybox").stdout
    # Docker keeps the other container's ID: a rename changes nothing
    assert inspect(ctr, made.strip())["HostConfig"]["PidMode"] == f"container:{donor['Id']}"
    # the donor's /dev/shm is a tmpfs of its own on the host, gone when it stops
    shm = ctr.root / "containers" / donor["Id"] / "shm"
    assert _mounted(shm)
    ctr("stop", "-t", "1", "donor")
    assert not _mounted(shm)
    r = ctr("start", "joiner", check=False)
    assert r.returncode == 1  # Docker's CLI: a failed start is 1
    assert r.stderr == f"Error: container {donor['Id']} is not running\n"


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == str(path) for line in f)


def test_ipc_of_a_private_container_is_refused_like_docker(ctr: CLI) -> None:
    ctr("run", "-d", "--name", "private", "busybox", "sleep", "300")
    cid = inspect(ctr, "private")["Id"]
    r = ctr("run", "--rm", "--ipc", "container:private", "busybox", "true", check=False)
    message = (
        f"can't join IPC of container {cid}: non-shareable IPC (hint: use IpcMode:shareable "
        "for the donor container)"
    )
    assert (r.returncode, r.stderr) == (125, f"Error: {message}\n")
    if reference_docker():
        docker("rm", "-f", "dockyard-test-private")
        try:
            d = docker("run", "-d", "--name", "dockyard-test-private", "busybox", "sleep", "60")
            dr = docker("run", "--rm", "--ipc", "container:dockyard-test-private", "busybox")
            assert docker_message(dr.stderr) == message.replace(cid, d.stdout.strip())
        finally:
            docker("rm", "-f", "dockyard-test-private")


def test_ipc_none_has_no_dev_shm(ctr: CLI) -> None:
    ours, theirs = both(ctr, "--ipc", "none", "busybox", "sh", "-c", "ls -d /dev/shm; true")
    assert ours == "" and theirs in ("", None)


# --------------------------------------------------------------------------- devices


def test_device_as_docker_docs_write_it(ctr: CLI) -> None:
    script = "ls -l /dev/mynull; echo hi > /dev/mynull && echo written"
    ours, theirs = both(ctr, "--device", "/dev/null:/dev/mynull", "busybox", "sh", "-c", script)
    for out in filter(None, (ours, theirs)):
        mode, *_rest = out.split()
        assert mode == "crw-rw-rw-" and "1,   3" in out and out.endswith("written\n")
    info = inspect(
        ctr, ctr("create", "--device", "/dev/null:/dev/mynull", "busybox").stdout.strip()
    )
    assert info["HostConfig"]["Devices"] == [
        {"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rwm"}
    ]


LOOP = "/dev/loop0"  # block 7:0; unattached, a read returns nothing


@pytest.mark.skipif(not os.path.exists(LOOP), reason="no loop device")
def test_device_permissions_and_cgroup_rules(ctr: CLI) -> None:
    read = "head -c1 {dev} >/dev/null && echo read; (: >> {dev}) 2>/dev/null || echo no-write"
    out = ctr(
        "run", "--rm", "--device", f"{LOOP}:/dev/myloop:r", "busybox", "sh", "-c",
        read.format(dev="/dev/myloop"),
    ).stdout  # fmt: skip
    assert out == "read\nno-write\n"
    made = "mknod /dev/l b 7 0 && head -c1 /dev/l >/dev/null && echo read"
    rule = ["--device-cgroup-rule", "b 7:* r"]
    ours, theirs = both(ctr, *rule, "busybox", "sh", "-c", made)
    assert ours == "read\n" and theirs in ("read\n", None)
    denied = ctr("run", "--rm", "busybox", "sh", "-c", made, check=False)
    assert denied.returncode != 0 and "Operation not permitted" in denied.stderr


@pytest.mark.skipif(not os.path.exists(LOOP), reason="no loop device")
def test_privileged_gets_the_hosts_devices(ctr: CLI) -> None:
    # (Docker's --privileged cannot run on these machines: its runc may not apply all caps.)
    out = ctr("run", "--rm", "--privileged", "busybox", "ls", "-l", LOOP).stdout
    assert out.startswith("brw") and "7,   0" in out
    r = ctr("run", "--rm", "busybox", "ls", LOOP, check=False)
    assert r.returncode != 0


# --------------------------------------------------------------------------- resources


def test_resources_reach_the_cgroups(ctr: CLI) -> None:
    cg = "/sys/fs/cgroup"
    if not os.path.exists(f"{cg}/cpuset/cpuset.cpus"):
        pytest.skip("these files are cgroup v1's")
    script = (
        f"cat {cg}/cpuset/cpuset.cpus {cg}/memory/memory.soft_limit_in_bytes "
        f"{cg}/cpu/cpu.cfs_period_us {cg}/cpu/cpu.cfs_quota_us {cg}/cpu/cpu.shares; "
        f"head -1 {cg}/memory/memory.oom_control"
    )
    flags = [
        "--cpuset-cpus", "0", "--memory-reservation", "10m", "--cpu-period", "50000",
        "--cpu-quota", "25000", "-c", "512", "-m", "64m", "--oom-kill-disable",
    ]  # fmt: skip
    ours, theirs = both(ctr, *flags, "busybox", "sh", "-c", script)
    assert ours == "0\n10485760\n50000\n25000\n512\noom_kill_disable 1\n"
    assert theirs in (ours, None)


# --------------------------------------------------------------------------- MAC


def docker_api(method: str, path: str, body: object = None) -> tuple[int, Any]:
    """The reference Docker's API (its CLI here is newer than its daemon and sends the MAC
    address per network, which 20.10 refuses)."""

    class Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect("/var/run/docker.sock")

    conn = Unix("localhost", timeout=60)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, f"/v1.41{path}", data, {"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        return r.status, json.loads(raw) if raw.strip() else None
    finally:
        conn.close()


def test_mac_address(ctr: CLI) -> None:
    mac = "92:d0:c6:0a:29:33"
    ctr("run", "-d", "--name", "mac", "--mac-address", mac, "busybox", "sleep", "300")
    assert ctr("exec", "mac", "cat", "/sys/class/net/eth0/address").stdout == mac + "\n"
    info = inspect(ctr, "mac")
    assert info["Config"]["MacAddress"] == mac
    assert info["NetworkSettings"]["Networks"]["bridge"]["MacAddress"] == mac
    if reference_docker():
        name = "dockyard-test-mac"
        docker("rm", "-f", name)
        try:
            status, _ = docker_api(
                "POST",
                f"/containers/create?name={name}",
                {
                    "Image": "busybox",
                    "Cmd": ["cat", "/sys/class/net/eth0/address"],
                    "MacAddress": mac,
                },
            )
            assert status == 201
            assert docker("start", "-a", name).stdout == mac + "\n"
        finally:
            docker("rm", "-f", name)


# --------------------------------------------------------------------------- links


LINK_SCRIPT = "env | grep -E '^(WEB|DBX)_' | sort; grep -E 'web|dbx' /etc/hosts"


def test_link_on_the_default_bridge(ctr: CLI) -> None:
    ctr(
        "run", "-d", "--name", "dbx", "-e", "FOO=bar", "--expose", "80", "--expose",
        "8000-8002/udp", "busybox", "sleep", "300",
    )  # fmt: skip
    ours = ctr(
        "run", "--rm", "--link", "dbx:web", "--link", "dbx", "busybox", "sh", "-c", LINK_SCRIPT
    )
    ip = inspect(ctr, "dbx")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    lines = ours.stdout.splitlines()
    assert "WEB_PORT=tcp://" + ip + ":80" in lines and "WEB_ENV_FOO=bar" in lines
    assert "WEB_PORT_8000_UDP_START=udp://" + ip + ":8000" in lines
    assert "DBX_PORT_80_TCP_ADDR=" + ip in lines and "DBX_ENV_FOO=bar" in lines
    assert any(re.fullmatch(r"WEB_NAME=/[a-z_]+/web", ln) for ln in lines)
    short = inspect(ctr, "dbx")["Id"][:12]
    assert f"{ip}\tweb {short} dbx" in lines and f"{ip}\tdbx {short}" in lines
    link = inspect(
        ctr, ctr("create", "--name", "linked", "--link", "dbx:web", "busybox").stdout.strip()
    )
    assert link["HostConfig"]["Links"] == ["/dbx:/linked/web"]
    if reference_docker():
        name = "dbx"  # Docker's names are global: skip when someone else has one
        if docker("inspect", name).returncode == 0:
            pytest.skip("a Docker container named dbx exists")
        try:
            docker(
                "run", "-d", "--name", name, "-e", "FOO=bar", "--expose", "80", "--expose",
                "8000-8002/udp", "busybox", "sleep", "60",
            )  # fmt: skip
            theirs = docker(
                "run", "--rm", "--link", "dbx:web", "--link", "dbx", "busybox", "sh", "-c",
                LINK_SCRIPT,
            )  # fmt: skip
        finally:
            docker("rm", "-f", name)
        # Docker writes the links' /etc/hosts lines from a Go map (moby's children of the
        # container): their order varies from run to run, so the lines compare as a set.
        assert sorted(_no_addresses(theirs.stdout).splitlines()) == sorted(
            _no_addresses(ours.stdout).splitlines()
        )


def _no_addresses(text: str) -> str:
    text = re.sub(r"\b(?:\d+\.){3}\d+\b", "<ip>", text)
    text = re.sub(r"=/[a-z_]+/", "=/<name>/", text)
    return re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)


def test_link_errors_like_docker(ctr: CLI) -> None:
    before = db_snapshot(ctr.root)
    for flags, message in (
        (["--link", "nosuch:x"], "could not get container for nosuch: No such container: nosuch"),
        (
            ["--network", "host", "--link", "x"],
            "conflicting options: host type networking can't be used with links. This would "
            "result in undefined behavior",
        ),
    ):
        r = ctr("run", "--rm", *flags, "busybox", "true", check=False)
        assert (r.returncode, r.stderr) == (125, f"Error: {message}\n")
    r = ctr("run", "--rm", "--link", "a:b:c", "busybox", "true", check=False)
    assert r.returncode == 125
    assert 'invalid argument "a:b:c" for "--link" flag: bad format for links: a:b:c' in r.stderr
    assert db_snapshot(ctr.root) == before
    ctr("create", "--name", "stopped", "busybox", "true")
    ctr("create", "--name", "parent", "--link", "stopped:s", "busybox", "true")
    r = ctr("start", "parent", check=False)
    assert r.returncode == 1  # Docker's CLI: a failed start is 1
    assert r.stderr == "Error: Cannot link to a non running container: /stopped AS /parent/s\n"


# --------------------------------------------------------------------------- bad values


BAD = [
    (["--storage-opt", "size=10m"], "--storage-opt is supported only for overlay over xfs with "
                                    "'pquota' mount option"),
    (["--storage-opt", "foo=1"], "Unknown option foo"),
    (["--storage-opt", "bogus"], "invalid storage option"),
    (["--device", "/dev/nosuch"], "error gathering device information while adding custom "
                                  'device "/dev/nosuch": no such file or directory'),
    (["--device", "/dev/null:rel"], "rel is not an absolute path"),
    (["--device", "/dev/null:/dev/x:bad"], "bad mode specified: bad"),
    (["--device", "/dev/null:/dev/x:r:w"], "bad format for path: /dev/null:/dev/x:r:w"),
    (["--device-cgroup-rule", "c 1:3"], "invalid device cgroup format 'c 1:3'"),
    (["--pid", "bogus"], "--pid: invalid PID mode"),
    (["--uts", "container:x"], "--uts: invalid UTS mode"),
    (["--cgroupns", "bogus"], "--cgroupns: invalid CGROUP mode"),
    (["--ipc", "bogus"], "Invalid IPC mode: bogus"),
    (["--pid", "container:nosuch"], "No such container: nosuch"),
    (["--uts", "host", "-h", "foo"], "conflicting options: hostname and the UTS mode"),
    (["--mac-address", "92:d0:c6:0a:29"], "92:d0:c6:0a:29 is not a valid mac address"),
    (["--cpuset-cpus", "64"], "Requested CPUs are not available - requested 64, available: "),
    (["--cpuset-cpus", "abc"], "Invalid value abc for cpuset cpus: invalid format: abc"),
    (["--memory-reservation", "1m"], "Minimum memory reservation allowed is 6MB"),
    (["-m", "10m", "--memory-reservation", "20m"],
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    (["--cpu-quota", "500"], "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    (["--cpus", "0.5", "--cpu-period", "100000"],
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
]  # fmt: skip


@pytest.mark.parametrize(("flags", "message"), BAD)
def test_bad_values_create_nothing(ctr: CLI, flags: list[str], message: str) -> None:
    before = db_snapshot(ctr.root)
    r = ctr("run", "--name", "never", *flags, "busybox", "true", check=False)
    assert r.returncode == 125, r.stderr
    assert r.stderr.startswith("Error: ") and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert db_snapshot(ctr.root) == before


@needs_docker
@pytest.mark.parametrize(("flags", "message"), BAD)
def test_docker_says_the_same(flags: list[str], message: str) -> None:
    r = docker("run", "--rm", "--name", "dockyard-test-never", *flags, "busybox", "true")
    docker("rm", "-f", "dockyard-test-never")
    # (a missing device fails Docker's start, not its create, and its CLI exits 127 for a
    # message with "no such file or directory" in it)
    assert r.returncode in (125, 127) and message in docker_message(r.stderr), r.stderr
