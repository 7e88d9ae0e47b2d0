"""``docker stats`` and ``GET /containers/{id}/stats``: frames of Docker's stats JSON from
the container's cgroups and network namespace (runtime/stats.py), one a second.

A frame carries the counters now and those of the frame before (``precpu_stats``): CPU % is
their difference over the host's. The first frame of a stream has no previous one (zeros,
as Docker's); ``stream=false`` takes two readings a second apart, as Docker's daemon does
(``one-shot`` only one). For many containers (``docker stats`` with no name) every
container is read at the same moments, so a table of 20 costs one interval, not 20.
"""

from __future__ import annotations

import time

from dockyard.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.model.container import Container
    from dockyard.model.stats import StatsSample

INTERVAL = 1.0  # Docker's stats collector ticks once a second


class Stats:
    def __init__(self, records: ContainerRecords, lifecycle: Lifecycle) -> None:
        self.records = records
        self.lifecycle = lifecycle
        self._host_mem = 0

    def sample(self, ctr: Container) -> StatsSample | None:
        """The container's counters now; None when it does not run."""
        from dockyard.runtime.stats import cgroup_paths, host_memory, read_sample

        if not ctr.running:
            return None
        _, state_root = self.lifecycle.runtimes.location(ctr.spec.runtime)
        paths = cgroup_paths(state_root, ctr.id)
        if not paths:
            return None
        self._host_mem = self._host_mem or host_memory()
        host_net = ctr.spec.network_mode == "host"
        return read_sample(paths, ctr.state.pid, host_network=host_net, host_mem=self._host_mem)

    def shape(self, ctr: Container, cur: StatsSample | None, pre: StatsSample | None) -> Any:
        from dockyard.model.docker.stats import stats_shape

        return stats_shape(ctr.name, ctr.id, cur, pre)

    def _current(self, cid: str) -> Container | None:
        try:
            return self.lifecycle.refresh(cid)
        except NotFound:
            return None

    def frames(
        self,
        text: str,
        *,
        stream: bool = True,
        one_shot: bool = False,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Docker's ``GET /containers/{id}/stats`` frames (NotFound is raised here, before
        the first one)."""
        cid = self.records.resolve(text)
        ctr = self.lifecycle.refresh(cid)
        return self._frames(ctr, stream=stream, one_shot=one_shot, stop=stop)

    def _frames(
        self, ctr: Container, *, stream: bool, one_shot: bool, stop: Callable[[], bool] | None
    ) -> Iterator[dict[str, Any]]:
        pre = None
        if not stream and not one_shot:
            pre = self.sample(ctr)  # a frame with a previous one: CPU % means something
            if pre is not None:
                time.sleep(INTERVAL)
        while True:
            now = self._current(ctr.id)
            if now is None:
                return
            cur = self.sample(now)
            yield self.shape(now, cur, pre)
            if not stream or (cur is None and not now.running):
                return
            pre = cur
            deadline = time.monotonic() + INTERVAL
            while time.monotonic() < deadline:
                if stop is not None and stop():
                    return
                time.sleep(0.1)

    def table(
        self,
        names: Sequence[str],
        *,
        all_containers: bool = False,
        stream: bool = False,
    ) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        """``docker stats``: per tick, (what the user named it, its frame) for the containers
        named, or every running one (every one with ``all_containers``; the list is taken
        again each tick, so new containers show up). Each frame's previous reading is one
        interval before it; ``stream=False`` gives one tick."""
        asked = [(n, self.records.resolve(n)) for n in names]  # NotFound before anything
        prev: dict[str, StatsSample | None] = {}
        first = True
        while True:
            if asked:
                rows = [(n, c) for n, c in ((n, self._current(cid)) for n, cid in asked) if c]
            else:
                rows = [
                    (c.id[:12], c)
                    for c in self.lifecycle.refresh_all()
                    if all_containers or c.running
                ]
            samples = {c.id: self.sample(c) for _, c in rows}
            if first:
                first = False
                if any(s is not None for s in samples.values()):
                    prev = samples
                    time.sleep(INTERVAL)
                    continue
            yield [(n, self.shape(c, samples[c.id], prev.get(c.id))) for n, c in rows]
            if not stream:
                return
            prev = samples
            time.sleep(INTERVAL)
