"""Everything on disk: content store, metadata DB, snapshots, locks, garbage collection,
the event journal.

``Store`` is loaded on first use (PEP 562): a container's monitor imports the event
journal's writer (store/journal.py) and must not load the metadata DB's modules with it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.store.store import Store

__all__ = ["Store"]


def __getattr__(name: str) -> object:
    if name == "Store":
        from dockyard.store.store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
