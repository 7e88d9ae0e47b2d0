"""What containers and build steps can leave on the host when a process is killed, found for
``system check`` and removed by ``--repair``.

Kinds, in the order they are repaired (processes first, then what they held):

* monitor processes of this run root with no running container behind them;
* the runtime's state of containers that are not running (a container whose monitor died
  keeps running until it is released) and of build steps whose builder is gone;
* cgroups of containers that are not running: under this store's parent, those of IDs the
  store knows, and empty ones of IDs it does not know once they are older than a grace
  period (what earlier versions leaked; runc never keeps an empty cgroup for long);
* mounts under the store: the root of a container that is not running, anything in a
  removed container's dir, the root of a build step or an unpacking whose process is gone;
* run dirs and container dirs of containers with no record (a killed ``create``);
* files of a network helper that is gone, and helpers that no longer serve the run root.

What a process is busy with is never a leftover: IDs with a live monitor, build steps
whose builder still runs, temp dirs whose writer still runs, anything younger than
``GRACE_SECONDS`` where only age tells.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from dockyard.runtime import cgroups
from dockyard.runtime.cleanup import (
    BUILD_PREFIX,
    RUNTIMES,
    builder_alive,
    release_container,
)
from dockyard.store import mounts

GRACE_SECONDS = 30.0
TRASH_PREFIX = ".rm-"
MONITOR_SCRIPT = "monitor.py"


class Recorded(NamedTuple):
    """What the store records about a container."""

    running: bool
    monitor_pid: int


@dataclass(slots=True)
class Leftover:
    what: str
    repair: Callable[[], list[str]]  # returns what it could not remove


@dataclass(slots=True)
class Process:
    pid: int
    argv: list[str]
    age: float  # seconds since it started
    session: int


@dataclass(slots=True)
class Scan:
    root: str
    run_root: str
    recorded: dict[str, Recorded]
    release: Callable[[str], list[str]]  # release a container of the store by ID
    out: list[Leftover] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)  # IDs whose leftovers are reported already

    def add(self, what: str, repair: Callable[[], list[str]]) -> None:
        self.out.append(Leftover(what, repair))


def find(
    *,
    root: str,
    run_root: str,
    recorded: dict[str, Recorded],
    release: Callable[[str], list[str]],
    more: Sequence[Callable[[Scan, list[Process]], None]] = (),
) -> list[Leftover]:
    """The leftovers of the store at ``root`` with run root ``run_root``. ``recorded``: every
    container of the store (a row recorded as running counts as busy: a lost monitor is the
    engine's to reconcile); ``release(id)``: the engine's release of one of its containers;
    ``more``: other packages' scans over the same processes (the network helper's)."""
    scan = Scan(os.path.abspath(root), os.path.abspath(run_root), recorded, release)
    procs = processes()
    monitors = _monitors(procs, scan.run_root)
    busy = {cid for cid, r in recorded.items() if r.running} | set(monitors)
    _stray_monitors(scan, monitors)
    busy -= scan.claimed
    _runtime_states(scan, busy)
    _cgroups(scan, busy)
    _mounts(scan, busy)
    _dirs(scan, busy)
    for scan_more in more:
        scan_more(scan, procs)
    return scan.out


# --------------------------------------------------------------------------- processes


def processes() -> list[Process]:
    """Every process we can see, with its argv, age and session."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError):
        uptime = 0.0
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                raw = f.read()
            with open(f"/proc/{name}/stat") as f:
                stat = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if not raw or len(stat) < 20 or stat[0] in ("Z", "X"):
            continue
        argv = [a.decode(errors="surrogateescape") for a in raw.rstrip(b"\0").split(b"\0")]
        age = uptime - int(stat[19]) / ticks
        out.append(Process(int(name), argv, age, int(stat[3])))
    return out


def _option(argv: list[str], flag: str) -> str:
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            return argv[i + 1]
    return ""


def _monitors(procs: list[Process], run_root: str) -> dict[str, list[Process]]:
    """Monitor processes of this run root, by container ID (from their ``--run-dir``)."""
    base = os.path.join(run_root, "containers")
    found: dict[str, list[Process]] = {}
    for p in procs:
        if not any(a.endswith(MONITOR_SCRIPT) for a in p.argv[:4]):
            continue
        run_dir = _option(p.argv, "--run-dir")
        if os.path.dirname(run_dir) == base:
            found.setdefault(os.path.basename(run_dir), []).append(p)
    return found


def _stray_monitors(scan: Scan, monitors: dict[str, list[Process]]) -> None:
    for cid, procs in sorted(monitors.items()):
        rec = scan.recorded.get(cid)
        for p in procs:
            if rec is not None and rec.running and rec.monitor_pid == p.pid:
                continue
            if p.age < GRACE_SECONDS:
                continue  # starting or finishing a container: not ours to judge yet
            state = "which no longer exists" if rec is None else "which is not running"
            scan.add(
                f"monitor process {p.pid} of container {cid[:12]}, {state}",
                partial(_kill_monitor, scan, p.pid, cid),
            )
            scan.claimed.add(cid)


def _release_if_idle(scan: Scan, cid: str) -> list[str]:
    """Release container ``cid``, unless a monitor took it up since the scan (a ``start``
    running beside the check)."""
    if _monitors(processes(), scan.run_root).get(cid):
        return []
    return scan.release(cid)


def _kill_monitor(scan: Scan, pid: int, cid: str) -> list[str]:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    rec = scan.recorded.get(cid)
    if rec is not None and rec.running:
        return []  # a second monitor of a running container: the container is not ours
    return scan.release(cid)


