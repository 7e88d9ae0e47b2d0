"""A container's files: ``diff``, archives (``cp``, the archive routes), ``export``,
``commit`` and ``top`` (its processes)."""

from __future__ import annotations

import os
import stat as stat_mod
import sys
from contextlib import contextmanager

from dockyard.engine.containers.records import ETC_FILES
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from typing import Any, BinaryIO

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.model.container import Container
    from dockyard.runtime.fs import ArchiveSource as Archive
    from dockyard.store import Store


def _split(arg: str) -> tuple[str | None, str]:
    """ "name:/path" -> ("name", "/path"); a host path (absolute, ./rel, or no colon) -> None."""
    if arg == "-" or arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


def _container_root(pid: int, rootfs: str) -> int | None:
    """An fd on the root of process ``pid``'s mount namespace, if that root is the
    container's overlay (the same mount as ``rootfs`` on the host); None otherwise (the
    process is gone, or the pid is someone else's now)."""
    if pid <= 0:
        return None
    try:
        fd = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        theirs, ours = os.fstat(fd), os.stat(rootfs)
    except OSError:
        os.close(fd)
        return None
    if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino):
        os.close(fd)
        return None
    return fd


class Files:
    def __init__(self, records: ContainerRecords, lifecycle: Lifecycle, store: Store) -> None:
        self.records = records
        self.lifecycle = lifecycle
        self.store = store

    def diff(self, text: str) -> list[tuple[str, str]]:
        """``docker diff``: (A|C|D, path) for each change in the writable layer."""
        from dockyard.runtime.fs import diff_upper

        cid = self.records.resolve(text)
        ctr = self.lifecycle.refresh(cid)
        upper, *lowers = self.lifecycle.layer_dirs(cid, self.lifecycle.image_snapshots(ctr))
        return [(ch.kind, ch.path) for ch in diff_upper(upper, lowers)]

    @contextmanager
    def _root(self, text: str) -> Iterator[tuple[Container, str, list[tuple[str, str]]]]:
        """(container, its root as seen from the host, the mounts that root does not show).

        A running container's root is its init process's (``/proc/<pid>/root``): the
        container's own mount namespace, so its /etc/hosts, volumes, binds and tmpfs mounts
        are there as the container sees them, inside directories too (Docker archives in
        the container's mount namespace). A stopped container's root is its overlay, mounted
        for as long as the block runs, and what it mounts at start is read from the sources."""
        from dockyard.runtime.rootfs import is_mounted, unmount

        ctr = self.lifecycle.get(text)
        rootfs = self.records.rootfs(ctr.id)
        held = _container_root(ctr.state.pid, rootfs) if ctr.running else None
        if held is not None:
            try:
                # Through our own fd: a pid that dies and is reused cannot redirect the copy.
                yield ctr, f"/proc/self/fd/{held}", []
            finally:
                os.close(held)
            return
        from dockyard.runtime.cp import copy_lock

        # While we may mount a stopped container's root, its dir is locked (shared): `system
        # check` then does not take that mount for one a killed cp left.
        lock = copy_lock(self.records.container_dir(ctr.id))
        mounted = False
        try:
            if not is_mounted(rootfs):
                self.lifecycle.mount_rootfs(ctr.id, self.lifecycle.image_snapshots(ctr))
                mounted = True
            yield ctr, rootfs, self.mount_sources(ctr)
        finally:
            if mounted:
                unmount(rootfs)
            os.close(lock)

    def mount_sources(self, ctr: Container) -> list[tuple[str, str]]:
        """(container path, host source) of everything mounted into the container."""
        out = [(f, self.records.etc_file(ctr.id, f)) for f in ETC_FILES]
        for m in ctr.spec.mounts:
            if m.type == "volume":
                out.append((m.target, self.lifecycle.volume_path(m.source)))
            elif m.type == "bind":
                out.append((m.target, m.source))
        return out

    # ------------------------------------------------------------------ archives

    def stat_path(self, text: str, path: str) -> dict[str, Any]:
        """``HEAD /containers/{id}/archive``: Docker's path stat of a container path (name,
        size, mode as a Go FileMode, mtime, linkTarget)."""
        with self.archive(text, path) as source:
            return source.stat

    @contextmanager
    def archive(self, text: str, path: str, *, follow_link: bool = False) -> Iterator[Archive]:
        """``GET /containers/{id}/archive`` and ``docker cp CONTAINER:SRC ...``: the path
        opened for archiving (``.stat`` first, then ``.write(out)`` the tar). Paths the
        container sees through a mount (its /etc files, volumes, binds) are read from the
        mount's source, after symlinks are resolved inside the container's root."""
        from dockyard.runtime.cp import locate
        from dockyard.runtime.fs import ArchiveSource

        if not path:
            raise InvalidArgument("bad parameter: path cannot be empty")
        with self._root(text) as (_ctr, root, mounts):
            base, inner = locate(root, path, mounts)
            try:
                source = ArchiveSource(base, inner, follow_link=follow_link)
            except NotFound:
                raise NotFound(f"Could not find the file {path} in container {text}") from None
            with source:
                yield source

    def extract(
        self,
        text: str,
        path: str,
        tar: BinaryIO,
        *,
        no_overwrite_dir_non_dir: bool = False,
        copy_uid_gid: bool = False,
        rename_top: tuple[str, str] | None = None,
    ) -> None:
        """``PUT /containers/{id}/archive`` and ``docker cp ... CONTAINER:DST``: unpack a tar
        (plain or compressed) into ``path``, an existing directory of the container (or the
        mount that covers it). ``copy_uid_gid``: the files belong to the container's user
        (``docker cp -a``), else to the archive's owners. ``rename_top``: (the archive's top
        name, the name it gets), the CLI's answer when DEST does not exist yet."""
        from dockyard.runtime.cp import locate
        from dockyard.runtime.fs import copy_in

        if not path:
            raise InvalidArgument("bad parameter: path cannot be empty")
        with self._root(text) as (ctr, root, mounts):
            base, inner = locate(root, path, mounts)
            # Docker's rule: a read-only container takes files only in its volumes and binds.
            if ctr.spec.read_only and locate(root, path, self.mount_sources(ctr))[0] == root:
                raise DockyardError("container rootfs is marked read-only")  # Docker's 500
            chown = None
            if copy_uid_gid:
                from dockyard.runtime.user import resolve_user

                user = resolve_user(root, ctr.spec.user)
                chown = (user.uid, user.gid)
            try:
                copy_in(
                    base,
                    inner,
                    tar,
                    no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                    chown=chown,
                    rename_top=rename_top,
                )
            except NotFound:
                raise NotFound(f"Could not find the file {path} in container {text}") from None

    def copy(self, src: str, dst: str, *, follow_link: bool = False, archive: bool = False) -> None:
        """``docker cp``: between a container (``name:path``) and the host (a path, or ``-``
        for a tar stream on stdin/stdout). The container side is :meth:`archive`,
        :meth:`stat_path` and :meth:`extract`, the daemon's archive routes; the host side is
        what Docker's CLI does around them (destination rules, the tar of a host path)."""
        import tempfile

        from dockyard.runtime.fs import copy_from_host, extract_to_host

        src_c, src_path = _split(src)
        dst_c, dst_path = _split(dst)
        if src_c is not None and dst_c is not None:
            raise InvalidArgument("copying between containers is not supported")
        if src_c is None and dst_c is None:
            raise InvalidArgument("must specify at least one container source")
        if src_c is not None:
            with self.archive(src_c, src_path, follow_link=follow_link) as source:
                if dst_path == "-":
                    source.write(sys.stdout.buffer)
                    sys.stdout.buffer.flush()
                    return
                with tempfile.TemporaryFile() as spool:
                    source.write(spool)
                    spool.seek(0)
                    extract_to_host(spool, dst_path)
            return
        assert dst_c is not None
        if src_path == "-":
            # Docker's CLI always asks for noOverwriteDirNonDir.
            self.extract(
                dst_c,
                dst_path,
                sys.stdin.buffer,
                no_overwrite_dir_non_dir=True,
                copy_uid_gid=archive,
            )
            return
        with tempfile.TemporaryFile() as spool:
            top, is_dir = copy_from_host(src_path, spool, follow_link=follow_link)
            spool.seek(0)
            into, rename = self._destination(dst_c, dst_path, top, is_dir)
            self.extract(
                dst_c,
                into,
                spool,
                no_overwrite_dir_non_dir=True,
                copy_uid_gid=archive,
                rename_top=rename,
            )

    def _destination(
        self, name: str, dst: str, top: str, src_is_dir: bool
    ) -> tuple[str, tuple[str, str] | None]:
        """Docker's CLI rules for ``cp SRC CONTAINER:DST`` over the daemon's stat: (the
        directory to unpack in, the top entry's rename). A symlink at DST is followed once,
        inside the container, as the CLI follows the stat's linkTarget."""
        import posixpath

        from dockyard.runtime.fs import destination_rule, go_mode_is_dir

        path = dst
        try:
            st: dict[str, Any] | None = self.stat_path(name, path)
            if st and st["linkTarget"]:
                path = st["linkTarget"]
                st = self.stat_path(name, path)
        except NotFound:
            st = None
        mode = None if st is None else (stat_mod.S_IFDIR if go_mode_is_dir(st["mode"]) else 0)
        if destination_rule(mode, src_is_dir, dst):
            return path, None
        parent, base = posixpath.split(path.rstrip("/") or "/")
        return parent or "/", (top, base)

    def export(self, text: str, out: BinaryIO) -> None:
        """``docker export``: the container's file system (image, init layer and its changes;
        not its volumes nor binds) as a tar written to ``out``. A stopped container's root is
        mounted for the time of it, under the copy lock as for ``cp``."""
        from dockyard.runtime.cp import copy_lock
        from dockyard.runtime.fs import export_root
        from dockyard.runtime.rootfs import is_mounted, unmount

        ctr = self.lifecycle.get(text)
        # The overlay as the host sees it (not the container's mount namespace, whose
        # volumes, binds and /proc are no part of an export).
        root = self.records.rootfs(ctr.id)
        lock = copy_lock(self.records.container_dir(ctr.id))
        mounted = False
        try:
            if not is_mounted(root):
                self.lifecycle.mount_rootfs(ctr.id, self.lifecycle.image_snapshots(ctr))
                mounted = True
            export_root(root, out)
        finally:
            if mounted:
                unmount(root)
            os.close(lock)

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
        """``docker commit``: the writable layer as a new image on top of the container's.
        ``config``: an image config (Docker's Config shape) the client sent (``POST
        /commit``'s body); the changes apply to it, then the container's config completes
        it, as moby merges them."""
        from dockyard.image.changes import apply_changes, merge_commit_config
        from dockyard.image.config import new_config, now_rfc3339
        from dockyard.image.layer import write_layer
        from dockyard.image.manifest import OCI_LAYER
        from dockyard.image.reference import parse_reference
        from dockyard.model.docker import config_shape
        from dockyard.model.docker.commit import COMMITTED
        from dockyard.store.archives import adding
        from dockyard.store.images import LayerBlob

        cid = self.records.resolve(text)
        ctr = self.lifecycle.refresh(cid)
        images = self.store.images
        base = images.config(ctr.image_id)
        tag = parse_reference(reference) if reference else None
        ccfg = config_shape(ctr.spec)
        own = {k: ccfg.get(k) for k in COMMITTED if ccfg.get(k) not in (None, "", [], {})}
        # moby: the changes go onto the client's config, or onto the container's without one.
        user = own if config is None else {k: v for k, v in config.items() if k in COMMITTED}
        cfg = merge_commit_config(apply_changes(user, list(changes)), own)
        created = now_rfc3339()
        with adding(self.store) as new_blobs, self.store.content.writer() as w:
            written = write_layer(self.records.upper(cid), w, from_overlay_upper=True)
            digest = w.commit()
            new_blobs.append(digest)
            history = [
                *base.history,
                {
                    "created": created,
                    "created_by": " ".join(ctr.spec.args),
                    **({"comment": message} if message else {}),
                    **({"author": author} if author else {}),
                },
            ]
            extra = {"container": cid, "container_config": ccfg}
            if author:
                extra["author"] = author
            new = new_config(
                [*base.diff_ids, written.diff_id], cfg, history, created=created, extra=extra
            )
            blobs = [
                LayerBlob(
                    la.blob, images.blob_media_type(la.blob), self.store.content.size(la.blob)
                )
                for la in images.layers(ctr.image_id)
            ]
            return images.add(
                new,
                [*blobs, LayerBlob(digest, OCI_LAYER, w.size)],
                tags=[tag] if tag else [],
                parent=ctr.image_id,
            )

    def top(self, text: str, ps_args: Sequence[str] = ()) -> tuple[list[str], list[list[str]]]:
        """``docker top``: the host's ``ps`` output (``ps_args``, default ``-ef``), only the
        container's processes. A paused container has processes to show; a restarting one
        has none."""
        import subprocess

        from dockyard.errors import DockyardError

        cid = self.records.resolve(text)
        ctr = self.lifecycle.refresh(cid)
        if not ctr.running:
            raise Conflict(f"Container {cid} is not running")
        if ctr.state.restarting:
            raise Conflict(f"Container {cid} is restarting, wait until the container is running")
        pids = set(self.lifecycle.runtimes.get(ctr.spec.runtime).ps(cid))
        ran = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
        if ran.returncode != 0:
            # moby reports the first line of ps's complaint.
            why = (ran.stderr.strip().splitlines() or [f"exit status {ran.returncode}"])[0]
            raise DockyardError(f"ps: {why}")
        out = ran.stdout.splitlines()
        header = out[0].split() if out else []
        if "PID" not in header:
            raise DockyardError("Couldn't find PID field in ps output")
        pid_col = header.index("PID")
        rows = []
        for line in out[1:]:
            parts = line.split(None, len(header) - 1)
            if len(parts) > pid_col and parts[pid_col].isdigit() and int(parts[pid_col]) in pids:
                rows.append(parts)
        return header, rows
