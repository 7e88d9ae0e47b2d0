"""Every container operation of the engine, driven in-process over typed specs: what both
front ends call, without a subprocess per assertion (the containers themselves are real)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest

from dockyard.engine import Engine
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.model.container import (
    ContainerSpec,
    Mount,
    PortBinding,
    Resources,
    Ulimit,
)
from tests.helpers import wait_until


def spec(*cmd: str, **kw: object) -> ContainerSpec:
    return ContainerSpec("busybox", cmd=cmd or None, **kw)  # type: ignore[arg-type]


def run_detached(engine: Engine, s: ContainerSpec) -> str:
    cid, code = engine.containers.run(s, detach=True, detach_keys="")
    assert code is None
    return cid


def exec_output(engine: Engine, name: str, *cmd: str) -> tuple[int, bytes]:
    execs = engine.containers.execs
    p = execs.spawn(
        execs.spec(name, cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None
    )
    out = p.stdout.read()
    return p.wait(), out


def test_create_merges_the_image_and_records_values(engine: Engine) -> None:
    cid = engine.containers.create(
        spec(
            "sh",
            "-c",
            "exit 3",
            name="c1",
            env=("A=1", "PATH"),
            labels=(("k", "v"),),
            ports=(PortBinding(80, "tcp", "127.0.0.1", ""),),
            mounts=(Mount("volume", "/data"), Mount("tmpfs", "/run", origin="tmpfs", mode="")),
            resources=Resources(memory=64 << 20, ulimits=(Ulimit("nofile", 10, 20),)),
        )
    )
    c = engine.containers.get("c1")
    assert c.id == cid and c.name == "c1" and c.state.status == "created"
    assert c.spec.args == ("sh", "-c", "exit 3") and c.spec.hostname == cid[:12]
    # The caller's entries as sent, then the image's it does not name (Docker's merge): the
    # bare "PATH" names the image's PATH, and unsets it when the container starts.
    assert c.spec.env == ("A=1", "PATH")
    assert "80/tcp" in c.spec.exposed_ports
    anon = next(m for m in c.spec.mounts if m.target == "/data")
    assert anon.anonymous and engine.volumes.exists(anon.source)
    assert engine.containers.inspect(cid)["HostConfig"]["Memory"] == 64 << 20


def test_start_wait_logs_and_the_exit_code(engine: Engine) -> None:
    engine.containers.create(spec("sh", "-c", "echo out; echo err >&2; exit 7", name="c1"))
    engine.containers.start("c1")
    assert engine.containers.wait("c1") == 7
    logs = list(engine.containers.logs("c1"))
    assert [(s, t) for s, t, _ in logs] == [("stdout", "out\n"), ("stderr", "err\n")]
    assert list(engine.containers.logs("c1", tail=1))[0][1] == "err\n"
    c = engine.containers.get("c1")
    assert c.state.status == "exited" and c.state.exit_code == 7 and not c.running
    engine.containers.start("c1")  # again: a stopped container starts as it was made
    assert engine.containers.wait("c1") == 7


def test_a_follow_asked_before_the_exit_reads_the_output_after_a_remove(engine: Engine) -> None:
    """docker-py's ``containers.run(..., remove=True)``: it asks for ``logs(follow=True)``
    (the API sends the reply's headers at once), waits, removes, and only then reads the
    stream. Was: the log was opened at the first read, after the remove: b"" (one run in
    500 under load)."""
    engine.containers.create(spec("echo", "hi", name="once"))
    engine.containers.start("once")
    records = engine.containers.logs("once", follow=True)  # the headers go out here
    assert engine.containers.wait("once") == 0
    engine.containers.remove("once")
    assert [(s, t) for s, t, _ in records] == [("stdout", "hi\n")]


def test_a_client_that_records_the_exit_spares_the_monitors_exit_command(
    engine: Engine, tmp_path: os.PathLike[str]
) -> None:
    """The daemon's waiter connects with ``handles_exit`` and records the exit itself once
    it has the exit frame: the monitor then releases the runtime's state and starts no exit
    command (a whole ``dockyard`` process per run, most of the CPU of `run --rm` under 50
    docker-py clients). Was: the exit command ran after every daemon run."""
    from dockyard.runtime.attach import FRAME_EXIT, FRAME_STDIN_EOF, frame

    marker = os.path.join(tmp_path, "exit-command-ran")
    # What the monitor would run instead of `dockyard container _exited ID PID`.
    engine.containers.lifecycle.command = ["/bin/sh", "-c", 'touch "$0"', marker]
    cid = run_detached(engine, spec("sh", "-c", "read x; exit 4", open_stdin=True))
    sessions = engine.containers.sessions
    sock = sessions.connect(cid, stdin=True, stdout=False, stderr=False, handles_exit=True)
    with sock:
        sock.sendall(frame(FRAME_STDIN_EOF))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data == frame(FRAME_EXIT, b"4")
    sessions.exited(cid)
    c = engine.containers.get(cid)
    assert c.state.status == "exited" and c.state.exit_code == 4
    run_dir = engine.containers.records.run_dir_of(cid)
    wait_until(
        lambda: not os.path.exists(os.path.join(run_dir, "monitor.pid")), 20, "the monitor's end"
    )
    assert not os.path.exists(marker)
    assert not os.path.exists(os.path.join(engine.run_root, "runc", cid))  # released


def test_exec_stop_kill_restart(engine: Engine) -> None:
    # PID 1 ignores signals it has no handler for: the trap makes TERM end it, as a server.
    cid = run_detached(
        engine, spec("sh", "-c", "trap 'exit 143' TERM; while :; do sleep 0.1; done", name="web")
    )
    assert engine.containers.get("web").running
    code, out = exec_output(engine, "web", "sh", "-c", "echo hi; exit 4")
    assert (code, out) == (4, b"hi\n")
    code, _ = exec_output(engine, "web", "no-such-command")
    assert code == 127
    with pytest.raises(InvalidArgument, match="No exec command specified"):
        engine.containers.execs.spec("web", [])
    engine.containers.stop("web", timeout=1)
    c = engine.containers.get("web")
    assert not c.running and c.state.exit_code == 143  # SIGTERM
    with pytest.raises(Conflict, match="is not running"):
        engine.containers.execs.spec("web", ["true"])
    engine.containers.restart("web", timeout=0)
    assert engine.containers.get("web").running
    engine.containers.kill("web", "KILL")
    assert engine.containers.get(cid).state.exit_code == 137
    with pytest.raises(Conflict, match="is not running"):
        engine.containers.kill("web")


def test_a_killed_monitor_is_reconciled(engine: Engine) -> None:
    run_detached(engine, spec("sleep", "1000", name="m1"))
    monitor = engine.containers.get("m1").state.monitor_pid
    os.kill(monitor, signal.SIGKILL)
    wait_until(lambda: not engine.containers.get("m1").running, 20, "the exit to be recorded")
    c = engine.containers.get("m1")
    assert not c.running and c.state.exit_code == 255
    assert "monitor" in c.state.error


def test_files_diff_commit_and_copy(engine: Engine, tmp_path: os.PathLike[str]) -> None:
    engine.containers.create(spec("sh", "-c", "echo made > /made; rm /bin/vi", name="f1"))
    engine.containers.start("f1")
    assert engine.containers.wait("f1") == 0
    changes = dict((p, k) for k, p in engine.containers.diff("f1"))
    assert changes["/made"] == "A" and changes["/bin/vi"] == "D"
    image = engine.containers.commit("f1", "made:1", changes=['CMD ["cat", "/made"]'])
    assert image.startswith("sha256:")
    engine.containers.create(ContainerSpec("made:1", name="g1"))
    engine.containers.start("g1")
    assert engine.containers.wait("g1") == 0
    assert [t for _, t, _ in engine.containers.logs("g1")] == ["made\n"]
    dst = os.path.join(tmp_path, "copied")
    engine.containers.copy("f1:/made", dst)
    assert open(dst).read() == "made\n"


def test_rename_remove_prune_and_filters(engine: Engine) -> None:
    engine.containers.create(spec("true", name="a1", labels=(("team", "x"),)))
    engine.containers.create(spec("true", name="b1"))
    engine.containers.rename("a1", "a2")
    with pytest.raises(Conflict, match="already in use"):
        engine.containers.rename("a2", "b1")
    with pytest.raises(InvalidArgument, match="Invalid container name"):
        engine.containers.rename("a2", "-bad")
    listed = engine.containers.list_containers(all_containers=True, filters={"label": ["team=x"]})
    assert [c.name for c in listed] == ["a2"]
    assert engine.containers.list_containers() == []  # none running
    with pytest.raises(InvalidArgument, match="invalid filter 'bogus'"):
        engine.containers.list_containers(filters={"bogus": ["1"]})
    engine.containers.remove("a2")
    with pytest.raises(NotFound, match="No such container: a2"):
        engine.containers.get("a2")
    removed, _ = engine.containers.prune()
    assert len(removed) == 1 and engine.containers.list_containers(all_containers=True) == []


def test_bad_specs_leave_nothing(engine: Engine) -> None:
    cdir = os.path.join(engine.root, "containers")
    before = os.listdir(cdir) if os.path.isdir(cdir) else []
    for bad, message in (
        (spec("true", name="x1", restart_policy=_policy("always", 3)), "maximum retry count"),
        (spec(mounts=(Mount("bind", "/x", "/no/such/dir"),)), "bind source path does not exist"),
        (spec(mounts=(Mount("volume", "/a"), Mount("volume", "/a"))), "Duplicate mount point"),
        (ContainerSpec("busybox", entrypoint=()), "No command specified"),
        (spec("true", name="!x"), "Invalid container name"),
    ):
        with pytest.raises(InvalidArgument, match=message):
            engine.containers.create(bad)
    assert engine.containers.list_containers(all_containers=True) == []
    assert (os.listdir(cdir) if os.path.isdir(cdir) else []) == before


def _policy(name: str, count: int):  # type: ignore[no-untyped-def]
    from dockyard.model.container import RestartPolicy

    return RestartPolicy(name, count)


def test_a_daemons_removals_are_deleted_by_a_thread_of_its_own(
    tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon (removal.delete_in_background) deletes a removed container's dirs in a
    thread rather than forking a remover for each (a fork of the daemon copied its page
    tables: ~15% of the CPU of 50 docker-py clients). As with the remover process: the
    names are free at once, and a dir being deleted stays locked (system check skips it)."""
    from dockyard.engine.containers import removal

    monkeypatch.setattr(removal, "_background", None)  # this test's process only
    removal.delete_in_background()
    fds_before = len(os.listdir("/proc/self/fd"))
    dirs = [os.path.join(tmp_path, name) for name in ("ctr", "run")]
    for d in dirs:
        os.makedirs(os.path.join(d, "upper", "deep"))
    removal.discard(dirs)
    assert not any(os.path.exists(d) for d in dirs)
    trash = [os.path.join(tmp_path, removal.TRASH_PREFIX + n) for n in ("ctr", "run")]
    wait_until(lambda: not any(os.path.exists(t) for t in trash), 20, "the deletion")
    wait_until(lambda: len(os.listdir("/proc/self/fd")) == fds_before, 20, "the locks' release")
    assert "container-remover" in [t.name for t in threading.enumerate()]  # not a fork


def test_a_read_leaves_an_exit_to_the_process_that_records_it(engine: Engine) -> None:
    """``Engine(exit_recorder=...)`` (the daemon's engines; its exit watcher records the
    exits of what it starts): a read that finds a container ended asks the recorder, and
    writes nothing when the record is the recorder's. Was: the log follower and the wait of
    each docker-py run wrote the same record again, a second turn in the write queue."""
    engine.containers.lifecycle.command = ["/bin/true"]  # an exit command that records nothing
    cid = run_detached(engine, spec("true"))
    run_dir = engine.containers.records.run_dir_of(cid)
    wait_until(lambda: not os.path.exists(os.path.join(run_dir, "monitor.pid")), 20, "the end")
    asked: list[str] = []

    def recorder(ended: str) -> bool:
        asked.append(ended)
        return True  # "recorded by me": nothing left for the reader

    reader = Engine(root=engine.root, run_root=engine.run_root, exit_recorder=recorder)
    try:
        assert reader.containers.get(cid).state.status == "running"  # as stored
        assert asked == [cid]
        assert reader.store.db.conn.total_changes == 0
    finally:
        reader.close()
    # Without a recorder (the CLI), the reader records the exit itself.
    c = engine.containers.get(cid)
    assert c.state.status == "exited" and c.state.exit_code == 0
