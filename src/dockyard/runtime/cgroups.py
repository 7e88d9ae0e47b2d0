"""Container cgroups on the host: where runc makes them, and taking them away.

The OCI spec's ``linux.cgroupsPath`` is ``/<parent>/<container id>`` (parent ``dockyard``, or
``$DOCKYARD_CGROUP_PARENT``: tests give each store its own so they can count exactly). With
the cgroupfs driver runc makes that directory in every mounted hierarchy: one per v1
controller (cpu, memory, pids, ..., ``name=systemd``), the v2 one on a pure v2 host, and both
on a hybrid host (``/sys/fs/cgroup/unified``). A container that is not released leaves one
directory per hierarchy: ten on this project's machines.

Removing a cgroup is ``rmdir``; the kernel refuses (EBUSY) while a task is in it, zombies
included, so removal thaws a frozen cgroup, kills what is left and retries for a moment.
"""

from __future__ import annotations

import os
import time

from dockyard.store.mounts import unescape

TYPE_CHECKING = False  # not collections.abc: `run` loads this module
if TYPE_CHECKING:
    from collections.abc import Iterable

PARENT_ENV = "DOCKYARD_CGROUP_PARENT"
DEFAULT_PARENT = "dockyard"
REMOVE_SECONDS = 5.0  # how long a removal waits for the last tasks to be reaped


def parent() -> str:
    return os.environ.get(PARENT_ENV, "").strip("/") or DEFAULT_PARENT


def container_path(cid: str) -> str:
    """The spec's ``cgroupsPath`` for container ``cid``."""
    return f"/{parent()}/{cid}"


def hierarchies() -> list[tuple[str, str]]:
    """(mount point, root inside the hierarchy) of every mounted cgroup hierarchy, v1 and v2."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.readlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split()
        try:
            fstype = fields[fields.index("-") + 1]
        except (ValueError, IndexError):
            continue
        if fstype in ("cgroup", "cgroup2"):
            out.append((unescape(fields[4]), unescape(fields[3])))
    return out


def host_dirs(cgroups_path: str, *, existing: bool = True) -> list[str]:
    """Where ``cgroups_path`` is in each hierarchy (only the ones that exist, by default)."""
    out = []
    for mount, root in hierarchies():
        rel = cgroups_path
        if root != "/" and (rel == root or rel.startswith(root.rstrip("/") + "/")):
            rel = rel[len(root.rstrip("/")) :]  # we live in a cgroup namespace below it
        path = os.path.join(mount, rel.lstrip("/"))
        if not existing or os.path.isdir(path):
            out.append(path)
    return out


def children(parent_path: str | None = None) -> dict[str, list[str]]:
    """The directories right below ``parent_path`` (default ``/<parent>``) in every hierarchy,
    by name: ``{container id: [its dir in each hierarchy]}``."""
    found: dict[str, list[str]] = {}
    for base in host_dirs(parent_path or f"/{parent()}"):
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                found.setdefault(e.name, []).append(e.path)
    return found


def tasks(path: str) -> list[int]:
    """Processes in the cgroup ``path`` and below it."""
    pids: list[int] = []
    for dirpath, _, filenames in os.walk(path):
        if "cgroup.procs" not in filenames:
            continue
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                pids += [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            pass
    return pids


def age(path: str) -> float:
    """Seconds since the cgroup dir was made (cgroupfs stamps a dir when it is created)."""
    try:
        return time.time() - os.stat(path).st_ctime
    except OSError:
        return 0.0


def _thaw(path: str) -> None:
    """A frozen task cannot die: un-freeze a paused container's cgroup (v1, then v2)."""
    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        target = os.path.join(path, name)
        if os.path.exists(target):
            try:
                with open(target, "w") as f:
                    f.write(value)
            except OSError:
                pass


def _kill_tasks(path: str) -> None:
    import signal

    for dirpath, _, _ in os.walk(path):
        _thaw(dirpath)
    for pid in tasks(path):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _rmdir_tree(path: str) -> bool:
    """rmdir ``path`` and the cgroups below it, deepest first; True when it is gone."""
    for dirpath, dirnames, _ in os.walk(path, topdown=False):
        for d in dirnames:
            try:
                os.rmdir(os.path.join(dirpath, d))
            except FileNotFoundError:
                pass
            except OSError:
                return False
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def remove(
    paths: Iterable[str], *, kill: bool = True, timeout: float = REMOVE_SECONDS
) -> list[str]:
    """Remove the cgroup dirs ``paths`` (and any below them). With ``kill``, processes still
    in them are killed (they belong to a container being released); the kernel keeps a cgroup
    busy until its last task is reaped, so busy ones are retried with a short backoff for up
    to ``timeout`` seconds. Returns the dirs that are still there."""
    left = [p for p in paths if not _rmdir_tree(p)]
    deadline = time.monotonic() + timeout
    delay = 0.005
    while left and time.monotonic() < deadline:
        if kill:
            for p in left:
                _kill_tasks(p)
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        left = [p for p in left if not _rmdir_tree(p)]
    return left