# --------------------------------------------------------------------------- runtime state


def _runtime_states(scan: Scan, busy: set[str]) -> None:
    for name in RUNTIMES:
        state_root = os.path.join(scan.run_root, name)
        try:
            ids = sorted(os.listdir(state_root))
        except OSError:
            continue
        for cid in ids:
            if cid in busy or cid in scan.claimed:
                continue
            if cid.startswith(BUILD_PREFIX):
                if builder_alive(cid):
                    continue
                scan.add(
                    f"container {cid} of a build step whose build is gone",
                    partial(release_container, cid, runtime=name, state_root=state_root),
                )
            else:
                state = "which no longer exists" if cid not in scan.recorded else "not running"
                scan.add(
                    f"runtime state of container {cid[:12]}, {state}",
                    partial(_release_if_idle, scan, cid),
                )
            scan.claimed.add(cid)


# --------------------------------------------------------------------------- cgroups


def _known_ids(scan: Scan) -> set[str]:
    known = set(scan.recorded)
    for base in (os.path.join(scan.run_root, "containers"), os.path.join(scan.root, "containers")):
        try:
            known.update(n.removeprefix(TRASH_PREFIX) for n in os.listdir(base))
        except OSError:
            pass
    try:
        tmp = os.listdir(os.path.join(scan.root, "snapshots", "tmp"))
    except OSError:
        tmp = []
    known.update(BUILD_PREFIX + n for n in tmp)
    return known


def _cgroups(scan: Scan, busy: set[str]) -> None:
    known = _known_ids(scan)
    for cid, dirs in sorted(cgroups.children().items()):
        if cid in busy or cid in scan.claimed:
            continue
        if cid.startswith(BUILD_PREFIX) and builder_alive(cid):
            continue
        if cid not in known:
            # Not recorded by this store: only what is certainly dead is taken, an empty
            # cgroup that has been there for a while (runc fills its cgroups as it makes
            # them, and removes them with the container).
            if any(cgroups.tasks(d) for d in dirs) or min(map(cgroups.age, dirs)) < GRACE_SECONDS:
                continue
            whose = "of a container that no longer exists"
        elif cid.startswith(BUILD_PREFIX):
            whose = "of a build step whose build is gone"
        elif cid in scan.recorded:
            whose = "of a container that is not running"
        else:
            whose = "of a removed container"
        scan.add(
            f"cgroups {whose}: {cid[:32]} ({len(dirs)} dirs)",
            partial(_remove_cgroups, scan, cid, dirs),
        )


def _remove_cgroups(scan: Scan, cid: str, dirs: list[str]) -> list[str]:
    if _monitors(processes(), scan.run_root).get(cid):
        return []  # started since the scan
    return [f"cgroup {d}" for d in cgroups.remove(dirs)]


# --------------------------------------------------------------------------- mounts


def _mounts(scan: Scan, busy: set[str]) -> None:
    containers = os.path.join(scan.root, "containers")
    tmp = os.path.join(scan.root, "snapshots", "tmp")
    seen: set[str] = set()
    for point in mounts.mount_points(scan.root):
        for base, kind in ((containers, "container"), (tmp, "tmp")):
            if not point.startswith(base + "/"):
                continue
            name = point[len(base) + 1 :].split("/", 1)[0]
            top = os.path.join(base, name)
            if top in seen:
                break
            seen.add(top)
            what = _mount_leftover(kind, name, busy, top)
            if what:
                scan.add(what, partial(_detach_all, top))
            break


def _mount_leftover(kind: str, name: str, busy: set[str], top: str) -> str:
    from dockyard.runtime.cp import copy_in_progress
    from dockyard.store.content import writer_alive

    if kind == "tmp":
        if writer_alive(name):
            return ""  # a build step or an unpacking at work
        return f"mount in unfinished snapshot {name} (a build step's root)"
    if name.startswith(TRASH_PREFIX):
        return f"mount in removed container dir {name}"
    if name in busy or copy_in_progress(top):
        return ""
    return f"mounted root of container {name[:12]}, which is not running"


def _detach_all(path: str) -> list[str]:
    try:
        mounts.detach_all(path)
    except OSError as e:
        return [f"mount under {path}: {e.strerror}"]
    return []


# --------------------------------------------------------------------------- dirs


def _dirs(scan: Scan, busy: set[str]) -> None:
    import shutil

    for base, kind in (
        (os.path.join(scan.run_root, "containers"), "runtime dir"),
        (os.path.join(scan.root, "containers"), "dir"),
    ):
        try:
            names = sorted(os.listdir(base))
        except OSError:
            continue
        for name in names:
            path = os.path.join(base, name)
            if name.startswith(TRASH_PREFIX) or name in scan.recorded or name in busy:
                continue
            if name in scan.claimed or not os.path.isdir(path):
                continue
            try:
                age = os.stat(path).st_mtime
            except OSError:
                continue
            if time.time() - age < GRACE_SECONDS:
                continue  # a container being created: its row comes next
            scan.add(
                f"container {kind} {name[:12]} with no container",
                partial(_remove_tree, path, shutil.rmtree),
            )


def _remove_tree(path: str, rmtree: Callable[..., None]) -> list[str]:
    held = _detach_all(path)  # never delete through a mount
    if not held:
        rmtree(path, ignore_errors=True)
    return held + ([f"dir {path}"] if os.path.lexists(path) else [])


def remove_files(paths: list[str]) -> list[str]:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return []


def terminate(pid: int) -> list[str]:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    return []
