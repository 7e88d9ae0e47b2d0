"""Containers: create, start, stop, kill, rm, inspect, ps, logs, wait, exec, top, commit, cp.

State lives in the ``containers`` table as Docker's inspect shape (JSON). A running container
is owned by its monitor process; the monitor writes ``exit.json`` when the container ends and
runs ``dockyard container _exited`` to record it. Any command that reads a container first
reconciles it (``_refresh``): a container whose monitor is gone is marked exited and its mounts
are cleaned up, so a host reboot or a SIGKILLed monitor never leaves a "running" ghost.
"""

from __future__ import annotations

# The C module, not the sqlite3 package: the package adds only the (deprecated) datetime
# adapters, which the store does not use, and its `import datetime` costs ~1.5 ms of the
# start-up of every command that opens the store (`dockyard exec` is latency-critical).
import _sqlite3 as sqlite3
import os
import sys
import time
from collections.abc import Iterator, Sequence

from dockyard import fastjson as json  # json without re: exec is latency-critical
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound

# Not typing.TYPE_CHECKING: importing typing costs ~2 ms of start-up (`dockyard exec`
# is latency-critical); type checkers treat any name TYPE_CHECKING as true.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine import Engine
    from dockyard.engine.container_options import CreateOptions
    from dockyard.runtime.attach import MonitorLaunch
    from dockyard.runtime.oci import OCIRuntime
    from dockyard.runtime.options import RunOptions

NAME_RE = r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$"
DEFAULT_RUNTIME = "runc"
ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def now_rfc3339() -> str:
    from dockyard.image.config import now_rfc3339 as now

    return now()


def _pid_start_time(pid: int) -> str:
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


def _alive(pid: int, start_time: str) -> bool:
    return pid > 0 and bool(start_time) and _pid_start_time(pid) == start_time


