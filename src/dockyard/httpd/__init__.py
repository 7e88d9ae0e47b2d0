"""The HTTP/1.1 server layer of ``dockyard daemon`` (the Engine API on a Unix socket) and
``dockyard hub serve`` (the registry on TCP, optionally TLS).

Hand-written on sockets rather than on ``http.server``: the stdlib server has no limits or
timeouts of its own and its import (email, http.client, ...) cost both servers start-up time;
see docs/architecture.md for the figures. It imports nothing from the rest of dockyard.
"""

from __future__ import annotations

from dockyard.httpd.errors import BodyTooLarge, ClientGone, HTTPError
from dockyard.httpd.jsonbody import JSONError, loads
from dockyard.httpd.request import Request
from dockyard.httpd.router import Match, Router
from dockyard.httpd.server import App, Connection, Server, Worker, listen_tcp, listen_unix
from dockyard.httpd.wire import Headers, Limits, Reader

__all__ = [
    "App",
    "BodyTooLarge",
    "ClientGone",
    "Connection",
    "HTTPError",
    "Headers",
    "JSONError",
    "Limits",
    "Match",
    "Reader",
    "Request",
    "Router",
    "Server",
    "Worker",
    "listen_tcp",
    "listen_unix",
    "loads",
]
