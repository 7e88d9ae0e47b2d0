"""A running container's resource counters, read where the kernel keeps them: its cgroups
(v1 controllers, or the v2 unified directory, as the host has them; the paths runc chose
are in its state.json) and its network namespace (``/proc/<init pid>/net/dev``).

Docker reads the same files through containerd's cgroups package; the numbers are the
kernel's, the units Docker's (ns of CPU, bytes of memory).
"""

from __future__ import annotations

import json
import os
import time

from dockyard.model.stats import BlkioEntry, NetCounters, StatsSample

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["cgroup_paths", "read_sample"]

USER_HZ = os.sysconf("SC_CLK_TCK")
NS = 1_000_000_000

# The memory.stat keys Docker 20.10 reports on a v1 host (containerd's v1 metrics).
V1_MEMORY_KEYS = (
    "active_anon",
    "active_file",
    "cache",
    "dirty",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "inactive_anon",
    "inactive_file",
    "mapped_file",
    "pgfault",
    "pgmajfault",
    "pgpgin",
    "pgpgout",
    "rss",
    "rss_huge",
    "total_active_anon",
    "total_active_file",
    "total_cache",
    "total_dirty",
    "total_inactive_anon",
    "total_inactive_file",
    "total_mapped_file",
    "total_pgfault",
    "total_pgmajfault",
    "total_pgpgin",
    "total_pgpgout",
    "total_rss",
    "total_rss_huge",
    "total_unevictable",
    "total_writeback",
    "unevictable",
    "writeback",
)


def cgroup_paths(state_root: str, cid: str) -> dict[str, str]:
    """Controller -> the container's cgroup dir, as runc recorded them ("" is v2's unified
    hierarchy); {} when runc has no state for it (the container is not running)."""
    try:
        with open(os.path.join(state_root, cid, "state.json")) as f:
            paths = json.load(f).get("cgroup_paths") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in paths.items() if isinstance(v, str)}


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _int(path: str) -> int:
    text = _read(path).strip()
    return int(text) if text.isdigit() else 0


