"""Releasing what a container holds outside the store: its processes, its cgroups, the OCI
runtime's state and its root mount.

Every path that ends a container ends here (the monitor's exit command, an attached ``run``'s
exit, ``rm``, a failed start, the reconciliation of a container whose monitor died, a build
step), and ``system check --repair`` uses it for what a killed process left.

Order matters. The runtime's state dir (``<run-root>/runc/<id>``) is the record that a
container was made, so it goes last: first the processes (``runc kill``, then whatever is
still in the cgroups), then the cgroups (retried while the kernel still holds the last
tasks), and only when they are gone ``runc delete``. ``runc delete`` removes its state dir
even when it failed to remove the cgroups; doing the cgroups first means a release cut short
(SIGKILL, a task that will not die) always leaves the state dir for ``system check`` to find.
"""

from __future__ import annotations

import os

from dockyard.runtime import cgroups

RUNTIMES = ("runc", "crun")  # the runtimes whose state roots live under the run root
BUILD_PREFIX = "build-"  # build steps' containers: ``build-<builder pid>-<random>``

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def read_state(state_root: str, cid: str) -> dict[str, Any] | None:
    """The runtime's ``state.json`` for ``cid`` (runc's format), or None."""
    from dockyard import fastjson as json

    try:
        with open(os.path.join(state_root, cid, "state.json"), "rb") as f:
            doc = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def process_start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat (tells a process from a later one with the same pid); ""
    when it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return ""
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


def _init_alive(state: dict[str, Any]) -> bool:
    pid = int(state.get("init_process_pid") or 0)
    start = str(state.get("init_process_start") or "")
    return pid > 0 and process_start_time(pid) == start != ""


def _runtime_call(runtime: str, state_root: str, *args: str) -> int:
    """Run the OCI runtime, quietly; its exit code (127 when it is not installed)."""
    import subprocess

    from dockyard.runtime.paths import which

    binary = which(runtime)
    if binary is None:
        return 127
    try:
        return subprocess.run(
            [binary, "--root", state_root, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return 1


def release_container(
    cid: str, *, runtime: str, state_root: str, rootfs: str = "", cgroups_path: str = ""
) -> list[str]:
    """Release container ``cid`` of the runtime ``runtime`` (a name or path) with state dir
    ``state_root``: kill what still runs, remove its cgroups, delete the runtime's state,
    unmount ``rootfs``. Idempotent; safe to run from several processes at once. Returns what
    is still held (empty when everything went)."""
    state_dir = os.path.join(state_root, cid)
    state = read_state(state_root, cid)
    dirs = set(cgroups.host_dirs(cgroups_path or cgroups.container_path(cid)))
    if state is not None:
        paths = state.get("cgroup_paths") or {}
        dirs.update(p for p in paths.values() if isinstance(p, str) and os.path.isdir(p))
        if _init_alive(state):
            # The monitor died and left it running (or it is being removed): runc kills
            # every process, a paused container included.
            _runtime_call(runtime, state_root, "kill", "--all", cid, "KILL")
    held = [f"cgroup {p}" for p in cgroups.remove(sorted(dirs))]
    if os.path.lexists(state_dir):
        if held:
            held.append(f"runtime state {state_dir}")  # kept: the record of what is left
        else:
            _runtime_call(runtime, state_root, "delete", "--force", cid)
            if os.path.lexists(state_dir):
                # The runtime could not (a broken state.json): processes and cgroups are
                # gone, so its state dir is only a file tree now.
                import shutil

                shutil.rmtree(state_dir, ignore_errors=True)
            if os.path.lexists(state_dir):
                held.append(f"runtime state {state_dir}")
    if rootfs:
        from dockyard.store.mounts import detach_stack

        # and --ipc shareable's /dev/shm, beside it in the container's dir
        for target in (rootfs, os.path.join(os.path.dirname(rootfs), "shm")):
            try:
                detach_stack(target)
            except OSError as e:
                held.append(f"mount {target}: {e.strerror}")
    return held


def release_unknown(run_root: str, cid: str) -> list[str]:
    """Release ``cid`` when its record is gone and its runtime unknown: whichever runtime's
    state root under ``run_root`` has it (the default runtime's cgroups otherwise)."""
    names = [n for n in RUNTIMES if os.path.lexists(os.path.join(run_root, n, cid))]
    held: list[str] = []
    for name in names or [RUNTIMES[0]]:
        held += release_container(cid, runtime=name, state_root=os.path.join(run_root, name))
    return held


def build_container_id(work_dir: str) -> str:
    """The runtime's ID for the build step working in ``work_dir`` (``<pid>-<random>``): the
    builder's pid is in it, so a leftover of a killed build is known by its name alone."""
    return BUILD_PREFIX + os.path.basename(work_dir)


def builder_alive(cid: str) -> bool:
    """Whether the builder that made build container ``cid`` still runs."""
    head = cid[len(BUILD_PREFIX) :].split("-", 1)[0]
    if not cid.startswith(BUILD_PREFIX) or not head.isdigit():
        return False
    try:
        os.kill(int(head), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
