"""The per-container monitor (runtime/monitor.py) and its client side (runtime/attach.py),
against the real runc with busybox bundles built in tmp_path."""

from __future__ import annotations

import datetime
import io
import json
import os
import re
import signal
import socket
import termios
import threading
import time
import tty
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import CommandNotExecutable, CommandNotFound, Conflict
from dockyard.runtime.attach import (
    _connect,
    attach,
    launch_monitor,
    release_starter,
    request_start,
    send_signal,
    spawn_monitor,
)
from dockyard.runtime.tty import get_winsize, parse_detach_keys, set_winsize
from tests.runtime import test_oci
from tests.runtime.test_oci import RUNC, Sandbox, process_alive, read_pid, wait_until

# The bundle fixtures live in test_oci.py; make them visible to this module too.
busybox_rootfs = test_oci.busybox_rootfs
sandbox = test_oci.sandbox

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or RUNC is None or not os.path.exists("/bin/busybox"),
    reason="needs root, runc and /bin/busybox",
)


class Started:
    def __init__(self, sb: Sandbox, cid: str, run_dir: Path, log_path: Path, pid: int) -> None:
        self.sb = sb
        self.cid = cid
        self.run_dir = run_dir
        self.log_path = log_path
        self.pid = pid

    @property
    def monitor_pid(self) -> int:
        pid = read_pid(self.run_dir / "monitor.pid")
        assert pid is not None
        return pid

    def wait_exit(self, timeout: float = 30.0) -> dict[str, Any]:
        """exit.json once the monitor is done (it removes monitor.pid last)."""
        wait_until(
            lambda: (
                (self.run_dir / "exit.json").exists()
                and not (self.run_dir / "monitor.pid").exists()
            ),
            timeout,
            "the monitor to finish",
        )
        doc: dict[str, Any] = json.loads((self.run_dir / "exit.json").read_text())
        return doc

    def log(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def status(self) -> str | None:
        proc = self.sb.runc("state", self.cid)
        return json.loads(proc.stdout)["status"] if proc.returncode == 0 else None


def start(
    sb: Sandbox,
    args: list[str],
    *,
    tty: bool = False,
    stdin: bool = False,
    start: bool = True,
    exit_command: list[str] | None = None,
) -> Started:
    cid, bundle = sb.bundle(args, terminal=tty, prefix="m")
    run_dir = sb.tmp / "run" / cid
    sb.run_dirs.append(run_dir)
    log_path = sb.tmp / "logs" / f"{cid}-json.log"
    pid = spawn_monitor(
        cid=cid,
        bundle=str(bundle),
        runtime="runc",
        runtime_root=str(sb.state_root),
        run_dir=str(run_dir),
        log_path=str(log_path),
        tty=tty,
        stdin=stdin,
        start=start,
        exit_command=exit_command,
    )
    return Started(sb, cid, run_dir, log_path, pid)


def test_start_logs_and_exit(sandbox: Sandbox) -> None:
    marker = sandbox.tmp / "exit-command-ran"
    c = start(
        sandbox,
        ["sh", "-c", "echo out1; echo err1 >&2; echo out2; printf 'no newline'; exit 3"],
        exit_command=["/bin/sh", "-c", f'echo "$0" > {marker}; echo noise; echo noise >&2', "x"],
    )
    assert c.pid > 0
    info = c.wait_exit()
    assert info["ExitCode"] == 3
    assert info["Signal"] == 0
    finished = datetime.datetime.fromisoformat(info["FinishedAt"])
    assert abs((datetime.datetime.now(datetime.UTC) - finished).total_seconds()) < 60
    assert marker.read_text() == "x\n"  # the exit command ran, with its own args

    entries = c.log()
    for e in entries:
        assert set(e) == {"log", "stream", "time"}
        # Go's RFC3339Nano, as Docker's json-file writes it: trailing zeros of the fraction
        # dropped ("...:42.95065202Z" has 8 digits).
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z", e["time"]), e
        datetime.datetime.fromisoformat(e["time"])
    assert [e["log"] for e in entries if e["stream"] == "stdout"] == [
        "out1\n",
        "out2\n",
        "no newline",
    ]
    assert [e["log"] for e in entries if e["stream"] == "stderr"] == ["err1\n"]
    times = [e["time"] for e in entries if e["stream"] == "stdout"]
    assert times == sorted(times)
    # The launcher reaped its direct child; the monitor itself is gone and tidied up.
    assert not (c.run_dir / "attach.sock").exists()


def test_attach_before_start(sandbox: Sandbox) -> None:
    c = start(
        sandbox,
        ["sh", "-c", "echo a; echo b >&2; echo c; seq 1 5000; echo d >&2; exit 3"],
        start=False,
    )
    assert c.status() == "created"
    out, err = io.BytesIO(), io.BytesIO()
    code = attach(str(c.run_dir), stdin=False, tty=False, start=True, stdout=out, stderr=err)
    assert code == 3
    expected = "a\nc\n" + "".join(f"{i}\n" for i in range(1, 5001))
    assert out.getvalue().decode() == expected
    assert err.getvalue() == b"b\nd\n"
    assert c.wait_exit()["ExitCode"] == 3
    logged = [e["log"] for e in c.log() if e["stream"] == "stdout"]
    assert "".join(logged) == expected
    assert len(logged) == 5002


def launch_created(sb: Sandbox, args: list[str]) -> Started:
    """A container created by a monitor launched early, as ``run`` and the daemon do: the
    launcher holds the go pipe until it asks for the start."""
    cid, bundle = sb.bundle(args, prefix="g")
    run_dir = sb.tmp / "run" / cid
    sb.run_dirs.append(run_dir)
    log_path = sb.tmp / "logs" / f"{cid}-json.log"
    launch = launch_monitor(
        cid=cid,
        bundle=str(bundle),
        runtime="runc",
        runtime_root=str(sb.state_root),
        run_dir=str(run_dir),
        log_path=str(log_path),
        tty=False,
        stdin=False,
        start=False,
        exit_command=None,
        wait_for_go=True,
    )
    return Started(sb, cid, run_dir, log_path, launch.wait_ready())


def test_a_starter_that_dies_before_the_start_takes_the_container_down(
    sandbox: Sandbox,
) -> None:
    """A ``run`` or daemon SIGKILLed between creating the container and asking for its start
    used to leave it waiting for a start forever. Its end of the go pipe closes with it:
    the monitor then kills the created container and records why."""
    c = launch_created(sandbox, ["sh", "-c", "echo never"])
    assert c.status() == "created"
    release_starter(str(c.run_dir))  # what the kernel does when the starter dies
    info = c.wait_exit()
    assert info["ExitCode"] == 137
    assert "never started" in info["Error"]
    assert c.log() == []
    assert c.status() == "stopped"


def test_a_start_asked_for_is_kept_when_the_starter_goes(sandbox: Sandbox) -> None:
    c = launch_created(sandbox, ["sh", "-c", "echo ran; exit 5"])
    request_start(str(c.run_dir))  # lets go of the go pipe once the monitor has started it
    assert c.wait_exit()["ExitCode"] == 5
    assert [e["log"] for e in c.log()] == ["ran\n"]


def test_two_clients_and_request_start(sandbox: Sandbox) -> None:
    c = start(sandbox, ["sh", "-c", "read x; echo got-$x; exit 4"], stdin=True, start=False)
    results: dict[str, Any] = {}

    def watcher() -> None:
        out = io.BytesIO()
        results["code"] = attach(str(c.run_dir), stdin=False, tty=False, stdout=out, stderr=None)
        results["out"] = out.getvalue()

    t = threading.Thread(target=watcher)
    t.start()
    try:
        request_start(str(c.run_dir))
        assert c.status() == "running"
        r, w = os.pipe()
        os.write(w, b"hello\n")
        os.close(w)
        out = io.BytesIO()
        try:
            code = attach(str(c.run_dir), stdin=True, tty=False, stdout=out, stdin_fd=r)
        finally:
            os.close(r)
    finally:
        t.join(30)
    assert code == 4
    assert out.getvalue() == b"got-hello\n"
    assert results == {"code": 4, "out": b"got-hello\n"}


def test_stdin_echo_and_eof(sandbox: Sandbox) -> None:
    c = start(sandbox, ["cat"], stdin=True, start=False)
    data = b"".join(b"line %d\n" % i for i in range(20000))  # more than a pipe holds
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(data)

    t = threading.Thread(target=feed)
    t.start()
    out = io.BytesIO()
    try:
        code = attach(str(c.run_dir), stdin=True, tty=False, start=True, stdout=out, stdin_fd=r)
    finally:
        t.join(30)
        os.close(r)
    assert code == 0
    assert out.getvalue() == data
    assert c.wait_exit()["ExitCode"] == 0


def test_tty_size_and_device(sandbox: Sandbox) -> None:
    c = start(sandbox, ["sh", "-c", "stty size; tty; exit 2"], tty=True, stdin=True, start=False)
    master, slave = os.openpty()
    try:
        set_winsize(slave, 37, 101)
        before = termios.tcgetattr(slave)
        code = attach(
            str(c.run_dir),
            stdin=True,
            tty=True,
            start=True,
            stdout=slave,
            stderr=slave,
            stdin_fd=slave,
        )
        assert termios.tcgetattr(slave) == before  # raw mode undone
        assert get_winsize(slave) == (37, 101)
        os.set_blocking(master, False)
        output = b""
        try:
            while chunk := os.read(master, 4096):
                output += chunk
        except BlockingIOError:
            pass
    finally:
        os.close(master)
        os.close(slave)
    assert code == 2
    lines = output.decode().split("\r\n")
    assert lines[0] == "37 101"
    assert lines[1].startswith("/dev/pts/")
    entries = c.log()
    assert {e["stream"] for e in entries} == {"stdout"}
    assert entries[0]["log"] == "37 101\r\n"
    assert c.wait_exit()["ExitCode"] == 2


def test_detach_keys_leave_container_running(sandbox: Sandbox) -> None:
    script = "read x; echo got-$x; read y; exit $y"
    c = start(sandbox, ["sh", "-c", script], tty=True, stdin=True, start=True)
    master, slave = os.openpty()
    try:
        tty.setraw(slave)  # so our tty driver passes ctrl-q (IXON) through
        # Typed before the keys, in the same read: it still reaches the container.
        os.write(master, b"hello\r" + parse_detach_keys("ctrl-p,ctrl-q") + b"ignored")
        out = io.BytesIO()
        code = attach(str(c.run_dir), stdin=True, tty=True, stdout=out, stderr=out, stdin_fd=slave)
    finally:
        os.close(master)
        os.close(slave)
    assert code is None
    assert c.status() == "running"
    assert process_alive(c.monitor_pid)
    wait_until(
        lambda: any(e["log"] == "got-hello\r\n" for e in c.log()), what="input before detach"
    )
    # Attach again (stdin a pipe this time) and let the script finish.
    r, w = os.pipe()
    os.write(w, b"5\r")
    os.close(w)
    try:
        code = attach(str(c.run_dir), stdin=True, tty=True, stdout=io.BytesIO(), stdin_fd=r)
    finally:
        os.close(r)
    assert code == 5


def test_a_client_that_does_not_read_holds_the_container_back(sandbox: Sandbox) -> None:
    """Docker's behaviour (checked against Docker 20.10 with an attach client that never
    reads): the container's writes wait for its slowest attached reader, so no attached
    client loses output. Once the client goes, the container carries on and the log is
    complete. Lines longer than 16 KiB are logged as 16 KiB partial entries."""
    size = 30_000_000
    script = f"head -c {size} /dev/zero | tr '\\0' x; echo; echo done >&2"
    c = start(sandbox, ["sh", "-c", script], start=False)
    stuck = _connect(str(c.run_dir))
    try:
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(b'{"stdin": false, "stdout": true, "stderr": true, "start": true}\n')
        # 30 MB cannot fit in the pipe, the monitor's 4 MiB allowance and a socket buffer:
        # the log stops growing well short of it and the container still runs.
        logged = _stalled_size(c.log_path)
        assert logged < size // 2
        assert not (c.run_dir / "exit.json").exists()
        assert c.status() == "running"
    finally:
        stuck.close()
    info = c.wait_exit(60)
    assert info["ExitCode"] == 0
    stdout = [e["log"] for e in c.log() if e["stream"] == "stdout"]
    assert all(len(piece) == 16384 and "\n" not in piece for piece in stdout[:-1])
    assert stdout[-1].endswith("x\n")
    assert sum(map(len, stdout)) == size + 1
    assert [e["log"] for e in c.log() if e["stream"] == "stderr"] == ["done\n"]


def _stalled_size(path: Path, timeout: float = 30.0) -> int:
    """The size of a growing file once two looks 0.3 s apart see the same size."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else 0
        if size == last and size > 0:
            return size
        last = size
        time.sleep(0.3)
    return last


def test_runc_kill_gives_137_and_monitor_rss(sandbox: Sandbox) -> None:
    c = start(sandbox, ["sleep", "1000"])
    # Detached: its own session, not our child (spawn_monitor reaped the short-lived parent).
    stat = Path(f"/proc/{c.monitor_pid}/stat").read_text().rsplit(")", 1)[1].split()
    ppid, sid = int(stat[1]), int(stat[3])
    assert ppid != os.getpid()
    assert sid == c.monitor_pid
    # The container's init was reparented to the monitor (PR_SET_CHILD_SUBREAPER).
    init_stat = Path(f"/proc/{c.pid}/stat").read_text().rsplit(")", 1)[1].split()
    assert int(init_stat[1]) == c.monitor_pid
    status = Path(f"/proc/{c.monitor_pid}/status").read_text()
    rss_kb = int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS:")).split()[1])
    print(f"\nmonitor VmRSS while the container runs: {rss_kb} kB ({rss_kb / 1024:.1f} MiB)")
    assert 0 < rss_kb < 40 * 1024
    # The monitor ignores SIGINT/SIGHUP/SIGPIPE and forwards nothing by itself.
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        os.kill(c.monitor_pid, sig)
    assert c.status() == "running"
    assert process_alive(c.monitor_pid)

    assert sandbox.runc("kill", c.cid, "KILL").returncode == 0
    info = c.wait_exit()
    assert info == {"ExitCode": 137, "FinishedAt": info["FinishedAt"], "Signal": 9}


def test_send_signal(sandbox: Sandbox) -> None:
    c = start(
        sandbox, ["sh", "-c", "trap 'echo got-usr1; exit 9' USR1; while :; do sleep 0.05; done"]
    )
    wait_until(lambda: c.status() == "running", what="running")
    out = io.BytesIO()
    result: dict[str, int | None] = {}

    def client() -> None:
        result["code"] = attach(str(c.run_dir), stdin=False, tty=False, stdout=out)

    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.3)  # let the shell install its trap and the client attach
    send_signal(str(c.run_dir), signal.SIGUSR1)
    t.join(30)
    assert result["code"] == 9
    assert out.getvalue() == b"got-usr1\n"
    with pytest.raises(Conflict):  # nothing listens any more
        send_signal(str(c.run_dir), signal.SIGKILL)


def test_create_failures_reported(sandbox: Sandbox) -> None:
    with pytest.raises(CommandNotFound) as info:
        start(sandbox, ["nonexist"])
    assert str(info.value) == 'exec: "nonexist": executable file not found in $PATH'
    with pytest.raises(CommandNotExecutable):
        start(sandbox, ["/etc/passwd"], tty=True)
    for run_dir in sandbox.run_dirs:
        assert not (run_dir / "exit.json").exists()
        assert not (run_dir / "monitor.pid").exists()
        assert not (run_dir / "attach.sock").exists()


def test_monitor_sigkill_orphans_the_container(sandbox: Sandbox) -> None:
    c = start(sandbox, ["sleep", "1000"])
    mpid = c.monitor_pid
    os.kill(mpid, signal.SIGKILL)
    wait_until(lambda: not process_alive(mpid), what="the monitor to die")
    # What happens: the container's init is reparented to the monitor's nearest subreaper
    # (normally PID 1) and keeps running; no exit.json is written, nobody copies its output
    # (a non-TTY container writing to its closed stdout pipe gets EPIPE/SIGPIPE), and
    # attach.sock is left behind with nobody listening. The engine's recovery sees a dead
    # monitor.pid without exit.json, records the exit and runs `runc delete -f`.
    assert c.status() == "running"
    assert process_alive(c.pid)
    assert not (c.run_dir / "exit.json").exists()
    with pytest.raises(Conflict):
        attach(str(c.run_dir), stdin=False, tty=False)