def _pairs(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        if value.lstrip("-").isdigit():
            out[key] = int(value)
    return out


def host_memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def system_cpu() -> int:
    """The host's CPU time in ns, as Docker counts it: user..softirq of /proc/stat's cpu
    line (no steal, no guest), in clock ticks."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu "):
            ticks = sum(int(x) for x in line.split()[1:8])
            return ticks * NS // USER_HZ
    return 0


def net_counters(pid: int) -> tuple[tuple[str, NetCounters], ...]:
    """The container's interfaces but lo (``/proc/<pid>/net/dev`` is its namespace's)."""
    out = []
    for line in _read(f"/proc/{pid}/net/dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        name = name.strip()
        f = rest.split()
        if name == "lo" or len(f) < 12:
            continue
        n = [int(x) for x in f]
        out.append((name, NetCounters(n[0], n[1], n[2], n[3], n[8], n[9], n[10], n[11])))
    return tuple(sorted(out))


def _blkio_v1(path: str) -> tuple[BlkioEntry, ...]:
    """``8:0 Read 4096`` lines (the per-device Total too, as libcontainer keeps it; the
    last, device-less ``Total`` line not)."""
    out = []
    for line in _read(path).splitlines():
        f = line.split()
        if len(f) == 3 and ":" in f[0]:
            major, _, minor = f[0].partition(":")
            out.append((int(major), int(minor), f[1], int(f[2])))
    return tuple(out)


def _io_v2(text: str) -> tuple[tuple[BlkioEntry, ...], tuple[BlkioEntry, ...]]:
    """io.stat (``8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...``) as Docker shows it: bytes and
    operations, "read" and "write" per device."""
    nbytes, ios = [], []
    for line in text.splitlines():
        dev, *fields = line.split()
        major, _, minor = dev.partition(":")
        kv = dict(f.split("=", 1) for f in fields if "=" in f)
        m, n = int(major), int(minor)
        nbytes += [
            (m, n, "read", int(kv.get("rbytes", 0))),
            (m, n, "write", int(kv.get("wbytes", 0))),
        ]
        ios += [(m, n, "read", int(kv.get("rios", 0))), (m, n, "write", int(kv.get("wios", 0)))]
    return tuple(nbytes), tuple(ios)


def read_sample(
    paths: Mapping[str, str], pid: int, *, host_network: bool = False, host_mem: int = 0
) -> StatsSample:
    """The counters of the container whose cgroups are ``paths`` (see :func:`cgroup_paths`)
    and whose init is ``pid``: v1 controllers when the host has them, else v2."""
    read_ns = time.time_ns()
    networks = None if host_network else net_counters(pid)
    host_mem = host_mem or host_memory()
    cpus = len(os.sched_getaffinity(0))
    if "memory" in paths or "cpuacct" in paths:
        return _v1(paths, read_ns, networks, host_mem, cpus)
    return _v2(paths.get("", ""), read_ns, networks, host_mem, cpus)


def _v1(
    paths: Mapping[str, str],
    read_ns: int,
    networks: tuple[tuple[str, NetCounters], ...] | None,
    host_mem: int,
    cpus: int,
) -> StatsSample:
    acct = paths.get("cpuacct", "")
    cpu = paths.get("cpu", "")
    mem = paths.get("memory", "")
    pids = paths.get("pids", "")
    blkio = paths.get("blkio", "")
    stat = _pairs(_read(os.path.join(acct, "cpuacct.stat")))
    throttle = _pairs(_read(os.path.join(cpu, "cpu.stat")))
    percpu = tuple(int(x) for x in _read(os.path.join(acct, "cpuacct.usage_percpu")).split())
    mstat = _pairs(_read(os.path.join(mem, "memory.stat")))
    limit = _int(os.path.join(mem, "memory.limit_in_bytes"))
    pids_max = _read(os.path.join(pids, "pids.max")).strip()
    io_bytes = _blkio_v1(os.path.join(blkio, "blkio.io_service_bytes_recursive"))
    io_ops = _blkio_v1(os.path.join(blkio, "blkio.io_serviced_recursive"))
    if not io_bytes and not io_ops:  # no CFQ: the throttle files count every device
        io_bytes = _blkio_v1(os.path.join(blkio, "blkio.throttle.io_service_bytes_recursive"))
        io_ops = _blkio_v1(os.path.join(blkio, "blkio.throttle.io_serviced_recursive"))
    return StatsSample(
        read_ns=read_ns,
        cpu_total=_int(os.path.join(acct, "cpuacct.usage")),
        cpu_percpu=percpu,
        cpu_user=stat.get("user", 0) * NS // USER_HZ,
        cpu_system=stat.get("system", 0) * NS // USER_HZ,
        system_cpu=system_cpu(),
        online_cpus=cpus,
        throttle_periods=throttle.get("nr_periods", 0),
        throttled_periods=throttle.get("nr_throttled", 0),
        throttled_time=throttle.get("throttled_time", 0),
        memory_usage=_int(os.path.join(mem, "memory.usage_in_bytes")),
        memory_max_usage=_int(os.path.join(mem, "memory.max_usage_in_bytes")),
        memory_failcnt=_int(os.path.join(mem, "memory.failcnt")),
        memory_limit=min(limit, host_mem) if host_mem else limit,
        memory_stats=tuple((k, mstat[k]) for k in V1_MEMORY_KEYS if k in mstat),
        pids_current=_int(os.path.join(pids, "pids.current")),
        pids_limit=int(pids_max) if pids_max.isdigit() else 0,
        blkio_bytes=io_bytes,
        blkio_ios=io_ops,
        networks=networks,
    )


def _v2(
    path: str,
    read_ns: int,
    networks: tuple[tuple[str, NetCounters], ...] | None,
    host_mem: int,
    cpus: int,
) -> StatsSample:
    cpu = _pairs(_read(os.path.join(path, "cpu.stat")))
    mstat = _pairs(_read(os.path.join(path, "memory.stat")))
    limit_text = _read(os.path.join(path, "memory.max")).strip()
    limit = int(limit_text) if limit_text.isdigit() else host_mem
    pids_max = _read(os.path.join(path, "pids.max")).strip()
    io_bytes, io_ops = _io_v2(_read(os.path.join(path, "io.stat")))
    events = _pairs(_read(os.path.join(path, "memory.events")))
    return StatsSample(
        read_ns=read_ns,
        cgroup_v2=True,
        cpu_total=cpu.get("usage_usec", 0) * 1000,
        cpu_user=cpu.get("user_usec", 0) * 1000,
        cpu_system=cpu.get("system_usec", 0) * 1000,
        system_cpu=system_cpu(),
        online_cpus=cpus,
        throttle_periods=cpu.get("nr_periods", 0),
        throttled_periods=cpu.get("nr_throttled", 0),
        throttled_time=cpu.get("throttled_usec", 0) * 1000,
        memory_usage=_int(os.path.join(path, "memory.current")),
        memory_failcnt=events.get("max", 0),
        memory_limit=min(limit, host_mem) if host_mem else limit,
        memory_stats=tuple(sorted(mstat.items())),
        pids_current=_int(os.path.join(path, "pids.current")),
        pids_limit=int(pids_max) if pids_max.isdigit() else 0,
        blkio_bytes=io_bytes,
        blkio_ios=io_ops,
        networks=networks,
    )
