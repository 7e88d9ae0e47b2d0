"""The ``containers`` table and the container's directories: names and IDs, rows as
``Container`` values (model/codec.py), and where each container's files live.

Each row also keeps the container's list entry (model/docker/listing.py), written with it, so
that listing (``ps``, ``GET /containers/json``) decodes no container.

Every other part of the engine reads and writes containers through this class; none of them
sees a row's JSON.
"""

from __future__ import annotations

import os

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.sqlite import sqlite3  # _sqlite3, loaded without functools

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms of `dockyard exec`
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dockyard.model.container import Container
    from dockyard.store.db import Metadata

NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
# A row's status, as the containers_status index (store/db.py) is built on: the model's stored
# form leaves a created container's state out (NULL), rows written before the model keep
# Docker's State.Status.
STATUS_SQL = "coalesce(json_extract(data, '$.state.status'), json_extract(data, '$.State.Status'))"
# The statuses of a row that says its container runs (the model's ``ContainerState.running``),
# and the condition that selects those rows through that index.
RUNNING = ("running", "paused", "restarting")
RUNNING_SQL = f"{STATUS_SQL} IN {RUNNING}"


def decode(text: str | bytes) -> Container:
    # The codec (and the model behind it) on first use: ``logs --tail`` never needs them.
    from dockyard.model.codec import decode as decode_row

    return decode_row(text)


def encode(ctr: Container) -> str:
    from dockyard.model.codec import encode as encode_row

    return encode_row(ctr)


ETC_FILES = ("/etc/hostname", "/etc/hosts", "/etc/resolv.conf")


def check_name(name: str) -> str:
    """A container name as Docker accepts it (a leading "/" is dropped)."""
    bare = name[1:] if name.startswith("/") else name
    ok = len(bare) >= 2 and bare[0].isascii() and bare[0].isalnum()
    ok = ok and all(c.isascii() and (c.isalnum() or c in "_.-") for c in bare[1:])
    if not ok:
        raise InvalidArgument(f"Invalid container name ({name}), only {NAME_CHARS} are allowed")
    return bare


def pid_start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat: tells a live process from a later one with the same PID.
    A zombie counts as gone ("")."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return ""
    return fields[19]


def alive(pid: int, start_time: str) -> bool:
    return pid > 0 and bool(start_time) and pid_start_time(pid) == start_time


def _no_path(name: str) -> str:
    return ""


