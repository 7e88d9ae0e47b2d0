"""``docker update``: new cgroup limits and restart policy for a container, running or not.

Docker's rules (moby daemon/update.go, container.UpdateContainer): the values asked for are
checked on their own first (the same checks as at create: "Minimum memory limit allowed is
6MB"...), then against the container's (a memory limit above the swap limit already set
needs a new swap limit too; ``--cpus`` and ``--cpu-period``/``--cpu-quota`` exclude each
other), with "Cannot update container ID: " in front. A running (or paused) container gets
the limits at once through ``runc update``, with only what changed, as Docker hands
containerd only the update's values; a stopped or restarting one at its next start. Nothing
is recorded when the runtime refuses.
"""

from __future__ import annotations

import os

from dockyard.errors import Conflict, DockyardError, InvalidArgument
from dockyard.model.container import Resources, replace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.model.container import Container, ContainerUpdate

MIN_MEMORY = 6 * 1024 * 1024  # moby: linuxMinMemory (the message says 6MB)
CPU_PERIOD_US = 100_000  # what --cpus is expressed in (moby: 100 ms)


def check_values(u: ContainerUpdate) -> None:
    """The update's own values (moby: verifyPlatformContainerResources with update=true)."""
    from dockyard.model.docker import restart_policy_check

    ncpu = os.cpu_count() or 1
    memory, swap, reservation = u.memory or 0, u.memory_swap or 0, u.memory_reservation or 0
    if memory and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidArgument(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage"
        )
    if reservation and reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if u.nano_cpus and (u.cpu_period or u.cpu_quota):
        other = "CPU Period" if u.cpu_period else "CPU Quota"
        raise InvalidArgument(f"Conflicting options: Nano CPUs and {other} cannot both be set")
    if u.nano_cpus is not None and (u.nano_cpus < 0 or u.nano_cpus > ncpu * 1_000_000_000):
        raise InvalidArgument(
            f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )
    if u.cpu_period and not 1000 <= u.cpu_period <= 1_000_000:
        raise InvalidArgument(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if u.cpu_quota is not None and 0 < u.cpu_quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    for what, value in (("cpus", u.cpuset_cpus), ("mems", u.cpuset_mems)):
        if value and not _cpuset_ok(value):
            raise InvalidArgument(f"Invalid value {value} for cpuset {what}")
    if u.restart_policy is not None:
        restart_policy_check(u.restart_policy, False)


def _cpuset_ok(text: str) -> bool:
    """Docker's ParseUintList: "0-3", "0,1", "0-1,3"."""
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and (not hi.isdigit() or int(hi) < int(lo))):
            return False
    return True


def effective_swap(res: Resources) -> int:
    """The swap limit a container runs with: Docker stores twice the memory limit when only
    a memory limit is given (dockyard leaves 0 and doubles at start)."""
    if res.memory_swap == 0 and res.memory > 0:
        return 2 * res.memory
    return res.memory_swap


def merged(ctr: Container, u: ContainerUpdate) -> Container:
    """The container with ``u`` applied (moby: UpdateContainer), or Conflict."""
    res = ctr.spec.resources

    def refuse(why: str) -> Conflict:
        return Conflict(f"Cannot update container {ctr.id}: {why}")

    if u.nano_cpus and res.cpu_period:
        raise refuse(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
        )
    if u.nano_cpus and res.cpu_quota:
        raise refuse(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
        )
    if u.cpu_period and res.nano_cpus:
        raise refuse(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
        )
    if u.cpu_quota and res.nano_cpus:
        raise refuse(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        )
    swap = effective_swap(res)
    if u.memory and u.memory > swap and not u.memory_swap:
        raise refuse(
            "Memory limit should be smaller than already set memoryswap limit, update the "
            "memoryswap at the same time"
        )
    changes: dict[str, Any] = {"memory_swap": swap}
    for name in (
        "memory",
        "memory_swap",
        "memory_reservation",
        "nano_cpus",
        "cpu_shares",
        "cpu_period",
        "cpu_quota",
        "cpuset_cpus",
        "cpuset_mems",
    ):
        value = getattr(u, name)
        if value:  # Docker: a zero value leaves the setting as it is
            changes[name] = value
    if u.pids_limit is not None:
        changes["pids_limit"] = max(u.pids_limit, 0)
    spec = replace(ctr.spec, resources=replace(res, **changes))
    if u.restart_policy is not None and u.restart_policy.name:
        if ctr.spec.auto_remove and u.restart_policy.name != "no":
            raise refuse(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
            )
        spec = replace(spec, restart_policy=u.restart_policy)
    out: Container = replace(ctr, spec=spec)
    return out


def runtime_resources(u: ContainerUpdate) -> dict[str, Any]:
    """The update as ``runc update --resources`` takes it: only what it sets (moby hands
    containerd the update's own values; runc leaves a zero as it is)."""
    memory: dict[str, int] = {}
    if u.memory:
        memory["limit"] = u.memory
    if u.memory_swap:
        memory["swap"] = u.memory_swap
    if u.memory_reservation:
        memory["reservation"] = u.memory_reservation
    cpu: dict[str, Any] = {}
    if u.cpu_shares:
        cpu["shares"] = u.cpu_shares
    if u.nano_cpus:
        cpu["period"] = CPU_PERIOD_US
        cpu["quota"] = u.nano_cpus * CPU_PERIOD_US // 1_000_000_000
    if u.cpu_period:
        cpu["period"] = u.cpu_period
    if u.cpu_quota:
        cpu["quota"] = u.cpu_quota
    if u.cpuset_cpus:
        cpu["cpus"] = u.cpuset_cpus
    if u.cpuset_mems:
        cpu["mems"] = u.cpuset_mems
    out: dict[str, Any] = {}
    if memory:
        out["memory"] = memory
    if cpu:
        out["cpu"] = cpu
    if u.pids_limit is not None:
        out["pids"] = {"limit": u.pids_limit if u.pids_limit > 0 else -1}  # -1: "max"
    return out


class Updater:
    def __init__(self, records: ContainerRecords, lifecycle: Lifecycle) -> None:
        self.records = records
        self.lifecycle = lifecycle

    def update(self, text: str, u: ContainerUpdate) -> str:
        check_values(u)
        cid = self.records.resolve(text)
        ctr = self.lifecycle.refresh(cid)
        merged(ctr, u)  # its checks, before anything changes
        resources = runtime_resources(u)
        if ctr.running and not ctr.state.restarting and resources:
            rt = self.lifecycle.runtimes.get(ctr.spec.runtime)
            try:
                rt.update(cid, resources)
            except DockyardError as e:
                raise DockyardError(f"Cannot update container {cid}: {e}") from None

        def apply(c: Container) -> Container:
            return merged(c, u)

        self.records.update(cid, apply)
        self.lifecycle.events.container(ctr, "update")
        return cid
