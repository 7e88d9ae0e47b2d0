"""Start, stop, kill, wait, and reconciliation: a container's life with its monitor.

A running container is owned by its monitor process; the monitor writes ``exit.json`` when
the container ends and runs ``dockyard container _exited`` to record it. Any read of a
container first reconciles it (:meth:`Lifecycle.refresh`): a container whose monitor is gone is
marked exited and its mounts are cleaned up, so a host reboot or a SIGKILLed monitor never
leaves a "running" ghost.
"""

from __future__ import annotations

import os
import sys
import time

from dockyard import fastjson as json  # json without re: exec is latency-critical
from dockyard.engine.containers.records import ETC_FILES
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.model.container import ZERO_TIME, ContainerState, replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.engine.events import Events
    from dockyard.engine.networks import NetworkService
    from dockyard.model.container import Container, ContainerSpec
    from dockyard.runtime.attach import MonitorLaunch
    from dockyard.runtime.oci import OCIRuntime
    from dockyard.runtime.options import RunOptions
    from dockyard.store import Store

DEFAULT_RUNTIME = "runc"


def now_rfc3339() -> str:
    from dockyard.image.config import now_rfc3339 as now

    return now()


def pid_start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: tells a live process from a later one with the same PID.
    A zombie counts as gone ("")."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


