"""``system df`` and ``system check``."""

from __future__ import annotations

# Not typing's nor dataclasses' (~10 ms with inspect, ast...): `system df` starts here.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass

    from dockyard.engine import Engine
    from dockyard.store.check import CheckReport
else:
    from dockyard.model.values import dataclass


@dataclass(frozen=True, slots=True)
class ImageUsage:
    id: str
    tags: tuple[str, ...]
    created: str
    size: int  # what `docker images` shows: all layers
    shared_size: int  # layers that another image also uses
    unique_size: int  # layers only this image uses
    containers: int


@dataclass(frozen=True, slots=True)
class DiskUsage:
    images: list[ImageUsage]
    images_disk: int  # every snapshot counted once: what the images really take
    images_reclaimable: int  # snapshots no container's image needs
    containers_total: int
    containers_running: int
    containers_size: int  # writable layers (upper dirs)
    containers_reclaimable: int  # those of stopped containers
    volumes_total: int
    volumes_active: int
    volumes_size: int
    volumes_reclaimable: int  # volumes no container uses
    build_cache_size: int
    container_sizes: dict[str, int]  # container ID -> bytes of its writable layer
    volume_sizes: dict[str, int]  # volume name -> bytes
    volume_users: dict[str, int]  # volume name -> containers using it


