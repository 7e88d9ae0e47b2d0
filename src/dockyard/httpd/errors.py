"""What the server layer raises: an HTTP error a front end renders, and a client that left."""

from __future__ import annotations


class HTTPError(Exception):
    """An error answered with ``status``. The front end's error hook renders the body
    (``{"message": ...}`` for the Engine API, the distribution spec's ``{"errors": [...]}`` for
    the hub). ``close``: the connection cannot carry another request after it (the request's
    framing is broken, or its body was left unread)."""

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


class BodyTooLarge(HTTPError):
    """The request body is larger than the route accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body too large (more than {limit} bytes)")
        self.limit = limit


class ClientGone(Exception):
    """The client closed the connection (or stalled past a timeout) in the middle of a
    request or a reply: nothing more can be said to it."""
