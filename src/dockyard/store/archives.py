"""save, load and import: moving images between the store and tar archives.

Every path that adds an image ends in ``ImageStore.add``; a failure part-way removes the blobs
and snapshots this operation created, so bad input leaves the store as it was.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import BinaryIO

from dockyard.errors import InvalidArgument
from dockyard.image.archive import (
    ArchiveReader,
    ExportImage,
    ExportLayer,
    write_docker_archive,
    write_oci_archive,
)
from dockyard.image.changes import apply_changes
from dockyard.image.compression import (
    GZIP,
    MAGIC_SIZE,
    ZSTD,
    compression_of,
    open_decompressed,
)
from dockyard.image.config import new_config
from dockyard.image.manifest import OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, Descriptor
from dockyard.image.reference import Reference, parse_reference
from dockyard.store.images import LayerBlob
from dockyard.store.store import Store


@contextmanager
def adding(store: Store) -> Iterator[list[str]]:
    """Hold the shared lock while adding; on failure, drop the blobs this operation wrote that
    no image references (the list the block appends digests to)."""
    new_blobs: list[str] = []
    before = {s.chain_id for s in store.snapshots.all()}
    ok = False
    try:
        with store.lock.shared():
            yield new_blobs
        ok = True
    finally:
        if not ok:
            store.images.discard(new_blobs, before)


def sniff_layer_media_type(f: BinaryIO) -> str:
    """The OCI media type of a layer blob that came without one. Other compressions get the
    plain type: applying the layer then refuses them by name."""
    kind = compression_of(f.read(MAGIC_SIZE))
    f.seek(0)
    return {GZIP: OCI_LAYER_GZIP, ZSTD: OCI_LAYER_ZSTD}.get(kind or "", OCI_LAYER)


def load(store: Store, path: str) -> list[str]:
    """``docker load``: returns Docker's "Loaded image: ..." / "Loaded image ID: ..." lines."""
    lines: list[str] = []
    with ArchiveReader(path) as archive, adding(store) as new_blobs:
        for img in archive.images:
            tags = [parse_reference(t) for t in img.repo_tags]
            blobs: list[LayerBlob] = []
            for layer in img.layers:
                desc = layer.descriptor
                with archive.open_member(layer.member) as f:
                    if desc is not None:
                        expected, size, media = desc.digest, desc.size, desc.media_type
                    else:
                        expected, size, media = None, None, ""
                    with store.content.writer(expected, size) as w:
                        w.copy_from(f)
                        digest = w.commit()
                        new_blobs.append(digest)
                if not media:
                    with store.content.open(digest) as f:
                        media = sniff_layer_media_type(f)
                blobs.append(LayerBlob(digest, media, w.size))
            image_id = store.images.add(img.config, blobs, tags=tags, manifest_raw=img.manifest_raw)
            if tags:
                lines += [f"Loaded image: {t.familiar()}" for t in tags]
            else:
                lines.append(f"Loaded image ID: {image_id}")
    return lines


def _save_targets(store: Store, name: str) -> list[tuple[str, str | None]]:
    """(image id, tag to record) pairs that ``docker save NAME`` writes."""
    try:
        ref: Reference | None = parse_reference(name, default_tag=False)
    except InvalidArgument:
        ref = None
    if ref is not None and ref.tag is None and ref.digest is None:
        # A bare repository name saves every tag of it, as docker save does.
        pattern = ref.name.replace("%", "\\%").replace("_", "\\_") + ":%"
        rows = store.db.query(
            "SELECT name, image_id FROM tags WHERE name LIKE ? ESCAPE '\\' ORDER BY name",
            (pattern,),
        )
        if rows:
            return [(str(r["image_id"]), str(r["name"])) for r in rows]
    image_id = store.images.resolve(name)
    if ref is not None and ref.digest is None:
        full = str(parse_reference(name))
        row = store.db.one("SELECT image_id FROM tags WHERE name = ?", (full,))
        if row and row["image_id"] == image_id:
            return [(image_id, full)]
    return [(image_id, None)]


def _export_images(store: Store, names: Sequence[str]) -> list[ExportImage]:
    tags_by_image: dict[str, list[str]] = {}
    for name in names:
        for image_id, tag in _save_targets(store, name):
            tags = tags_by_image.setdefault(image_id, [])
            if tag and (familiar := parse_reference(tag).familiar()) not in tags:
                tags.append(familiar)
    images = []
    for image_id, tags in tags_by_image.items():
        layers = tuple(
            ExportLayer(
                Descriptor(
                    store.images.blob_media_type(la.blob) or OCI_LAYER,
                    la.blob,
                    store.content.size(la.blob),
                ),
                la.diff_id,
                la.tar_size,
            )
            for la in store.images.layers(image_id)
        )
        images.append(ExportImage(store.content.read(image_id), layers, tuple(tags)))
    return images


def save(store: Store, names: Sequence[str], output: str | None, fmt: str = "docker") -> None:
    """``docker save``: to ``output`` (written to a temp name, then renamed) or stdout."""
    if fmt not in ("docker", "docker-archive", "oci", "oci-archive"):
        raise InvalidArgument(f"unknown archive format {fmt!r}: use docker or oci")
    writer = write_oci_archive if fmt.startswith("oci") else write_docker_archive
    images = _export_images(store, names)
    if output is None:
        if sys.stdout.isatty():
            raise InvalidArgument(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect"
            )
        writer(sys.stdout.buffer, images, store.content.open)
        sys.stdout.buffer.flush()
        return
    tmp = f"{output}.dockyard-tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            writer(f, images, store.content.open)
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def import_rootfs(
    store: Store,
    src: BinaryIO,
    reference: str | None,
    changes: Sequence[str] = (),
    message: str = "",
    source_name: str = "-",
) -> str:
    """``docker import``: one layer from a rootfs tar, plain or compressed (gzip, bzip2, xz,
    zstd: Docker's list), stored uncompressed."""
    from dockyard.image.config import now_rfc3339

    tag = parse_reference(reference) if reference else None
    config = apply_changes({}, list(changes))
    with adding(store) as new_blobs:
        with open_decompressed(src, what="archive") as tar, store.content.writer() as w:
            w.copy_from(tar)
            digest = w.commit()
            new_blobs.append(digest)
        created = now_rfc3339()
        history = [{"created": created, "comment": message or f"Imported from {source_name}"}]
        cfg = new_config([digest], config, history, created=created)
        return store.images.add(
            cfg, [LayerBlob(digest, OCI_LAYER, w.size)], tags=[tag] if tag else []
        )
