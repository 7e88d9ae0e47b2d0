"""Containers end to end through the real CLI, runc and overlayfs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import CLI
from tests.helpers import wait_until


def state(cli: CLI, name: str) -> dict:
    return json.loads(cli("inspect", name).stdout)[0]["State"]


def wait_for(cond: Callable[[], object], timeout: float = 20) -> None:
    wait_until(cond, timeout)


def test_run_prints_and_propagates_exit_code(ctr: CLI) -> None:
    r = ctr("run", "busybox", "echo", "Hello world")
    assert r.stdout == "Hello world\n"
    r = ctr("run", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert r.returncode == 3 and r.stdout == "out\n" and r.stderr == "err\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["busybox", "nonexistent-cmd"], 127, "executable file not found"),
        (["busybox", "/etc/passwd"], 126, "permission denied"),
        (["--pull", "never", "no-such-image:1"], 125, "No such image"),
        # Missing locally: pulled first, here from the suite's closed loopback mirror.
        (["no-such-image:1"], 125, "127.0.0.1:9"),
    ],
)
def test_run_failures_have_docker_exit_codes(ctr: CLI, args, code: int, message: str) -> None:
    r = ctr("run", "--rm", *args, check=False)
    assert r.returncode == code, r.stderr
    assert message in r.stderr and r.stderr.splitlines()[-1].startswith("Error")
    assert "Traceback" not in r.stderr
    assert ctr("ps", "-aq").stdout.strip() == ""  # --rm removed the failed container


def test_detached_lifecycle(ctr: CLI) -> None:
    cid = ctr(
        "run", "-d", "--name", "web", "-e", "A=1", "-w", "/tmp", "busybox", "sleep", "1000"
    ).stdout.strip()
    assert len(cid) == 64
    ps = ctr("ps").stdout.splitlines()
    assert ps[0].split()[:2] == ["CONTAINER", "ID"] and "web" in ps[1] and "Up" in ps[1]
    st = state(ctr, "web")
    assert st["Running"] and st["Status"] == "running" and st["Pid"] > 0
    assert ctr("exec", "web", "sh", "-c", "echo $A; pwd").stdout == "1\n/tmp\n"
    assert (
        ctr("exec", "-e", "X=1", "-u", "1000", "web", "sh", "-c", "echo $X; id -u").stdout
        == "1\n1000\n"
    )
    ctr("exec", "-d", "web", "touch", "/x")
    wait_for(lambda: ctr("exec", "web", "ls", "/x", check=False).returncode == 0)
    assert ctr("exec", "web", "sh", "-c", "exit 7", check=False).returncode == 7
    top = ctr("top", "web").stdout.splitlines()
    assert "PID" in top[0] and any("sleep 1000" in ln for ln in top[1:])
    ctr("rename", "web", "web2")
    assert ctr("inspect", "--format", "{{.Name}}", cid[:12]).stdout.strip() == "/web2"
    assert ctr("stop", "-t", "1", "web2").stdout.strip() == "web2"
    st = state(ctr, "web2")
    assert not st["Running"] and st["Status"] == "exited" and st["ExitCode"] == 137
    assert "Exited (137)" in ctr("ps", "-a").stdout
    assert ctr("ps", "-q").stdout.strip() == ""
    assert ctr("ps", "-aq", "-f", "status=exited").stdout.strip() == cid[:12]
    ctr("start", "web2")
    assert state(ctr, "web2")["Running"]
    ctr("kill", "web2")
    assert state(ctr, "web2")["ExitCode"] == 137
    assert ctr("rm", "web2").stdout.strip() == "web2"
    assert ctr("ps", "-aq").stdout.strip() == ""
    assert not (ctr.root / "containers" / cid).exists()


def test_stop_kills_after_timeout_when_term_is_ignored(ctr: CLI) -> None:
    ctr(
        "run",
        "-d",
        "--name",
        "stubborn",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; while true; do sleep 1; done",
    )
    t = time.monotonic()
    ctr("stop", "-t", "1", "stubborn")
    assert time.monotonic() - t >= 1.0
    assert state(ctr, "stubborn")["ExitCode"] == 137


def test_graceful_stop_and_kill_signal(ctr: CLI) -> None:
    ctr(
        "run",
        "-d",
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; trap 'echo got-hup' HUP; while true; do sleep 0.1; done",
    )
    time.sleep(0.3)
    ctr("kill", "-s", "HUP", "polite")
    wait_for(lambda: "got-hup" in ctr("logs", "polite").stdout)
    ctr("stop", "polite")
    assert state(ctr, "polite")["ExitCode"] == 0


def test_logs_wait_and_restart(ctr: CLI) -> None:
    ctr(
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; done; echo oops >&2; exit 4",
    )
    assert ctr("wait", "talker").stdout.strip() == "4"
    r = ctr("logs", "talker")
    assert r.stdout == "line1\nline2\nline3\n" and r.stderr == "oops\n"
    tail = ctr("logs", "--tail", "2", "talker")  # the last two lines of both streams
    assert tail.stdout == "line3\n" and tail.stderr == "oops\n"
    stamped = ctr("logs", "-t", "talker").stdout.splitlines()[0]
    assert stamped.endswith(" line1") and stamped[:4].isdigit() and "T" in stamped
    log = json.loads(ctr("inspect", "--format", "{{json .LogPath}}", "talker").stdout)
    first = json.loads(open(log).readline())
    assert first["stream"] == "stdout" and first["log"] == "line1\n" and first["time"]
    ctr("restart", "talker")
    assert ctr("wait", "talker").stdout.strip() == "4"
    assert ctr("logs", "talker").stdout.count("line1") == 2


def test_logs_follow(ctr: CLI) -> None:
    ctr("run", "-d", "--name", "ff", "busybox", "sh", "-c", "echo a; sleep 1; echo b")
    r = ctr("logs", "-f", "ff", timeout=30)
    assert r.stdout == "a\nb\n"


def test_name_conflict(ctr: CLI) -> None:
    ctr("create", "--name", "dup", "busybox", "true")
    r = ctr("create", "--name", "dup", "busybox", "true", check=False)
    assert r.returncode == 125
    assert 'Conflict. The container name "/dup" is already in use' in r.stderr
    assert len(ctr("ps", "-aq").stdout.split()) == 1


def test_rm_flag_and_entrypoint(ctr: CLI) -> None:
    ctr("run", "--rm", "busybox", "true")
    assert ctr("ps", "-aq").stdout.strip() == ""
    r = ctr("run", "--rm", "--entrypoint", "/bin/sh", "busybox", "-c", "echo $0")
    assert r.stdout.strip() == "/bin/sh"


def test_rmi_refuses_image_in_use(ctr: CLI) -> None:
    ctr("create", "--name", "user", "busybox", "true")
    r = ctr("rmi", "busybox", check=False)
    assert r.returncode == 1 and "is using its referenced image" in r.stderr
    ctr("rm", "user")
    assert "Deleted:" in ctr("rmi", "busybox").stdout


def test_isolation(ctr: CLI) -> None:
    out = ctr(
        "run",
        "--rm",
        "--hostname",
        "boxy",
        "busybox",
        "sh",
        "-c",
        "echo $$; hostname; ps -o pid | tail -n +2 | sort -n | tail -1; ls /",
    ).stdout.split("\n")
    assert out[0] == "1" and out[1] == "boxy"
    assert int(out[2]) < 100  # the container's own PID numbering: no host PIDs (thousands)
    listing = set(out[3:]) - {""}
    assert listing <= {"bin", "dev", "etc", "home", "proc", "root", "sys", "tmp", "usr", "var"}
    assert (
        ctr("run", "--rm", "busybox", "mount", "-t", "tmpfs", "x", "/mnt", check=False).returncode
        != 0
    )
    r = ctr("run", "--rm", "busybox", "sh", "-c", "reboot -f; echo still-here", check=False)
    assert "still-here" in r.stdout
    # Raw sockets need NET_RAW (Docker 20.10 grants it by default; here it is dropped).
    r = ctr(
        "run",
        "--rm",
        "--cap-drop",
        "NET_RAW",
        "busybox",
        "arping",
        "-c",
        "1",
        "-I",
        "lo",
        "127.0.0.1",
        check=False,
    )
    assert r.returncode != 0 and "not permitted" in r.stderr.lower()
    masked = ctr(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /proc/keys /proc/timer_list 2>/dev/null | wc -c; cat /proc/kcore 2>/dev/null | wc -c",
    ).stdout.split()
    assert masked == ["0", "0"]


def test_writes_do_not_change_the_image(ctr: CLI) -> None:
    ctr(
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "echo changed > /etc/motd; rm /bin/vi; mkdir /newdir",
    )
    r = ctr(
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /etc/motd 2>&1; ls /bin/vi; ls -d /newdir 2>&1",
        check=False,
    )
    assert "changed" not in r.stdout and "/bin/vi" in r.stdout and "No such file" in r.stdout
    diff = ctr("diff", "writer").stdout.splitlines()
    assert "A /etc/motd" in diff and "D /bin/vi" in diff and "A /newdir" in diff
    assert "C /etc" in diff and "C /bin" in diff
    assert not any("hostname" in ln or "resolv.conf" in ln for ln in diff)


def test_commit(ctr: CLI) -> None:
    ctr("run", "--name", "maker", "busybox", "sh", "-c", "echo hi > /greeting; rm /bin/vi")
    iid = ctr("commit", "-c", 'CMD ["cat", "/greeting"]', "maker", "greeter:1").stdout.strip()
    assert iid.startswith("sha256:")
    assert ctr("run", "--rm", "greeter:1").stdout == "hi\n"
    assert ctr("run", "--rm", "greeter:1", "sh", "-c", "ls /bin/vi", check=False).returncode == 1
    info = json.loads(ctr("inspect", "greeter:1").stdout)[0]
    assert len(info["RootFS"]["Layers"]) == 2
    assert info["Parent"] == json.loads(ctr("inspect", "busybox").stdout)[0]["Id"]


def test_volumes(ctr: CLI, tmp_path: Path) -> None:
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "in.txt").write_text("from host")
    r = ctr(
        "run",
        "--rm",
        "-v",
        f"{host}:/data",
        "-v",
        "named:/data2",
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo out > /data/out.txt; echo kept > /data2/f",
    )
    assert r.stdout == "from host"
    assert (host / "out.txt").read_text() == "out\n"
    assert ctr("run", "--rm", "-v", "named:/v", "busybox", "cat", "/v/f").stdout == "kept\n"
    assert "named" in ctr("volume", "ls", "-q").stdout.split()
    info = json.loads(ctr("volume", "inspect", "named").stdout)[0]
    assert info["Driver"] == "local" and info["Mountpoint"].endswith("/named/_data")
    r = ctr("run", "--rm", "-v", f"{host}:/ro:ro", "busybox", "touch", "/ro/x", check=False)
    assert r.returncode != 0
    ctr("create", "--name", "holder", "-v", "named:/v", "busybox", "true")
    r = ctr("volume", "rm", "named", check=False)
    assert r.returncode == 1 and "volume is in use" in r.stderr
    ctr("rm", "holder")
    ctr("volume", "rm", "named")
    assert ctr("volume", "ls", "-q").stdout.strip() == ""


def test_image_volume_gets_an_anonymous_volume(ctr: CLI) -> None:
    ctr("run", "--name", "vv", "busybox", "true")
    ctr("commit", "-c", "VOLUME /data", "vv", "withvol:1")
    ctr("run", "--name", "cc", "withvol:1", "sh", "-c", "echo x > /data/f")
    mounts = json.loads(ctr("inspect", "cc").stdout)[0]["Mounts"]
    assert mounts[0]["Destination"] == "/data" and mounts[0]["Type"] == "volume"
    assert len(ctr("volume", "ls", "-q").stdout.split()) == 1
    ctr("rm", "-v", "cc")
    assert ctr("volume", "ls", "-q").stdout.strip() == ""


def test_resource_limits_are_enforced(ctr: CLI) -> None:
    out = ctr(
        "run",
        "--rm",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "busybox",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/pids/pids.max",
    ).stdout.split()
    assert out == [str(64 * 1024 * 1024), "50000", "50"]
    r = ctr(
        "run",
        "--rm",
        "--memory",
        "16m",
        "busybox",
        "sh",
        "-c",
        "echo 1000 > /proc/self/oom_score_adj; x=$(head -c 64000000 /dev/zero | tr '\\0' a);"
        " echo survived",
        check=False,
    )
    assert "survived" not in r.stdout


def test_read_only_user_hostname_init(ctr: CLI) -> None:
    r = ctr("run", "--rm", "--read-only", "busybox", "touch", "/x", check=False)
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert ctr("run", "--rm", "--user", "1000:1000", "busybox", "id").stdout.startswith(
        "uid=1000 gid=1000"
    )
    assert ctr("run", "--rm", "--hostname", "h", "busybox", "hostname").stdout == "h\n"
    r = ctr("run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '")
    assert r.stdout.startswith("/dev/init")


def test_cp_both_ways(ctr: CLI, tmp_path: Path) -> None:
    ctr("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    src = tmp_path / "dir"
    src.mkdir()
    (src / "a.txt").write_text("A")
    ctr("cp", str(src), "box:/dst")
    assert ctr("exec", "box", "cat", "/dst/a.txt").stdout == "A"
    ctr("cp", "box:/etc/hostname", str(tmp_path))
    assert (tmp_path / "hostname").exists()
    ctr("exec", "box", "sh", "-c", "echo secret > /root/s; ln -s / /root/up; ln -s .. /root/dd")
    out = tmp_path / "got"
    ctr("cp", "box:/root/s", str(out))
    assert out.read_text() == "secret\n"


@pytest.mark.parametrize("link", ["/", ".."])
def test_cp_through_symlinks_stays_inside(ctr: CLI, tmp_path: Path, link: str) -> None:
    ctr("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    ctr("exec", "box", "sh", "-c", f"mkdir -p /data && ln -s {link} /data/link")
    f = tmp_path / "passwd"
    f.write_text("evil\n")
    before = Path("/etc/passwd").read_bytes()
    ctr("cp", str(f), "box:/data/link/etc/")
    assert Path("/etc/passwd").read_bytes() == before
    assert ctr("exec", "box", "cat", "/etc/passwd").stdout == "evil\n"
    # And out of the container: the link resolves inside the container's root.
    out = tmp_path / "out"
    ctr("cp", "box:/data/link/etc/hostname", str(out))
    assert out.read_text().strip() == ctr("exec", "box", "hostname").stdout.strip()


def test_monitor_killed_marks_exited_and_cleans_up(ctr: CLI) -> None:
    cid = ctr("run", "-d", "busybox", "sleep", "1000").stdout.strip()
    pid = state(ctr, cid)["Pid"]
    monitor = int((ctr.run_root / "containers" / cid / "monitor.pid").read_text())
    os.kill(monitor, signal.SIGKILL)
    wait_for(
        lambda: (
            not Path(f"/proc/{monitor}").exists()
            or "State:\tZ" in Path(f"/proc/{monitor}/status").read_text()
        )
    )
    assert "Exited" in ctr("ps", "-a").stdout
    wait_for(lambda: not Path(f"/proc/{pid}").exists())
    with open("/proc/self/mountinfo") as f:
        assert not any(cid in line for line in f)


def test_many_parallel_runs(ctr: CLI) -> None:
    """20 named and 10 unnamed containers started at once from separate CLI processes."""

    def one(i: int) -> subprocess.CompletedProcess[str]:
        named = ["--name", f"p{i}"] if i < 20 else []
        return ctr("run", "-d", *named, "busybox", "sleep", "100", check=False)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(one, range(30)))
    for r in results:
        assert r.returncode == 0, r.stderr
        assert "locked" not in r.stderr
    names = ctr("ps", "--format", "{{.Names}}").stdout.split()
    assert len(names) == 30 and len(set(names)) == 30
    assert {f"p{i}" for i in range(20)} <= set(names)


def test_container_prune(ctr: CLI) -> None:
    ctr("run", "busybox", "true")
    ctr("run", "-d", "busybox", "sleep", "100")
    out = ctr("container", "prune", "-f").stdout
    assert out.startswith("Deleted Containers:") and "Total reclaimed space" in out
    assert len(ctr("ps", "-aq").stdout.split()) == 1


@pytest.mark.parametrize(
    ("verb", "warning"),
    [
        (("container", "prune"), "all stopped containers"),
        (("volume", "prune"), "anonymous local volumes not used by at least one container"),
        (("image", "prune"), "all dangling images"),
        (("builder", "prune"), "all dangling build cache. "),
    ],
)
def test_prune_asks_first_and_only_y_goes_on(ctr: CLI, verb: tuple[str, ...], warning: str) -> None:
    """Like Docker, without -f the question is read from stdin, tty or not: a script that feeds
    nothing, or anything but y, removes nothing."""
    cid = (
        ctr("run", "-v", "/data", "busybox", "true").stdout.strip()
        or ctr("ps", "-lq", "--no-trunc").stdout.strip()
    )
    dangling = ctr("commit", cid).stdout.strip()

    def state() -> tuple[str, str, str]:
        return (
            ctr("ps", "-aq").stdout,
            ctr("volume", "ls", "-q").stdout,
            ctr("images", "-aq", "--no-trunc").stdout,
        )

    before = state()
    assert before[0] and before[1] and dangling in before[2]
    for answer in (None, b"\n", b"n\n", b"yy\n"):
        r = ctr(*verb, input=answer)
        assert f"WARNING! This will remove {warning}" in r.stdout
        assert "Are you sure you want to continue? [y/N] " in r.stdout
        assert "Deleted" not in r.stdout and "Total reclaimed" not in r.stdout
    assert state() == before
    ctr("container", "prune", "-f")  # frees the volume for volume prune
    r = ctr(*verb, input=b"Y\n")
    assert "Total reclaimed space" in r.stdout
    after = state()
    assert after[0] == ""
    assert (after[1] == "") == (verb[0] == "volume")
    assert (dangling in after[2]) == (verb[0] != "image")
    ctr("volume", "prune", "-f")
    ctr("image", "prune", "-f")


def test_system_prune(ctr: CLI) -> None:
    """Stopped containers, unused networks, dangling images (all unused with -a) and, with
    --volumes, unused volumes go; what a running container uses stays."""
    ctr("run", "-v", "keep:/k", "--name", "sp-stopped", "busybox", "true")
    ctr("run", "-d", "--name", "sp-running", "-v", "busy:/b", "busybox", "sleep", "100")
    dangling = ctr("commit", "sp-stopped").stdout.strip()
    ctr("network", "create", "sp-unused")
    r = ctr("system", "prune", input=b"n\n")
    assert "  - all stopped containers\n" in r.stdout and "Deleted" not in r.stdout
    assert "sp-stopped" in ctr("ps", "-a").stdout
    out = ctr("system", "prune", "-f").stdout
    assert out.startswith("Deleted Containers:\n")
    assert "Deleted Networks:\nsp-unused\n" in out
    assert f"deleted: {dangling}" in out and "Total reclaimed space:" in out
    assert "Deleted Volumes" not in out
    assert ctr("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["sp-running"]
    assert sorted(ctr("volume", "ls", "-q").stdout.split()) == ["busy", "keep"]
    out = ctr("system", "prune", "-f", "--volumes", "-a").stdout
    assert "Deleted Volumes:\nkeep\n" in out
    assert ctr("volume", "ls", "-q").stdout.split() == ["busy"]
    assert "busybox" in ctr("images").stdout  # the running container's image stays
    ctr("rm", "-f", "sp-running")
    ctr("volume", "rm", "busy")


def test_exec_leaves_no_runtime_log_behind(
    ctr: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """runc writes its errors to a log file of ours: every exec form takes it back, also
    -d (which used to leave one in $TMPDIR per call) and a command that does not exist."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    ctr("run", "-d", "--name", "logs", "busybox", "sleep", "100")
    ctr("exec", "-d", "logs", "touch", "/x")
    ctr("exec", "logs", "true")
    assert ctr("exec", "logs", "nosuch", check=False).returncode == 127
    r = ctr("exec", "-d", "logs", "nosuch", check=False)
    assert r.returncode != 0 and "nosuch" in r.stderr
    ctr("exec", "-i", "logs", "cat", input=b"x")
    assert [p.name for p in tmp.iterdir() if p.name.startswith("dockyard-")] == []
    ctr("rm", "-f", "logs")


