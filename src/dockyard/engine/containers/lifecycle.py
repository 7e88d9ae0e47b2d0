"""Start, stop, kill, pause, wait, and reconciliation: a container's life with its monitor.

A running container is owned by its monitor process; the monitor writes ``exit.json`` when
the container ends and runs ``dockyard container _exited`` to record it. Any read of a
container first reconciles it (:meth:`Lifecycle.refresh`): a container whose monitor is gone is
marked exited and its mounts are cleaned up, so a host reboot or a SIGKILLed monitor never
leaves a "running" ghost. A restart policy's loop is restarts.py's (a restarter owns a
restarting container as a monitor owns a running one).

What a run is made of (its RunOptions, the OCI bundle, the volumes' copy-up, the init
binary, lo for ``--network none``) is bundle.py's.
"""

from __future__ import annotations

import os
import sys
import time

from dockyard import fastjson as json  # json without re: exec is latency-critical
from dockyard.engine.containers.records import ETC_FILES, alive, pid_start_time
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.model.container import ContainerState, replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.engine.networks import NetworkService
    from dockyard.model.container import Container, ContainerSpec, Health
    from dockyard.runtime.attach import MonitorLaunch
    from dockyard.runtime.oci import OCIRuntime
    from dockyard.runtime.options import RunOptions
    from dockyard.store import Store
    from dockyard.store.events import Events

DEFAULT_RUNTIME = "runc"


def now_rfc3339() -> str:
    from dockyard.image.config import now_rfc3339 as now

    return now()


def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def signal_name(sig: str | int) -> str:
    """ "SIGTERM", "term", "15" -> "TERM" (what runc kill takes)."""
    import signal  # not at the top: its enums cost `dockyard exec` ~0.5 ms of start-up

    s = str(sig).upper()
    if s.isdigit():
        try:
            return signal.Signals(int(s)).name[3:]
        except ValueError:
            raise InvalidArgument(f"invalid signal: {sig}") from None
    s = s.removeprefix("SIG")
    if "SIG" + s not in signal.Signals.__members__:
        raise InvalidArgument(f"invalid signal: {sig}")
    return s


def signal_number(sig: str | int) -> int:
    """What Docker's kill events name: the signal's number."""
    import signal

    return int(signal.Signals["SIG" + signal_name(sig)])