class ContainerService:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.store = engine.store
        self.db = engine.store.db
        self.dir = os.path.join(engine.root, "containers")
        self.run_dir = os.path.join(engine.run_root, "containers")

    # ------------------------------------------------------------ records

    def runtime(self, name: str = "") -> OCIRuntime:
        from dockyard.runtime.oci import OCIRuntime

        return OCIRuntime(*self.runtime_location(name))

    def runtime_location(self, name: str = "") -> tuple[str, str]:
        """(binary name, state root) of a container's OCI runtime, without importing the
        runtime module (``dockyard exec`` becomes the runtime directly)."""
        name = name or DEFAULT_RUNTIME
        return name, os.path.join(self.engine.run_root, name)

    def resolve(self, text: str) -> str:
        """A container ID from a full ID, a name (with or without "/"), or a unique prefix."""
        name = text.lstrip("/")
        r = self.db.one("SELECT id FROM containers WHERE id = ? OR name = ?", (text, name))
        if r:
            return str(r["id"])
        if text and all(c in "0123456789abcdef" for c in text):
            rows = self.db.query(
                "SELECT id FROM containers WHERE id >= ? AND id < ? LIMIT 2", (text, text + "g")
            )
            if len(rows) == 1:
                return str(rows[0]["id"])
            if len(rows) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {text}")
        raise NotFound(f"No such container: {text}")

    def _get(self, cid: str) -> dict[str, Any]:
        r = self.db.one("SELECT data FROM containers WHERE id = ?", (cid,))
        if not r:
            raise NotFound(f"No such container: {cid}")
        data: dict[str, Any] = json.loads(r["data"])
        return data

    def _put(self, c: sqlite3.Connection, data: dict[str, Any]) -> None:
        c.execute(
            "UPDATE containers SET data = ?, name = ? WHERE id = ?",
            (json.dumps(data), data["Name"].lstrip("/"), data["Id"]),
        )

    def get(self, text: str) -> dict[str, Any]:
        """The container's inspect dict, reconciled with reality."""
        cid = self.resolve(text)
        return self._refresh(cid)

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.dir, cid)

    def rootfs_path(self, cid: str) -> str:
        return os.path.join(self.container_dir(cid), "rootfs")

    def container_run_dir(self, cid: str) -> str:
        return os.path.join(self.run_dir, cid)

    # ------------------------------------------------------------ create

    def create(self, opts: CreateOptions) -> str:
        import re

        from dockyard.engine.names import random_name
        from dockyard.image.config import DEFAULT_PATH_ENV, docker_container_config

        images = self.store.images
        image_id = images.resolve(opts.image)
        cfg = images.config(image_id)
        icfg = cfg.config
        if opts.name and not re.match(NAME_RE, opts.name):
            raise InvalidArgument(
                f"Invalid container name ({opts.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        entrypoint = icfg.get("Entrypoint") or []
        cmd = icfg.get("Cmd") or []
        if opts.entrypoint is not None:
            # --entrypoint replaces the image's and drops its CMD, as Docker does.
            entrypoint = opts.entrypoint
            cmd = []
        if opts.cmd:
            cmd = opts.cmd
        args = [*entrypoint, *cmd]
        if not args:
            raise InvalidArgument("No command specified")
        env = _merge_env(icfg.get("Env") or [], opts.env)
        if not any(e.startswith("PATH=") for e in env):
            env.insert(0, DEFAULT_PATH_ENV)
        if opts.extra_hosts or opts.dns or opts.dns_search:
            from dockyard.network.hosts import check_dns, check_dns_search, check_extra_host

            for h in opts.extra_hosts:
                check_extra_host(h)
            opts = opts._replace(
                dns=[check_dns(d) for d in opts.dns],
                dns_search=[check_dns_search(d) for d in opts.dns_search],
            )
        cid = opts.container_id or os.urandom(32).hex()
        hostname = opts.hostname or cid[:12]
        from dockyard.engine.networks import is_bridged, network_key

        network = opts.network or "default"
        exposed = dict(icfg.get("ExposedPorts") or {})
        bindings: dict[str, Any] = {}
        net_row = None
        if is_bridged(network):
            from dockyard.network import ports

            for spec in opts.expose:
                exposed.update({k: {} for k in ports.parse_expose(spec)})
            bindings = ports.port_bindings(opts.publish)
            exposed.update({k: {} for k in bindings})
            net_row = self.engine.networks.for_container(network)
        ip = ""
        if opts.ip:
            from dockyard.engine.networks import check_ipv4

            ip = self.engine.networks.static_address(net_row, check_ipv4(opts.ip))
        mounts, volumes_used = self._plan_mounts(opts, icfg)
        created = now_rfc3339()
        config = docker_container_config(
            {
                "Hostname": hostname,
                "Domainname": opts.domainname,
                "User": opts.user or icfg.get("User", ""),
                "AttachStdin": "stdin" in opts.attach,
                "AttachStdout": "stdout" in opts.attach,
                "AttachStderr": "stderr" in opts.attach,
                "Tty": opts.tty,
                "OpenStdin": opts.stdin_open,
                "StdinOnce": opts.stdin_open and "stdin" in opts.attach,
                "Env": env,
                "Cmd": cmd or None,
                "Image": opts.image,
                "Volumes": icfg.get("Volumes"),
                "WorkingDir": opts.workdir or icfg.get("WorkingDir", ""),
                "Entrypoint": entrypoint or None,
                "OnBuild": None,
                "Labels": {**(icfg.get("Labels") or {}), **opts.labels},
                "ExposedPorts": exposed or None,
            }
        )
        if opts.stop_signal or icfg.get("StopSignal"):
            config["StopSignal"] = opts.stop_signal or icfg.get("StopSignal")
        if opts.stop_timeout is not None:
            config["StopTimeout"] = opts.stop_timeout
        host_config = {
            "Binds": [v for v in opts.volumes if ":" in v] or None,
            "NetworkMode": network,
            "PortBindings": bindings,
            "Dns": list(opts.dns),
            "DnsOptions": list(opts.dns_options),
            "DnsSearch": list(opts.dns_search),
            "ExtraHosts": list(opts.extra_hosts) or None,
            "PublishAllPorts": bool(opts.publish_all and net_row is not None),
            "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
            "AutoRemove": opts.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": None,
            "CapAdd": opts.cap_add or None,
            "CapDrop": opts.cap_drop or None,
            "GroupAdd": opts.group_add or None,
            "Privileged": opts.privileged,
            "ReadonlyRootfs": opts.read_only,
            "SecurityOpt": opts.security_opt or None,
            "Tmpfs": dict(_split_tmpfs(t) for t in opts.tmpfs) or None,
            "ShmSize": opts.shm_size or 64 * 1024 * 1024,
            "Runtime": opts.runtime or DEFAULT_RUNTIME,
            "Memory": opts.memory,
            "MemorySwap": opts.memory_swap,
            "NanoCpus": opts.nano_cpus,
            "CpuShares": opts.cpu_shares,
            "PidsLimit": opts.pids_limit or None,
            "Ulimits": [_parse_ulimit(u) for u in opts.ulimits] or None,
            "Sysctls": opts.sysctls or None,
            "Init": opts.init or None,
        }
        cdir = self.container_dir(cid)
        data: dict[str, Any] = {
            "Id": cid,
            "Created": created,
            "Path": args[0],
            "Args": args[1:],
            "State": {
                "Status": "created",
                "Running": False,
                "Paused": False,
                "Restarting": False,
                "OOMKilled": False,
                "Dead": False,
                "Pid": 0,
                "ExitCode": 0,
                "Error": "",
                "StartedAt": "0001-01-01T00:00:00Z",
                "FinishedAt": "0001-01-01T00:00:00Z",
            },
            "Image": image_id,
            "ResolvConfPath": os.path.join(cdir, "resolv.conf"),
            "HostnamePath": os.path.join(cdir, "hostname"),
            "HostsPath": os.path.join(cdir, "hosts"),
            "LogPath": os.path.join(cdir, f"{cid}-json.log"),
            "Name": "",
            "RestartCount": 0,
            "Driver": "overlay",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": None,
            "HostConfig": host_config,
            "GraphDriver": {
                "Name": "overlay",
                "Data": {
                    "LowerDir": os.path.join(cdir, "init"),
                    "MergedDir": os.path.join(cdir, "rootfs"),
                    "UpperDir": os.path.join(cdir, "upper"),
                    "WorkDir": os.path.join(cdir, "work"),
                },
            },
            "Mounts": mounts,
            "Config": config,
            "NetworkSettings": _network_settings(network_key(network)),
            "Dockyard": {"MonitorPid": 0, "MonitorStart": "", "ShimRunDir": ""},
        }
        self._make_dirs(cid, data, mounts)
        try:
            with self.db.transaction() as c:
                name = opts.name.lstrip("/")
                for attempt in range(20):
                    if not name:
                        candidate = random_name(attempt)
                        if c.execute(
                            "SELECT 1 FROM containers WHERE name = ?", (candidate,)
                        ).fetchone():
                            continue
                        name = candidate
                    break
                data["Name"] = "/" + name
                try:
                    c.execute(
                        "INSERT INTO containers (id, name, image_id, created, data)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (cid, name, image_id, time.time(), json.dumps(data)),
                    )
                except sqlite3.IntegrityError:
                    other = c.execute(
                        "SELECT id FROM containers WHERE name = ?", (name,)
                    ).fetchone()
                    raise Conflict(
                        f'Conflict. The container name "/{name}" is already in use by container '
                        f'"{other[0] if other else "?"}". You have to remove (or rename) that '
                        "container to be able to reuse that name."
                    ) from None
                c.executemany(
                    "INSERT OR IGNORE INTO container_volumes (container_id, volume) VALUES (?, ?)",
                    [(cid, v) for v in volumes_used],
                )
                if net_row is not None:
                    # The address is leased with the container, in the same transaction:
                    # parallel creates never get the same one, and a start costs no write.
                    nets = self.engine.networks
                    nets.lease_in(c, net_row, cid, ip)
                    key = network_key(network)
                    aliases = [] if key == "bridge" else [*opts.network_aliases, cid[:12]]
                    data["NetworkSettings"]["Networks"] = {
                        key: nets.endpoint_settings(net_row, aliases, ip)
                    }
                    self._put(c, data)
        except BaseException:
            _rmtree(cdir, ignore_errors=True)
            raise
        return cid

    def _plan_mounts(
        self, opts: CreateOptions, icfg: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Docker's Mounts list from -v, --tmpfs and the image's VOLUMEs."""
        volumes = self.engine.volumes
        mounts: list[dict[str, Any]] = []
        used: list[str] = []
        seen: set[str] = set()
        for spec in opts.volumes:
            m = parse_volume_spec(spec)
            if m["Destination"] in seen:
                raise InvalidArgument(f"Duplicate mount point: {m['Destination']}")
            seen.add(m["Destination"])
            if m["Type"] == "volume":
                m["Name"] = volumes.create(m["Name"], anonymous=not m["Name"])
                m["Source"] = volumes.path(m["Name"])
                used.append(m["Name"])
            elif not os.path.exists(m["Source"]):
                os.makedirs(m["Source"], exist_ok=True)  # -v creates a missing host dir
            mounts.append(m)
        for t in opts.tmpfs:
            dest, _ = _split_tmpfs(t)
            seen.add(dest)
        for dest in sorted(icfg.get("Volumes") or {}):
            if dest in seen:
                continue
            name = volumes.create("", anonymous=True)
            used.append(name)
            mounts.append(
                {
                    "Type": "volume",
                    "Name": name,
                    "Source": volumes.path(name),
                    "Destination": dest,
                    "Driver": "local",
                    "Mode": "",
                    "RW": True,
                    "Propagation": "",
                }
            )
        return mounts, used

    def _make_dirs(self, cid: str, data: dict[str, Any], mounts: list[dict[str, Any]]) -> None:
        cdir = self.container_dir(cid)
        for d in ("upper", "work", "rootfs", "init"):
            os.makedirs(os.path.join(cdir, d), mode=0o700 if d == "work" else 0o755)
        # The merged root takes the upper dir's mode: it is the container's "/", which every
        # user in the container must be able to traverse (the umask must not narrow it).
        os.chmod(os.path.join(cdir, "upper"), 0o755)
        os.chmod(cdir, 0o710)
        init = os.path.join(cdir, "init")
        # The init layer (Docker's "-init"): mount points exist below the upper dir, so the
        # runtime never creates them there and commit/diff never see them.
        for d in ("proc", "sys", "dev", "dev/pts", "dev/shm", "dev/mqueue", "etc"):
            os.makedirs(os.path.join(init, d), exist_ok=True)
        for name in ETC_FILES:
            open(os.path.join(init, name.lstrip("/")), "w").close()
        for m in mounts:
            point = os.path.join(init, m["Destination"].lstrip("/"))
            if m["Type"] == "bind" and os.path.isfile(m["Source"]):
                os.makedirs(os.path.dirname(point), exist_ok=True)
                if not os.path.exists(point):
                    open(point, "w").close()
            else:
                os.makedirs(point, exist_ok=True)
        config, hc = data["Config"], data["HostConfig"]
        with open(os.path.join(cdir, "hostname"), "w") as f:
            f.write(config["Hostname"] + "\n")
        from dockyard.network.hosts import extra_hosts, hosts_text, resolv_conf

        own = [] if hc["NetworkMode"] == "host" else [("127.0.1.1", config["Hostname"])]
        extra = extra_hosts(hc.get("ExtraHosts"), self.engine.networks.host_gateway)
        with open(os.path.join(cdir, "hosts"), "w") as f:
            f.write(hosts_text(own, [], extra))
        try:
            with open("/etc/resolv.conf", "rb") as src:
                host_resolv: str | None = src.read().decode(errors="replace")
        except OSError:
            host_resolv = None
        flags = [hc.get(k) or () for k in ("Dns", "DnsSearch", "DnsOptions")]
        if not any(flags) and (host_resolv is None or hc["NetworkMode"] == "host"):
            resolv = host_resolv or ""
        else:
            # The host's loopback resolvers are unreachable from the container's own network
            # namespace: Docker drops them. Peers on user networks resolve through the hosts
            # file, so --dns servers are the container's own resolvers on every network.
            resolv = resolv_conf(
                host_resolv or "", *flags, drop_loopback=hc["NetworkMode"] != "host"
            )
        with open(os.path.join(cdir, "resolv.conf"), "w") as dst:
            dst.write(resolv)
        open(data["LogPath"], "a").close()

    # ------------------------------------------------------------ start

    def _run_options(self, data: dict[str, Any]) -> RunOptions:
        from dockyard.runtime.options import Mount, RunOptions, Ulimit

        cfg, hc = data["Config"], data["HostConfig"]
        mounts = []
        for m in data["Mounts"]:
            mounts.append(
                Mount(
                    m["Type"],
                    m["Source"],
                    m["Destination"],
                    not m.get("RW", True),
                    m.get("Name", ""),
                )
            )
        for dest, _opts in (hc.get("Tmpfs") or {}).items():
            mounts.append(Mount("tmpfs", "", dest))
        sec = hc.get("SecurityOpt") or []
        seccomp = ""
        for s in sec:
            key, _, value = s.replace(":", "=", 1).partition("=")
            if key == "seccomp":
                seccomp = value
        network = hc["NetworkMode"]
        if network not in ("none", "host") and not network.startswith("container:"):
            network = "none"  # a bridge network: start() points the spec at its sandbox
        elif network.startswith("container:"):
            other = self.get(network.split(":", 1)[1])
            if not other["State"]["Running"]:
                raise Conflict(f"cannot join network of a non running container: {other['Id']}")
            network = f"netns:/proc/{other['State']['Pid']}/ns/net"
        return RunOptions(
            args=(data["Path"], *data["Args"]),
            env=tuple(cfg.get("Env") or ()),
            cwd=cfg.get("WorkingDir") or "/",
            user=cfg.get("User") or "",
            group_add=tuple(hc.get("GroupAdd") or ()),
            tty=bool(cfg.get("Tty")),
            open_stdin=bool(cfg.get("OpenStdin")),
            hostname=cfg.get("Hostname") or "",
            domainname=cfg.get("Domainname") or "",
            read_only=bool(hc.get("ReadonlyRootfs")),
            privileged=bool(hc.get("Privileged")),
            cap_add=tuple(hc.get("CapAdd") or ()),
            cap_drop=tuple(hc.get("CapDrop") or ()),
            no_new_privileges=any(
                s.startswith("no-new-privileges") and not s.endswith("false") for s in sec
            ),
            seccomp_profile=seccomp,
            memory=int(hc.get("Memory") or 0),
            memory_swap=int(hc.get("MemorySwap") or 0),
            cpus=(hc.get("NanoCpus") or 0) / 1e9,
            cpu_shares=int(hc.get("CpuShares") or 0),
            pids_limit=int(hc.get("PidsLimit") or 0),
            ulimits=tuple(Ulimit(u["Name"], u["Soft"], u["Hard"]) for u in hc.get("Ulimits") or ()),
            network_mode=network,
            mounts=tuple(mounts),
            init=bool(hc.get("Init")),
            sysctls=tuple((hc.get("Sysctls") or {}).items()),
            shm_size=int(hc.get("ShmSize") or 64 * 1024 * 1024),
        )

    def forget_run_dir(self, cid: str) -> None:
        """Remove what an early-launched monitor left of a container never created."""
        _rmtree(self.container_run_dir(cid), ignore_errors=True)
        if not self.db.one("SELECT 1 FROM containers WHERE id = ?", (cid,)):
            _rmtree(self.container_dir(cid), ignore_errors=True)

    def _exit_command(self, cid: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "dockyard",
            "--root",
            self.engine.root,
            "--run-root",
            self.engine.run_root,
            "container",
            "_exited",
            cid,
        ]

    def launch_early(self, opts: CreateOptions) -> MonitorLaunch:
        """``run``: start the monitor of the container ``opts.container_id`` is about to
        become, before it is created, so the monitor's interpreter starts while the
        container is created and its bundle written; pass the result to :meth:`start`
        (or ``cancel()`` it if the create fails)."""
        from dockyard.runtime.attach import launch_monitor

        cid = opts.container_id
        runtime = self.runtime(opts.runtime)
        rdir = self.container_run_dir(cid)
        os.makedirs(rdir, mode=0o700, exist_ok=True)  # a new ID: nothing to clear
        return launch_monitor(
            cid=cid,
            bundle=self.container_dir(cid),
            runtime=runtime.binary,
            runtime_root=runtime.state_root,
            run_dir=rdir,
            log_path=os.path.join(self.container_dir(cid), f"{cid}-json.log"),
            tty=opts.tty,
            stdin=opts.stdin_open,
            start=False,
            exit_command=self._exit_command(cid),
            wait_for_go=True,
        )

    def start(self, text: str, *, attach: bool = False, launch: MonitorLaunch | None = None) -> str:
        """Start a created or stopped container. With ``attach`` the monitor waits for the
        caller's attach client to ask for the start (so no output is lost). ``launch``: the
        monitor :meth:`launch_early` started for this container (run's fast path)."""
        try:
            cid = self.resolve(text)
            data = self._refresh(cid)
            if data["State"]["Running"]:
                if launch is not None:
                    launch.cancel()
                return cid
        except BaseException:
            if launch is not None:
                launch.cancel()
            raise
        from dockyard.runtime.attach import launch_monitor
        from dockyard.runtime.rootfs import unmount

        cdir = self.container_dir(cid)
        rdir = self.container_run_dir(cid)
        if launch is None:
            _rmtree(rdir, ignore_errors=True)
            os.makedirs(rdir, mode=0o700)
        hc = data["HostConfig"]
        runtime = self.runtime(hc.get("Runtime", ""))
        cfg = data["Config"]
        net = None
        if _bridged(hc["NetworkMode"]) and data["NetworkSettings"].get("Networks"):
            try:
                # Forked before the monitor (when we launch it) so it inherits none of the
                # monitor's pipes.
                net = self.engine.networks.prepare(cid, data, rdir)
            except BaseException:
                if launch is not None:
                    launch.cancel()
                raise
        exit_cmd = self._exit_command(cid)
        # The monitor's interpreter starts now, while we mount and write the bundle.
        try:
            launch = launch or launch_monitor(
                cid=cid,
                bundle=cdir,
                runtime=runtime.binary,
                runtime_root=runtime.state_root,
                run_dir=rdir,
                log_path=data["LogPath"],
                tty=bool(cfg.get("Tty")),
                stdin=bool(cfg.get("OpenStdin")),
                start=False,
                exit_command=exit_cmd,
                wait_for_go=True,
            )
        except BaseException:
            if net is not None:
                net.abort()
            raise
        rootfs = ""
        try:
            snapshots = self._image_snapshots(data)
            rootfs = self._mount_rootfs(cid, snapshots)
            if any(m["Type"] == "volume" for m in data["Mounts"]):
                # Only then: its imports cost a few ms of every start.
                _populate_volumes(rootfs, data["Mounts"], self._layer_dirs(cid, snapshots))
            opts = self._run_options(data)
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
            self._cleanup_runtime(cid, data)
            raise
        mpid = _read_int(os.path.join(rdir, "monitor.pid"))
        with self.db.transaction() as c:
            data = json.loads(
                c.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()[0]
            )
            data["State"].update(
                {
                    "Status": "running",
                    "Running": True,
                    "Pid": pid,
                    "ExitCode": 0,
                    "Error": "",
                    "StartedAt": now_rfc3339(),
                    "FinishedAt": "0001-01-01T00:00:00Z",
                }
            )
            data["Dockyard"] = {"MonitorPid": mpid, "MonitorStart": _pid_start_time(mpid)}
            if net is not None:
                net.record(data, pid)
            self._put(c, data)
        if net is not None:
            self.engine.networks.refresh_hosts(self.engine.networks.attached_ids(data))
        if not attach:
            from dockyard.runtime.attach import request_start

            request_start(rdir)
        return cid

    def _write_bundle(self, cid: str, opts: RunOptions, rootfs: str) -> None:
        """config.json for the OCI runtime, next to the mounted rootfs."""
        from dockyard.runtime.cgroups import container_path
        from dockyard.runtime.spec import build_spec

        cdir = self.container_dir(cid)
        _ensure_workdir(rootfs, opts.cwd)
        spec = build_spec(
            opts,
            rootfs="rootfs",
            rootfs_dir=rootfs,
            container_id=cid,
            cgroups_path=container_path(cid),
            cache_dir=self.engine.run_root,
            etc_files={f: os.path.join(cdir, os.path.basename(f)) for f in ETC_FILES},
            init_path=_init_binary() if opts.init else None,
        )
        with open(os.path.join(cdir, "config.json"), "w") as f:
            f.write(json.dumps(spec))  # json.dump would take the pure-Python encoder

    def _image_snapshots(self, data: dict[str, Any]) -> list[int]:
        """The snapshot ids of the container's image, top layer first."""
        return [la.snapshot_id for la in reversed(self.store.images.layers(data["Image"]))]

    def _mount_rootfs(self, cid: str, snapshots: list[int]) -> str:
        """Mount the container's overlay (image snapshots, init layer, upper) at rootfs/."""
        from dockyard.runtime.rootfs import mount_overlay

        cdir = self.container_dir(cid)
        rootfs = os.path.join(cdir, "rootfs")
        mount_overlay(
            self.store.snapshots.dir,
            snapshots,
            os.path.join(cdir, "upper"),
            os.path.join(cdir, "work"),
            rootfs,
            extra_lower_top=os.path.join("..", "containers", cid, "init"),
        )
        return rootfs

    # ------------------------------------------------------------ exit and recovery

    def on_exit(self, cid: str, *, runtime_cleanup: bool = True) -> None:
        """Record a container's exit (run by its monitor; also by recovery). Idempotent.

        ``runtime_cleanup=False``: the monitor deletes the runtime's state itself (it does
        when an attached client records the exit), so the caller skips that runc call."""
        try:
            data = self._get(cid)
        except NotFound:
            # Recorded already (an attached `run --rm`): the monitor asks us only when its
            # own release of the runtime fell short.
            from dockyard.runtime.cleanup import release_unknown

            release_unknown(self.engine.run_root, cid)
            return
        rdir = self.container_run_dir(cid)
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
            self._cleanup_runtime(cid, data)
        else:
            from dockyard.runtime.rootfs import unmount

            unmount(os.path.join(self.container_dir(cid), "rootfs"))
        with self.db.transaction() as c:
            row = c.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
            if not row:
                return
            data = json.loads(row[0])
            before = data
            rows_deleted = False
            if data["State"]["Running"]:
                before = json.loads(row[0])
                from dockyard.engine.networks import clear_runtime

                clear_runtime(data)
                data["State"].update(
                    {
                        "Status": "exited",
                        "Running": False,
                        "Pid": 0,
                        "ExitCode": int(exit_info.get("ExitCode", 255)),
                        "FinishedAt": exit_info.get("FinishedAt") or now_rfc3339(),
                        "Error": exit_info.get("Error", ""),
                        "OOMKilled": bool(exit_info.get("OOMKilled", False)),
                    }
                )
                if data["HostConfig"].get("AutoRemove"):
                    # --rm: the row goes in this same transaction (one commit less per run).
                    self._delete_rows(c, cid)
                    rows_deleted = True
                else:
                    self._put(c, data)
        if (before.get("Dockyard") or {}).get("Interfaces"):
            self.engine.networks.after_exit(cid, before)
        if data["HostConfig"].get("AutoRemove"):
            self._remove_files_and_row(cid, data, volumes=True, rows_deleted=rows_deleted)

    def _cleanup_runtime(self, cid: str, data: dict[str, Any]) -> None:
        from dockyard.runtime.cleanup import release_container

        runtime, state_root = self.runtime_location(data["HostConfig"].get("Runtime", ""))
        rootfs = os.path.join(self.container_dir(cid), "rootfs")
        release_container(cid, runtime=runtime, state_root=state_root, rootfs=rootfs)

    def _refresh(self, cid: str) -> dict[str, Any]:
        data = self._get(cid)
        st = data["State"]
        if not st["Running"]:
            return data
        info = data.get("Dockyard") or {}
        exited = os.path.exists(os.path.join(self.container_run_dir(cid), "exit.json"))
        if not exited and _alive(
            int(info.get("MonitorPid") or 0), str(info.get("MonitorStart") or "")
        ):
            return data
        # The container ended (exit.json) or its monitor is gone (SIGKILL, host reboot):
        # record the exit and clean up, whoever gets here first.
        self.on_exit(cid)
        try:
            return self._get(cid)
        except NotFound:
            return data

    def refresh_all(self) -> None:
        for r in self.db.query("SELECT id, data FROM containers"):
            if json.loads(r["data"])["State"]["Running"]:
                self._refresh(str(r["id"]))

    # ------------------------------------------------------------ stop, kill, wait, rm

    def _wait_stopped(self, cid: str, timeout: float) -> bool:
        def stopped() -> bool:
            try:
                return not self._refresh(cid)["State"]["Running"]
            except NotFound:
                return True

        return _wait_until(stopped, timeout)

    def stop(self, text: str, timeout: int | None = None) -> str:
        cid = self.resolve(text)
        data = self._refresh(cid)
        if not data["State"]["Running"]:
            return cid
        rt = self.runtime(data["HostConfig"].get("Runtime", ""))
        monitor = data.get("Dockyard") or {}
        sig = data["Config"].get("StopSignal") or "TERM"
        if timeout is None:
            timeout = data["Config"].get("StopTimeout", 10)
        assert timeout is not None
        try:
            rt.kill(cid, _signal_name(sig))
        except DockyardError:
            pass
        if timeout < 0 or not self._wait_stopped(cid, float(timeout) if timeout >= 0 else 1e9):
            try:
                rt.kill(cid, "KILL", all_processes=True)
            except DockyardError:
                pass
            if not self._wait_stopped(cid, 30):
                raise DockyardError(f"container {cid[:12]} did not stop after SIGKILL")
        # Return once the monitor has recorded the exit and cleaned up (unmounted the rootfs,
        # deleted the runtime state): a start right after (restart) would race with it.
        mpid, mstart = int(monitor.get("MonitorPid") or 0), str(monitor.get("MonitorStart") or "")
        _wait_until(lambda: not _alive(mpid, mstart), 30)
        return cid

    def kill(self, text: str, sig: str = "KILL") -> str:
        cid = self.resolve(text)
        data = self._refresh(cid)
        if not data["State"]["Running"]:
            raise Conflict(f"Cannot kill container: {text}: Container {cid} is not running")
        self.runtime(data["HostConfig"].get("Runtime", "")).kill(cid, _signal_name(sig))
        if _signal_name(sig) == "KILL":
            self._wait_stopped(cid, 10)
        return cid

    def wait(self, text: str) -> int:
        cid = self.resolve(text)
        exit_file = os.path.join(self.container_run_dir(cid), "exit.json")
        while True:
            try:
                data = self._refresh(cid)
            except NotFound:
                try:
                    with open(exit_file) as f:
                        return int(json.load(f)["ExitCode"])
                except (OSError, ValueError, KeyError):
                    raise NotFound(f"No such container: {text}") from None
            if not data["State"]["Running"]:
                return int(data["State"]["ExitCode"])
            time.sleep(0.02)

    def remove(self, text: str, *, force: bool = False, volumes: bool = False) -> str:
        cid = self.resolve(text)
        data = self._refresh(cid)
        if data["State"]["Running"]:
            if not force:
                raise Conflict(
                    f"You cannot remove a running container {cid}. Stop the container before "
                    "attempting removal or force remove"
                )
            self.runtime(data["HostConfig"].get("Runtime", "")).kill(
                cid, "KILL", all_processes=True
            )
            self._wait_stopped(cid, 30)
            try:
                data = self._get(cid)
            except NotFound:
                return cid
        self._cleanup_runtime(cid, data)
        self._remove_files_and_row(cid, data, volumes=volumes)
        return cid

    def _delete_rows(self, c: sqlite3.Connection, cid: str) -> None:
        c.execute("DELETE FROM containers WHERE id = ?", (cid,))
        c.execute("DELETE FROM ip_leases WHERE container_id = ?", (cid,))

    def _remove_files_and_row(
        self, cid: str, data: dict[str, Any], *, volumes: bool, rows_deleted: bool = False
    ) -> None:
        from dockyard.runtime.rootfs import unmount

        if not rows_deleted:
            with self.db.transaction() as c:
                self._delete_rows(c, cid)
        cdir = self.container_dir(cid)
        # Never delete through a mounted root (that would write whiteouts into the upper dir).
        unmount(os.path.join(cdir, "rootfs"))
        _discard([cdir, self.container_run_dir(cid)])
        if volumes:
            for m in data.get("Mounts", []):
                if m["Type"] == "volume" and _is_anonymous(m["Name"]):
                    try:
                        self.engine.volumes.remove(m["Name"])
                    except DockyardError:
                        pass

    def prune(self) -> tuple[list[str], int]:
        removed, size = [], 0
        for r in self.db.query("SELECT id FROM containers"):
            data = self._refresh(str(r["id"]))
            if data["State"]["Running"]:
                continue
            from dockyard.engine.volumes import dir_size

            size += dir_size(os.path.join(self.container_dir(data["Id"]), "upper"))
            self.remove(data["Id"])
            removed.append(data["Id"])
        return removed, size

    def rename(self, text: str, new: str) -> None:
        import re

        cid = self.resolve(text)
        if not re.match(NAME_RE, new):
            raise InvalidArgument(
                f"Invalid container name ({new}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        with self.db.transaction() as c:
            data = json.loads(
                c.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()[0]
            )
            old = data["Name"]
            if old.lstrip("/") == new.lstrip("/"):
                raise InvalidArgument("Renaming a container with the same name as its current name")
            data["Name"] = "/" + new.lstrip("/")
            try:
                self._put(c, data)
            except sqlite3.IntegrityError:
                raise Conflict(
                    f"Error when allocating new name: Conflict. The container name "
                    f'"/{new.lstrip("/")}" is already in use'
                ) from None

    # ------------------------------------------------------------ listing

    def list_containers(self, *, all_containers: bool = False) -> list[dict[str, Any]]:
        out = []
        for r in self.db.query("SELECT id FROM containers ORDER BY created DESC"):
            try:
                data = self._refresh(str(r["id"]))
            except NotFound:
                continue
            if all_containers or data["State"]["Running"]:
                out.append(data)
        return out

    def inspect(self, text: str) -> dict[str, Any]:
        data = self.get(text)
        data = dict(data)
        data.pop("Dockyard", None)
        return data

    # ------------------------------------------------------------ logs

    def logs(
        self,
        text: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
    ) -> Iterator[tuple[str, str, str]]:
        """(stream, text, time) for each log line, following while the container runs."""
        cid = self.resolve(text)
        data = self._refresh(cid)
        path = data["LogPath"]
        with open(path, "rb") as f:
            lines = f.readlines()
            if tail is not None and tail >= 0:
                lines = lines[-tail:] if tail else []
            for ln in lines:
                rec = _parse_log_line(ln)
                if rec:
                    yield rec
            if not follow:
                return
            buf = b""
            while True:
                chunk = f.readline()
                if chunk:
                    buf += chunk
                    if buf.endswith(b"\n"):
                        rec = _parse_log_line(buf)
                        buf = b""
                        if rec:
                            yield rec
                    continue
                try:
                    running = self._refresh(cid)["State"]["Running"]
                except NotFound:
                    running = False
                if not running:
                    rest = f.read()
                    for ln in rest.splitlines(keepends=True):
                        rec = _parse_log_line(ln)
                        if rec:
                            yield rec
                    return
                time.sleep(0.05)

    # ------------------------------------------------------------ exec, top

    def exec_spec(
        self,
        text: str,
        cmd: Sequence[str],
        *,
        tty: bool = False,
        env: Sequence[str] = (),
        user: str = "",
        workdir: str = "",
        privileged: bool = False,
    ) -> tuple[str, str, dict[str, Any]]:
        """(container id, runtime name, OCI process) for ``docker exec``."""
        cid = self.resolve(text)
        data = self._refresh(cid)
        if not data["State"]["Running"]:
            raise Conflict(f"Container {cid} is not running")
        if not cmd:
            raise InvalidArgument("No exec command specified")
        with open(os.path.join(self.container_dir(cid), "config.json")) as f:
            spec = json.load(f)
        proc = dict(spec["process"])
        rootfs = os.path.join(self.container_dir(cid), "rootfs")
        if user:
            from dockyard.runtime.user import resolve_user

            u = resolve_user(rootfs, user)
            proc["user"] = {"uid": u.uid, "gid": u.gid}
            if u.additional_gids:
                proc["user"]["additionalGids"] = list(u.additional_gids)
        proc["args"] = list(cmd)
        proc["env"] = _merge_env(proc.get("env", []), list(env))
        proc["cwd"] = workdir or proc.get("cwd", "/")
        proc["terminal"] = tty
        proc.pop("consoleSize", None)
        if privileged:
            from dockyard.runtime.spec import capabilities_for

            opts = self._run_options(data)
            caps = capabilities_for(opts._replace(privileged=True))
            proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
        return cid, data["HostConfig"].get("Runtime", ""), proc

    def top(self, text: str, ps_args: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
        import subprocess

        cid = self.resolve(text)
        data = self._refresh(cid)
        if not data["State"]["Running"]:
            raise Conflict(f"Container {cid} is not running")
        pids = set(self.runtime(data["HostConfig"].get("Runtime", "")).ps(cid))
        out = subprocess.run(
            ["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        header = out[0].split()
        pid_col = header.index("PID")
        rows = []
        for line in out[1:]:
            parts = line.split(None, len(header) - 1)
            if len(parts) > pid_col and parts[pid_col].isdigit() and int(parts[pid_col]) in pids:
                rows.append(parts)
        return header, rows

    # ------------------------------------------------------------ filesystem

    def diff(self, text: str) -> list[tuple[str, str]]:
        from dockyard.runtime.fs import diff_upper

        cid = self.resolve(text)
        data = self._refresh(cid)
        upper, *lowers = self._layer_dirs(cid, self._image_snapshots(data))
        changes = diff_upper(upper, lowers)
        return [(ch.kind, ch.path) for ch in changes]

    def _layer_dirs(self, cid: str, snapshots: list[int]) -> list[str]:
        """The container's upper dir, then its image's snapshot dirs, top first (no init)."""
        return [os.path.join(self.container_dir(cid), "upper")] + [
            self.store.snapshots.path(s) for s in snapshots
        ]

    def rootfs_for_copy(self, text: str) -> tuple[str, str, bool]:
        """(container id, merged root path, whether we mounted it and must unmount)."""
        from dockyard.runtime.rootfs import is_mounted

        cid = self.resolve(text)
        data = self._refresh(cid)
        cdir = self.container_dir(cid)
        rootfs = os.path.join(cdir, "rootfs")
        if is_mounted(rootfs):
            return cid, rootfs, False
        self._mount_rootfs(cid, self._image_snapshots(data))
        return cid, rootfs, True

    def mount_sources(self, cid: str) -> list[tuple[str, str]]:
        """(container path, host source) of everything mounted into the container."""
        data = self._get(cid)
        out = [(f, os.path.join(self.container_dir(cid), os.path.basename(f))) for f in ETC_FILES]
        out += [(m["Destination"], m["Source"]) for m in data.get("Mounts", []) if m["Source"]]
        return out

    def commit(
        self,
        text: str,
        reference: str | None = None,
        *,
        changes: Sequence[str] = (),
        message: str = "",
        author: str = "",
    ) -> str:
        from dockyard.image.changes import apply_changes
        from dockyard.image.config import new_config
        from dockyard.image.layer import write_layer
        from dockyard.image.manifest import OCI_LAYER
        from dockyard.image.reference import parse_reference
        from dockyard.store.archives import adding
        from dockyard.store.images import LayerBlob

        cid = self.resolve(text)
        data = self._refresh(cid)
        images = self.store.images
        base = images.config(data["Image"])
        tag = parse_reference(reference) if reference else None
        ccfg = data["Config"]
        keep = (
            "User",
            "ExposedPorts",
            "Env",
            "Cmd",
            "Volumes",
            "WorkingDir",
            "Entrypoint",
            "OnBuild",
            "Labels",
            "StopSignal",
        )
        cfg = {k: ccfg.get(k) for k in keep if ccfg.get(k) not in (None, "", [], {})}
        cfg = apply_changes(cfg, list(changes))
        created = now_rfc3339()
        upper = os.path.join(self.container_dir(cid), "upper")
        with adding(self.store) as new_blobs, self.store.content.writer() as w:
            written = write_layer(upper, w, from_overlay_upper=True)
            digest = w.commit()
            new_blobs.append(digest)
            history = [
                *base.history,
                {
                    "created": created,
                    "created_by": " ".join([data["Path"], *data["Args"]]),
                    **({"comment": message} if message else {}),
                    **({"author": author} if author else {}),
                },
            ]
            extra = {"container": cid, "container_config": ccfg}
            if author:
                extra["author"] = author
            new = new_config(
                [*base.diff_ids, written.diff_id], cfg, history, created=created, extra=extra
            )
            blobs = [
                LayerBlob(
                    la.blob, images.blob_media_type(la.blob), self.store.content.size(la.blob)
                )
                for la in images.layers(data["Image"])
            ]
            return images.add(
                new,
                [*blobs, LayerBlob(digest, OCI_LAYER, w.size)],
                tags=[tag] if tag else [],
                parent=data["Image"],
            )


# ---------------------------------------------------------------- helpers


def _merge_env(base: Sequence[str], overrides: Sequence[str]) -> list[str]:
    env: dict[str, str] = {}
    for e in base:
        k, _, v = e.partition("=")
        env[k] = v
    for e in overrides:
        k, eq, v = e.partition("=")
        if not eq:
            if k in os.environ:
                env[k] = os.environ[k]
            continue
        env[k] = v
    return [f"{k}={v}" for k, v in env.items()]


def parse_volume_spec(spec: str) -> dict[str, Any]:
    """``-v [SRC:]DST[:OPTS]`` -> a Mounts entry (Source filled later for volumes)."""
    parts = spec.split(":")
    if len(parts) == 1:
        src, dst, mode = "", parts[0], ""
    elif len(parts) == 2 and parts[1] in ("ro", "rw"):
        src, dst, mode = "", parts[0], parts[1]
    elif len(parts) == 2:
        src, dst, mode = parts[0], parts[1], ""
    elif len(parts) == 3:
        src, dst, mode = parts
    else:
        raise InvalidArgument(f"invalid volume specification: '{spec}'")
    if not dst.startswith("/"):
        raise InvalidArgument(
            f"invalid volume specification: '{spec}': invalid mount config for type \"volume\": "
            f"invalid mount path: '{dst}' mount path must be absolute"
        )
    opts = [o for o in mode.split(",") if o]
    for o in opts:
        if o not in (
            "ro",
            "rw",
            "z",
            "Z",
            "private",
            "rprivate",
            "shared",
            "rshared",
            "slave",
            "rslave",
            "nocopy",
        ):
            raise InvalidArgument(f"invalid mode: {o}")
    rw = "ro" not in opts
    if src.startswith("/"):
        return {
            "Type": "bind",
            "Source": os.path.normpath(src),
            "Destination": dst,
            "Mode": mode,
            "RW": rw,
            "Propagation": "rprivate",
        }
    if src.startswith(".") or "/" in src:
        raise InvalidArgument(
            f'create {src}: "{src}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
            "use absolute path"
        )
    return {
        "Type": "volume",
        "Name": src,
        "Source": "",
        "Destination": dst,
        "Driver": "local",
        "Mode": mode,
        "RW": rw,
        "Propagation": "",
    }


def _split_tmpfs(spec: str) -> tuple[str, str]:
    dest, _, opts = spec.partition(":")
    if not dest.startswith("/"):
        raise InvalidArgument(f"invalid tmpfs mount path: {dest}")
    return dest, opts


def _parse_ulimit(spec: str) -> dict[str, Any]:
    name, eq, values = spec.partition("=")
    if not eq:
        raise InvalidArgument(f"invalid ulimit argument: {spec}")
    soft_s, _, hard_s = values.partition(":")
    try:
        soft = int(soft_s)
        hard = int(hard_s) if hard_s else soft
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {spec}") from None
    if soft > hard:
        raise InvalidArgument(
            f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return {"Name": name, "Soft": soft, "Hard": hard}


def _populate_volumes(rootfs: str, mounts: list[dict[str, Any]], layers: list[str]) -> None:
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

    for m in mounts:
        if m["Type"] != "volume" or not m.get("Source") or os.listdir(m["Source"]):
            continue
        src = resolve_in_root(rootfs, m["Destination"])
        if os.path.isdir(src) and os.listdir(src):
            subprocess.run(["cp", "-a", "--", f"{src}/.", m["Source"]], check=True)
        st = lookup_in_layers(layers, [p for p in m["Destination"].split("/") if p])
        if st is not None and stat.S_ISDIR(st.st_mode):
            os.chown(m["Source"], st.st_uid, st.st_gid)
            os.chmod(m["Source"], stat.S_IMODE(st.st_mode))


def _is_anonymous(name: str) -> bool:
    return len(name) == 64 and all(c in "0123456789abcdef" for c in name)


def _network_settings(mode: str) -> dict[str, Any]:
    from dockyard.engine.networks import blank_endpoint

    return {
        "Bridge": "",
        "SandboxID": "",
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "Ports": {},
        "SandboxKey": "",
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": {mode: blank_endpoint()} if not mode.startswith("container:") else {},
    }


def _bridged(mode: str) -> bool:
    return mode not in ("none", "host") and not mode.startswith("container:")


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


def _rmtree(path: str, ignore_errors: bool = True) -> None:
    import shutil  # not at import: shutil loads bz2/lzma/zlib and exec/ps never need it

    shutil.rmtree(path, ignore_errors=ignore_errors)


TRASH_PREFIX = ".rm-"


def _discard(paths: Sequence[str]) -> None:
    """Remove directories of a container whose row is gone: renamed out of the way at once
    (so the name is free and nothing finds them), deleted by a detached process, so that
    ``rm`` and ``run --rm`` do not wait for the file system (a just-unmounted overlay can
    keep its work dir busy for a moment). ``system check --repair`` removes what a killed
    remover left (``.rm-*``)."""
    import fcntl

    trash = []
    locks = []
    for path in paths:
        target = os.path.join(os.path.dirname(path), TRASH_PREFIX + os.path.basename(path))
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue
        except OSError:
            _remove_dir(path)  # cannot rename (e.g. busy mount point): the slow way
            continue
        trash.append(target)
        # Locked until the remover is done: ``system check`` skips a locked one.
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        locks.append(fd)
    if not trash:
        return
    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:  # pragma: no cover - the remover
        try:
            os.setsid()
            if os.fork() == 0:  # not our child: nobody waits for it, init reaps it
                # Hold none of the caller's files but the locks: its pipes (a waiting
                # reader would wait for us too), the store lock, the database.
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                for name in os.listdir("/proc/self/fd"):
                    if int(name) > 2 and int(name) not in locks:
                        try:
                            os.close(int(name))
                        except OSError:
                            pass
                for t in trash:
                    _remove_dir(t)
        finally:
            os._exit(0)
    try:
        if pid < 0:
            for t in trash:
                _remove_dir(t)
        else:
            os.waitpid(pid, 0)
    finally:
        for fd in locks:
            os.close(fd)


def trash_in_progress(path: str) -> bool:
    """Whether a remover still works on the ``.rm-`` dir ``path`` (it holds its lock)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return True  # gone meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _remove_dir(path: str) -> None:
    """rmtree that retries for a moment: the exit handling of the monitor and of the CLI can
    run at once, and a just-detached overlay can keep its work dir busy briefly."""
    for _ in range(40):
        if not os.path.lexists(path):
            return
        _rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return
        time.sleep(0.05)
    _rmtree(path, ignore_errors=False)


def _read_int(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _wait_until(cond: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        if cond():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _signal_name(sig: str | int) -> str:
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


def _parse_log_line(line: bytes) -> tuple[str, str, str] | None:
    try:
        rec = json.loads(line)
        return str(rec.get("stream", "stdout")), str(rec.get("log", "")), str(rec.get("time", ""))
    except (ValueError, AttributeError):
        return None


def match_filters(data: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    """Whether a container (its inspect data) passes ps' filters: status, name, id, exited,
    label, ancestor."""
    for key, values in filters.items():
        if key == "status" and data["State"]["Status"] not in values:
            return False
        if key == "name" and not any(v.lstrip("/") in data["Name"].lstrip("/") for v in values):
            return False
        if key == "id" and not any(data["Id"].startswith(v) for v in values):
            return False
        if key == "exited" and (
            data["State"]["Running"] or str(data["State"]["ExitCode"]) not in values
        ):
            return False
        if key == "label":
            labels = data["Config"].get("Labels") or {}
            for v in values:
                k, eq, val = v.partition("=")
                if k not in labels or (eq and labels[k] != val):
                    return False
        if key == "ancestor" and not any(
            data["Config"]["Image"] == v or data["Image"].startswith(v) for v in values
        ):
            return False
    return True