def test_image_with_many_layers_runs(ctr: CLI) -> None:
    """Overlay mount options must fit in one page: short snapshot ids keep 120 layers in it."""
    from tests.conftest import add_child_image

    base = "busybox"
    for i in range(120):
        add_child_image(ctr.root, base, {f"layer{i}.txt": str(i).encode()}, f"deep:{i}")
        base = f"deep:{i}"
    info = json.loads(ctr("inspect", "deep:119").stdout)[0]
    assert len(info["RootFS"]["Layers"]) == 121
    out = ctr(
        "run", "--rm", "deep:119", "sh", "-c", "cat /layer0.txt; echo; cat /layer119.txt; echo"
    )
    assert out.stdout.split()[:2] == ["0", "119"]
    assert ctr("system", "check").stdout.strip().endswith("store consistent")


def test_detached_rm_removes_itself(ctr: CLI) -> None:
    ctr("run", "-d", "--rm", "--name", "gone", "busybox", "true")
    wait_for(lambda: ctr("ps", "-aq").stdout.strip() == "")
    # The row goes first, then the files (possibly in the monitor's exit command, still busy).
    wait_for(lambda: not any((ctr.root / "containers").iterdir()))


def test_no_new_privileges_and_runtime_choice(ctr: CLI) -> None:
    out = ctr(
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ).stdout
    assert out.split() == ["NoNewPrivs:", "1"]
    assert ctr(
        "run", "--rm", "busybox", "grep", "NoNewPrivs", "/proc/self/status"
    ).stdout.split() == ["NoNewPrivs:", "0"]
    # --runtime picks the OCI runtime binary; crun refuses this host's hybrid cgroups, and the
    # error is its own, on one line, with nothing left behind.
    r = ctr("run", "--rm", "--runtime", "crun", "busybox", "true", check=False)
    if r.returncode != 0:
        assert r.returncode == 125 and r.stderr.startswith("Error: ")
        assert "Traceback" not in r.stderr
    assert ctr("ps", "-aq").stdout.strip() == ""


