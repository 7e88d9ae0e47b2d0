"""Everything on disk: content store, metadata DB, snapshots, locks, garbage collection."""

from dockyard.store.store import Store

__all__ = ["Store"]
