"""The Docker Engine API (v1.24 to v1.45) over the engine, on a Unix socket: ``dockyard daemon``.

A front end like cli/: each route calls one engine method and renders Docker's shapes.
"""

from __future__ import annotations

from dockyard.api.daemon import serve, socket_path

__all__ = ["serve", "socket_path"]
