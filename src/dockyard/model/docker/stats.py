"""Docker's stats JSON (``GET /containers/{id}/stats``, api/types.StatsJSON) from the
model's samples, and what Docker's CLI computes from it for ``docker stats``' columns."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.model.stats import BlkioEntry, StatsSample

__all__ = ["StatsFigures", "stats_figures", "stats_shape"]

ZERO = "0001-01-01T00:00:00Z"
_BLKIO_KEYS = (
    "io_service_bytes_recursive",
    "io_serviced_recursive",
    "io_queue_recursive",
    "io_service_time_recursive",
    "io_wait_time_recursive",
    "io_merged_recursive",
    "io_time_recursive",
    "sectors_recursive",
)


def go_time(ns: int) -> str:
    """A time as Go marshals it: RFC 3339, UTC, trailing fraction zeros dropped."""
    import time

    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


def _cpu(s: StatsSample | None) -> dict[str, Any]:
    """cpu_stats / precpu_stats; a missing sample is the zero struct (omitempty fields out)."""
    if s is None:
        return {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }
    usage: dict[str, Any] = {"total_usage": s.cpu_total}
    if s.cpu_percpu:
        usage["percpu_usage"] = list(s.cpu_percpu)
    usage["usage_in_kernelmode"] = s.cpu_system
    usage["usage_in_usermode"] = s.cpu_user
    out: dict[str, Any] = {"cpu_usage": usage}
    if s.system_cpu:
        out["system_cpu_usage"] = s.system_cpu
    if s.online_cpus:
        out["online_cpus"] = s.online_cpus
    out["throttling_data"] = {
        "periods": s.throttle_periods,
        "throttled_periods": s.throttled_periods,
        "throttled_time": s.throttled_time,
    }
    return out


def _blkio(entries: tuple[BlkioEntry, ...]) -> list[dict[str, Any]]:
    return [{"major": a, "minor": b, "op": op, "value": v} for a, b, op, v in entries]


def stats_shape(
    name: str, cid: str, cur: StatsSample | None, pre: StatsSample | None
) -> dict[str, Any]:
    """One frame of Docker's stats: ``cur`` now, ``pre`` the frame before (None: the first
    frame, or ``one-shot``); ``cur`` None for a container that is not running (Docker's
    zero frame)."""
    doc: dict[str, Any] = {
        "read": go_time(cur.read_ns) if cur else ZERO,
        "preread": go_time(pre.read_ns) if pre else ZERO,
    }
    if cur is None:
        doc["pids_stats"] = {}
        doc["blkio_stats"] = dict.fromkeys(_BLKIO_KEYS)
        doc.update(num_procs=0, storage_stats={}, cpu_stats=_cpu(None), precpu_stats=_cpu(None))
        doc.update(memory_stats={}, name="/" + name, id=cid)
        return doc
    pids: dict[str, Any] = {"current": cur.pids_current}
    if cur.pids_limit:
        pids["limit"] = cur.pids_limit
    doc["pids_stats"] = pids
    blkio: dict[str, Any] = {k: [] for k in _BLKIO_KEYS}
    blkio["io_service_bytes_recursive"] = _blkio(cur.blkio_bytes)
    blkio["io_serviced_recursive"] = _blkio(cur.blkio_ios)
    doc["blkio_stats"] = blkio
    doc["num_procs"] = 0
    doc["storage_stats"] = {}
    doc["cpu_stats"] = _cpu(cur)
    doc["precpu_stats"] = _cpu(pre)
    memory: dict[str, Any] = {"usage": cur.memory_usage}
    if cur.memory_max_usage:
        memory["max_usage"] = cur.memory_max_usage
    memory["stats"] = dict(cur.memory_stats)
    if cur.memory_failcnt:
        memory["failcnt"] = cur.memory_failcnt
    memory["limit"] = cur.memory_limit
    doc["memory_stats"] = memory
    doc["name"] = "/" + name
    doc["id"] = cid
    if cur.networks is not None:
        doc["networks"] = {
            ifname: {
                "rx_bytes": n.rx_bytes,
                "rx_packets": n.rx_packets,
                "rx_errors": n.rx_errors,
                "rx_dropped": n.rx_dropped,
                "tx_bytes": n.tx_bytes,
                "tx_packets": n.tx_packets,
                "tx_errors": n.tx_errors,
                "tx_dropped": n.tx_dropped,
            }
            for ifname, n in cur.networks
        }
    return doc


class StatsFigures:
    """What ``docker stats`` shows of one frame (docker/cli's stats_helpers.go)."""

    __slots__ = ("cpu", "mem", "mem_limit", "mem_percent", "net", "block", "pids")

    def __init__(self) -> None:
        self.cpu = self.mem = self.mem_limit = self.mem_percent = 0.0
        self.net = (0.0, 0.0)
        self.block = (0.0, 0.0)
        self.pids = 0


def stats_figures(doc: dict[str, Any]) -> StatsFigures:
    """CPU % (the container's CPU time over the host's since the previous frame, times the
    CPUs), memory without the inactive file cache, network and block totals, PIDs."""
    out = StatsFigures()
    cpu, pre = doc.get("cpu_stats") or {}, doc.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (
        pre.get("cpu_usage") or {}
    ).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or ())
    if system_delta > 0 and cpu_delta > 0:
        out.cpu = cpu_delta / system_delta * online * 100.0
    mem = doc.get("memory_stats") or {}
    usage = mem.get("usage", 0)
    stats = mem.get("stats") or {}
    if "total_inactive_file" in stats and stats["total_inactive_file"] < usage:  # v1
        out.mem = float(usage - stats["total_inactive_file"])
    elif stats.get("inactive_file", 0) < usage:  # v2
        out.mem = float(usage - stats.get("inactive_file", 0))
    else:
        out.mem = float(usage)
    out.mem_limit = float(mem.get("limit", 0))
    out.mem_percent = out.mem / out.mem_limit * 100.0 if out.mem_limit else 0.0
    rx = tx = 0
    for n in (doc.get("networks") or {}).values():
        rx += n.get("rx_bytes", 0)
        tx += n.get("tx_bytes", 0)
    out.net = (float(rx), float(tx))
    read = write = 0
    for e in (doc.get("blkio_stats") or {}).get("io_service_bytes_recursive") or ():
        op = str(e.get("op", "")).lower()
        if op == "read":
            read += e.get("value", 0)
        elif op == "write":
            write += e.get("value", 0)
    out.block = (float(read), float(write))
    out.pids = int((doc.get("pids_stats") or {}).get("current", 0))
    return out
