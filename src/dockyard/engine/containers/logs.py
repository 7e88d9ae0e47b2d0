"""``docker logs``: the container's log, read from the end or by time, and followed.

The files and their formats are runtime/logfile.py's (json-file or local, rotated); this
module picks the container's log and tells the reader whether the container still runs.
"""

from __future__ import annotations

import os

from dockyard.engine.containers.records import alive
from dockyard.errors import NotFound, NotSupported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords


class Logs:
    def __init__(self, records: ContainerRecords, lifecycle: Callable[[], Lifecycle]) -> None:
        self.records = records
        self.lifecycle = lifecycle  # made on first use: only a follower needs it

    def read(
        self,
        text: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: int = 0,
        until: int = 0,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[str, str, str]]:
        """(stream, text, time) for each log record: the last ``tail`` (None: all), of those
        the ones from ``since`` to ``until`` (ns since the epoch; 0: unbounded), then with
        ``follow`` what comes while the container runs (or until ``stop()``, asked while no
        record comes, says the API's client has gone). Errors are raised here, before the
        first record: the API has not sent its headers yet."""
        from dockyard.runtime.logread import read_log

        cid = self.records.resolve(text)
        # From the row as stored: what is in the log does not depend on reconciling the
        # state (a follower asks whether the container runs, below), and `logs --tail` is a
        # latency benchmark.
        driver = self.records.log_driver(cid)
        if driver == "none":
            raise NotSupported("configured logging driver does not support reading")

        exit_file = os.path.join(self.records.run_dir_of(cid), "exit.json")
        monitor: list[tuple[int, str]] = []  # the run being followed: its monitor

        def running() -> bool:
            # Asked every FOLLOW_POLL by every follower: a stat and a read of /proc while
            # the same monitor runs and has not written the exit, rather than the row's
            # read and decode (50 docker-py clients' followers were ~1000 of those a second,
            # on the GIL the requests wait for). The lifecycle decides when that changes.
            if monitor and not os.path.exists(exit_file) and alive(*monitor[0]):
                return True
            try:
                ctr = self.lifecycle().refresh(cid)
            except NotFound:
                return False
            monitor[:] = [(ctr.state.monitor_pid, ctr.state.monitor_start)]
            return ctr.running

        return read_log(
            self.records.log_path(cid, driver),
            driver,
            tail=tail,
            since=since,
            until=until,
            follow=follow,
            running=running,
            stop=stop,
        )
