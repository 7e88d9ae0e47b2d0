"""The Docker Engine API (v1.41) over the engine, on a Unix socket: ``dockyard daemon``.

A front end like cli/: each route calls one engine method and renders Docker's shapes.
"""

from __future__ import annotations

from dockyard.api.daemon import serve, socket_path

__all__ = ["serve", "socket_path"]