class ContainerRecords:
    def __init__(self, db: Metadata, root: str, run_root: str) -> None:
        self.db = db
        self.root = root
        self.dir = os.path.join(root, "containers")
        self.run_dir = os.path.join(run_root, "containers")

    # ------------------------------------------------------------------ names

    def resolve(self, text: str) -> str:
        """A container ID from a full ID, a name (with or without "/"), or a unique prefix."""
        name = text[1:] if text.startswith("/") else text
        r = self.db.one("SELECT id FROM containers WHERE id = ? OR name = ?", (text, name))
        if r:
            return str(r["id"])
        if text and all(c in "0123456789abcdef" for c in text):
            rows = self.db.query(
                "SELECT id FROM containers WHERE id >= ? AND id < ? LIMIT 2", (text, text + "g")
            )
            if len(rows) == 1:
                return str(rows[0]["id"])
            if len(rows) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {text}")
        raise NotFound(f"No such container: {text}")

    def exists(self, cid: str) -> bool:
        return self.db.one("SELECT 1 FROM containers WHERE id = ?", (cid,)) is not None

    # ------------------------------------------------------------------ rows

    def load(self, cid: str) -> Container:
        r = self.db.one("SELECT data FROM containers WHERE id = ?", (cid,))
        if not r:
            raise NotFound(f"No such container: {cid}")
        return decode(r["data"])

    def log_driver(self, cid: str) -> str:
        """The container's log driver, read from its row without building the Container:
        ``logs --tail`` is a latency benchmark, and the model's import is ~1.5 ms of it."""
        from dockyard import fastjson

        r = self.db.one("SELECT data FROM containers WHERE id = ?", (cid,))
        if not r:
            raise NotFound(f"No such container: {cid}")
        doc = fastjson.loads(r["data"])
        if "v" in doc:  # model/codec.py's form, where a field at its default is left out
            log = (doc.get("spec") or {}).get("log_config") or {}
            return str(log.get("type") or "json-file")
        log = (doc.get("HostConfig") or {}).get("LogConfig") or {}  # before the model
        return str(log.get("Type") or "json-file")

    def load_in(self, c: sqlite3.Connection, cid: str) -> Container | None:
        """The row as the transaction ``c`` sees it (None if it is gone)."""
        row = c.execute("SELECT data FROM containers WHERE id = ?", (cid,)).fetchone()
        return decode(row[0]) if row else None

    def all(self) -> list[Container]:
        """Every container, newest first."""
        return [
            decode(r["data"])
            for r in self.db.query("SELECT data FROM containers ORDER BY created DESC")
        ]

    def entries(self, show_all: bool) -> list[tuple[str, str | None]]:
        """(ID, stored list entry) of every container, or of those whose row says running,
        newest first. The entry is None in a row written before rows kept one."""
        where = "" if show_all else f" WHERE {RUNNING_SQL}"
        rows = self.db.query(f"SELECT id, entry FROM containers{where} ORDER BY created DESC")
        return [(str(r[0]), r[1]) for r in rows]

    def running(self) -> list[Container]:
        """The containers whose row says running (or paused, restarting), newest first: the
        index on the stored status (store/db.py) finds them without decoding the others, so
        ``ps`` costs what the running containers cost, however many were created."""
        return [
            decode(r["data"])
            for r in self.db.query(
                f"SELECT data FROM containers WHERE {RUNNING_SQL} ORDER BY created DESC"
            )
        ]

    def settled(self, ctr: Container) -> bool:
        """Whether the stored row is what a reconciled read returns (lifecycle.py's
        ``Lifecycle.refresh``), told by a look at /proc and the run dir: a container that is
        not running; a restarting one whose restarter lives; a running one without a health
        check whose monitor lives and has not written exit.json. Anything else (a monitor
        gone: the exit is recorded then) is for ``refresh``; reads of rows that are settled
        (``inspect``, ``ps``, ``port``) need not load the lifecycle code."""
        st = ctr.state
        health = st.health is not None
        return self.settled_as(ctr.id, st.status, health, st.monitor_pid, st.monitor_start)

    def settled_as(
        self, cid: str, status: str, health: bool, monitor_pid: int, monitor_start: str
    ) -> bool:
        """:meth:`settled` for a row told by its state's fields (a stored list entry's)."""
        if status not in RUNNING:
            return True
        if status == "restarting":
            return alive(monitor_pid, monitor_start)
        if health:
            return False  # its health is read live, by refresh
        exited = os.path.exists(os.path.join(self.run_dir_of(cid), "exit.json"))
        return not exited and alive(monitor_pid, monitor_start)

    def ids(self) -> list[str]:
        return [
            str(r["id"]) for r in self.db.query("SELECT id FROM containers ORDER BY created DESC")
        ]

    def on_network_in(self, c: sqlite3.Connection, network_id: str) -> Iterator[Container]:
        """The containers holding an address on ``network_id`` (as transaction ``c`` sees)."""
        for r in c.execute(
            "SELECT c.data FROM ip_leases l JOIN containers c ON c.id = l.container_id"
            " WHERE l.network_id = ?",
            (network_id,),
        ):
            yield decode(r[0])

    def insert_in(self, c: sqlite3.Connection, ctr: Container, created: float) -> None:
        try:
            c.execute(
                "INSERT INTO containers (id, name, image_id, created, data, entry)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (ctr.id, ctr.name, ctr.image_id, created, encode(ctr), self._entry(ctr)),
            )
        except sqlite3.IntegrityError:
            other = c.execute("SELECT id FROM containers WHERE name = ?", (ctr.name,)).fetchone()
            raise Conflict(
                f'Conflict. The container name "/{ctr.name}" is already in use by container '
                f'"{other[0] if other else "?"}". You have to remove (or rename) that '
                "container to be able to reuse that name."
            ) from None

    def save_in(self, c: sqlite3.Connection, ctr: Container) -> None:
        c.execute(
            "UPDATE containers SET data = ?, name = ?, entry = ? WHERE id = ?",
            (encode(ctr), ctr.name, self._entry(ctr), ctr.id),
        )

    def keep_entry(self, ctr: Container, stored: str | None) -> None:
        """Write the list entry of a row that kept none (written before rows kept one) or
        one of an older form (``stored``), from ``ctr`` as just read: listing does, once. A
        writer in between wrote its own entry with its row, which stays."""
        with self.db.transaction() as c:
            c.execute(
                "UPDATE containers SET entry = ? WHERE id = ? AND entry IS ?",
                (self._entry(ctr), ctr.id, stored),
            )

    def _entry(self, ctr: Container) -> str:
        """The row's list entry (model/docker/listing.py), as JSON. A volume's Source is left
        empty: paths are never stored (they follow the store's root); listing writes it."""
        from dockyard import fastjson
        from dockyard.model.docker.shapes import list_entry

        return fastjson.dumps(list_entry(ctr, _no_path))

    def update(self, cid: str, change: Callable[[Container], Container]) -> Container | None:
        """Read, change and write the container in one transaction (None if it is gone)."""
        with self.db.transaction() as c:
            ctr = self.load_in(c, cid)
            if ctr is None:
                return None
            new = change(ctr)
            if new is not ctr:
                self.save_in(c, new)
            return new

    def delete_in(self, c: sqlite3.Connection, cid: str) -> None:
        row = c.execute("SELECT name FROM containers WHERE id = ?", (cid,)).fetchone()
        if row:
            self.unindex_name(str(row[0]), cid)  # before the commit: never a stale link
        c.execute("DELETE FROM containers WHERE id = ?", (cid,))
        c.execute("DELETE FROM ip_leases WHERE container_id = ?", (cid,))

    def index_name(self, name: str, cid: str) -> None:
        """The on-disk name index (engine/nameindex.py), once ``name`` is committed."""
        from dockyard.engine import nameindex

        nameindex.link(self.root, name, cid)

    def unindex_name(self, name: str, cid: str) -> None:
        """Out of the index before the row stops holding ``name`` is committed."""
        from dockyard.engine import nameindex

        nameindex.unlink(self.root, name, cid)

    def name_taken_in(self, c: sqlite3.Connection, name: str) -> bool:
        return c.execute("SELECT 1 FROM containers WHERE name = ?", (name,)).fetchone() is not None

    # ------------------------------------------------------------------ files

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.dir, cid)

    def rootfs(self, cid: str) -> str:
        return os.path.join(self.dir, cid, "rootfs")

    def upper(self, cid: str) -> str:
        return os.path.join(self.dir, cid, "upper")

    def log_path(self, cid: str, driver: str = "json-file") -> str:
        """Where the log driver writes (Docker's paths; "" for none: nothing is written)."""
        from dockyard.runtime.logname import log_path  # not on exec's path

        return log_path(os.path.join(self.dir, cid), cid, driver)

    def hosts_path(self, cid: str) -> str:
        return os.path.join(self.dir, cid, "hosts")

    def etc_file(self, cid: str, path: str) -> str:
        """The host file bind mounted at ``path`` (one of ETC_FILES)."""
        return os.path.join(self.dir, cid, os.path.basename(path))

    def run_dir_of(self, cid: str) -> str:
        """The container's runtime dir: monitor.pid, attach.sock, exit.json, ports.json."""
        return os.path.join(self.run_dir, cid)