def alive(pid: int, start_time: str) -> bool:
    return pid > 0 and bool(start_time) and pid_start_time(pid) == start_time


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
        exit_command: Sequence[str],
        events: Events,
    ) -> None:
        self.records = records
        self.store = store
        self.runtimes = runtimes
        self.networks = networks
        self.remove_after_exit = remove_after_exit  # --rm: the files and volumes go
        self.exit_command = exit_command  # what the monitor runs, + the container ID
        self.events = events

    # ------------------------------------------------------------------ reconcile

    def refresh(self, cid: str) -> Container:
        """The container, reconciled with reality (see the module's docstring)."""
        ctr = self.records.load(cid)
        st = ctr.state
        if not st.running:
            return ctr
        exited = os.path.exists(os.path.join(self.records.run_dir_of(cid), "exit.json"))
        if not exited and alive(st.monitor_pid, st.monitor_start):
            return ctr
        # The container ended (exit.json) or its monitor is gone (SIGKILL, host reboot):
        # record the exit and clean up, whoever gets here first.
        self.on_exit(cid)
        try:
            return self.records.load(cid)
        except NotFound:
            return ctr

    def get(self, text: str) -> Container:
        return self.refresh(self.records.resolve(text))

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

    def on_exit(self, cid: str, *, runtime_cleanup: bool = True) -> None:
        """Record a container's exit (run by its monitor; also by recovery). Idempotent.

        ``runtime_cleanup=False``: the monitor deletes the runtime's state itself (it does
        when an attached client records the exit), so the caller skips that runc call."""
        try:
            ctr = self.records.load(cid)
        except NotFound:
            # Recorded already (an attached `run --rm`): the monitor asks us only when its
            # own release of the runtime fell short.
            from dockyard.runtime.cleanup import release_unknown

            release_unknown(self.runtimes.run_root, cid)
            return
        exit_info: dict[str, Any] = {}
        try:
            with open(os.path.join(self.records.run_dir_of(cid), "exit.json")) as f:
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
        before = None
        rows_deleted = False
        with self.records.db.transaction() as c:
            ctr_now = self.records.load_in(c, cid)
            if ctr_now is None:
                return
            ctr = ctr_now
            if ctr.running:
                before = ctr
                state = replace(
                    ctr.state,
                    status="exited",
                    pid=0,
                    exit_code=int(exit_info.get("ExitCode", 255)),
                    finished_at=exit_info.get("FinishedAt") or now_rfc3339(),
                    error=str(exit_info.get("Error", "")),
                    oom_killed=bool(exit_info.get("OOMKilled", False)),
                )
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

        rt = self.runtimes.get(spec.runtime)
        log_path, log_args = self.log_options(cid, spec, ctr)
        return launch_monitor(
            cid=cid,
            bundle=self.records.container_dir(cid),
            runtime=rt.binary,
            runtime_root=rt.state_root,
            run_dir=self.records.run_dir_of(cid),
            log_path=log_path,
            tty=spec.tty,
            stdin=spec.open_stdin,
            start=False,
            exit_command=[*self.exit_command, cid],
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

    def start(self, text: str, *, attach: bool = False, launch: MonitorLaunch | None = None) -> str:
        """Start a created or stopped container. With ``attach`` the monitor waits for the
        caller's attach client to ask for the start (so no output is lost). ``launch``: the
        monitor :meth:`launch_early` started for this container (run's fast path)."""
        try:
            cid = self.records.resolve(text)
            ctr = self.refresh(cid)
            if ctr.running:
                if launch is not None:
                    launch.cancel()
                return cid
        except BaseException:
            if launch is not None:
                launch.cancel()
            raise
        from dockyard.runtime.rootfs import unmount

        # The last run's monitor may still be recording that run's exit (its exit command
        # unmounts the rootfs): the new run's mount and run dir must come after it.
        last = ctr.state
        wait_until(lambda: not alive(last.monitor_pid, last.monitor_start), 30)
        rdir = self.records.run_dir_of(cid)
        if launch is None:
            import shutil

            shutil.rmtree(rdir, ignore_errors=True)
            os.makedirs(rdir, mode=0o700)
        spec = ctr.spec
        runtime = self.runtimes.get(spec.runtime)
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
                _populate_volumes(rootfs, ctr, self.layer_dirs(cid, snapshots), self.volume_path)
            opts = self.run_options(ctr)
            if net is not None:
                opts = opts._replace(network_mode=f"netns:{net.netns_path}")
            self._write_bundle(cid, opts, rootfs)
            if os.path.exists(os.path.join(runtime.state_root, cid)):
                runtime.delete(cid, force=True)  # a leftover from a crash would block create
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
                _loopback_up(pid)
            if net is not None:
                net.sandbox.wait_configured()
                net.sandbox.close()  # the runtime has joined the namespace
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

        def started(ctr: Container) -> Container:
            state = ContainerState(
                status="running",
                pid=pid,
                started_at=now_rfc3339(),
                finished_at=ZERO_TIME,
                monitor_pid=mpid,
                monitor_start=pid_start_time(mpid),
            )
            ctr = replace(ctr, state=state)
            return net.record(ctr, pid) if net is not None else ctr

        ctr = self.records.update(cid, started) or ctr
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

    def volume_path(self, name: str) -> str:
        return os.path.join(os.path.dirname(self.records.dir), "volumes", name, "_data")

    def run_options(self, ctr: Container) -> RunOptions:
        """What the runtime runs the container with."""
        from dockyard.runtime.options import Mount, RunOptions, Ulimit

        spec = ctr.spec
        mounts = []
        for m in spec.mounts:
            if m.type == "tmpfs":
                opts = [*m.tmpfs_options]
                if m.tmpfs_size:
                    opts.append(f"size={m.tmpfs_size}")
                if m.tmpfs_mode:
                    opts.append(f"mode={m.tmpfs_mode:o}")
                mounts.append(Mount("tmpfs", "", m.target, m.read_only, options=tuple(opts)))
                continue
            source = self.volume_path(m.source) if m.type == "volume" else m.source
            mounts.append(
                Mount(
                    m.type,
                    source,
                    m.target,
                    m.read_only,
                    m.source if m.type == "volume" else "",
                    m.propagation or "rprivate",
                )
            )
        network = spec.network_mode
        if network.startswith("container:"):
            other = self.get(network.split(":", 1)[1])
            if not other.running:
                raise Conflict(f"cannot join network of a non running container: {other.id}")
            network = f"netns:/proc/{other.state.pid}/ns/net"
        elif network not in ("none", "host"):
            network = "none"  # a bridge network: start() points the spec at its sandbox
        sec, res = spec.security, spec.resources
        return RunOptions(
            args=spec.args,
            env=spec.env,
            cwd=spec.working_dir or "/",
            user=spec.user,
            group_add=spec.group_add,
            tty=spec.tty,
            open_stdin=spec.open_stdin,
            hostname=spec.hostname,
            domainname=spec.domainname,
            read_only=spec.read_only,
            privileged=sec.privileged,
            cap_add=sec.cap_add,
            cap_drop=sec.cap_drop,
            no_new_privileges=sec.no_new_privileges,
            seccomp_profile=sec.seccomp,
            memory=res.memory,
            memory_swap=res.memory_swap,
            cpus=res.nano_cpus / 1e9,
            cpu_shares=res.cpu_shares,
            pids_limit=res.pids_limit,
            ulimits=tuple(Ulimit(u.name, u.soft, u.hard) for u in res.ulimits),
            network_mode=network,
            mounts=tuple(mounts),
            init=spec.init,
            sysctls=spec.sysctls,
            shm_size=spec.shm_size or 64 * 1024 * 1024,
            masked_paths=sec.masked_paths,
            readonly_paths=sec.readonly_paths,
        )

    def _write_bundle(self, cid: str, opts: RunOptions, rootfs: str) -> None:
        """config.json for the OCI runtime, next to the mounted rootfs."""
        from dockyard.runtime.cgroups import container_path
        from dockyard.runtime.spec import build_spec

        _ensure_workdir(rootfs, opts.cwd)
        spec = build_spec(
            opts,
            rootfs="rootfs",
            rootfs_dir=rootfs,
            container_id=cid,
            cgroups_path=container_path(cid),
            cache_dir=self.runtimes.run_root,
            etc_files={f: self.records.etc_file(cid, f) for f in ETC_FILES},
            init_path=_init_binary() if opts.init else None,
        )
        with open(os.path.join(self.records.container_dir(cid), "config.json"), "w") as f:
            f.write(json.dumps(spec))  # json.dump would take the pure-Python encoder

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

    def stop(self, text: str, timeout: int | None = None) -> str:
        cid = self.records.resolve(text)
        ctr = self.refresh(cid)
        if not ctr.running:
            return cid
        rt = self.runtimes.get(ctr.spec.runtime)
        sig = ctr.spec.stop_signal or "TERM"
        if timeout is None:
            timeout = ctr.spec.stop_timeout if ctr.spec.stop_timeout is not None else 10
        try:
            self.events.container(ctr, "kill", signal=str(signal_number(sig)))
            rt.kill(cid, signal_name(sig))
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
        self.runtimes.get(ctr.spec.runtime).kill(cid, name)
        self.events.container(ctr, "kill", signal=str(signal_number(name)))
        if name == "KILL":
            self.wait_stopped(cid, 10)
        return cid

    def wait(self, text: str) -> int:
        cid = self.records.resolve(text)
        exit_file = os.path.join(self.records.run_dir_of(cid), "exit.json")
        while True:
            try:
                ctr = self.refresh(cid)
            except NotFound:
                try:
                    with open(exit_file) as f:
                        return int(json.load(f)["ExitCode"])
                except (OSError, ValueError, KeyError):
                    raise NotFound(f"No such container: {text}") from None
            if not ctr.running:
                return ctr.state.exit_code
            time.sleep(0.02)


def stopped_network(ctr: Container) -> Container:
    """What a stopped container shows: no addresses, no published ports (Docker's shape)."""
    out: Container = replace(
        ctr,
        endpoints=tuple((n, ep.stopped()) for n, ep in ctr.endpoints),
        published=(),
        sandbox_key="",
    )
    return out


def _populate_volumes(
    rootfs: str, ctr: Container, layers: list[str], volume_path: Callable[[str], str]
) -> None:
    """Docker's copy-up: a volume that is still empty gets what the image has at its mount
    point (files, owners, modes), so ``VOLUME /data`` or ``-v vol:/etc`` starts with the image's
    content. Files are read through the container's root with every symlink resolved inside
    it; the volume's own owner and mode come from the image's layers (``layers``: the upper dir
    then the snapshots, top first), because the init layer's placeholder masks them in the
    merged view."""
    import stat
    import subprocess

    from dockyard.runtime.fs import lookup_in_layers
    from dockyard.runtime.paths import resolve_in_root

    for m in ctr.spec.mounts:
        if m.type != "volume" or not m.source or m.no_copy:
            continue
        source = volume_path(m.source)
        if not os.path.isdir(source) or os.listdir(source):
            continue
        src = resolve_in_root(rootfs, m.target)
        if os.path.isdir(src) and os.listdir(src):
            subprocess.run(["cp", "-a", "--", f"{src}/.", source], check=True)
        st = lookup_in_layers(layers, [p for p in m.target.split("/") if p])
        if st is not None and stat.S_ISDIR(st.st_mode):
            os.chown(source, st.st_uid, st.st_gid)
            os.chmod(source, stat.S_IMODE(st.st_mode))


def _ensure_workdir(rootfs: str, cwd: str) -> None:
    """Docker creates a missing WORKDIR at start; resolve it inside the container root."""
    from dockyard.runtime.paths import resolve_in_root

    path = resolve_in_root(rootfs, cwd)
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o755, exist_ok=True)


