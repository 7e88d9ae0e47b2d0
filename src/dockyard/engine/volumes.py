"""Named and anonymous volumes: ``<root>/volumes/<name>/_data`` plus a row in the DB."""

from __future__ import annotations

import os

from dockyard import fastjson as json  # the C codec without re: container commands load us
from dockyard.errors import Conflict, InvalidArgument, NotFound

# Not typing's, nor the sqlite3 package (its datetime adapters): every container command that
# touches volumes imports this module, and those cost ~5 ms of start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from _sqlite3 import Row
    from typing import Any

    from dockyard.engine import Engine
    from dockyard.engine.prune import PruneFilters


def _valid_name(name: str) -> bool:
    """Docker's volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (ASCII)."""
    ok = len(name) >= 2 and name[0].isascii() and name[0].isalnum()
    return ok and all(c.isascii() and (c.isalnum() or c in "_.-") for c in name[1:])


def volume_path(root: str, name: str) -> str:
    """Where volume ``name`` of the store at ``root`` keeps its files."""
    return os.path.join(root, "volumes", name, "_data")


class VolumeService:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.db = engine.store.db
        self.dir = os.path.join(engine.root, "volumes")

    def path(self, name: str) -> str:
        return volume_path(self.engine.root, name)

    def create(
        self, name: str = "", labels: dict[str, str] | None = None, anonymous: bool = False
    ) -> str:
        """Create (or, like Docker, return the existing) volume."""
        if not name:
            name = os.urandom(32).hex()
            anonymous = True
        elif len(name) == 1:
            raise InvalidArgument(
                f"create {name}: volume name is too short, names should be at least two "
                "alphanumeric characters"
            )
        elif not _valid_name(name):
            raise InvalidArgument(
                f'create {name}: "{name}" includes invalid characters for a local volume name, '
                'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
                "directory, use absolute path"
            )
        from dockyard.image.config import now_rfc3339

        with self.db.transaction() as c:
            if not c.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone():
                os.makedirs(self.path(name), mode=0o755, exist_ok=True)
                c.execute(
                    "INSERT INTO volumes (name, created, labels, anonymous) VALUES (?, ?, ?, ?)",
                    (name, now_rfc3339(), json.dumps(labels or {}), int(anonymous)),
                )
        # Docker reports a create for an existing volume too (each -v of it at create).
        self.engine.events.emit("volume", "create", name, {"driver": "local"})
        return name

    def exists(self, name: str) -> bool:
        return self.db.one("SELECT 1 FROM volumes WHERE name = ?", (name,)) is not None

    def inspect(self, name: str) -> dict[str, Any]:
        r = self.db.one("SELECT * FROM volumes WHERE name = ?", (name,))
        if not r:
            raise NotFound(f"get {name}: no such volume")
        return self._shape(r)

    def _shape(self, r: Row) -> dict[str, Any]:
        return {
            "CreatedAt": r["created"],
            "Driver": "local",
            "Labels": json.loads(r["labels"]) or None,
            "Mountpoint": self.path(r["name"]),
            "Name": r["name"],
            "Options": None,
            "Scope": "local",
        }

    def list_volumes(self, dangling: bool | None = None) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM volumes ORDER BY name")
        out = []
        for r in rows:
            if dangling is not None and self.in_use(r["name"]) == dangling:
                continue
            out.append(self._shape(r))
        return out

    def users(self, name: str) -> list[str]:
        return [
            str(r["container_id"])
            for r in self.db.query(
                "SELECT container_id FROM container_volumes WHERE volume = ?", (name,)
            )
        ]

    def in_use(self, name: str) -> bool:
        return bool(self.users(name))

    def remove(self, name: str, force: bool = False) -> None:
        with self.db.transaction() as c:
            if not c.execute("SELECT 1 FROM volumes WHERE name = ?", (name,)).fetchone():
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = [
                r[0]
                for r in c.execute(
                    "SELECT container_id FROM container_volumes WHERE volume = ?", (name,)
                )
            ]
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            c.execute("DELETE FROM volumes WHERE name = ?", (name,))
        import shutil  # only here: shutil loads the compression modules

        shutil.rmtree(os.path.join(self.dir, name), ignore_errors=True)
        self.engine.events.emit("volume", "destroy", name, {"driver": "local"})

    def prune(
        self, all_volumes: bool = False, filters: PruneFilters | None = None
    ) -> tuple[list[str], int]:
        """Docker 23+ prunes only anonymous volumes unless -a; ``label``/``label!`` filters
        protect more. Returns (names, bytes)."""
        removed, size = [], 0
        for r in self.db.query("SELECT name, anonymous, labels FROM volumes ORDER BY name"):
            if self.in_use(r["name"]) or (not all_volumes and not r["anonymous"]):
                continue
            if filters is not None and filters.keeps(json.loads(r["labels"]) or {}, None):
                continue
            size += dir_size(os.path.join(self.dir, r["name"]))
            try:
                self.remove(r["name"])
            except Conflict:
                continue
            removed.append(str(r["name"]))
        return removed, size


def dir_size(path: str) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total
