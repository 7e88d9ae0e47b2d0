"""Counting what a store's containers can leave on the host, for the leak and churn tests.

Everything is counted from the host's point of view with plain reads (mountinfo, cgroupfs,
/proc, sysfs, iptables-save), independently of the code under test. Cgroups are counted under
the test's own cgroup parent (``DOCKYARD_CGROUP_PARENT``), so containers of other stores on
this shared machine never count.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CLI

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_hierarchies() -> list[Path]:
    """Mount points of the cgroup v1 hierarchies and of the v2 one (hybrid hosts have both)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                out.append(Path(fields[4]))
    return out


def cgroup_dirs(parent: str) -> list[Path]:
    """Every cgroup dir below ``/<parent>`` in every hierarchy (not the parent itself)."""
    found = []
    for h in cgroup_hierarchies():
        base = h / parent
        if base.is_dir():
            for dirpath, dirnames, _ in os.walk(base):
                found += [Path(dirpath) / d for d in dirnames]
    return found


def mounts_under(*roots: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    prefixes = tuple(str(r) + "/" for r in roots)
    return [p for p in points if p.startswith(prefixes) or p in map(str, roots)]


def processes_of(cli: CLI) -> list[int]:
    """Processes whose command line names the store or its run root: monitors, netd,
    sandbox helpers, removers (forks of the CLI), exit commands."""
    keys = (str(cli.root).encode(), str(cli.run_root).encode())
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if any(k in cmdline for k in keys):
            out.append(int(name))
    return out


def fds_of(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return total


def store_files(cli: CLI) -> int:
    """Files and dirs under the store and run root, but the database's own (the WAL and its
    index come and go with checkpoints)."""
    n = 0
    for base in (cli.root, cli.run_root):
        for _, dirnames, filenames in os.walk(base):
            n += len(dirnames) + sum(1 for f in filenames if not f.startswith("metadata.db"))
    return n


def bridge_of(cli: CLI) -> str:
    import sqlite3

    conn = sqlite3.connect(cli.root / "metadata.db")
    try:
        row = conn.execute("SELECT bridge FROM networks WHERE name = 'bridge'").fetchone()
    finally:
        conn.close()
    return str(row[0]) if row else ""


def iptables_rules_of(bridge: str) -> int:
    if not bridge:
        return 0
    n = 0
    for cmd in (["iptables-save", "-t", "nat"], ["iptables-save", "-t", "filter"]):
        out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
        n += sum(1 for line in out.splitlines() if line.startswith("-A") and bridge in line)
    return n


def links_of(bridge: str) -> int:
    """The bridge's ports (host ends of container veths)."""
    try:
        return len(os.listdir(f"/sys/class/net/{bridge}/brif"))
    except OSError:
        return 0


def census(cli: CLI, parent: str) -> dict[str, int]:
    """What the store's containers hold on the host right now."""
    runc_root = cli.run_root / "runc"
    pids = processes_of(cli)
    bridge = bridge_of(cli) if (cli.root / "metadata.db").exists() else ""
    return {
        "mounts": len(mounts_under(cli.root, cli.run_root)),
        "cgroup dirs": len(cgroup_dirs(parent)),
        "runc state dirs": len(os.listdir(runc_root)) if runc_root.is_dir() else 0,
        "links": links_of(bridge),
        "iptables rules": iptables_rules_of(bridge),
        "fds": fds_of(pids) + len(os.listdir("/proc/self/fd")),
        "processes": len(pids),
        "store files": store_files(cli),
    }


def settle(cli: CLI, timeout: float = 60) -> None:
    """Wait until the background removers are done with every ``.rm-`` dir (``rm`` does not
    wait for the file system) and no exit command or remover of the store still runs."""
    deadline = time.monotonic() + timeout
    dirs = [cli.root / "containers", cli.run_root / "containers"]
    while time.monotonic() < deadline:
        busy = any(n.startswith(".rm-") for d in dirs if d.is_dir() for n in os.listdir(d))
        transient = [p for p in processes_of(cli) if not _lasting(cli, p)]
        if not busy and not transient:
            return
        time.sleep(0.05)


def _lasting(cli: CLI, pid: int) -> bool:
    """netd, and the monitor of a container that still runs (no exit.json yet)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    if b"dockyard.network.netd" in argv:
        return True
    if any(a.endswith(b"monitor.py") for a in argv[:4]) and b"--run-dir" in argv:
        run_dir = Path(os.fsdecode(argv[argv.index(b"--run-dir") + 1]))
        return not (run_dir / "exit.json").exists()
    return False


def own_lines(cli: CLI, output: str) -> list[str]:
    """``system check``'s leftover lines about this store. The network check also reports
    the iptables rules of any store's bridge that is gone (a rule outlives its bridge for a
    moment while another test on this machine tears its network down): those are not ours."""
    bridge = bridge_of(cli) if (cli.root / "metadata.db").exists() else ""
    out = []
    for line in output.splitlines():
        if not line.startswith(("leftover: ", "removed: ")):
            continue
        if "iptables rule" in line and "of bridge " in line and (not bridge or bridge not in line):
            continue
        out.append(line)
    return out


def cgroup_ids(parent: str) -> set[str]:
    """Names of the cgroups right below ``/<parent>`` (container IDs), in any hierarchy."""
    ids: set[str] = set()
    for h in cgroup_hierarchies():
        base = h / parent
        if base.is_dir():
            ids.update(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False))
    return ids


def remove_cgroup_parent(parent: str) -> None:
    """Take the test's cgroup parent away (children first); a leaked child is killed."""
    import signal

    for h in cgroup_hierarchies():
        base = h / parent
        if not base.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(base), key=lambda t: -len(t[0])):
            for _ in range(50):
                try:
                    procs = (Path(dirpath) / "cgroup.procs").read_text().split()
                except OSError:
                    procs = []
                for p in procs:
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


@pytest.fixture
def cgroup_parent(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A cgroup parent of this test's own: containers started by the CLI (which inherits our
    environment) get their cgroups there, so they can be counted exactly."""
    parent = f"dyt-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("DOCKYARD_CGROUP_PARENT", parent)
    try:
        yield parent
    finally:
        remove_cgroup_parent(parent)