def test_cp_tar_streams_and_volume_prune(ctr: CLI, tmp_path: Path) -> None:
    import io
    import tarfile

    from tests.helpers import tar

    ctr("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    r = ctr.raw("cp", "-", "box:/tmp", stdin=tar(("from-stdin.txt", b"hello")))
    assert r.returncode == 0, r.stderr
    assert ctr("exec", "box", "cat", "/tmp/from-stdin.txt").stdout == "hello"
    out = ctr.raw("cp", "box:/tmp/from-stdin.txt", "-").stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as tf:
        member = tf.extractfile("from-stdin.txt")
        assert member is not None and member.read() == b"hello"
    ctr("volume", "create", "keepme")
    ctr("run", "--rm", "-v", "/anon", "busybox", "true")  # an anonymous volume, now unused
    out = ctr("volume", "prune", "-f").stdout
    assert "Total reclaimed space" in out
    assert ctr("volume", "ls", "-q").stdout.split() == ["keepme"]


def test_system_df_counts_containers_and_volumes(ctr: CLI) -> None:
    ctr("run", "--name", "writer", "busybox", "sh", "-c", "head -c 50000 /dev/zero > /blob")
    ctr("run", "-d", "--name", "runner", "-v", "data:/data", "busybox", "sleep", "100")
    ctr("volume", "create", "spare")
    rows = {ln.split()[0]: ln.split() for ln in ctr("system", "df").stdout.splitlines()[1:]}
    assert rows["Containers"][1:3] == ["2", "1"]
    assert rows["Containers"][3] == "50kB" and rows["Containers"][4] == "50kB"  # stopped: all
    assert rows["Local"][2:4] == ["2", "1"]  # "Local Volumes": 2 in total, 1 in use