def read_int(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


class Runtimes:
    """Where each OCI runtime keeps its state (``<run-root>/<name>``)."""

    def __init__(self, run_root: str) -> None:
        self.run_root = run_root

    def location(self, name: str = "") -> tuple[str, str]:
        """(binary name, state root) of a container's OCI runtime, without importing the
        runtime module (``dockyard exec`` becomes the runtime directly)."""
        name = name or DEFAULT_RUNTIME
        return name, os.path.join(self.run_root, name)

    def get(self, name: str = "") -> OCIRuntime:
        from dockyard.runtime.oci import OCIRuntime

        return OCIRuntime(*self.location(name))


class Lifecycle:
    def __init__(
        self,
        records: ContainerRecords,
        store: Store,
        runtimes: Runtimes,
        networks: Callable[[], NetworkService],
        remove_after_exit: Callable[[Container], None],
        command: Sequence[str],
        volume_path: Callable[[str], str],
        events: Events,
        exit_recorder: Callable[[str], bool] | None = None,
    ) -> None:
        self.records = records
        self.store = store
        self.runtimes = runtimes
        self.networks = networks
        self.remove_after_exit = remove_after_exit  # --rm: the files and volumes go
        # `dockyard ... container` for this store: + "_exited ID" is what the monitor runs
        # when the container has exited, + "_restart ..." the restarter (restarts.py).
        self.command = list(command)
        self.volume_path = volume_path  # a volume's host dir, by name
        self.events = events
        self.exit_recorder = exit_recorder  # Engine's: this process records some exits

    # ------------------------------------------------------------------ reconcile

    def refresh(self, cid: str) -> Container:
        """The container, reconciled with reality (see the module's docstring)."""
        ctr = self.records.load(cid)
        st = ctr.state
        if not st.running:
            return ctr
        if st.restarting:
            if alive(st.monitor_pid, st.monitor_start):
                return ctr
            # Its restarter is gone (killed, a reboot) before it started the next run.
            self.restart_interrupted(cid, st.monitor_pid)
        else:
            exited = os.path.exists(os.path.join(self.records.run_dir_of(cid), "exit.json"))
            monitor_alive = alive(st.monitor_pid, st.monitor_start)
            if not exited and monitor_alive:
                return self._live_health(ctr)
            if self._recorded_here(cid):
                # The daemon's exit watcher had it: no second write in the store's queue.
                try:
                    return self.records.load(cid)
                except NotFound:
                    return ctr
            # The container ended (exit.json) or its monitor is gone (SIGKILL, host reboot):
            # record the exit and clean up, whoever gets here first. A monitor still alive
            # releases the runtime itself (its own release, else its exit command's), so
            # only the rootfs is ours then.
            self.on_exit(cid, monitor_pid=st.monitor_pid, runtime_cleanup=not monitor_alive)
        try:
            return self.records.load(cid)
        except NotFound:
            return ctr

    def _recorded_here(self, cid: str) -> bool:
        """Whether this process records the exit of ``cid`` (the daemon's exit watcher), now
        done. Not asked inside a write transaction: the recorder waits for that one's end."""
        if self.exit_recorder is None:
            return False
        from dockyard.store.db import holds_write_turn

        return not holds_write_turn() and self.exit_recorder(cid)

    def _live_health(self, ctr: Container) -> Container:
        """A running container with a health check: its health as the monitor last wrote it
        (read, not stored: the record keeps the last one when the container stops)."""
        if ctr.state.health is None:
            return ctr
        from dockyard.engine.containers import health

        now = health.read(self.records.run_dir_of(ctr.id))
        if now is None:
            return ctr
        out: Container = replace(ctr, state=replace(ctr.state, health=now))
        return out

    def get(self, text: str) -> Container:
        return self.refresh(self.records.resolve(text))

    def active(self, text: str) -> Container:
        """The container, which must be running, not paused nor restarting (Docker's
        getActiveContainer: exec, top)."""
        ctr = self.get(text)
        if not ctr.running:
            raise Conflict(f"Container {ctr.id} is not running")
        if ctr.state.paused:
            raise Conflict(f"Container {text} is paused, unpause the container before exec")
        if ctr.state.restarting:
            raise Conflict(f"Container {ctr.id} is restarting, wait until the container is running")
        return ctr

    def refresh_all(self) -> list[Container]:
        """Every container, newest first, reconciled."""
        out = []
        for ctr in self.records.all():
            if ctr.running:
                try:
                    ctr = self.refresh(ctr.id)
                except NotFound:
                    continue
            out.append(ctr)
        return out

    def on_exit(
        self,
        cid: str,
        *,
        runtime_cleanup: bool = True,
        monitor_pid: int | None = None,
        apply_policy: bool = True,
    ) -> None:
        """Record a container's exit (run by its monitor; also by recovery). Idempotent.

        ``runtime_cleanup=False``: the monitor deletes the runtime's state itself (it does
        when an attached client records the exit), so the caller skips that runc call.
        ``monitor_pid``: the monitor of the run that ended, when known; a later run of the
        container (a restart) is then left alone. The restart policy decides what follows
        (restarts.py) unless ``apply_policy`` is false (``system restore`` reconciling after a
        reboot: what comes back is its decision)."""
        try:
            ctr = self.records.load(cid)
        except NotFound:
            # Recorded already (an attached `run --rm`): the monitor asks us only when its
            # own release of the runtime fell short.
            from dockyard.runtime.cleanup import release_unknown

            release_unknown(self.runtimes.run_root, cid)
            return

        def this_run(c: Container) -> bool:
            return monitor_pid is None or c.state.monitor_pid == monitor_pid

        if ctr.state.status in ("running", "paused") and not this_run(ctr):
            return  # a later run is under way: its runtime state is not ours to release
        rdir = self.records.run_dir_of(cid)
        exit_info: dict[str, Any] = {}
        try:
            with open(os.path.join(rdir, "exit.json")) as f:
                exit_info = json.load(f)
        except (OSError, ValueError):
            exit_info = {
                "ExitCode": 255,
                "FinishedAt": now_rfc3339(),
                "Error": "the container's monitor exited unexpectedly",
            }
        if runtime_cleanup:
            self.cleanup_runtime(ctr)
        else:
            from dockyard.runtime.rootfs import unmount

            unmount(self.records.rootfs(cid))
        last_health = None
        if ctr.state.health is not None:
            from dockyard.engine.containers import health

            last_health = health.ended(rdir, ctr.state.health)
        from dockyard.engine.containers.restarts import restarting, restarts_after_exit

        before = None
        rows_deleted = False
        # Recorded already (by the monitor's exit command, or another request) when the row
        # read above says so: a row that says exited stays so for this run (only a start
        # runs it again), so no write and no turn in the store's write queue (~1.5 s under
        # 50 docker-py clients).
        if ctr.state.status in ("running", "paused"):
            with self.records.db.transaction() as c:
                ctr_now = self.records.load_in(c, cid)
                if ctr_now is None:
                    return
                ctr = ctr_now
                if ctr.state.status in ("running", "paused") and this_run(ctr):
                    before = ctr
                    code = int(exit_info.get("ExitCode", 255))
                    state = replace(
                        ctr.state,
                        status="exited",
                        pid=0,
                        exit_code=code,
                        finished_at=exit_info.get("FinishedAt") or now_rfc3339(),
                        error=str(exit_info.get("Error", "")),
                        oom_killed=bool(exit_info.get("OOMKilled", False)),
                        health=last_health,
                        stop_requested=False,
                    )
                    if apply_policy and restarts_after_exit(
                        ctr.spec.restart_policy, ctr.state, code, ctr.restart_count
                    ):
                        state = restarting(self, ctr, state)
                        ctr = replace(ctr, restart_count=ctr.restart_count + 1)
                    ctr = stopped_network(replace(ctr, state=state))
                    if ctr.spec.auto_remove:
                        # --rm: the row goes in this same transaction (one commit less per run).
                        self.records.delete_in(c, cid)
                        rows_deleted = True
                    else:
                        self.records.save_in(c, ctr)
        if before is not None and any(ep.host_veth for _, ep in before.endpoints):
            self.networks().after_exit(cid, before)
        if before is not None:
            # Only the process that recorded the exit reports it: on_exit runs in several.
            self.events.container(ctr, "die", exitCode=str(ctr.state.exit_code))
            self.endpoint_events(before, "disconnect")
            self.volume_events(before, "unmount")
        if ctr.spec.auto_remove:
            if not rows_deleted:
                with self.records.db.transaction() as c:
                    self.records.delete_in(c, cid)
            self.remove_after_exit(ctr)
            if before is not None:
                self.events.container(ctr, "destroy")

    def restart_interrupted(self, cid: str, owner: int) -> None:
        from dockyard.engine.containers.restarts import interrupted

        interrupted(self, cid, owner)

    def call_off_restart(self, cid: str) -> bool:
        from dockyard.engine.containers.restarts import call_off

        return call_off(self, cid)

    def cleanup_runtime(self, ctr: Container) -> None:
        """Release what a container that ended (or never started) holds on the host: its
        processes, cgroups, runtime state and rootfs mount (runtime/cleanup.py)."""
        from dockyard.runtime.cleanup import release_container

        runtime, state_root = self.runtimes.location(ctr.spec.runtime)
        release_container(
            ctr.id, runtime=runtime, state_root=state_root, rootfs=self.records.rootfs(ctr.id)
        )

    def endpoint_events(self, ctr: Container, action: str) -> None:
        """Docker's network connect/disconnect events of a container's start and exit."""
        if not ctr.spec.bridged:
            return
        for name, ep in ctr.endpoints:
            if ep.network_id:
                attrs = {"container": ctr.id, "name": name, "type": "bridge"}
                self.events.emit("network", action, ep.network_id, attrs)

    def volume_events(self, ctr: Container, action: str) -> None:
        """Docker's volume mount/unmount events of a container's start and exit."""
        for m in ctr.spec.mounts:
            if m.type != "volume" or not m.source:
                continue
            attrs = {"container": ctr.id, "driver": "local"}
            if action == "mount":
                attrs.update(
                    destination=m.target,
                    propagation="",
                    **{"read/write": "false" if m.read_only else "true"},
                )
            self.events.emit("volume", action, m.source, attrs)

    # ------------------------------------------------------------------ start

    def forget_run_dir(self, cid: str) -> None:
        """Remove what an early-launched monitor left of a container never created."""
        import shutil

        shutil.rmtree(self.records.run_dir_of(cid), ignore_errors=True)
        if not self.records.exists(cid):
            shutil.rmtree(self.records.container_dir(cid), ignore_errors=True)

    def _launch(self, cid: str, spec: ContainerSpec, ctr: Container | None) -> MonitorLaunch:
        from dockyard.runtime.attach import launch_monitor

        binary, state_root = self.runtimes.location(spec.runtime)
        log_path, log_args = self.log_options(cid, spec, ctr)
        return launch_monitor(
            cid=cid,
            bundle=self.records.container_dir(cid),
            runtime=binary,
            runtime_root=state_root,
            run_dir=self.records.run_dir_of(cid),
            log_path=log_path,
            tty=spec.tty,
            stdin=spec.open_stdin,
            start=False,
            exit_command=[*self.command, "_exited", cid],
            wait_for_go=True,
            log_args=log_args,
        )

    def log_options(
        self, cid: str, spec: ContainerSpec, ctr: Container | None
    ) -> tuple[str, list[str]]:
        """The log's path and the monitor's ``--log-*`` options for the container's log
        driver (json-file's ``attrs`` need the created container's labels and env)."""
        from dockyard.model.logopts import log_attrs, log_settings

        s = log_settings(spec.log_config)
        args = ["--log-driver", s.driver]
        if s.max_size:
            args += ["--log-max-size", str(s.max_size), "--log-max-file", str(s.max_file)]
        if s.compress:
            args.append("--log-compress")
        if ctr is not None and (s.labels or s.env or s.env_regex):
            import json as std_json  # sort_keys: Go marshals a map's keys in order

            attrs = log_attrs(s, dict(ctr.spec.labels), list(ctr.spec.env))
            if attrs:
                text = std_json.dumps(attrs, sort_keys=True, separators=(",", ":"))
                args += ["--log-attrs", text]
        return self.records.log_path(cid, s.driver), args

    def launch_early(self, cid: str, spec: ContainerSpec) -> MonitorLaunch | None:
        """``run``: start the monitor of the container ``cid`` is about to become, before it is
        created, so the monitor's interpreter starts while the container is created and its
        bundle written; pass the result to :meth:`start` (or ``cancel()`` it if the create
        fails). None when the monitor needs the created container (json-file attrs)."""
        from dockyard.model.logopts import log_settings

        s = log_settings(spec.log_config)
        if s.labels or s.env or s.env_regex:
            return None
        os.makedirs(self.records.run_dir_of(cid), mode=0o700, exist_ok=True)  # a new ID
        return self._launch(cid, spec, None)

    def start(
        self,
        text: str,
        *,
        attach: bool = False,
        launch: MonitorLaunch | None = None,
        restarting: bool = False,
    ) -> str:
        """Start a created or stopped container. With ``attach`` the monitor waits for the
        caller's attach client to ask for the start (so no output is lost). ``launch``: the
        monitor :meth:`launch_early` started for this container (run's fast path).
        ``restarting``: the next run of a restart policy, started by the restarter that owns
        the container (restarts.py); nothing happens if it was called off meanwhile."""
        me = os.getpid()

        def owned(c: Container) -> bool:
            return c.state.restarting and c.state.monitor_pid == me

        try:
            cid = self.records.resolve(text)
            if restarting:
                ctr = self.records.load(cid)
                if not owned(ctr):
                    return cid
            else:
                ctr = self.refresh(cid)
                if ctr.running:
                    if launch is not None:
                        launch.cancel()
                    return cid
        except BaseException:
            if launch is not None:
                launch.cancel()
            raise
        try:
            return self._start(cid, ctr, attach=attach, launch=launch, restarting=restarting)
        except DockyardError as e:
            if not restarting:  # a restarter's failure is restarts.failed's to record
                self._record_failed_start(cid, e)
            raise

    def _record_failed_start(self, cid: str, err: DockyardError) -> None:
        """Docker keeps what a failed start says in State (the container stays "created"):
        ExitCode 127 for a missing command, 126 for one that cannot run, else 128, and
        State.Error the daemon's message. Clients read them (`docker inspect`, wait)."""
        from dockyard.errors import CommandNotExecutable, CommandNotFound
        from dockyard.model.docker import start_error_text

        code = 127 if isinstance(err, CommandNotFound) else 128
        code = 126 if isinstance(err, CommandNotExecutable) else code

        def failed(ctr: Container) -> Container:
            if ctr.running:
                return ctr
            return replace(
                ctr, state=replace(ctr.state, exit_code=code, error=start_error_text(err))
            )

        try:
            self.records.update(cid, failed)
        except DockyardError:
            pass  # removed meanwhile: nothing to record

    def _start(
        self,
        cid: str,
        ctr: Container,
        *,
        attach: bool,
        launch: MonitorLaunch | None,
        restarting: bool,
    ) -> str:
        from dockyard.runtime.rootfs import unmount

        me = os.getpid()

        def owned(c: Container) -> bool:
            return c.state.restarting and c.state.monitor_pid == me

        if not restarting:
            # The last run's monitor may still be recording that run's exit (its exit command
            # unmounts the rootfs): the new run's mount and run dir must come after it. (A
            # restarter waited for it before the back-off.)
            last = ctr.state
            wait_until(lambda: not alive(last.monitor_pid, last.monitor_start), 30)
        rdir = self.records.run_dir_of(cid)
        if launch is None:
            import shutil

            shutil.rmtree(rdir, ignore_errors=True)
            os.makedirs(rdir, mode=0o700)
        spec = ctr.spec
        net = None
        if spec.bridged and ctr.endpoints:
            try:
                # Forked before the monitor (when we launch it) so it inherits none of the
                # monitor's pipes.
                net = self.networks().prepare(ctr, rdir)
            except BaseException:
                if launch is not None:
                    launch.cancel()
                raise
        # The monitor's interpreter starts now, while we mount and write the bundle.
        try:
            launch = launch or self._launch(cid, spec, ctr)
        except BaseException:
            if net is not None:
                net.abort()
            raise
        rootfs = ""
        try:
            snapshots = self.image_snapshots(ctr)
            rootfs = self.mount_rootfs(cid, snapshots)
            if any(m.type == "volume" for m in spec.mounts):
                # Only then: its imports cost a few ms of every start.
                from dockyard.engine.containers.bundle import populate_volumes

                populate_volumes(rootfs, ctr, self.layer_dirs(cid, snapshots), self.volume_path)
            opts = self.run_options(ctr)
            if net is not None:
                # --link's variables go first: the container's own env may override them
                env = (*net.link_env, *opts.env)
                opts = opts._replace(network_mode=f"netns:{net.netns_path}", env=env)
            self._write_bundle(cid, opts, rootfs)
            health = self._seed_health(ctr, rdir)
            if os.path.exists(os.path.join(self.runtimes.location(spec.runtime)[1], cid)):
                # A leftover from a crash would block create. (The runtime module, with
                # subprocess, is loaded only then: the monitor runs the runtime.)
                self.runtimes.get(spec.runtime).delete(cid, force=True)
            if net is not None:
                net.sandbox.wait_namespace()  # the runtime joins it: it must exist first
        except BaseException:
            launch.cancel()
            if net is not None:
                net.abort()
            if rootfs:
                unmount(rootfs)
            raise
        pid = 0
        try:
            pid = launch.wait_ready()
            if opts.network_mode == "none":
                from dockyard.engine.containers.bundle import loopback_up

                loopback_up(pid)
            if net is not None:
                net.sandbox.wait_configured()
                net.sandbox.close(pid)  # joined; its DNS server (if any) follows `pid`
                net.clear_udp_flows()
        except BaseException:
            from dockyard.runtime.attach import release_starter

            release_starter(rdir)
            if net is not None:
                net.abort()
            # Created but never started, or a create that failed half-way: its processes,
            # cgroups, runtime state and the mount go.
            self.cleanup_runtime(ctr)
            raise
        mpid = read_int(os.path.join(rdir, "monitor.pid"))

        def started(c: Container) -> Container:
            if restarting and not owned(c):
                raise _CalledOff
            old = c.state
            state = ContainerState(
                status="running",
                pid=pid,
                started_at=now_rfc3339(),
                finished_at=old.finished_at,  # Docker keeps the last exit's time
                monitor_pid=mpid,
                monitor_start=pid_start_time(mpid),
                health=health,
                # A user's start begins a new restart loop (moby: ResetRestartManager).
                restart_delay_ms=old.restart_delay_ms if restarting else 0,
            )
            c = replace(c, state=state, restart_count=c.restart_count if restarting else 0)
            return net.record(c, pid) if net is not None else c

        try:
            ctr = self.records.update(cid, started) or ctr
        except _CalledOff:
            # Stopped while this restart was on its way: the created container goes (its
            # monitor kills it once the go pipe closes), and we leave once that is done.
            from dockyard.runtime.attach import release_starter

            release_starter(rdir)
            if net is not None:
                net.abort()
            self.cleanup_runtime(ctr)
            started_at = pid_start_time(mpid)
            wait_until(lambda: not alive(mpid, started_at), 30)
            return cid
        if net is not None:
            nets = self.networks()
            nets.refresh_hosts(nets.attached_ids(ctr))
        self.endpoint_events(ctr, "connect")
        self.volume_events(ctr, "mount")
        self.events.container(ctr, "start")
        if not attach:
            from dockyard.runtime.attach import request_start

            request_start(rdir)
        return cid

    def _seed_health(self, ctr: Container, rdir: str) -> Health | None:
        """What the monitor needs to run the container's health check (health.py); the
        health the run starts with. None without a check."""
        if ctr.spec.healthcheck is None:
            return None
        from dockyard.engine.containers import health
        from dockyard.store.events import container_attributes

        check = health.effective(ctr.spec.healthcheck)
        if check is None:
            return None
        return health.seed(
            rdir, check, ctr.state.health, self.events.dir, container_attributes(ctr)
        )

    def run_options(self, ctr: Container) -> RunOptions:
        """What the runtime runs the container with (bundle.py)."""
        from dockyard.engine.containers.bundle import run_options

        return run_options(ctr, self.get, self.records.container_dir, self.volume_path)

    def _write_bundle(self, cid: str, opts: RunOptions, rootfs: str) -> None:
        from dockyard.engine.containers.bundle import write_bundle

        write_bundle(
            self.records.container_dir(cid),
            cid,
            opts,
            rootfs,
            {f: self.records.etc_file(cid, f) for f in ETC_FILES},
            self.runtimes.run_root,
        )

    def image_snapshots(self, ctr: Container) -> list[int]:
        """The snapshot ids of the container's image, top layer first."""
        return [la.snapshot_id for la in reversed(self.store.images.layers(ctr.image_id))]

    def layer_dirs(self, cid: str, snapshots: list[int]) -> list[str]:
        """The container's upper dir, then its image's snapshot dirs, top first (no init)."""
        return [self.records.upper(cid)] + [self.store.snapshots.path(s) for s in snapshots]

    def mount_rootfs(self, cid: str, snapshots: list[int]) -> str:
        """Mount the container's overlay (image snapshots, init layer, upper) at rootfs/."""
        from dockyard.runtime.rootfs import mount_overlay

        cdir = self.records.container_dir(cid)
        rootfs = self.records.rootfs(cid)
        mount_overlay(
            self.store.snapshots.dir,
            snapshots,
            os.path.join(cdir, "upper"),
            os.path.join(cdir, "work"),
            rootfs,
            extra_lower_top=os.path.join("..", "containers", cid, "init"),
        )
        return rootfs

    # ------------------------------------------------------------------ stop, kill, wait

    def wait_stopped(self, cid: str, timeout: float) -> bool:
        def stopped() -> bool:
            try:
                return not self.refresh(cid).running
            except NotFound:
                return True

        return wait_until(stopped, timeout)

    def _stopping(self, cid: str, *, last_run: bool) -> None:
        """A user stops or signals the running container: Docker's HasBeenManuallyStopped
        (unless-stopped then stays down, also at boot), and with ``last_run`` its restart
        manager's ExitOnNext (this run's exit is the last, whatever the policy)."""

        def mark(c: Container) -> Container:
            st = c.state
            if st.status not in ("running", "paused", "restarting"):
                return c
            if st.manually_stopped and (st.stop_requested or not last_run):
                return c
            state = replace(st, manually_stopped=True, stop_requested=st.stop_requested or last_run)
            out: Container = replace(c, state=state)
            return out

        self.records.update(cid, mark)

    def stop(self, text: str, timeout: int | None = None) -> str:
        cid = self.records.resolve(text)
        ctr = self.refresh(cid)
        if ctr.state.restarting:
            if self.call_off_restart(cid):
                return cid
            ctr = self.refresh(cid)  # its next run was recorded meanwhile: stop that
        if not ctr.running:
            return cid
        self._stopping(cid, last_run=True)
        rt = self.runtimes.get(ctr.spec.runtime)
        sig = ctr.spec.stop_signal or "TERM"
        if timeout is None:
            timeout = ctr.spec.stop_timeout if ctr.spec.stop_timeout is not None else 10
        try:
            self.events.container(ctr, "kill", signal=str(signal_number(sig)))
            rt.kill(cid, signal_name(sig))
        except DockyardError:
            pass
        if ctr.state.paused:
            try:
                rt.resume(cid)  # Docker: the signal is delivered once the container thaws
            except DockyardError:
                pass
        if timeout < 0 or not self.wait_stopped(cid, float(timeout)):
            try:
                self.events.container(ctr, "kill", signal="9")
                rt.kill(cid, "KILL", all_processes=True)
            except DockyardError:
                pass
            if not self.wait_stopped(cid, 30):
                raise DockyardError(f"container {cid[:12]} did not stop after SIGKILL")
        # Return once the monitor has recorded the exit and cleaned up (unmounted the rootfs,
        # deleted the runtime state): a start right after (restart) would race with it.
        st = ctr.state
        wait_until(lambda: not alive(st.monitor_pid, st.monitor_start), 30)
        self.events.container(ctr, "stop")
        return cid

    def kill(self, text: str, sig: str = "KILL") -> str:
        cid = self.records.resolve(text)
        ctr = self.refresh(cid)
        if not ctr.running:
            raise Conflict(f"Cannot kill container: {text}: Container {cid} is not running")
        name = signal_name(sig)
        # Docker: SIGKILL, the stop signal, or any signal when none is configured, ends the
        # restart loop; every kill counts as a user's stop for unless-stopped.
        stop_signal = ctr.spec.stop_signal
        last_run = name == "KILL" or not stop_signal or name == signal_name(stop_signal)
        if ctr.state.restarting:
            # No process to signal (Docker: "the monitor exits on its next event").
            if last_run and self.call_off_restart(cid):
                return cid
            ctr = self.refresh(cid)
            if ctr.state.restarting:
                self._stopping(cid, last_run=False)  # unless-stopped: down at the next exit
                return cid
            if not ctr.running:
                return cid
        self._stopping(cid, last_run=last_run)
        rt = self.runtimes.get(ctr.spec.runtime)
        rt.kill(cid, name)
        self.events.container(ctr, "kill", signal=str(signal_number(name)))
        if ctr.state.paused and last_run:
            rt.resume(cid)  # Docker unpauses a container it kills for good
        if name == "KILL":
            self.wait_stopped(cid, 10)
        return cid

    def force_stop(self, cid: str) -> None:
        """``rm -f``: the container's processes are killed (a restart called off), and its exit
        recorded."""
        ctr = self.refresh(cid)
        if ctr.state.restarting and self.call_off_restart(cid):
            return
        ctr = self.refresh(cid)
        if not ctr.running:
            return
        self._stopping(cid, last_run=True)
        rt = self.runtimes.get(ctr.spec.runtime)
        rt.kill(cid, "KILL", all_processes=True)
        if ctr.state.paused:
            try:
                rt.resume(cid)
            except DockyardError:
                pass  # gone already
        self.wait_stopped(cid, 30)

    def pause(self, text: str) -> str:
        """``docker pause``: every process of the container frozen (the freezer cgroup)."""
        cid = self.records.resolve(text)
        ctr = self.refresh(cid)
        if not ctr.running:
            raise Conflict(f"Container {cid} is not running")
        if ctr.state.restarting:
            raise Conflict(f"Container {cid} is restarting, wait until the container is running")
        if ctr.state.paused:
            raise Conflict(f"Container {cid} is already paused")
        self.runtimes.get(ctr.spec.runtime).pause(cid)
        # The monitor's health checks see it (Docker's checks fail on a paused container).
        open(os.path.join(self.records.run_dir_of(cid), "paused"), "w").close()
        self._set_status(cid, "running", "paused")
        self.events.container(ctr, "pause")
        return cid

    def unpause(self, text: str) -> str:
        cid = self.records.resolve(text)
        ctr = self.refresh(cid)
        if not ctr.state.paused:
            raise Conflict(f"Container {cid} is not paused")
        self.runtimes.get(ctr.spec.runtime).resume(cid)
        try:
            os.unlink(os.path.join(self.records.run_dir_of(cid), "paused"))
        except FileNotFoundError:
            pass
        self._set_status(cid, "paused", "running")
        self.events.container(ctr, "unpause")
        return cid

    def _set_status(self, cid: str, was: str, now: str) -> None:
        def change(c: Container) -> Container:
            if c.state.status != was:
                return c  # it ended meanwhile: its exit is recorded
            out: Container = replace(c, state=replace(c.state, status=now))
            return out

        self.records.update(cid, change)

    def wait(self, text: str, condition: str = "not-running") -> int:
        """``docker wait``: the exit code once the container is not running (through any
        restarts), has exited next (``next-exit``), or is removed (``removed``)."""
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        cid = self.records.resolve(text)
        exit_file = os.path.join(self.records.run_dir_of(cid), "exit.json")
        last: Container | None = None
        first: Container | None = None
        while True:
            try:
                ctr = self.refresh(cid)
            except NotFound:
                try:
                    with open(exit_file) as f:
                        return int(json.load(f)["ExitCode"])
                except (OSError, ValueError, KeyError):
                    if last is not None:
                        return last.state.exit_code
                    raise NotFound(f"No such container: {text}") from None
            last = ctr
            if first is None:
                first = ctr
            st = ctr.state
            if condition == "not-running" and not ctr.running:
                return st.exit_code
            if condition == "next-exit" and (
                st.finished_at != first.state.finished_at or ctr.restart_count > first.restart_count
            ):
                return st.exit_code
            time.sleep(0.02)


class _CalledOff(Exception):
    """A restart's run found the container no longer restarting (stopped meanwhile)."""


def stopped_network(ctr: Container) -> Container:
    """What a stopped container shows: no addresses, no published ports (Docker's shape)."""
    out: Container = replace(
        ctr,
        endpoints=tuple((n, ep.stopped()) for n, ep in ctr.endpoints),
        published=(),
        sandbox_key="",
    )
    return out


def container_command(root: str, run_root: str) -> list[str]:
    """``dockyard container`` on this store, for the processes the engine leaves behind: a
    monitor's exit command (+ ``_exited ID``) and a restarter (+ ``_restart ...``)."""
    return [
        sys.executable,
        "-m",
        "dockyard",
        "--root",
        root,
        "--run-root",
        run_root,
        "container",
    ]
