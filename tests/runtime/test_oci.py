"""OCIRuntime against the real runc, with a busybox bundle built here (no image store).

The helpers at the top (``Sandbox``, the rootfs and config builders) are shared with
test_monitor.py.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import (
    CommandNotExecutable,
    CommandNotFound,
    Conflict,
    DockyardError,
    NotFound,
    Unavailable,
)
from dockyard.runtime.monitor import runtime_error
from dockyard.runtime.oci import ExecProcess, OCIRuntime
from tests.helpers import wait_until

RUNC = shutil.which("runc")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or RUNC is None or not os.path.exists("/bin/busybox"),
    reason="needs root, runc and /bin/busybox",
)

CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SYS_CHROOT",
    "CAP_MKNOD",
    "CAP_AUDIT_WRITE",
    "CAP_SETFCAP",
]


def oci_config(
    rootfs: Path, args: list[str], cid: str, *, terminal: bool = False
) -> dict[str, Any]:
    """A minimal runtime-spec 1.0.2 config: the usual namespaces and mounts, no rlimits."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": terminal,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: CAPS for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": cid[:63],
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "cgroupsPath": f"/dockyard-test/{cid}",
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        },
    }


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """/bin/busybox plus a hard link per applet; shared read-mostly by every test container."""
    root = tmp_path_factory.mktemp("bb") / "rootfs"
    for d in ("bin", "proc", "dev", "sys", "etc", "tmp", "root"):
        (root / d).mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(
        ["/bin/busybox", "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for name in applets:
        if name != "busybox" and "/" not in name:
            os.link(root / "bin" / "busybox", root / "bin" / name)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    return root


@dataclass
class Sandbox:
    """Per-test runtime state dir, bundles and everything to clean up afterwards."""

    tmp: Path
    rootfs: Path
    state_root: Path
    ids: list[str] = field(default_factory=list)
    run_dirs: list[Path] = field(default_factory=list)

    def bundle(
        self, args: list[str], *, terminal: bool = False, prefix: str = "c"
    ) -> tuple[str, Path]:
        cid = f"dyt-{prefix}-{os.getpid()}-{secrets.token_hex(4)}"
        self.ids.append(cid)
        bundle = self.tmp / f"bundle-{cid}"
        bundle.mkdir()
        config = oci_config(self.rootfs, args, cid, terminal=terminal)
        (bundle / "config.json").write_text(json.dumps(config))
        return cid, bundle

    def runc(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert RUNC is not None
        return subprocess.run(
            [RUNC, "--root", str(self.state_root), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def cleanup(self) -> None:
        # Monitors first (only the ones these tests started, by pid), then the containers.
        for run_dir in self.run_dirs:
            pid = read_pid(run_dir / "monitor.pid")
            if pid and process_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for cid in self.ids:
            self.runc("delete", "--force", cid)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture
def sandbox(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Sandbox]:
    sb = Sandbox(tmp_path, busybox_rootfs, tmp_path / "runc-state")
    try:
        yield sb
    finally:
        sb.cleanup()


@pytest.fixture
def rt(sandbox: Sandbox) -> OCIRuntime:
    return OCIRuntime("runc", str(sandbox.state_root))


# --------------------------------------------------------------------------- tests


def test_missing_runtime_binary_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        OCIRuntime("no-such-oci-runtime-xyz", str(tmp_path))


def test_create_start_state_kill_delete_round_trip(sandbox: Sandbox, rt: OCIRuntime) -> None:
    cid, bundle = sandbox.bundle(["sh", "-c", "echo hello; exec sleep 1000"])
    pid_file = sandbox.tmp / "init.pid"
    out_r, out_w = os.pipe()
    try:
        rt.create(cid, str(bundle), pid_file=str(pid_file), stdout=out_w, stderr=out_w)
    finally:
        os.close(out_w)
    with os.fdopen(out_r, "rb") as out:
        pid = int(pid_file.read_text())
        state = rt.state(cid)
        assert state is not None
        assert state["status"] == "created"
        assert state["pid"] == pid
        assert state["id"] == cid

        rt.start(cid)
        assert out.readline() == b"hello\n"
        state = rt.state(cid)
        assert state is not None and state["status"] == "running"
        assert rt.ps(cid) == [pid]

        with pytest.raises(Conflict):
            rt.delete(cid)  # running: needs force
        with pytest.raises(Conflict):
            rt.start(cid)  # already running

        rt.kill(cid, "KILL")
        wait_until(lambda: (rt.state(cid) or {}).get("status") == "stopped", what="stopped")
        assert out.read() == b""  # the container's end of the pipe is gone
    rt.delete(cid)
    assert rt.state(cid) is None
    rt.delete(cid)  # a missing container is not an error
    rt.delete(cid, force=True)


def test_kill_numeric_signal_and_all(sandbox: Sandbox, rt: OCIRuntime) -> None:
    cid, bundle = sandbox.bundle(["sleep", "1000"])
    rt.create(cid, str(bundle), pid_file=str(sandbox.tmp / "init.pid"))
    rt.start(cid)
    rt.kill(cid, signal.SIGKILL, all_processes=True)
    wait_until(lambda: (rt.state(cid) or {}).get("status") == "stopped", what="stopped")
    rt.delete(cid)


def test_unknown_container(rt: OCIRuntime) -> None:
    assert rt.state("dyt-never-created") is None
    rt.delete("dyt-never-created")
    with pytest.raises(NotFound):
        rt.kill("dyt-never-created")
    with pytest.raises(NotFound):
        rt.start("dyt-never-created")
    with pytest.raises(NotFound):
        rt.ps("dyt-never-created")


def test_command_not_found(sandbox: Sandbox, rt: OCIRuntime) -> None:
    cid, bundle = sandbox.bundle(["nonexist"])
    with pytest.raises(CommandNotFound) as info:
        rt.create(cid, str(bundle), pid_file=str(sandbox.tmp / "init.pid"))
    assert str(info.value) == 'exec: "nonexist": executable file not found in $PATH'
    assert info.value.exit_code == 127
    assert rt.state(cid) is None  # runc cleaned up after itself

    cid, bundle = sandbox.bundle(["/no/such/binary"])
    with pytest.raises(CommandNotFound) as info:
        rt.create(cid, str(bundle), pid_file=str(sandbox.tmp / "init.pid"))
    assert "no such file or directory" in str(info.value)


def test_command_not_executable(sandbox: Sandbox, rt: OCIRuntime) -> None:
    cid, bundle = sandbox.bundle(["/etc/passwd"])
    with pytest.raises(CommandNotExecutable) as info:
        rt.create(cid, str(bundle), pid_file=str(sandbox.tmp / "init.pid"))
    assert str(info.value) == 'exec: "/etc/passwd": permission denied'
    assert info.value.exit_code == 126


def test_create_other_failure(sandbox: Sandbox, rt: OCIRuntime) -> None:
    cid, bundle = sandbox.bundle(["true"])
    with pytest.raises(DockyardError) as info:
        rt.create(cid, str(sandbox.tmp / "no-bundle"), pid_file=str(sandbox.tmp / "p"))
    assert type(info.value) is DockyardError
    assert str(info.value).startswith("OCI runtime create failed: ")
    assert "{" not in str(info.value)  # the JSON log wrapper is gone
    rt.create(cid, str(bundle), pid_file=str(sandbox.tmp / "init.pid"))
    with pytest.raises(Conflict):  # the id is taken
        rt.create(cid, str(bundle), pid_file=str(sandbox.tmp / "init2.pid"))
    rt.delete(cid, force=True)


def test_exec(sandbox: Sandbox, rt: OCIRuntime) -> None:
    cid, bundle = sandbox.bundle(["sleep", "1000"])
    rt.create(cid, str(bundle), pid_file=str(sandbox.tmp / "init.pid"))
    rt.start(cid)
    process = oci_config(sandbox.rootfs, ["sh", "-c", "echo in-$(hostname); exit 7"], cid)
    spec = sandbox.tmp / "process.json"
    spec.write_text(json.dumps(process["process"]))
    proc = rt.exec(cid, str(spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, _ = proc.communicate(timeout=30)
    assert out == f"in-{cid[:63]}\n".encode()
    assert proc.returncode == 7
    assert isinstance(proc, ExecProcess)
    assert proc.runtime_error() is None  # exit 7 was the process's own

    process["process"]["args"] = ["nonexist"]
    spec.write_text(json.dumps(process["process"]))
    proc = rt.exec(cid, str(spec), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert isinstance(proc, ExecProcess)
    err = proc.runtime_error()
    assert isinstance(err, CommandNotFound)
    assert str(err) == 'exec: "nonexist": executable file not found in $PATH'
    rt.kill(cid, "KILL")


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        (
            '{"level":"error","msg":"runc create failed: unable to start container process: '
            'exec: \\"x\\": executable file not found in $PATH","time":"2026-01-01T00:00:00Z"}',
            127,
            'exec: "x": executable file not found in $PATH',
        ),
        (
            'time="2026-01-01T00:00:00Z" level=error msg="runc create failed: unable to start '
            'container process: exec: \\"/etc\\": permission denied"',
            126,
            'exec: "/etc": permission denied',
        ),
        (
            '{"level":"warning","msg":"something odd","time":"t"}\n'
            '{"level":"error","msg":"runc create failed: unable to start container process: '
            'error during container init: error mounting \\"/x\\" to rootfs at \\"/y\\": '
            'stat /x: no such file or directory","time":"t"}',
            125,
            "runc create failed: unable to start container process: error during container "
            'init: error mounting "/x" to rootfs at "/y": stat /x: no such file or directory',
        ),
        (
            '{"msg":"executable file `nonexist` not found in $PATH: No such file or directory",'
            '"level":"error","time":"t"}',
            127,
            "executable file `nonexist` not found in $PATH: No such file or directory",
        ),
        ("container does not exist\n\n", 125, "container does not exist"),
        ("", 125, "OCI runtime failed"),
    ],
)
def test_runtime_error_classification(text: str, code: int, message: str) -> None:
    assert runtime_error(text) == (code, message)
