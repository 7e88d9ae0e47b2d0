"""The store's write transactions from one process's threads take turns in the order they
asked (store/db.py ``_Turns``): SQLite's own busy wait retries after sleeps of up to 100 ms
in no order, and under the daemon's load the unluckiest request waited many seconds."""

from __future__ import annotations

import threading
from pathlib import Path

from dockyard.store import db as dbmod
from dockyard.store.db import Metadata
from tests.helpers import wait_until


def test_threads_write_in_the_order_they_asked(tmp_path: Path) -> None:
    Metadata(str(tmp_path)).close()  # the schema
    order: list[int] = []
    release = threading.Event()

    def first() -> None:
        m = Metadata(str(tmp_path))
        try:
            with m.transaction() as c:
                c.execute("INSERT INTO networks (id, name, driver, subnet, gateway, bridge,"
                          " created, data) VALUES ('0', 'n0', 'bridge', '10.0.0.0/24',"
                          " '10.0.0.1', 'b0', '', '{}')")  # fmt: skip
                release.wait(30)
        finally:
            m.close()

    def writer(n: int) -> None:
        m = Metadata(str(tmp_path))
        try:
            with m.transaction() as c:
                order.append(n)
                c.execute("INSERT INTO networks (id, name, driver, subnet, gateway, bridge,"
                          " created, data) VALUES (?, ?, 'bridge', ?, '', ?, '', '{}')",
                          (str(n), f"n{n}", f"10.0.{n}.0/24", f"b{n}"))  # fmt: skip
        finally:
            m.close()

    holder = threading.Thread(target=first)
    holder.start()
    wait_until(lambda: dbmod._TURNS._owner is not None)
    threads = []
    for n in range(1, 6):  # each queued before the next asks
        t = threading.Thread(target=writer, args=(n,))
        t.start()
        threads.append(t)
        wait_until(lambda n=n: len(dbmod._TURNS._waiting) == n)
    release.set()
    for t in [holder, *threads]:
        t.join(30)
    assert order == [1, 2, 3, 4, 5]
    m = Metadata(str(tmp_path))
    try:
        assert len(m.query("SELECT id FROM networks")) == 6
        # A thread's nested transaction (another connection of its own) is not queued
        # behind itself: SQLite decides, as before (here: the inner one is refused at once).
        m.conn.execute("PRAGMA busy_timeout = 0")
        other = Metadata(str(tmp_path))
        try:
            with other.transaction():
                try:
                    with m.transaction():
                        raise AssertionError("two write transactions at once")
                except Exception as e:
                    assert "locked" in str(e)
        finally:
            other.close()
        assert dbmod._TURNS._owner is None
    finally:
        m.close()
