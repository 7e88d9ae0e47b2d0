"""The hub: dockyard's own registry server (``dockyard hub serve``).

The OCI distribution API with accounts, Docker-style bearer tokens, v1 search, stars and
descriptions, and garbage collection that is safe while pushes are in flight. It keeps its
own data dir (blobs on the filesystem, metadata in SQLite) and does not touch the engine's
image store.
"""

from __future__ import annotations

from dockyard.registry.hub.gc import GCReport, collect
from dockyard.registry.hub.store import HubStore

__all__ = ["GCReport", "HubStore", "collect"]