def _init_binary() -> str:
    for p in (
        "/usr/bin/tini-static",
        "/usr/bin/tini",
        "/sbin/tini",
        "/usr/libexec/podman/catatonit",
        "/usr/bin/catatonit",
    ):
        if os.path.exists(p):
            return p
    from dockyard.errors import Unavailable

    raise Unavailable("--init needs a static init binary: install Debian's tini package")


def _loopback_up(pid: int) -> None:
    """A new network namespace starts with lo down; Docker's "none" network has it up.

    A forked child joins the container's network namespace (setns) and sets IFF_UP on lo with
    two ioctls: no ip/nsenter processes to exec on every start.
    """
    import ctypes
    import fcntl
    import socket
    import struct

    clone_newnet = 0x40000000
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked child
        code = 1
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            if ctypes.CDLL("libc.so.6", use_errno=True).setns(fd, clone_newnet) == 0:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    req = fcntl.ioctl(s, siocgifflags, struct.pack("16sH14x", b"lo", 0))
                    flags = struct.unpack("16sH14x", req)[1] | iff_up
                    fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags))
                code = 0
        finally:
            os._exit(code)
    os.waitpid(child, 0)


def exit_command(root: str, run_root: str) -> list[str]:
    """What a container's monitor runs when the container has exited (+ its ID)."""
    return [
        sys.executable,
        "-m",
        "dockyard",
        "--root",
        root,
        "--run-root",
        run_root,
        "container",
        "_exited",
    ]
