"""Containers: the operations both front ends call, over ``Container`` values.

``ContainerService`` is a façade: each method is one user-visible operation, done by one of
the collaborators below, which get what they need explicitly (records, the store, the
volume and network services) rather than reaching through the Engine:

  records.py    the containers table (rows as Container values) and the containers' dirs
  create.py     a spec merged with its image, volumes named, the address leased, dirs made
  lifecycle.py  start/stop/kill/wait/pause with the monitor, and reconciliation of ended ones
  restarts.py   restart policies: the decision, the back-off, the restarter, boot's restore
  health.py     health checks: what a start hands the monitor, State.Health read back
  update.py     docker update: limits and restart policy, on a running container too
  execs.py      exec's process spec and the ways to run it
  logs.py       logs (json-file, local; rotated), read by tail or time and followed
  files.py      diff, cp, export, commit, top
  removal.py    rm, prune, and the background deletion of removed containers' files
  filters.py    ps filters
  sessions.py   attach/wait clients, signals and resizes through the container's monitor
  stats.py      docker stats: frames of Docker's stats JSON from cgroups and the netns

Collaborators are made on first use: ``dockyard exec`` loads only records and execs.
"""

from __future__ import annotations

from dockyard.engine.containers.records import ContainerRecords
from dockyard.lazy import cached_property

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms of `dockyard exec`
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from contextlib import AbstractContextManager
    from typing import Any, BinaryIO

    from dockyard.engine import Engine
    from dockyard.engine.containers.create import Creator
    from dockyard.engine.containers.execs import Execs
    from dockyard.engine.containers.files import Files
    from dockyard.engine.containers.lifecycle import Lifecycle, Runtimes
    from dockyard.engine.containers.logs import Logs
    from dockyard.engine.containers.removal import Removal
    from dockyard.engine.containers.sessions import Sessions
    from dockyard.engine.containers.stats import Stats
    from dockyard.engine.containers.update import Updater
    from dockyard.engine.prune import PruneFilters
    from dockyard.model.container import Container, ContainerSpec, ContainerUpdate
    from dockyard.runtime.attach import MonitorLaunch
    from dockyard.runtime.fs import ArchiveSource
    from dockyard.runtime.oci import OCIRuntime


