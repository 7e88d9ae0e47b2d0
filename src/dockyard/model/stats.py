"""One reading of a running container's resource counters (``docker stats``): what the
runtime reads from the container's cgroups (v1 or v2) and its network namespace, before
model/docker/stats.py shapes it as Docker's stats JSON."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from dockyard.model.values import dataclass

__all__ = ["BlkioEntry", "NetCounters", "StatsSample"]

# (major, minor, op, value): a line of blkio's recursive files, or of io.stat spelt as one
BlkioEntry = tuple[int, int, str, int]


@dataclass(frozen=True, slots=True)
class NetCounters:
    """One interface's counters, as seen from inside the container."""

    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


@dataclass(frozen=True, slots=True)
class StatsSample:
    """Counters at ``read_ns`` (ns since the epoch). CPU times in ns; ``system_cpu`` is the
    host's (``/proc/stat``), as Docker reports it; memory in bytes; ``memory_limit`` is at
    most the host's memory (Docker's rule)."""

    read_ns: int
    cgroup_v2: bool = False
    cpu_total: int = 0
    cpu_percpu: tuple[int, ...] = ()  # v1 only
    cpu_user: int = 0
    cpu_system: int = 0
    system_cpu: int = 0
    online_cpus: int = 0
    throttle_periods: int = 0
    throttled_periods: int = 0
    throttled_time: int = 0
    memory_usage: int = 0
    memory_max_usage: int = 0  # v1 only
    memory_failcnt: int = 0
    memory_limit: int = 0
    memory_stats: tuple[tuple[str, int], ...] = ()
    pids_current: int = 0
    pids_limit: int = 0  # 0: none
    blkio_bytes: tuple[BlkioEntry, ...] = ()
    blkio_ios: tuple[BlkioEntry, ...] = ()
    networks: tuple[tuple[str, NetCounters], ...] | None = None  # None: the host's network
