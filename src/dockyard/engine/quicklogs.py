"""``logs`` of a container found through the name index, without opening the store.

``logs --tail 10`` is benchmarked against Docker's; reading the end of a log costs well under
a millisecond, and opening SQLite (the ``_sqlite3`` import with the functools and collections
it brings, the connection, the query) was the largest part of what was left. A container the
index (engine/nameindex.py) knows has its log read here; any other answer (an ID prefix, a
name the index lacks, a container that never wrote a log, the ``none`` driver) is None, and
the caller asks the engine (ContainerService.logs) as before, which reports errors.

The driver is read off the disk: a container's log is ``<id>-json.log`` (json-file) or
``local-logs/container.log`` (local), and a container has one driver for its lifetime.
"""

from __future__ import annotations

import os

from dockyard.engine.nameindex import lookup
from dockyard.runtime.logname import log_path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator


def read(
    root: str, ref: str, *, tail: int | None, since: int, until: int
) -> Iterator[tuple[str, str, str]] | None:
    """(stream, text, time) of ``ref``'s log records (as ContainerService.logs without
    ``follow``), or None when the store must answer."""
    cid = lookup(root, ref)
    if cid is None:
        return None
    directory = os.path.join(root, "containers", cid)
    for driver in ("json-file", "local"):
        path = log_path(directory, cid, driver)
        if os.path.exists(path):
            break
    else:
        return None
    from dockyard.runtime.logread import read_log

    return read_log(
        path, driver, tail=tail, since=since, until=until, follow=False, running=lambda: False
    )
