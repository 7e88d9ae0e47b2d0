"""The store lock: adders share it, collectors take it alone.

Anything that adds content (load, import, pull, build, commit) holds it shared from its first
blob write until its rows are committed; anything that deletes files (rmi, prune, repair) holds
it exclusively. So a collector never removes a blob that an adder is about to reference.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager


class StoreLock:
    def __init__(self, root: str):
        self.path = os.path.join(root, "store.lock")

    @contextmanager
    def _hold(self, mode: int) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def shared(self) -> AbstractContextManager[None]:
        return self._hold(fcntl.LOCK_SH)

    def exclusive(self) -> AbstractContextManager[None]:
        return self._hold(fcntl.LOCK_EX)
