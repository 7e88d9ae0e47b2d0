"""A container's files: ``diff``, ``cp``, ``export``, ``commit`` and ``top`` (its
processes)."""

from __future__ import annotations

import os
import sys

from dockyard.engine.containers.records import ETC_FILES
from dockyard.errors import Conflict, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import BinaryIO

    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.model.container import Container
    from dockyard.store import Store

# Image config fields a commit takes from the container's config.
_COMMITTED = (
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
)


def _split(arg: str) -> tuple[str | None, str]:
    """ "name:/path" -> ("name", "/path"); a host path (absolute, ./rel, or no colon) -> None."""
    if arg == "-" or arg.startswith(("/", ".")) or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


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

    def _rootfs(self, ctr: Container) -> tuple[str, bool]:
        """(merged root path, whether we mounted it and must unmount)."""
        from dockyard.runtime.rootfs import is_mounted

        rootfs = self.records.rootfs(ctr.id)
        if is_mounted(rootfs):
            return rootfs, False
        self.lifecycle.mount_rootfs(ctr.id, self.lifecycle.image_snapshots(ctr))
        return rootfs, True

    def mount_sources(self, ctr: Container) -> list[tuple[str, str]]:
        """(container path, host source) of everything mounted into the container."""
        out = [(f, self.records.etc_file(ctr.id, f)) for f in ETC_FILES]
        for m in ctr.spec.mounts:
            if m.type == "volume":
                out.append((m.target, self.lifecycle.volume_path(m.source)))
            elif m.type == "bind":
                out.append((m.target, m.source))
        return out

    def copy(self, src: str, dst: str, *, follow_link: bool = False) -> None:
        """``docker cp``: between a container (``name:path``) and the host (a path, or ``-``
        for a tar stream on stdin/stdout). Paths the container sees through a mount (its
        /etc files, volumes, binds) are read from and written to the mount's source, after
        symlinks are resolved inside the container's root, as Docker does."""
        src_c, src_path = _split(src)
        dst_c, dst_path = _split(dst)
        if src_c is not None and dst_c is not None:
            raise InvalidArgument("copying between containers is not supported")
        if src_c is None and dst_c is None:
            raise InvalidArgument("must specify at least one container source")
        name = src_c or dst_c
        assert name is not None
        ctr = self.lifecycle.get(name)
        # While we may mount a stopped container's root, its dir is locked (shared): `system
        # check` then does not take that mount for one a killed cp left.
        from dockyard.runtime.cp import copy_lock

        lock = copy_lock(self.records.container_dir(ctr.id))
        try:
            self._copy(ctr, src_c, src_path, dst_path, follow_link)
        finally:
            os.close(lock)

    def _copy(
        self, ctr: Container, src_c: str | None, src_path: str, dst_path: str, follow_link: bool
    ) -> None:
        import tempfile

        from dockyard.runtime.cp import locate
        from dockyard.runtime.fs import copy_in, copy_out, copy_to_container, extract_to_host
        from dockyard.runtime.rootfs import unmount

        root, mounted = self._rootfs(ctr)
        mounts = self.mount_sources(ctr)
        try:
            if src_c is not None:
                base, path = locate(root, src_path, mounts)
                if dst_path == "-":
                    copy_out(base, path, sys.stdout.buffer, follow_link=follow_link)
                    sys.stdout.buffer.flush()
                    return
                with tempfile.TemporaryFile() as spool:
                    copy_out(base, path, spool, follow_link=follow_link)
                    spool.seek(0)
                    extract_to_host(spool, dst_path)
                return
            base, path = locate(root, dst_path, mounts)
            if src_path == "-":
                copy_in(base, path, sys.stdin.buffer)
                return
            from dockyard.runtime.fs import copy_from_host

            with tempfile.TemporaryFile() as spool:
                copy_from_host(src_path, spool, follow_link=follow_link)
                spool.seek(0)
                copy_to_container(base, path, spool)
        finally:
            if mounted:
                unmount(root)

    def export(self, text: str, out: BinaryIO) -> None:
        """``docker export``: the container's file system (image, init layer and its changes;
        not its volumes nor binds) as a tar written to ``out``. A stopped container's root is
        mounted for the time of it, under the copy lock as for ``cp``."""
        from dockyard.runtime.cp import copy_lock
        from dockyard.runtime.fs import export_root
        from dockyard.runtime.rootfs import unmount

        ctr = self.lifecycle.get(text)
        lock = copy_lock(self.records.container_dir(ctr.id))
        try:
            root, mounted = self._rootfs(ctr)
            try:
                export_root(root, out)
            finally:
                if mounted:
                    unmount(root)
        finally:
            os.close(lock)

    def commit(
        self,
        text: str,
        reference: str | None = None,
        *,
        changes: Sequence[str] = (),
        message: str = "",
        author: str = "",
    ) -> str:
        """``docker commit``: the writable layer as a new image on top of the container's."""
        from dockyard.image.changes import apply_changes
        from dockyard.image.config import new_config, now_rfc3339
        from dockyard.image.layer import write_layer
        from dockyard.image.manifest import OCI_LAYER
        from dockyard.image.reference import parse_reference
        from dockyard.model.docker import config_shape
        from dockyard.store.archives import adding
        from dockyard.store.images import LayerBlob

        cid = self.records.resolve(text)
        ctr = self.lifecycle.refresh(cid)
        images = self.store.images
        base = images.config(ctr.image_id)
        tag = parse_reference(reference) if reference else None
        ccfg = config_shape(ctr.spec)
        cfg = {k: ccfg.get(k) for k in _COMMITTED if ccfg.get(k) not in (None, "", [], {})}
        cfg = apply_changes(cfg, list(changes))
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
        proc = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[0]
            raise DockyardError(f"ps: {first}")
        out = proc.stdout.splitlines()
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
