"""Containers: the operations both front ends call, over ``Container`` values.

``ContainerService`` is a façade: each method is one user-visible operation, done by one of
the collaborators below, which get what they need explicitly (records, the store, the
volume and network services) rather than reaching through the Engine:

  records.py    the containers table (rows as Container values) and the containers' dirs
  create.py     a spec merged with its image, volumes named, the address leased, dirs made
  lifecycle.py  start/stop/kill/wait with the monitor, and reconciliation of ended ones
  execs.py      exec's process spec and the ways to run it
  logs.py       logs (json-file, local; rotated), read by tail or time and followed
  files.py      diff, cp, commit, top
  removal.py    rm, prune, and the background deletion of removed containers' files
  filters.py    ps filters
  sessions.py   attach/wait clients, signals and resizes through the container's monitor
  stats.py      docker stats: frames of Docker's stats JSON from cgroups and the netns

Collaborators are made on first use: ``dockyard exec`` loads only records and execs.
"""

from __future__ import annotations

from functools import cached_property

from dockyard.engine.containers.records import ContainerRecords

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms of `dockyard exec`
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence
    from typing import Any

    from dockyard.engine import Engine
    from dockyard.engine.containers.create import Creator
    from dockyard.engine.containers.execs import Execs
    from dockyard.engine.containers.files import Files
    from dockyard.engine.containers.lifecycle import Lifecycle, Runtimes
    from dockyard.engine.containers.logs import Logs
    from dockyard.engine.containers.removal import Removal
    from dockyard.engine.containers.sessions import Sessions
    from dockyard.engine.containers.stats import Stats
    from dockyard.model.container import Container, ContainerSpec
    from dockyard.runtime.attach import MonitorLaunch
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
        from dockyard.engine.containers.lifecycle import Lifecycle, exit_command

        engine = self._engine
        return Lifecycle(
            self.records,
            self.store,
            self.runtimes,
            lambda: engine.networks,
            lambda ctr: self.removal.remove_files(ctr, volumes=True),
            exit_command(engine.root, engine.run_root),
            engine.events,
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
            self.lifecycle.get,
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
    def sessions(self) -> Sessions:
        from dockyard.engine.containers.sessions import Sessions

        return Sessions(self.records, self.lifecycle, self._engine.events)

    # ------------------------------------------------------------------ reading

    def resolve(self, text: str) -> str:
        return self.records.resolve(text)

    def get(self, text: str) -> Container:
        """The container, reconciled with reality."""
        return self.lifecycle.get(text)

    def inspect(self, text: str) -> dict[str, Any]:
        """``docker inspect``'s document for the container."""
        from dockyard.model.docker import inspect_shape

        ctr = self.get(text)
        return inspect_shape(
            ctr,
            container_dir=self.records.container_dir(ctr.id),
            volume_source=self.lifecycle.volume_path,
        )

    def list_containers(
        self, *, all_containers: bool = False, filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[Container]:
        """``docker ps``: newest first, running ones only unless ``all_containers`` (or a
        status/exited filter)."""
        from dockyard.engine.containers.filters import check_filters, match, shows_stopped

        filters = filters or {}
        check_filters(filters)
        show_all = all_containers or shows_stopped(filters)
        return [
            c for c in self.lifecycle.refresh_all() if (show_all or c.running) and match(c, filters)
        ]

    def list_shapes(
        self, *, all_containers: bool = False, filters: Mapping[str, Sequence[str]] | None = None
    ) -> list[dict[str, Any]]:
        """``GET /containers/json``'s entries."""
        import time

        from dockyard.model.docker import list_shape

        now = time.time()
        return [
            list_shape(c, self.lifecycle.volume_path, now)
            for c in self.list_containers(all_containers=all_containers, filters=filters)
        ]

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

    def wait(self, text: str) -> int:
        return self.lifecycle.wait(text)

    def on_exit(self, cid: str, *, runtime_cleanup: bool = True) -> None:
        self.lifecycle.on_exit(cid, runtime_cleanup=runtime_cleanup)

    def remove(self, text: str, *, force: bool = False, volumes: bool = False) -> str:
        return self.removal.remove(text, force=force, volumes=volumes)

    def prune(self) -> tuple[list[str], int]:
        return self.removal.prune()

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
        self._engine.events.container(renamed, "rename", oldName="/" + ctr.name)

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

    def copy(self, src: str, dst: str, *, follow_link: bool = False) -> None:
        self.files.copy(src, dst, follow_link=follow_link)

    def commit(
        self,
        text: str,
        reference: str | None = None,
        *,
        changes: Sequence[str] = (),
        message: str = "",
        author: str = "",
    ) -> str:
        return self.files.commit(text, reference, changes=changes, message=message, author=author)
