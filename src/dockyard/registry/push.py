"""``push``: send the blobs a registry lacks, then the manifest and the tag.

Per layer, as Docker does: HEAD the blob in the target repository (``Layer already exists``);
else ask for a cross-repository mount from a repository of the same registry known to hold
it (``Mounted from x``); else upload it (``Pushed``). Layers the store keeps uncompressed are
compressed on the way (``compress.py``: gzip, as Docker, or zstd with ``--compression zstd``)
and the resulting digest remembered (``blobmap.py``), so a repeated push sends only HEAD
requests. Stored compressed blobs go up monolithically, or in chunks (``Content-Range``) above
the chunk size.

Without ``--compression`` a layer goes up as its stored blob when that is compressed (a
pulled image keeps its manifest digest, zstd or gzip), else as gzip, as Docker. With it, only
blobs in that compression count, and a layer stored otherwise is decompressed and compressed
again (as ``podman push --compression-format``). A zstd layer makes the manifest OCI: Docker's
schema2 has no zstd media type.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from dockyard.errors import NotFound, Unavailable
from dockyard.image.compression import GZIP, ZSTD
from dockyard.image.layer import open_decompressed
from dockyard.image.manifest import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    GZIP_LAYER_TYPES,
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
)
from dockyard.image.reference import Reference
from dockyard.registry.blobmap import BlobMap, KnownBlob
from dockyard.registry.client import (
    RegistryClient,
    after,
    attempts,
    backoff,
    network_reason,
    progress_message,
    short_id,
)
from dockyard.registry.compress import compressed_stream
from dockyard.registry.errors import NetworkError, TLSError
from dockyard.registry.transport import NETWORK_ERRORS
from dockyard.store.images import ImageLayer
from dockyard.store.store import Store

Emit = Callable[[dict[str, Any]], None]
RETRYABLE: tuple[type[BaseException], ...] = (Unavailable, *NETWORK_ERRORS)
CONCURRENT_UPLOADS = 5  # Docker's max-concurrent-uploads
DEFAULT_CHUNK = 64 << 20
ZSTD_TYPES = frozenset({OCI_LAYER_ZSTD})


def chunk_size() -> int:
    """Blobs above this go up in chunks of this size (``DOCKYARD_UPLOAD_CHUNK_SIZE``); a
    stream being compressed goes up in one request unless the variable is set."""
    try:
        value = os.environ.get("DOCKYARD_UPLOAD_CHUNK_SIZE")
        return max(1024, int(value)) if value else DEFAULT_CHUNK
    except ValueError:
        return DEFAULT_CHUNK


class Pushed(NamedTuple):
    digest: str
    size: int
    media_type: str


class _Pusher:
    def __init__(
        self,
        store: Store,
        client: RegistryClient,
        repo: str,
        emit: Emit,
        compression: str | None = None,
    ):
        self.store = store
        self.client = client
        self.repo = repo
        self.registry = client.endpoint.name
        self.emit_raw = emit
        self.lock = threading.Lock()
        self.blobmap = BlobMap(store.root)
        self.chunk = chunk_size()
        self.uploaded = 0
        self.mounted_from: list[str] = []
        # What a layer compressed here becomes, and which blobs may stand for it: without
        # --compression, the stored blob whatever its compression, else gzip ones only.
        self.compression = compression or GZIP
        self.reusable = ZSTD_TYPES if self.compression == ZSTD else GZIP_LAYER_TYPES
        self.reusable_stored = self.reusable if compression else GZIP_LAYER_TYPES | ZSTD_TYPES

    def emit(self, msg: dict[str, Any]) -> None:
        with self.lock:
            self.emit_raw(msg)

    # ------------------------------------------------------------ per layer

    def candidates(self, layer: ImageLayer, media_type: str) -> list[KnownBlob]:
        """Compressed blobs known to carry this layer in a compression this push may send,
        the stored one first."""
        out: list[KnownBlob] = []
        if media_type in self.reusable_stored:
            out.append(KnownBlob(layer.blob, self.store.content.size(layer.blob), media_type, {}))
        for known in self.blobmap.lookup(layer.diff_id):
            if out and out[0].digest == known.digest:
                out[0] = known._replace(media_type=out[0].media_type)
            elif known.media_type in self.reusable:
                out.append(known)
        return out

    def push_layer(self, layer: ImageLayer, media_type: str) -> Pushed:
        """Runs in a worker thread: files and HTTP only, no metadata DB."""
        ident = short_id(layer.diff_id)
        known = self.candidates(layer, media_type)
        stored = known[0] if known and known[0].digest == layer.blob else None
        # 1. Already in the target repository?
        for k in known:
            if self.client.head_blob(self.repo, k.digest) is not None:
                self.emit(progress_message("Layer already exists", ident))
                return self._done(layer, Pushed(k.digest, k.size, k.media_type))
        # 2. In another repository of this registry: mount it.
        location = None
        for k in known:
            for source in k.repos.get(self.registry, [])[:3]:
                if source == self.repo:
                    continue
                location = self.client.start_upload(self.repo, k.digest, source)
                if location is None:
                    with self.lock:
                        self.mounted_from.append(source)
                    self.emit(progress_message(f"Mounted from {source}", ident))
                    return self._done(layer, Pushed(k.digest, k.size, k.media_type))
                break
            if location:
                break
        # 3. Upload; after a dropped or stalled connection or a 5xx, again from the start of
        # a new upload session (a registry may have kept nothing of the failed one). This
        # loop is the one that retries: each request in it is tried once.
        tries = attempts()
        for attempt in range(tries):
            try:
                if location is None:
                    location = self.client.new_upload(self.repo, tries=1)
                if stored is not None:
                    pushed = self._upload_stored(location, stored, ident)
                else:
                    pushed = self._upload_compressed(location, layer, ident)
                break
            except TLSError:
                raise  # the same handshake fails the same way
            except RETRYABLE as e:
                if attempt + 1 >= tries:
                    if isinstance(e, Unavailable) and not isinstance(e, NetworkError):
                        raise  # the registry's own answer (a 5xx body) says it best
                    what = f"blob {stored.digest}" if stored else f"layer {layer.diff_id}"
                    reason = (
                        e.reason
                        if isinstance(e, NetworkError)
                        else network_reason(e, self.client.endpoint.netloc)
                    )
                    raise NetworkError(f"{what}: {reason}{after(tries)}", reason) from None
                location = None
                wait = backoff(attempt)
                self.emit(progress_message(f"Retrying in {wait:g} seconds", ident))
                self.client.clock.sleep(wait)
        self.emit(progress_message("Pushed", ident))
        return self._done(layer, pushed)

    def _done(self, layer: ImageLayer, pushed: Pushed) -> Pushed:
        try:
            self.blobmap.record(
                [
                    (
                        layer.diff_id,
                        pushed.digest,
                        pushed.size,
                        pushed.media_type,
                        self.registry,
                        self.repo,
                    )
                ]
            )
        except OSError:
            pass
        return pushed

    def _upload_stored(self, location: str, blob: KnownBlob, ident: str) -> Pushed:
        size = blob.size
        with self.store.content.open(blob.digest) as f:
            if size <= self.chunk:
                data = f.read()
                self.client.finish_upload(self.repo, location, blob.digest, data, tries=1)
                self.uploaded += 1
                return Pushed(blob.digest, size, blob.media_type)
            sent = 0
            while sent < size:
                data = f.read(self.chunk)
                location = self.client.patch(self.repo, location, data, sent, len(data), tries=1)
                sent += len(data)
                self.emit(progress_message("Pushing", ident, sent, size))
        self.client.finish_upload(self.repo, location, blob.digest, tries=1)
        self.uploaded += 1
        return Pushed(blob.digest, size, blob.media_type)

    def _upload_compressed(self, location: str, layer: ImageLayer, ident: str) -> Pushed:
        h = hashlib.sha256()
        counted = [0, 0]  # compressed bytes, uncompressed bytes read
        total = layer.tar_size or self.store.content.size(layer.blob)
        clock = self.client.clock
        last = [clock.monotonic()]

        # A stored blob in another compression is unpacked first (``--compression``).
        with self.store.content.open(layer.blob) as blob, open_decompressed(blob) as raw:

            class Counting:
                def read(self, n: int = -1) -> bytes:
                    data = raw.read(n)
                    counted[1] += len(data)
                    return data

            def body() -> Iterator[bytes]:
                for piece in compressed_stream(Counting(), self.compression):  # type: ignore[arg-type]
                    h.update(piece)
                    counted[0] += len(piece)
                    now = clock.monotonic()
                    if now - last[0] > 0.1:
                        last[0] = now
                        self.emit(progress_message("Pushing", ident, counted[1], total))
                    yield piece

            if os.environ.get("DOCKYARD_UPLOAD_CHUNK_SIZE"):
                buf = b""
                sent = 0
                for piece in body():
                    buf += piece
                    while len(buf) >= self.chunk:
                        part, buf = buf[: self.chunk], buf[self.chunk :]
                        location = self.client.patch(
                            self.repo, location, part, sent, len(part), tries=1
                        )
                        sent += len(part)
                if buf:
                    location = self.client.patch(self.repo, location, buf, sent, len(buf), tries=1)
            else:
                location = self.client.patch(self.repo, location, body(), tries=1)
        digest = "sha256:" + h.hexdigest()
        self.client.finish_upload(self.repo, location, digest, tries=1)
        self.uploaded += 1
        media_type = OCI_LAYER_ZSTD if self.compression == ZSTD else DOCKER_LAYER_GZIP
        return Pushed(digest, counted[0], media_type)

    def push_config(self, image_id: str, raw: bytes) -> None:
        if self.client.head_blob(self.repo, image_id) is not None:
            return
        location = None
        for source in dict.fromkeys(self.mounted_from):
            # The layers came from there, so the config likely did too.
            location = self.client.start_upload(self.repo, image_id, source)
            if location is None:
                return
            self.client.cancel_upload(self.repo, location)
            break
        location = self.client.new_upload(self.repo)
        self.client.finish_upload(self.repo, location, image_id, raw)
        self.uploaded += 1


def push_image(
    store: Store,
    client: RegistryClient,
    ref: Reference,
    emit: Emit,
    compression: str | None = None,
) -> tuple[str, int, int]:
    """Push local image ``ref`` (which must carry a tag); ``compression`` (gzip or zstd) is
    the one every layer must go up in (None: any known blob, else gzip). Returns (manifest
    digest, manifest size, blobs uploaded)."""
    assert ref.tag
    try:
        image_id = store.images.resolve(str(ref))
    except NotFound:
        raise NotFound(f"An image does not exist locally with the tag: {ref.familiar_name()}")
    try:
        return _push(store, client, ref, image_id, emit, compression)
    except NetworkError as e:
        raise NetworkError(f"push {ref.familiar()}: {e}", e.reason) from None


def _push(
    store: Store,
    client: RegistryClient,
    ref: Reference,
    image_id: str,
    emit: Emit,
    compression: str | None,
) -> tuple[str, int, int]:
    assert ref.tag
    repo = ref.repository
    layers = store.images.layers(image_id)
    pusher = _Pusher(store, client, repo, emit, compression)
    for la in layers:
        emit(progress_message("Preparing", short_id(la.diff_id)))
    config_raw = store.content.read(image_id)
    with store.lock.shared():
        if layers:
            with ThreadPoolExecutor(min(CONCURRENT_UPLOADS, len(layers))) as pool:
                types = [store.images.blob_media_type(la.blob) for la in layers]
                futures = [
                    pool.submit(pusher.push_layer, la, t)
                    for la, t in zip(layers, types, strict=True)
                ]
                pushed = []
                error: BaseException | None = None
                for fut in futures:
                    exc = fut.exception()
                    if exc is not None:
                        error = error or exc
                    else:
                        pushed.append(fut.result())
                if error is not None:
                    raise error
        else:
            pushed = []
        pusher.push_config(image_id, config_raw)
        raw, media_type = _manifest_for(store, image_id, config_raw, pushed)
        digest = client.put_manifest(repo, ref.tag, raw, media_type)
    with store.db.transaction() as c:
        c.execute(
            "INSERT OR REPLACE INTO repo_digests (name, image_id) VALUES (?, ?)",
            (f"{ref.name}@{digest}", image_id),
        )
    emit(progress_message(f"{ref.tag}: digest: {digest} size: {len(raw)}"))
    # What Docker's daemon sends after it: clients (docker-py, Compose) read the digest here.
    emit({"progressDetail": {}, "aux": {"Tag": ref.tag, "Digest": digest, "Size": len(raw)}})
    return digest, len(raw), pusher.uploaded


def _manifest_for(
    store: Store, image_id: str, config_raw: bytes, pushed: list[Pushed]
) -> tuple[bytes, str]:
    """The stored manifest when it names exactly what we pushed (its digest stays the one
    the image was pulled with); else a Docker schema2 manifest (OCI if a layer is zstd)."""
    try:
        stored = store.images.manifest(image_id)
        raw = store.content.read(store.images.get(image_id).manifest)
        if stored.config.digest == image_id and [d.digest for d in stored.layers] == [
            p.digest for p in pushed
        ]:
            return raw, stored.media_type
    except Exception:  # noqa: BLE001 - an unreadable stored manifest: build a new one
        pass
    oci = any(p.media_type in ZSTD_TYPES for p in pushed)
    gzip_type = OCI_LAYER_GZIP if oci else DOCKER_LAYER_GZIP
    config = Descriptor(OCI_CONFIG if oci else DOCKER_CONFIG, image_id, len(config_raw))
    layers = tuple(
        Descriptor(
            gzip_type if p.media_type in GZIP_LAYER_TYPES else p.media_type, p.digest, p.size
        )
        for p in pushed
    )
    manifest = Manifest(config, layers, OCI_MANIFEST if oci else DOCKER_MANIFEST)
    return manifest.to_bytes(), manifest.media_type
