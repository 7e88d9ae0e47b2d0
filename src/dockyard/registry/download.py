"""Blob downloads into the content store that survive dropped connections and killed pulls.

A download writes ``content/ingest/<pid>-pull-<hex>``, hashing as it goes. When the
connection drops or stalls (the transport's stall timeout), it asks again with
``Range: bytes=<have>-`` (a registry that ignores the range sends the whole blob and we start
over), a bounded number of times. When the process dies, the partial file stays:
the next pull of the same blob claims it (its writer's pid is gone) and resumes from its end.
Only a blob whose size and digest match is renamed into ``blobs/``; anything else is
deleted, so nothing corrupt is ever visible.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from dockyard.errors import CorruptData, Unavailable
from dockyard.image.digest import CHUNK, hex_of
from dockyard.registry.client import RegistryClient, attempts, backoff, network_reason
from dockyard.registry.errors import NetworkError, TLSError
from dockyard.registry.transport import NETWORK_ERRORS
from dockyard.store.content import ContentStore, writer_alive

Progress = Callable[[int, int], None]
RETRYABLE: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, Unavailable)


class _Partial:
    def __init__(self, content: ContentStore, digest: str):
        self.content = content
        self.digest = digest
        suffix = f"-pull-{hex_of(digest)}"
        self.path = os.path.join(content.ingest_dir, f"{os.getpid()}-{os.urandom(4).hex()}{suffix}")
        self.resumed_from = 0
        for name in sorted(os.listdir(content.ingest_dir)):
            old = os.path.join(content.ingest_dir, name)
            if name.endswith(suffix) and not writer_alive(old):
                try:
                    os.rename(old, self.path)  # claims it: another puller's rename now fails
                    break
                except FileNotFoundError:
                    continue
        self.f = open(self.path, "ab+")  # noqa: SIM115 - closed by finish/keep/discard
        self.hash = hashlib.sha256()
        self.f.seek(0)
        while chunk := self.f.read(CHUNK):
            self.hash.update(chunk)
        self.size = self.resumed_from = self.f.tell()

    def write(self, data: bytes) -> None:
        self.hash.update(data)
        self.f.write(data)
        self.f.flush()  # on disk at once: a killed pull resumes from every byte it received
        self.size += len(data)

    def restart(self) -> None:
        self.f.seek(0)
        self.f.truncate()
        self.hash = hashlib.sha256()
        self.size = 0

    def finish(self) -> None:
        got = "sha256:" + self.hash.hexdigest()
        if got != self.digest:
            self.discard()
            raise CorruptData(f"digest mismatch for blob: expected {self.digest}, got {got}")
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        final = self.content.path(self.digest)
        if os.path.exists(final):
            os.unlink(self.path)
        else:
            os.rename(self.path, final)
            self.content.sync_dir()

    def keep(self) -> None:
        """Leave the partial file for the next pull to resume."""
        self.f.flush()
        self.f.close()

    def discard(self) -> None:
        self.f.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def fetch_blob(
    client: RegistryClient,
    content: ContentStore,
    repo: str,
    digest: str,
    size: int,
    progress: Progress | None = None,
    on_retry: Callable[[float], None] | None = None,
) -> int:
    """Download ``repo``'s blob ``digest`` (``size`` bytes, from the manifest) into the
    content store. Returns how many bytes were resumed from an earlier attempt.

    Every failure to get bytes (a refused or stalled connection, a drop mid-body, a 5xx)
    counts against ``attempts()``; each retry waits ``backoff`` on the client's clock
    (``on_retry`` hears how long) and resumes with Range from what is on disk. When they
    are spent, the error names the blob and the registry, and the partial file stays for the
    next pull."""
    if content.has(digest):
        return 0
    part = _Partial(content, digest)
    ok = False
    try:
        if part.size > size:
            part.restart()
        tries, failures = attempts(), 0
        fresh_retry = part.resumed_from > 0
        while True:
            if part.size == size:
                try:
                    part.finish()
                    ok = True
                    return part.resumed_from
                except CorruptData:
                    if not fresh_retry:
                        raise
                    # The partial data we resumed from was bad: one clean download.
                    fresh_retry = False
                    part = _Partial(content, digest)
                    part.restart()
                    continue
            try:
                _receive(client, part, repo, digest, size, progress)
            except RETRYABLE as e:
                if isinstance(e, TLSError):
                    raise
                failures += 1
                if failures >= tries:
                    if isinstance(e, Unavailable) and not isinstance(e, NetworkError):
                        raise  # the registry's own answer (a 5xx body) says it best
                    reason = _reason(e, client)
                    notes = [f"after {tries} attempts"] if tries > 1 else []
                    if part.size:
                        notes.append(f"{part.size} of {size} bytes kept for the next pull")
                    note = f" ({'; '.join(notes)})" if notes else ""
                    raise NetworkError(f"blob {digest}: {reason}{note}", reason) from None
                wait = backoff(failures - 1)
                if on_retry:
                    on_retry(wait)
                client.clock.sleep(wait)
    except CorruptData:
        part.discard()  # wrong bytes are never kept, not even for a resume
        raise
    finally:
        if not ok and not part.f.closed:
            # A short, so far correct file: the next pull resumes from its end.
            if 0 < part.size < size:
                part.keep()
            else:
                part.discard()


def _reason(e: BaseException, client: RegistryClient) -> str:
    if isinstance(e, NetworkError):
        return e.reason
    return network_reason(e, client.endpoint.netloc)


def _receive(
    client: RegistryClient,
    part: _Partial,
    repo: str,
    digest: str,
    size: int,
    progress: Progress | None,
) -> None:
    # One attempt: fetch_blob's loop is the one that retries (and resumes).
    resp = client.open_blob(repo, digest, part.size, tries=1)
    try:
        if resp.status == 200 and part.size:
            part.restart()  # the registry sent the whole blob
        elif resp.status == 206:
            start = resp.header("Content-Range").removeprefix("bytes ").split("-", 1)[0]
            if not start.isdigit() or int(start) != part.size:
                part.restart()
                raise ConnectionResetError(f"blob {digest}: the registry answered another range")
        clock = client.clock
        last = clock.monotonic()
        for chunk in resp.iter_bytes():
            if part.size + len(chunk) > size:
                raise CorruptData(
                    f"blob {digest} from {repo} is larger than the {size} bytes its manifest "
                    "declares"
                )
            part.write(chunk)
            if progress and clock.monotonic() - last > 0.1:
                last = clock.monotonic()
                progress(part.size, size)
        if part.size < size:
            raise ConnectionResetError(
                f"{client.endpoint.netloc} closed the connection after {part.size} of {size} bytes"
            )
    finally:
        resp.close()
    if progress:
        progress(part.size, size)
