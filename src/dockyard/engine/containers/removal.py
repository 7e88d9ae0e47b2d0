"""``rm``, ``container prune`` and the background deletion of a removed container's files."""

from __future__ import annotations

import os
import time

from dockyard.errors import Conflict, DockyardError, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    import queue
    from collections.abc import Sequence

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.engine.prune import PruneFilters
    from dockyard.engine.volumes import VolumeService
    from dockyard.model.container import Container
    from dockyard.store.events import Events

TRASH_PREFIX = ".rm-"


class Removal:
    def __init__(
        self,
        records: ContainerRecords,
        lifecycle: Lifecycle,
        volumes: VolumeService,
        events: Events,
    ) -> None:
        self.records = records
        self.lifecycle = lifecycle
        self.volumes = volumes
        self.events = events

    def remove(self, text: str, *, force: bool = False, volumes: bool = False) -> str:
        cid = self.records.resolve(text)
        ctr = self.lifecycle.refresh(cid)
        if ctr.running:
            if not force:
                status = ctr.state.status
                procedure = "Stop the container before attempting removal or force remove"
                if status == "paused":
                    procedure = "Unpause and then " + procedure.lower()
                raise Conflict(f"You cannot remove a {status} container {cid}. {procedure}")
            self.lifecycle.force_stop(cid)
            try:
                ctr = self.records.load(cid)
            except NotFound:
                return cid  # --rm: its monitor removed it meanwhile
        self.lifecycle.cleanup_runtime(ctr)
        with self.records.db.transaction() as c:
            self.records.delete_in(c, cid)
        self.remove_files(ctr, volumes=volumes)
        self.events.container(ctr, "destroy")
        return cid

    def remove_files(self, ctr: Container, *, volumes: bool) -> None:
        """The directories of a container whose row is gone, and with ``volumes`` its
        anonymous volumes."""
        from dockyard.runtime.rootfs import unmount

        cid = ctr.id
        # Never delete through a mounted root (that would write whiteouts into the upper dir).
        unmount(self.records.rootfs(cid))
        discard([self.records.container_dir(cid), self.records.run_dir_of(cid)])
        if volumes:
            for m in ctr.spec.mounts:
                if m.anonymous:
                    try:
                        self.volumes.remove(m.source)
                    except DockyardError:
                        pass

    def prune(self, filters: PruneFilters | None = None) -> tuple[list[str], int]:
        """``container prune``: every stopped container the filters (``until``, ``label``,
        ``label!``) do not protect; (IDs, bytes of their writable layers)."""
        from dockyard.engine.volumes import dir_size
        from dockyard.units import parse_time

        removed, size = [], 0
        for ctr in self.lifecycle.refresh_all():
            if ctr.running:
                continue
            if filters is not None and filters.keeps(
                dict(ctr.spec.labels), parse_time(ctr.created)
            ):
                continue
            size += dir_size(self.records.upper(ctr.id))
            self.remove(ctr.id)
            removed.append(ctr.id)
        return removed, size


def rmtree(path: str, ignore_errors: bool = True) -> None:
    import shutil  # not at import: shutil loads bz2/lzma/zlib and exec/ps never need it

    shutil.rmtree(path, ignore_errors=ignore_errors)


# Set by delete_in_background(): discard's deletions go to a thread of this process.
_background: queue.SimpleQueue[tuple[list[str], list[int]]] | None = None


def delete_in_background() -> None:
    """For a process that lives on (the daemon): :func:`discard` hands its deletions to one
    thread of this process instead of forking a remover for each. A fork of the daemon
    copies its page tables, and the remover's exit frees them: ~15% of the machine's CPU
    under 50 docker-py clients running ``containers.run(..., remove=True)``. A daemon that
    dies meanwhile leaves ``.rm-*`` dirs, unlocked, for ``system check --repair``."""
    global _background
    if _background is not None:
        return
    import queue  # not at the top: `rm` and `run --rm` never need it (nor threading)
    import threading

    work: queue.SimpleQueue[tuple[list[str], list[int]]] = queue.SimpleQueue()

    def remover() -> None:
        while True:
            trash, locks = work.get()
            try:
                for t in trash:
                    remove_dir(t)
            except Exception:  # noqa: BLE001 - the thread must go on for the next removals
                pass  # left for system check, unlocked now
            finally:
                for fd in locks:
                    os.close(fd)

    threading.Thread(target=remover, name="container-remover", daemon=True).start()
    _background = work


def discard(paths: Sequence[str]) -> None:
    """Remove directories of a container whose row is gone: renamed out of the way at once
    (so the name is free and nothing finds them), deleted by a detached process (or this
    process's remover thread, see :func:`delete_in_background`), so that ``rm`` and ``run
    --rm`` do not wait for the file system (a just-unmounted overlay can keep its work dir
    busy for a moment). ``system check --repair`` removes what a killed remover left
    (``.rm-*``)."""
    import fcntl

    trash = []
    locks = []
    for path in paths:
        target = os.path.join(os.path.dirname(path), TRASH_PREFIX + os.path.basename(path))
        try:
            os.rename(path, target)
        except FileNotFoundError:
            continue
        except OSError:
            remove_dir(path)  # cannot rename (e.g. busy mount point): the slow way
            continue
        trash.append(target)
        # Locked until the remover is done: ``system check`` skips a locked one.
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        locks.append(fd)
    if not trash:
        return
    if _background is not None:
        _background.put((trash, locks))
        return
    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:  # pragma: no cover - the remover
        try:
            os.setsid()
            if os.fork() == 0:  # not our child: nobody waits for it, init reaps it
                # Hold none of the caller's files but the locks: its pipes (a waiting
                # reader would wait for us too), the store lock, the database.
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                for name in os.listdir("/proc/self/fd"):
                    if int(name) > 2 and int(name) not in locks:
                        try:
                            os.close(int(name))
                        except OSError:
                            pass
                for t in trash:
                    remove_dir(t)
        finally:
            os._exit(0)
    try:
        if pid < 0:
            for t in trash:
                remove_dir(t)
        else:
            os.waitpid(pid, 0)
    finally:
        for fd in locks:
            os.close(fd)


def trash_in_progress(path: str) -> bool:
    """Whether a remover still works on the ``.rm-`` dir ``path`` (it holds its lock)."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return True  # gone meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def remove_dir(path: str) -> None:
    """rmtree that retries for a moment: the exit handling of the monitor and of the CLI can
    run at once, and a just-detached overlay can keep its work dir busy briefly."""
    for _ in range(40):
        if not os.path.lexists(path):
            return
        rmtree(path, ignore_errors=True)
        if not os.path.lexists(path):
            return
        time.sleep(0.05)
    rmtree(path, ignore_errors=False)