class ContainerService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine  # only to hand services to collaborators, on first use
        self.store = engine.store
        self.records = ContainerRecords(engine.store.db, engine.root, engine.run_root)

    # ------------------------------------------------------------------ collaborators

    @cached_property
    def runtimes(self) -> Runtimes:
        from dockyard.engine.containers.lifecycle import Runtimes

        return Runtimes(self._engine.run_root)

    @cached_property
    def lifecycle(self) -> Lifecycle:
        from dockyard.engine.containers.lifecycle import Lifecycle, container_command
        from dockyard.engine.volumes import volume_path

        engine = self._engine
        return Lifecycle(
            self.records,
            self.store,
            self.runtimes,
            lambda: engine.networks,
            lambda ctr: self.removal.remove_files(ctr, volumes=True),
            container_command(engine.root, engine.run_root),
            lambda name: volume_path(engine.root, name),
            engine.events,
            engine.exit_recorder,
        )

    @cached_property
    def creator(self) -> Creator:
        from dockyard.engine.containers.create import Creator

        engine = self._engine
        return Creator(
            self.records,
            self.store.images,
            engine.volumes,
            lambda: engine.networks,
            self.get,  # not the lifecycle's: create loads it only for a row not settled
            engine.events,
        )

    @cached_property
    def removal(self) -> Removal:
        from dockyard.engine.containers.removal import Removal

        return Removal(self.records, self.lifecycle, self._engine.volumes, self._engine.events)

    @cached_property
    def execs(self) -> Execs:
        from dockyard.engine.containers.execs import Execs

        return Execs(self.records, self.lifecycle, self._engine.events)

    @cached_property
    def files(self) -> Files:
        from dockyard.engine.containers.files import Files

        return Files(self.records, self.lifecycle, self.store)

    @cached_property
    def logs_reader(self) -> Logs:
        from dockyard.engine.containers.logs import Logs

        return Logs(self.records, lambda: self.lifecycle)

    @cached_property
    def stats(self) -> Stats:
        from dockyard.engine.containers.stats import Stats

        return Stats(self.records, self.lifecycle)

    @cached_property
    def updater(self) -> Updater:
        from dockyard.engine.containers.update import Updater

        return Updater(self.records, self.lifecycle)

    @cached_property
    def sessions(self) -> Sessions:
        from dockyard.engine.containers.sessions import Sessions

        return Sessions(
            self.records,
            self.lifecycle,
            lambda: self.creator,
            lambda: self.removal,
            self._engine.events,
        )

    # ------------------------------------------------------------------ reading

    def resolve(self, text: str) -> str:
        return self.records.resolve(text)

    def get(self, text: str) -> Container:
        """The container, reconciled with reality."""
        return self._reconciled(self.records.load(self.records.resolve(text)))

    def _reconciled(self, ctr: Container) -> Container:
        """``ctr`` as read, when its row is settled (records.py); else through the lifecycle,
        which records an exit whose monitor is gone (NotFound if it is removed meanwhile)."""
        return ctr if self.records.settled(ctr) else self.lifecycle.refresh(ctr.id)

    def _volume_path(self, name: str) -> str:
        from dockyard.engine.volumes import volume_path

        return volume_path(self._engine.root, name)

    def active(self, text: str) -> Container:
        """The container, running and neither paused nor restarting (else Conflict)."""
        return self.lifecycle.active(text)

    def inspect(self, text: str) -> dict[str, Any]:
        """``docker inspect``'s document for the container."""
        from dockyard.model.docker.shapes import inspect_shape

        ctr = self.get(text)
        return inspect_shape(
            ctr,
            container_dir=self.records.container_dir(ctr.id),
            volume_source=self._volume_path,
        )

    def list_containers(
        self, *, all_containers: bool = False, filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[Container]:
        """``docker ps``: newest first, running ones only unless ``all_containers`` (or a
        status/exited filter)."""
        from dockyard.engine.containers.filters import check_filters, match, shows_stopped
        from dockyard.errors import NotFound

        filters = filters or {}
        check_filters(filters)
        show_all = all_containers or shows_stopped(filters)
        # Every row, or only those that say running; each running one is reconciled (it may
        # have exited).
        found = []
        for ctr in self.records.all() if show_all else self.records.running():
            try:
                found.append(self._reconciled(ctr))
            except NotFound:
                continue
        return [c for c in found if (show_all or c.running) and match(c, filters)]

    def list_shapes(
        self,
        *,
        all_containers: bool = False,
        filters: Mapping[str, Sequence[str]] | None = None,
        size: bool = False,
    ) -> list[dict[str, Any]]:
        """``GET /containers/json``'s entries (with ``size``, their SizeRw and SizeRootFs, as
        ``ps -s`` and ``?size=true`` ask). Without filters, each settled row's from the entry
        stored with it (model/docker/listing.py), which decodes no container; a row that is
        not settled, or kept no entry or one of another form, is read as
        :meth:`list_containers` reads it."""
        entries = self._list_entries(all_containers, filters)
        if size:
            from dockyard.engine.volumes import dir_size
            from dockyard.errors import NotFound

            image_sizes: dict[str, int] = {}  # a query per image, not per container
            for e in entries:
                rw = dir_size(self.records.upper(str(e["Id"])))
                image_id = str(e["ImageID"])
                if image_id not in image_sizes:
                    try:
                        image_sizes[image_id] = self.store.images.get(image_id).size
                    except NotFound:
                        image_sizes[image_id] = 0  # removed by force
                e["SizeRw"], e["SizeRootFs"] = rw, image_sizes[image_id] + rw
        return entries

    def _list_entries(
        self, all_containers: bool, filters: Mapping[str, Sequence[str]] | None
    ) -> list[dict[str, Any]]:
        import time

        now = time.time()
        if filters:
            from dockyard.model.docker.shapes import list_shape

            return [
                list_shape(c, self._volume_path, now)
                for c in self.list_containers(all_containers=all_containers, filters=filters)
            ]
        from dockyard import fastjson
        from dockyard.model.docker.listing import STATE, VERSION, finish

        out = []
        for cid, stored in self.records.entries(all_containers):
            entry = fastjson.loads(stored) if stored is not None else {}
            st = entry.get(STATE) or {}
            if st.get("v") == VERSION and self.records.settled_as(
                cid, entry["State"], bool(st["health"]), st["monitor_pid"], st["monitor_start"]
            ):
                for m in entry["Mounts"]:
                    if m["Type"] == "volume":  # stored without the store's root
                        m["Source"] = self._volume_path(m["Name"])
                out.append(finish(entry, now))
                continue
            from dockyard.errors import NotFound
            from dockyard.model.docker.shapes import list_shape

            try:
                ctr = self._reconciled(self.records.load(cid))
            except NotFound:
                continue  # removed meanwhile
            if st.get("v", 0) < VERSION:  # none, or an older form: kept from now on
                self.records.keep_entry(ctr, stored)
            if all_containers or ctr.running:
                out.append(list_shape(ctr, self._volume_path, now))
        return out

    def refresh_all(self) -> list[Container]:
        return self.lifecycle.refresh_all()

    def run_dir(self, cid: str) -> str:
        return self.records.run_dir_of(cid)

    def rootfs_path(self, cid: str) -> str:
        return self.records.rootfs(cid)

    def upper_dir(self, cid: str) -> str:
        return self.records.upper(cid)

    def runtime(self, name: str = "") -> OCIRuntime:
        return self.runtimes.get(name)

    # ------------------------------------------------------------------ lifecycle

    def create(self, spec: ContainerSpec, *, container_id: str = "") -> str:
        return self.creator.create(spec, container_id=container_id)

    def run(
        self, spec: ContainerSpec, *, detach: bool, detach_keys: str, sig_proxy: bool = True
    ) -> tuple[str, int | None]:
        """``docker run``: (container ID, exit code; None when detached)."""
        return self.sessions.run(spec, detach=detach, detach_keys=detach_keys, sig_proxy=sig_proxy)

    def launch_early(self, cid: str, spec: ContainerSpec) -> MonitorLaunch | None:
        return self.lifecycle.launch_early(cid, spec)

    def forget_run_dir(self, cid: str) -> None:
        self.lifecycle.forget_run_dir(cid)

    def start(self, text: str, *, attach: bool = False, launch: MonitorLaunch | None = None) -> str:
        return self.lifecycle.start(text, attach=attach, launch=launch)

    def stop(self, text: str, timeout: int | None = None) -> str:
        return self.lifecycle.stop(text, timeout)

    def restart(self, text: str, timeout: int | None = None) -> str:
        cid = self.lifecycle.stop(text, timeout)
        self.lifecycle.start(cid)
        self._engine.events.container(self.records.load(cid), "restart")
        return cid

    def kill(self, text: str, sig: str = "KILL") -> str:
        return self.lifecycle.kill(text, sig)

    def pause(self, text: str) -> str:
        return self.lifecycle.pause(text)

    def unpause(self, text: str) -> str:
        return self.lifecycle.unpause(text)

    def update(self, text: str, change: ContainerUpdate) -> str:
        return self.updater.update(text, change)

    def wait(self, text: str, condition: str = "not-running") -> int:
        return self.lifecycle.wait(text, condition)

    def on_exit(
        self, cid: str, *, runtime_cleanup: bool = True, monitor_pid: int | None = None
    ) -> None:
        self.lifecycle.on_exit(cid, runtime_cleanup=runtime_cleanup, monitor_pid=monitor_pid)

    def restart_after_backoff(self, cid: str, due: float, previous: tuple[int, str]) -> None:
        """The restarter's work (``container _restart``): see restarts.py."""
        from dockyard.engine.containers.restarts import run_restarter

        run_restarter(self.lifecycle, cid, due, previous)

    def restore(self) -> tuple[list[str], list[str]]:
        """``system restore`` (at boot): (names started, errors)."""
        from dockyard.engine.containers.restarts import restore

        return restore(self.lifecycle)

    def remove(self, text: str, *, force: bool = False, volumes: bool = False) -> str:
        return self.removal.remove(text, force=force, volumes=volumes)

    def prune(self, filters: PruneFilters | None = None) -> tuple[list[str], int]:
        return self.removal.prune(filters)

    def rename(self, text: str, new: str) -> None:
        from dockyard.engine.containers.records import check_name
        from dockyard.errors import Conflict, InvalidArgument, NotFound
        from dockyard.model.container import replace

        cid = self.records.resolve(text)
        bare = check_name(new)
        with self.records.db.transaction() as c:
            ctr = self.records.load_in(c, cid)
            if ctr is None:
                raise NotFound(f"No such container: {text}")
            if ctr.name == bare:
                raise InvalidArgument("Renaming a container with the same name as its current name")
            if self.records.name_taken_in(c, bare):
                raise Conflict(
                    f"Error when allocating new name: Conflict. The container name "
                    f'"/{bare}" is already in use'
                )
            renamed = replace(ctr, name=bare, spec=replace(ctr.spec, name=bare))
            self.records.save_in(c, renamed)
            self.records.unindex_name(ctr.name, cid)
        self.records.index_name(bare, cid)
        self._engine.events.container(renamed, "rename", oldName="/" + ctr.name)
        if renamed.spec.healthcheck is not None:
            # The monitor's health_status events name the container as it is now (Docker's
            # daemon reads the name when it logs the event).
            from dockyard.engine.containers import health
            from dockyard.store.events import container_attributes

            health.relabel(self.records.run_dir_of(cid), container_attributes(renamed))

    # ------------------------------------------------------------------ processes, files

    def logs(
        self,
        text: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: int = 0,
        until: int = 0,
        stop: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[str, str, str]]:
        return self.logs_reader.read(
            text, follow=follow, tail=tail, since=since, until=until, stop=stop
        )

    def top(self, text: str, ps_args: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
        return self.files.top(text, ps_args)

    def diff(self, text: str) -> list[tuple[str, str]]:
        return self.files.diff(text)

    def copy(self, src: str, dst: str, *, follow_link: bool = False, archive: bool = False) -> None:
        self.files.copy(src, dst, follow_link=follow_link, archive=archive)

    def stat_path(self, text: str, path: str) -> dict[str, Any]:
        return self.files.stat_path(text, path)

    def archive(
        self, text: str, path: str, *, follow_link: bool = False
    ) -> AbstractContextManager[ArchiveSource]:
        return self.files.archive(text, path, follow_link=follow_link)

    def extract(
        self,
        text: str,
        path: str,
        tar: BinaryIO,
        *,
        no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False,
    ) -> None:
        self.files.extract(
            text,
            path,
            tar,
            no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
            copy_uid_gid=copy_uid_gid,
        )

    def export(self, text: str, out: BinaryIO) -> None:
        self.files.export(text, out)

    def commit(
        self,
        text: str,
        reference: str | None = None,
        *,
        changes: Sequence[str] = (),
        message: str = "",
        author: str = "",
        config: Mapping[str, Any] | None = None,
    ) -> str:
        return self.files.commit(
            text, reference, changes=changes, message=message, author=author, config=config
        )
