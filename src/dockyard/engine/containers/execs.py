"""``docker exec``: the process spec of an exec, and the three ways to run it (becoming the
runtime, attached to this process's terminal, detached); the daemon runs the same spec with
its own streams (api/execs.py)."""

from __future__ import annotations

import os

from dockyard import fastjson as json  # json without re: exec is latency-critical
from dockyard.engine.containers.create import merge_env
from dockyard.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.model.container import Container
    from dockyard.store.events import Events


class ExecSpec:
    """An exec ready to run: the container, its runtime's name, the OCI process, and the
    exec's ID (what its events name)."""

    __slots__ = ("container", "runtime", "process", "exec_id")

    def __init__(self, container: Container, runtime: str, process: dict[str, Any]) -> None:
        self.container = container
        self.runtime = runtime
        self.process = process
        self.exec_id = os.urandom(32).hex()

    @property
    def container_id(self) -> str:
        return self.container.id


class Execs:
    def __init__(self, records: ContainerRecords, lifecycle: Lifecycle, events: Events) -> None:
        self.records = records
        self.lifecycle = lifecycle
        self.events = events

    def event(self, ex: ExecSpec, action: str, **extra: str) -> None:
        """Docker's exec events: ``exec_create: <cmd>``, ``exec_start: <cmd>``, ``exec_die``
        (with its exit code), naming the exec."""
        if action != "exec_die":
            args = ex.process.get("args") or [""]
            action = f"{action}: {args[0]} {' '.join(args[1:])}"
        self.events.container(ex.container, action, execID=ex.exec_id, **extra)

    def died(self, ex: ExecSpec, code: int) -> None:
        self.event(ex, "exec_die", exitCode=str(code))

    def spec(
        self,
        text: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        env: Sequence[str] = (),
        user: str = "",
        workdir: str = "",
        privileged: bool = False,
    ) -> ExecSpec:
        """The process ``docker exec`` runs: the container's own process spec with the
        command, env, user, workdir and terminal asked for."""
        ctr = self.lifecycle.active(text)
        cid = ctr.id
        if not cmd:
            raise InvalidArgument("No exec command specified")
        with open(os.path.join(self.records.container_dir(cid), "config.json")) as f:
            spec = json.load(f)
        proc = dict(spec["process"])
        if user:
            from dockyard.runtime.user import resolve_user

            u = resolve_user(self.records.rootfs(cid), user)
            proc["user"] = {"uid": u.uid, "gid": u.gid}
            if u.additional_gids:
                proc["user"]["additionalGids"] = list(u.additional_gids)
        proc["args"] = list(cmd)
        proc["env"] = merge_env(proc.get("env", []), list(env))
        proc["cwd"] = workdir or proc.get("cwd", "/")
        proc["terminal"] = tty
        proc.pop("consoleSize", None)
        if privileged:
            from dockyard.runtime.spec import capabilities_for

            opts = self.lifecycle.run_options(ctr)
            caps = capabilities_for(opts._replace(privileged=True))
            proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
        ex = ExecSpec(ctr, ctr.spec.runtime, proc)
        self.event(ex, "exec_create")
        return ex

    def replace_process(
        self, ex: ExecSpec, *, tty: bool, interactive: bool, detach: bool = False
    ) -> None:
        """Become the OCI runtime's ``exec`` of ``ex`` (never returns) when the runtime and the
        command exist; otherwise return, and :meth:`run` maps the runtime's answer to
        Docker's 126/127 (or reports the missing runtime)."""
        from dockyard.runtime.exec import command_found, exec_in_place
        from dockyard.runtime.paths import which

        name, state_root = self.lifecycle.runtimes.location(ex.runtime)
        binary = which(name)
        if binary is None or not command_found(self.records.rootfs(ex.container_id), ex.process):
            return
        # This process becomes the runtime: its exec_die cannot be reported (nothing of
        # dockyard is left to see the exit).
        self.event(ex, "exec_start")
        # The store is not closed: its files are close-on-exec (flock and fcntl locks go
        # with them), and closing would make SQLite checkpoint the WAL first.
        exec_in_place(
            binary,
            state_root,
            ex.container_id,
            ex.process,
            tty=tty,
            interactive=interactive,
            detach=detach,
        )

    def _spec_file(self, ex: ExecSpec) -> str:
        path = os.path.join(
            self.records.run_dir_of(ex.container_id), f"exec-{os.urandom(8).hex()}.json"
        )
        with open(path, "w") as f:
            f.write(json.dumps(ex.process))
        return path

    def spawn(self, ex: ExecSpec, *, stdin: Any, stdout: Any, stderr: Any) -> RunningExec:
        """``runc exec`` of ``ex`` as our child with these stdio (fds, or subprocess.PIPE /
        DEVNULL; a pty's slave for a TTY exec): the daemon relays them itself."""
        path = self._spec_file(ex)
        try:
            proc = self.lifecycle.runtimes.get(ex.runtime).exec(
                ex.container_id,
                path,
                tty=bool(ex.process.get("terminal")),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
            )
        except BaseException:
            _unlink(path)
            raise
        self.event(ex, "exec_start")
        return RunningExec(proc, path, lambda code: self.died(ex, code))

    def start_detached(self, ex: ExecSpec) -> None:
        """``exec -d``: returns once the process has started; the runtime's error if not."""
        from dockyard.errors import DockyardError

        path = self._spec_file(ex)
        self.event(ex, "exec_start")
        try:
            code, failure = self.lifecycle.runtimes.get(ex.runtime).exec_detached(
                ex.container_id, path
            )
        finally:
            _unlink(path)
        if code:
            self.died(ex, code)
            raise failure or DockyardError("exec failed")

    def run(self, ex: ExecSpec, *, tty: bool, interactive: bool, detach: bool) -> int:
        """Run ``ex`` as a child with this process's stdio (or detached): its exit code."""
        from dockyard.runtime.exec import run_exec

        self.event(ex, "exec_start")
        code = run_exec(
            self.lifecycle.runtimes.get(ex.runtime),
            ex.container_id,
            ex.process,
            self.records.run_dir_of(ex.container_id),
            tty=tty,
            interactive=interactive,
            detach=detach,
        )
        if not detach:
            self.died(ex, code)
        return code


class RunningExec:
    """An exec started by :meth:`Execs.spawn`: its pipes, and its exit code once it ends
    (Docker's 126/127 when the runtime could not start the command)."""

    def __init__(self, proc: Any, spec_path: str, on_exit: Any = None) -> None:
        self._proc = proc
        self._spec_path = spec_path
        self._on_exit = on_exit  # called once with the exit code (the exec_die event)
        self.pid: int = proc.pid
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def wait(self) -> int:
        try:
            code: int = self._proc.wait()
        finally:
            _unlink(self._spec_path)
        failure = self._proc.runtime_error()
        # Never ran (not found, not executable): the runtime said why on the stream already.
        code = failure.exit_code if failure is not None else code
        if self._on_exit is not None:
            self._on_exit(code)
            self._on_exit = None
        return code


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
