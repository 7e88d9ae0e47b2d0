"""The registry client's clock: what retries wait with and progress is throttled by.

A seam (STYLE 17): the client takes a ``Clock``, so retry and backoff logic is tested with a
clock whose ``sleep`` only advances its own time, in microseconds, against real servers.
Socket timeouts are not on this clock: they are the kernel's, and the transport owns them.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes back."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
