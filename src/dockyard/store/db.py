"""The metadata database: SQLite in WAL mode, the single source of truth for names and refs.

Every change is one ``BEGIN IMMEDIATE`` transaction, so several CLI processes can share a store
without hand-rolled locking; a writer waits (``busy_timeout``) rather than failing.
"""

from __future__ import annotations

import _thread
import os

from dockyard.sqlite import sqlite3  # _sqlite3, loaded without functools

# 2: networks, ip_leases; 3: containers_status (CREATE IF NOT EXISTS: older stores upgrade);
# 4: containers.entry (added to older stores by _migrate; NULL until the row is next written
# or listed)
SCHEMA_VERSION = 4

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,            -- sha256 of the config blob
    manifest TEXT NOT NULL,         -- digest of the manifest blob we keep for it
    created TEXT NOT NULL,          -- the config's "created"
    size INTEGER NOT NULL,          -- unpacked size of all layers (docker images SIZE)
    parent TEXT,                    -- image this one was built or committed from
    added REAL NOT NULL,            -- when it entered this store
    last_tag_time TEXT
);
CREATE INDEX IF NOT EXISTS images_parent ON images(parent);
CREATE TABLE IF NOT EXISTS image_layers (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    diff_id TEXT NOT NULL,
    chain_id TEXT NOT NULL,
    blob TEXT NOT NULL,             -- the layer blob this image's manifest names
    PRIMARY KEY (image_id, idx)
);
CREATE INDEX IF NOT EXISTS image_layers_chain ON image_layers(chain_id);
CREATE INDEX IF NOT EXISTS image_layers_blob ON image_layers(blob);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,          -- full normalised reference: docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS tags_image ON tags(image_id);
CREATE TABLE IF NOT EXISTS repo_digests (
    name TEXT PRIMARY KEY,          -- docker.io/library/busybox@sha256:...
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX IF NOT EXISTS repo_digests_image ON repo_digests(image_id);
CREATE TABLE IF NOT EXISTS blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    diff_id TEXT                    -- for layer blobs: the digest of the uncompressed tar
);
CREATE TABLE IF NOT EXISTS image_blobs (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    digest TEXT NOT NULL,           -- config, manifest, layers and indexes the image needs
    PRIMARY KEY (image_id, digest)
);
CREATE INDEX IF NOT EXISTS image_blobs_digest ON image_blobs(digest);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- short ids keep overlay mount options small
    chain_id TEXT NOT NULL UNIQUE,
    parent TEXT,                    -- chain id of the snapshot below
    diff_id TEXT NOT NULL,
    size INTEGER NOT NULL,          -- bytes of regular files unpacked
    tar_size INTEGER NOT NULL,      -- bytes of the uncompressed layer tar
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL,
    created REAL NOT NULL,
    data TEXT NOT NULL,             -- JSON: config, host config, state
    entry TEXT                      -- JSON: the list entry (model/docker/listing.py)
);
CREATE INDEX IF NOT EXISTS containers_image ON containers(image_id);
-- `ps` lists running containers without reading the others (engine/containers/records.py
-- STATUS_SQL is the same expression, so the planner uses this index)
CREATE INDEX IF NOT EXISTS containers_status ON containers(
    coalesce(json_extract(data, '$.state.status'), json_extract(data, '$.State.Status')));
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    labels TEXT NOT NULL,           -- JSON object
    anonymous INTEGER NOT NULL      -- made for an image VOLUME or a bare -v /path
);
CREATE TABLE IF NOT EXISTS container_volumes (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    volume TEXT NOT NULL REFERENCES volumes(name),
    PRIMARY KEY (container_id, volume)
);
CREATE INDEX IF NOT EXISTS container_volumes_volume ON container_volumes(volume);
CREATE TABLE IF NOT EXISTS networks (
    id TEXT PRIMARY KEY,            -- 64 hex
    name TEXT NOT NULL UNIQUE,
    driver TEXT NOT NULL,           -- "bridge"
    subnet TEXT NOT NULL UNIQUE,    -- "172.30.0.0/16"
    gateway TEXT NOT NULL,
    bridge TEXT NOT NULL UNIQUE,    -- the host's bridge device, e.g. "dy-1a2b3c4d5e6f"
    created TEXT NOT NULL,
    data TEXT NOT NULL              -- JSON: labels, options, internal, ...
);
CREATE TABLE IF NOT EXISTS ip_leases (
    network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    container_id TEXT NOT NULL,
    PRIMARY KEY (network_id, address)
);
CREATE INDEX IF NOT EXISTS ip_leases_container ON ip_leases(container_id);
"""


class Metadata:
    def __init__(self, root: str):
        self.path = os.path.join(root, "metadata.db")
        self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA busy_timeout = 60000")
        # Container commands exit without closing (no checkpoint on close, main.py): a
        # small WAL keeps the next opener's recovery and reads cheap.
        self.conn.execute("PRAGMA wal_autocheckpoint = 100")
        self.conn.execute("PRAGMA foreign_keys = ON")
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        # WAL is a property of the file; set once, it stays for every later connection.
        self.conn.execute("PRAGMA journal_mode = WAL")
        # executescript commits whatever is open first, so the script carries its own
        # transaction; IF NOT EXISTS makes a concurrent first start harmless.
        self.conn.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")
        with self.transaction() as c:
            # Columns a table created by an older version lacks (SQLite has no ADD COLUMN IF
            # NOT EXISTS; the transaction keeps a concurrent first start from adding twice).
            have = {r[1] for r in c.execute("PRAGMA table_info(containers)")}
            if "entry" not in have:
                c.execute("ALTER TABLE containers ADD COLUMN entry TEXT")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def transaction(self) -> Transaction:
        """One write transaction (``with db.transaction() as c:``); rolled back if the block
        raises."""
        return Transaction(self.conn)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def close(self) -> None:
        self.conn.close()


class _Turns:
    """The write transactions of this process's threads, one after the other in the order
    they asked (reentrant: a thread's own nested transaction is not made to wait for it).

    SQLite's own wait for its write lock (``busy_timeout``) is a sleep that grows to 100 ms
    between tries, in no order: with the daemon's threads all writing at once (50 docker-py
    clients), a BEGIN waited 0.9 s on average while the lock was mostly free between
    sleepers, and the unluckiest waited many times that (the p99 of a ``containers.run``).
    Here a thread is woken as the one before it ends. Other processes (the CLI, a monitor's
    exit command) are still ordered by SQLite alone. ``_thread`` rather than threading:
    every command that opens the store imports this module."""

    __slots__ = ("_mutex", "_waiting", "_owner", "_depth")

    def __init__(self) -> None:
        self._mutex = _thread.allocate_lock()
        self._waiting: list[tuple[int, _thread.LockType]] = []
        self._owner: int | None = None
        self._depth = 0

    def take(self) -> None:
        me = _thread.get_ident()
        with self._mutex:
            if self._owner is None or self._owner == me:
                self._owner = me
                self._depth += 1
                return
            gate = _thread.allocate_lock()
            gate.acquire()
            self._waiting.append((me, gate))
        try:
            gate.acquire()  # released by the thread before us, which made us the owner
        except BaseException:  # interrupted (KeyboardInterrupt) while waiting
            with self._mutex:
                if (me, gate) in self._waiting:
                    self._waiting.remove((me, gate))
                    raise
            self.give()  # the turn came as we were interrupted: pass it on
            raise

    def give(self) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth:
                return
            if not self._waiting:
                self._owner = None
                return
            self._owner, gate = self._waiting.pop(0)
            self._depth = 1
        gate.release()


_TURNS = _Turns()


def holds_write_turn() -> bool:
    """Whether this thread is inside a write transaction (it must then wait for no other
    thread's: that one would wait for its turn, after ours)."""
    return _TURNS._owner == _thread.get_ident()


class Transaction:
    """``BEGIN IMMEDIATE`` on entry, ``COMMIT`` at the end of the block, ``ROLLBACK`` if it
    raises; this process's threads take turns (``_Turns``). A class rather than
    ``contextlib.contextmanager``: contextlib (with collections and functools) is ~1.5 ms of
    the start-up of every command that opens the store."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        _TURNS.take()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            _TURNS.give()
            raise
        return self.conn

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        try:
            self.conn.execute("ROLLBACK" if kind is not None else "COMMIT")
        finally:
            _TURNS.give()