class SystemService:
    def __init__(self, engine: Engine):
        self.engine = engine

    def df(self) -> DiskUsage:
        store = self.engine.store
        db = store.db
        users: dict[str, int] = {}
        for r in db.query("SELECT image_id, COUNT(*) AS n FROM containers GROUP BY image_id"):
            users[str(r["image_id"])] = int(r["n"])
        snap_size = {
            str(r["chain_id"]): int(r["size"])
            for r in db.query("SELECT chain_id, size FROM snapshots")
        }
        chain_users: dict[str, set[str]] = {}
        image_chains: dict[str, list[str]] = {}  # one query, not one per image
        for r in db.query("SELECT image_id, chain_id FROM image_layers"):
            chain_users.setdefault(str(r["chain_id"]), set()).add(str(r["image_id"]))
            image_chains.setdefault(str(r["image_id"]), []).append(str(r["chain_id"]))
        usage = []
        for rec in store.images.records():
            chains = image_chains.get(rec.id, [])
            shared = sum(snap_size.get(c, 0) for c in chains if len(chain_users.get(c, ())) > 1)
            unique = sum(snap_size.get(c, 0) for c in chains if len(chain_users.get(c, ())) == 1)
            usage.append(
                ImageUsage(
                    rec.id, rec.tags, rec.created, rec.size, shared, unique, users.get(rec.id, 0)
                )
            )
        active_chains = {c for c, imgs in chain_users.items() if imgs & users.keys()}
        disk = sum(snap_size.get(c, 0) for c in chain_users)
        reclaim = sum(snap_size.get(c, 0) for c in chain_users if c not in active_chains)
        from dockyard.engine.containers.records import RUNNING
        from dockyard.engine.volumes import dir_size

        svc = self.engine.containers
        containers = svc.list_shapes(all_containers=True)  # the rows' list entries
        c_sizes = {e["Id"]: dir_size(svc.upper_dir(e["Id"])) for e in containers}
        running = [e["Id"] for e in containers if e["State"] in RUNNING]
        vols = self.engine.volumes.list_volumes()
        v_sizes = {v["Name"]: dir_size(v["Mountpoint"]) for v in vols}
        v_users = {v["Name"]: len(self.engine.volumes.users(v["Name"])) for v in vols}
        v_used = {name for name, n in v_users.items() if n}
        return DiskUsage(
            images=usage,
            images_disk=disk,
            images_reclaimable=reclaim,
            containers_total=len(containers),
            containers_running=len(running),
            containers_size=sum(c_sizes.values()),
            containers_reclaimable=sum(v for k, v in c_sizes.items() if k not in running),
            volumes_total=len(vols),
            volumes_active=len(v_used),
            volumes_size=sum(v_sizes.values()),
            volumes_reclaimable=sum(v for k, v in v_sizes.items() if k not in v_used),
            build_cache_size=0,
            container_sizes=c_sizes,
            volume_sizes=v_sizes,
            volume_users=v_users,
        )

    def check(self, *, repair: bool = False, verify_blobs: bool = False) -> CheckReport:
        from dockyard.engine.networks import check_leftovers
        from dockyard.store.check import CheckReport, check_store

        # What containers and build steps left on the host goes first: a build step's
        # root is mounted inside a store temp dir, which the store's check then deletes.
        runtime = CheckReport()
        self._runtime_leftovers(runtime, repair=repair)
        report = check_store(self.engine.store, repair=repair, verify_blobs=verify_blobs)
        found = check_leftovers(self.engine.networks, repair=repair)
        found += self._container_trash(repair=repair)
        found += self._name_index(repair=repair)
        report.problems += runtime.problems
        report.leftovers = runtime.leftovers + report.leftovers + found
        if repair:
            report.repaired = runtime.repaired + report.repaired + found
        return report

    def _runtime_leftovers(self, report: CheckReport, *, repair: bool) -> None:
        """Containers recorded as running whose monitor is gone (every other command
        reconciles them on sight; here they are reported first), then what processes,
        runtime state, cgroups, mounts and helpers are left (runtime/leftovers.py)."""
        from dockyard.runtime.cleanup import process_start_time
        from dockyard.runtime.leftovers import Recorded, find

        svc = self.engine.containers
        recorded: dict[str, Recorded] = {}
        lost: list[str] = []
        for ctr in svc.records.all():
            st = ctr.state
            pid = st.monitor_pid
            recorded[ctr.id] = Recorded(st.running, pid)
            # A monitor that is alive is finishing the container if it ended: not lost.
            if st.running and (not pid or process_start_time(pid) != st.monitor_start):
                lost.append(ctr.id)
        for cid in lost:
            st = svc.records.load(cid).state
            if st.restarting:
                what = (
                    f"container {cid[:12]} is recorded as restarting, but the process "
                    "restarting it is gone"
                )
            else:
                what = f"container {cid[:12]} is recorded as running, but its monitor is gone"
            report.leftovers.append(what)
            if repair:
                if st.restarting:  # stopped, with what the restart had begun released
                    svc.lifecycle.restart_interrupted(cid, st.monitor_pid)
                else:
                    svc.on_exit(cid)  # records the end (255) and releases what it held
                report.repaired.append(what)
                recorded[cid] = Recorded(False, 0)
        from dockyard.network import netd

        for leftover in find(
            root=self.engine.root,
            run_root=self.engine.run_root,
            recorded=recorded,
            release=self._release,
            more=[netd.leftovers],
        ):
            report.leftovers.append(leftover.what)
            if not repair:
                continue
            held = leftover.repair()
            if held:
                report.problems.append(f"{leftover.what}: could not remove {', '.join(held)}")
            else:
                report.repaired.append(leftover.what)

    def _release(self, cid: str) -> list[str]:
        """Release container ``cid`` of this store (or one whose record is gone)."""
        import os

        from dockyard.errors import NotFound
        from dockyard.runtime.cleanup import release_unknown
        from dockyard.store.mounts import detach_all

        svc = self.engine.containers
        try:
            ctr = svc.records.load(cid)
        except NotFound:
            held = release_unknown(self.engine.run_root, cid)
            cdir = svc.records.container_dir(cid)
            if os.path.isdir(cdir):
                detach_all(cdir)
            return held
        if ctr.running:
            return []
        svc.lifecycle.cleanup_runtime(ctr)
        return []

    def _name_index(self, *, repair: bool) -> list[str]:
        """Links of the on-disk name index (engine/nameindex.py) that disagree with the
        containers table; ``repair`` rewrites the index from the table."""
        from dockyard.engine import nameindex

        root = self.engine.root
        names = {
            str(r["name"]): str(r["id"])
            for r in self.engine.store.db.query("SELECT id, name FROM containers")
        }
        found = nameindex.differences(root, names)
        if repair:
            nameindex.rebuild(root, names)
        return found

    def _container_trash(self, *, repair: bool) -> list[str]:
        """Container dirs renamed for removal (``.rm-<id>``) that a killed remover left."""
        import os

        from dockyard.engine.containers.removal import TRASH_PREFIX, remove_dir, trash_in_progress

        records = self.engine.containers.records
        out = []
        for base in (records.dir, records.run_dir):
            try:
                names = sorted(os.listdir(base))
            except OSError:
                continue
            for name in names:
                path = os.path.join(base, name)
                if name.startswith(TRASH_PREFIX) and not trash_in_progress(path):
                    out.append(f"removed container's dir {os.path.join(base, name)}")
                    if repair:
                        remove_dir(os.path.join(base, name))
        return out
