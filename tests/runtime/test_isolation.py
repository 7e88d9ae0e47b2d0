"""build_spec's config.json run by the real runc: what a process inside can and cannot do.

Needs root, runc and /bin/busybox (busybox-static). Each test gets its own bundle (a busybox
rootfs copied from a session template), its own ``runc --root`` state dir and a unique
container id; containers are force-deleted and their cgroups removed afterwards.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime.options import Mount, RunOptions
from dockyard.runtime.spec import build_spec

RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUSYBOX = "/bin/busybox"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "dockyard-test"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not os.path.exists(RUNC), reason="needs runc"),
    pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs busybox-static"),
]

PASSWD = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:User:/home/user:/bin/sh\n"
GROUP = "root:x:0:\nuser:x:1000:\n"
MIB = 1024 * 1024


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal busybox root: /bin/busybox with every applet hard-linked next to it."""
    root = tmp_path_factory.mktemp("busybox-rootfs") / "rootfs"
    for d in ("bin", "etc", "proc", "sys", "dev", "mnt", "root", "home/user"):
        (root / d).mkdir(parents=True)
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    os.chown(root / "home" / "user", 1000, 1000)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run(
        [BUSYBOX, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.link(root / "bin" / "busybox", root / "bin" / applet)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    (root / "rootfs-marker").write_text("inside the rootfs\n")
    return root


def _cgroup_dirs(cid: str) -> list[Path]:
    return sorted(CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}/{cid}"))


def _remove_cgroups(cid: str) -> None:
    for _ in range(50):
        left = []
        for d in _cgroup_dirs(cid):
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                left.append(d)  # EBUSY while the last tasks are still exiting
        if not left:
            break
        time.sleep(0.1)
    for parent in CGROUP_ROOT.glob(f"*/{CGROUP_PARENT}"):
        try:
            parent.rmdir()  # only if empty: other tests may be using it
        except OSError:
            pass


@dataclass
class Bundle:
    dir: Path
    state: Path
    ids: list[str] = field(default_factory=list)

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    def prepare(self, args: tuple[str, ...], **kw: Any) -> str:
        """Write config.json for ``args`` with RunOptions ``kw``; return a fresh id."""
        cid = f"dyt-{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        kw.setdefault("env", ("PATH=/bin",))
        spec = build_spec(
            RunOptions(args=args, **kw),
            rootfs="rootfs",
            rootfs_dir=str(self.rootfs),
            container_id=cid,
            cgroups_path=f"/{CGROUP_PARENT}/{cid}",
        )
        (self.dir / "config.json").write_text(json.dumps(spec, indent=1))
        return cid

    def command(self, cid: str) -> list[str]:
        return [RUNC, "--root", str(self.state), "run", "--bundle", str(self.dir), cid]

    def run(self, script: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run ``sh -c script`` to completion; stdout/stderr captured."""
        cid = self.prepare(("sh", "-c", script), **kw)
        return subprocess.run(
            self.command(cid),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, script: str, **kw: Any) -> tuple[str, subprocess.Popen[bytes]]:
        """Start ``sh -c script`` with stdin/stdout as pipes, for a handshake."""
        cid = self.prepare(("sh", "-c", script), **kw)
        proc = subprocess.Popen(
            self.command(cid),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        return cid, proc

    def cleanup(self) -> None:
        for cid in self.ids:
            subprocess.run(
                [RUNC, "--root", str(self.state), "delete", "-f", cid],
                capture_output=True,
                timeout=60,
            )
            _remove_cgroups(cid)


@pytest.fixture
def bundle(tmp_path: Path, rootfs_template: Path) -> Iterator[Bundle]:
    b = Bundle(tmp_path / "bundle", tmp_path / "runc-state")
    b.dir.mkdir()
    # cp -a keeps the applets hard links (and /tmp's mode) in the copy.
    subprocess.run(["cp", "-a", str(rootfs_template), str(b.rootfs)], check=True)
    try:
        yield b
    finally:
        b.cleanup()


def wait_for(proc: subprocess.Popen[bytes], marker: bytes, timeout: float = 60) -> bytes:
    """Read the container's stdout until ``marker`` shows up; everything read so far."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out waiting for {marker!r}; got {buf!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                err = proc.stderr.read() if proc.stderr else b""
                raise AssertionError(f"container ended before {marker!r}: {buf!r} {err!r}")
            buf += chunk
    return buf


def finish(proc: subprocess.Popen[bytes], stdin: bytes = b"\n") -> tuple[int, str, str]:
    out, err = proc.communicate(stdin, timeout=120)
    return proc.returncode, out.decode(), err.decode()


def host_cgroup_file(cid: str, controller: str, name: str) -> str:
    return (CGROUP_ROOT / controller / CGROUP_PARENT / cid / name).read_text().strip()


needs_v1 = pytest.mark.skipif(
    not (CGROUP_ROOT / "memory" / "memory.limit_in_bytes").exists()
    or not (CGROUP_ROOT / "pids").is_dir(),
    reason="written for the cgroup v1 memory and pids controllers",
)


# --- namespaces ----------------------------------------------------------------------------


def test_process_is_pid_1_and_sees_only_its_own_processes(bundle: Bundle) -> None:
    r = bundle.run("echo $$; ps; set -- /proc/[0-9]*; echo procs=$*")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1"
    rows = [line.split() for line in lines[1:] if line.split() and line.split()[0].isdigit()]
    pids = {int(row[0]) for row in rows}
    assert 1 in pids
    assert len(rows) == 2, r.stdout  # sh itself and ps: no host process
    # /proc inside lists the same two tasks, nothing of the host's hundreds.
    procs = lines[-1].removeprefix("procs=").split()
    assert procs[0] == "/proc/1" and len(procs) <= 2, lines[-1]


def test_hostname_is_the_containers(bundle: Bundle) -> None:
    before = socket.gethostname()
    r = bundle.run("hostname; cat /proc/sys/kernel/hostname", hostname="isolated")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["isolated", "isolated"]
    assert socket.gethostname() == before  # the host's own name is untouched


def test_root_holds_only_the_rootfs(bundle: Bundle) -> None:
    r = bundle.run("ls -a /; cat /rootfs-marker; ls /work /usr 2>&1")
    listing = r.stdout.split()
    expected = sorted(os.listdir(bundle.rootfs))
    inside = sorted(x for x in listing[: listing.index("inside")] if x not in (".", ".."))
    assert inside == expected, r.stdout
    assert "inside the rootfs" in r.stdout
    assert "work" not in inside and "usr" not in inside
    assert "/work: No such file or directory" in r.stdout
    assert "/usr: No such file or directory" in r.stdout


# --- privileges ----------------------------------------------------------------------------


def test_mount_fails(bundle: Bundle) -> None:
    r = bundle.run("mount -t tmpfs x /mnt; echo rc=$?; grep -c ' /mnt ' /proc/mounts")
    assert "rc=0" not in r.stdout
    assert "rc=" in r.stdout
    assert r.stdout.splitlines()[-1] == "0"  # nothing mounted
    assert "permission denied" in r.stderr.lower()


def test_reboot_fails(bundle: Bundle) -> None:
    r = bundle.run("reboot -f; echo still-here rc=$?")
    assert r.returncode == 0, r.stderr
    line = r.stdout.strip()
    assert line.startswith("still-here rc=") and line != "still-here rc=0", line
    assert "Operation not permitted" in r.stderr


def test_capabilities_and_seccomp_are_applied(bundle: Bundle) -> None:
    r = bundle.run("grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status")
    assert r.returncode == 0, r.stderr
    status = dict(line.split(":\t") for line in r.stdout.splitlines())
    for key in ("CapEff", "CapBnd"):
        mask = int(status[key], 16)
        assert mask >> 13 & 1, "CAP_NET_RAW"  # Docker 20.10's default set has it
        assert not mask >> 21 & 1, "CAP_SYS_ADMIN"
        assert not mask >> 22 & 1, "CAP_SYS_BOOT"
        assert mask >> 0 & 1, "CAP_CHOWN"
    assert status["Seccomp"].strip() == "2"  # filter mode


RAW_SOCKET_SCRIPT = (
    "ping -c1 -W1 127.0.0.1; echo ping=$?; "
    "arping -c1 -w1 -I lo 127.0.0.1; echo arping=$?; "
    "traceroute -m1 -w1 127.0.0.1; echo traceroute=$?"
)


def test_raw_sockets_fail_without_net_raw(bundle: Bundle) -> None:
    # --cap-drop NET_RAW, and ICMP datagram sockets ("unprivileged ping") denied too: no group
    # may use them.
    sysctls = (("net.ipv4.ping_group_range", "1 0"),)
    r = bundle.run(RAW_SOCKET_SCRIPT, sysctls=sysctls, cap_drop=("NET_RAW",))
    assert "ping=0" not in r.stdout and "ping=" in r.stdout, r.stdout
    assert "arping=0" not in r.stdout and "traceroute=0" not in r.stdout, r.stdout
    # arping (AF_PACKET) and traceroute (SOCK_RAW) have no fallback: socket() itself fails.
    assert r.stderr.count("socket: Operation not permitted") == 2, r.stderr
    assert "permission denied" in r.stderr  # ping's message for EPERM/EACCES

    # The same ping works with the default capabilities: the failure above is the capability.
    r = bundle.run("ping -c1 -W1 127.0.0.1; echo ping=$?", sysctls=sysctls)
    assert "ping=0" in r.stdout, r.stdout + r.stderr
    assert "1 packets received" in r.stdout


def test_docker_network_sysctls_are_set(bundle: Bundle) -> None:
    # Docker 20.10's, in the container's own network namespace (the host's stay as they are).
    r = bundle.run(
        "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start"
    )
    assert r.stdout.split() == ["0", "2147483647", "0"], r.stdout + r.stderr


def test_proc_paths_masked_and_read_only(bundle: Bundle) -> None:
    # /proc/kcore does not exist on every kernel (CONFIG_PROC_KCORE); check the masked
    # files this host really has, and kcore when present.
    masked = [
        p
        for p in ("/proc/kcore", "/proc/timer_list", "/proc/keys")
        if os.path.exists(p) and (p == "/proc/kcore" or Path(p).read_bytes())
    ]
    assert masked, "no masked /proc file exists on this host to check"
    script = "; ".join(f"echo {p}=$(cat {p} 2>/dev/null | wc -c)" for p in masked)
    script += "; echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c)"
    script += "; echo x > /proc/sys/kernel/hostname; echo write=$?"
    r = bundle.run(script)
    for p in masked:
        assert f"{p}=0" in r.stdout, r.stdout
    assert "kcore=0" in r.stdout
    assert "write=0" not in r.stdout
    assert "Read-only file system" in r.stderr, r.stderr


# --- users ---------------------------------------------------------------------------------


def test_user_uid_gid(bundle: Bundle) -> None:
    r = bundle.run("id; id -u; id -g", user="1000:1000")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("uid=1000(user) gid=1000(user)"), lines[0]
    assert lines[1:] == ["1000", "1000"]


def test_user_by_name_gets_home(bundle: Bundle) -> None:
    r = bundle.run("id -u; echo $HOME; cd && pwd", user="user")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "/home/user", "/home/user"]


# --- resources -----------------------------------------------------------------------------


@needs_v1
def test_memory_limit_oom_kills(bundle: Bundle) -> None:
    # The hog runs in a child shell, marked as the OOM killer's first choice, so PID 1
    # survives to report how it ended.
    hog = (
        "echo 1000 > /proc/self/oom_score_adj; "
        'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo survived'
    )
    script = (
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; echo ready; read go; "
        f"sh -c '{hog}'; echo hog=$?; "
        "grep oom_kill /sys/fs/cgroup/memory/memory.oom_control"
    )
    cid, proc = bundle.start(script, memory=16 * MIB)
    try:
        seen = wait_for(proc, b"ready")
        assert seen.split()[0] == b"16777216"  # as the container sees its cgroup
        assert host_cgroup_file(cid, "memory", "memory.limit_in_bytes") == "16777216"
        rc, out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, out + err
    assert "survived" not in out, out
    assert "hog=137" in out, out + err  # SIGKILL from the OOM killer
    assert "oom_kill 0" not in out and "oom_kill " in out, out


@needs_v1
def test_pids_limit_stops_fork_loop(bundle: Bundle) -> None:
    script = (
        "( i=0; while [ $i -lt 60 ]; do sleep 60 & i=$((i+1)); done ); "
        "set -- /proc/[0-9]*; echo procs=$#; "
        "read n < /sys/fs/cgroup/pids/pids.max; echo max=$n; "
        "echo spawned; read go"
    )
    cid, proc = bundle.start(script, pids_limit=20)
    try:
        out = wait_for(proc, b"spawned").decode()
        assert host_cgroup_file(cid, "pids", "pids.max") == "20"
        current = int(host_cgroup_file(cid, "pids", "pids.current"))
        assert 2 <= current <= 20
        events = host_cgroup_file(cid, "pids", "pids.events")
        assert events.startswith("max ") and int(events.split()[1]) > 0  # forks were refused
        rc, rest, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "max=20" in out
    procs = int(out.split("procs=")[1].split()[0])
    assert procs <= 20, out
    assert "can't fork" in err, err


def test_read_only_root_with_tmpfs(bundle: Bundle) -> None:
    r = bundle.run(
        "touch /x; echo root=$?; touch /tmp/y && echo tmp-ok; grep ' /tmp ' /proc/mounts",
        read_only=True,
        mounts=(Mount("tmpfs", "", "/tmp"),),
    )
    assert "root=0" not in r.stdout and "root=" in r.stdout, r.stdout
    assert "Read-only file system" in r.stderr
    assert "tmp-ok" in r.stdout
    assert "tmpfs /tmp tmpfs" in r.stdout and "nosuid" in r.stdout
    assert not (bundle.rootfs / "x").exists()
    assert not (bundle.rootfs / "tmp" / "y").exists()  # it went to the tmpfs

    # Control: without --read-only the same touch works and lands in the rootfs.
    r = bundle.run("touch /x; echo root=$?")
    assert "root=0" in r.stdout, r.stderr
    assert (bundle.rootfs / "x").exists()


def test_no_cgroups_left_behind(bundle: Bundle) -> None:
    r = bundle.run("true", memory=32 * MIB, pids_limit=50)
    assert r.returncode == 0, r.stderr
    cid = bundle.ids[-1]
    bundle.cleanup()
    assert _cgroup_dirs(cid) == []
