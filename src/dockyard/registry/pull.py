"""``pull``: registry -> content store -> snapshots -> tags.

Resolve the reference to a manifest (an index picks linux/amd64), fetch the config, download
the layer blobs the store lacks in parallel (verified, resumable), then record everything
through ``ImageStore.add`` (which unpacks each new layer once and checks its diff_id). The
progress callback receives Docker's JSON messages (``{"status", "id", "progressDetail"}``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dockyard.errors import CorruptData, InvalidArgument
from dockyard.image.config import ImageConfig
from dockyard.image.manifest import (
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    Index,
    Manifest,
    Platform,
    media_type_of,
)
from dockyard.image.reference import Reference
from dockyard.registry.blobmap import BlobMap
from dockyard.registry.client import RegistryClient, progress_message, short_id
from dockyard.registry.download import fetch_blob
from dockyard.registry.errors import NetworkError
from dockyard.store.archives import adding
from dockyard.store.images import LayerBlob
from dockyard.store.store import Store

Emit = Callable[[dict[str, Any]], None]
MAX_CONFIG_SIZE = 8 << 20
CONCURRENT_DOWNLOADS = 3  # Docker's max-concurrent-downloads


def resolve_manifest(
    client: RegistryClient, repo: str, ref: str, platform: Platform
) -> tuple[Manifest, bytes, str, bytes | None, str]:
    """(manifest, its bytes, its digest, index bytes or None, digest the user pulled)."""
    data, media_type, digest = client.get_manifest(repo, ref)
    declared = media_type_of(data) or media_type
    if declared in INDEX_TYPES or (not declared and b'"manifests"' in data):
        index = Index.from_bytes(data, declared)
        chosen = index.select(platform)
        mdata, mtype, mdigest = client.get_manifest(repo, chosen.digest)
        if mdigest != chosen.digest:
            raise CorruptData(f"manifest digest mismatch: expected {chosen.digest}")
        manifest = Manifest.from_bytes(mdata, media_type_of(mdata) or mtype)
        return manifest, mdata, mdigest, data, digest
    if declared and declared not in MANIFEST_TYPES:
        raise InvalidArgument(f"unsupported manifest media type {declared!r}")
    return Manifest.from_bytes(data, declared), data, digest, None, digest


def pull_one(
    store: Store,
    client: RegistryClient,
    ref: Reference,
    emit: Emit,
    platform: Platform | None = None,
) -> tuple[str, bool]:
    """Pull ``ref`` (with a tag or a digest). Returns (image ID, whether anything changed)."""
    try:
        return _pull(store, client, ref, emit, platform or Platform())
    except NetworkError as e:
        # Retries are spent: say which pull (``run`` pulls too) and, in ``e``, which registry
        # and which blob or URL.
        raise NetworkError(f"pull {ref.familiar()}: {e}", e.reason) from None


def _pull(
    store: Store, client: RegistryClient, ref: Reference, emit: Emit, platform: Platform
) -> tuple[str, bool]:
    repo = ref.repository
    want = ref.digest or ref.tag or "latest"
    manifest, mraw, mdigest, index_raw, pulled_digest = resolve_manifest(
        client, repo, want, platform
    )
    # Docker names the repository once the manifest is found, not before.
    emit(progress_message(f"Pulling from {repo}", ref.tag or want))
    for layer in manifest.layers:
        if layer.media_type and layer.media_type not in LAYER_TYPES:
            raise InvalidArgument(f"unsupported layer media type {layer.media_type!r}")
    config = ImageConfig.parse(client.read_blob(repo, manifest.config.digest, MAX_CONFIG_SIZE))
    if len(config.diff_ids) != len(manifest.layers):
        raise CorruptData(
            f"manifest has {len(manifest.layers)} layers but the config lists "
            f"{len(config.diff_ids)}"
        )
    repo_digest = f"{ref.name}@{pulled_digest}"
    tag_ref = ref if ref.tag and not ref.digest else None
    existing = store.db.one("SELECT 1 FROM images WHERE id = ?", (config.id,))
    if existing:
        current = (
            store.db.one("SELECT image_id FROM tags WHERE name = ?", (str(tag_ref),))
            if tag_ref
            else store.db.one("SELECT image_id FROM repo_digests WHERE name = ?", (repo_digest,))
        )
        up_to_date = current is not None and current["image_id"] == config.id
    else:
        up_to_date = False

    missing = [d for d in manifest.layers if not store.content.has(d.digest)]
    for d in manifest.layers:
        emit(
            progress_message(
                "Pulling fs layer" if d in missing else "Already exists", short_id(d.digest)
            )
        )
    lock = threading.Lock()

    def download(desc: Any) -> None:
        ident = short_id(desc.digest)

        def progress(current: int, total: int) -> None:
            with lock:
                emit(progress_message("Downloading", ident, current, total))

        def retrying(wait: float) -> None:
            with lock:
                emit(progress_message(f"Retrying in {wait:g} seconds", ident))

        fetch_blob(client, store.content, repo, desc.digest, desc.size, progress, retrying)
        with lock:
            emit(progress_message("Verifying Checksum", ident))
            emit(progress_message("Download complete", ident))

    with adding(store) as new_blobs:
        if missing:
            with ThreadPoolExecutor(min(CONCURRENT_DOWNLOADS, len(missing))) as pool:
                futures = [pool.submit(download, d) for d in missing]
                errors = []
                for d, fut in zip(missing, futures, strict=True):
                    exc = fut.exception()
                    if exc is None:
                        new_blobs.append(d.digest)
                    else:
                        errors.append(exc)
                if errors:
                    raise errors[0]
        for d in missing:
            emit(progress_message("Extracting", short_id(d.digest)))
        extra: list[str] = []
        if index_raw is not None:
            extra.append(store.content.ingest_bytes(index_raw, expected=pulled_digest))
            new_blobs.append(pulled_digest)
        layers = [
            LayerBlob(d.digest, d.media_type or _sniff(store, d.digest), d.size)
            for d in manifest.layers
        ]
        new_blobs += [config.id, mdigest]
        image_id = store.images.add(
            config,
            layers,
            tags=[tag_ref] if tag_ref else [],
            manifest_raw=mraw,
            repo_digests=[repo_digest],
            extra_blobs=extra,
        )
    for d in missing:
        emit(progress_message("Pull complete", short_id(d.digest)))
    try:
        BlobMap(store.root).record(
            [
                (diff_id, d.digest, d.size, d.media_type, client.endpoint.name, repo)
                for diff_id, d in zip(config.diff_ids, manifest.layers, strict=True)
            ]
        )
    except OSError:
        pass  # only a hint for later pushes
    emit(progress_message(f"Digest: {pulled_digest}"))
    shown = ref.familiar()
    if up_to_date and not missing:
        emit(progress_message(f"Status: Image is up to date for {shown}"))
    else:
        emit(progress_message(f"Status: Downloaded newer image for {shown}"))
    return image_id, bool(missing) or not up_to_date


def _sniff(store: Store, digest: str) -> str:
    from dockyard.store.archives import sniff_layer_media_type

    with store.content.open(digest) as f:
        return sniff_layer_media_type(f)
