"""The store lock: adders share it, collectors take it alone.

Anything that adds content (load, import, pull, build, commit) holds it shared from its first
blob write until its rows are committed; anything that deletes files (rmi, prune, repair) holds
it exclusively. So a collector never removes a blob that an adder is about to reference.
"""

from __future__ import annotations

import fcntl
import os


class StoreLock:
    def __init__(self, root: str):
        self.path = os.path.join(root, "store.lock")

    def shared(self) -> Held:
        return Held(self.path, fcntl.LOCK_SH)

    def exclusive(self) -> Held:
        return Held(self.path, fcntl.LOCK_EX)


class Held:
    """The lock held for a ``with`` block (flock on a file of its own, released when the block
    ends). A class rather than ``contextlib.contextmanager``: contextlib is ~1.5 ms of the
    start-up of ``images`` and ``system df``, which load this module without locking."""

    __slots__ = ("path", "mode", "fd")

    def __init__(self, path: str, mode: int) -> None:
        self.path = path
        self.mode = mode
        self.fd = -1

    def __enter__(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, self.mode)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def __exit__(self, kind: object, value: object, tb: object) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)
