"""``docker logs``: the container's json-file log, read and followed."""

from __future__ import annotations

import time

from dockyard import fastjson as json
from dockyard.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords


def parse_log_line(line: bytes) -> tuple[str, str, str] | None:
    """(stream, text, time) of one json-file line; None for a torn or foreign line."""
    try:
        rec = json.loads(line)
        return str(rec.get("stream", "stdout")), str(rec.get("log", "")), str(rec.get("time", ""))
    except (ValueError, AttributeError):
        return None


class Logs:
    def __init__(self, records: ContainerRecords, lifecycle: Lifecycle) -> None:
        self.records = records
        self.lifecycle = lifecycle

    def read(
        self,
        text: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        until: float | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[str, str, str]]:
        """(stream, text, time) for each log line, following while the container runs (or
        until ``stop()``, asked while no line comes: the API's client has gone). ``since``
        and ``until`` (epoch seconds) keep the lines logged in between, after ``tail`` has
        chosen the last lines, as Docker's json-file reader does; a follow ends at
        ``until``."""
        cid = self.records.resolve(text)
        self.lifecycle.refresh(cid)
        if since is not None or until is not None:
            from dockyard.units import parse_time

            def wanted(rec: tuple[str, str, str]) -> bool:
                t = parse_time(rec[2])
                if t is None:
                    return True
                return (since is None or t >= since) and (until is None or t <= until)
        else:

            def wanted(rec: tuple[str, str, str]) -> bool:
                return True

        with open(self.records.log_path(cid), "rb") as f:
            lines = f.readlines()
            # A last line without its newline is being written: it is finished below (when
            # following), never parsed in halves, which lost it.
            buf = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
            if tail is not None and tail >= 0:
                lines = lines[-tail:] if tail else []
            for ln in lines:
                rec = parse_log_line(ln)
                if rec and wanted(rec):
                    yield rec
            if not follow or (until is not None and time.time() > until):
                if buf and (tail is None or tail > len(lines)):
                    rec = parse_log_line(buf)
                    if rec and wanted(rec):
                        yield rec
                return
            while True:
                chunk = f.readline()
                if chunk:
                    buf += chunk
                    if buf.endswith(b"\n"):
                        rec = parse_log_line(buf)
                        buf = b""
                        if rec and wanted(rec):
                            yield rec
                    continue
                try:
                    running = self.lifecycle.refresh(cid).running
                except NotFound:
                    running = False
                if not running:
                    # The monitor wrote everything before the exit was recorded.
                    for ln in (buf + f.read()).splitlines(keepends=True):
                        rec = parse_log_line(ln)
                        if rec and wanted(rec):
                            yield rec
                    return
                if stop is not None and stop():
                    return
                if until is not None and time.time() > until:
                    return
                time.sleep(0.05)
