"""The one exception hierarchy of dockyard.

Each class maps once to an HTTP status (api/) and to a CLI exit code and a one-line
``Error: ...`` message (cli/). Docker uses 125 for engine errors; 126 and 127 are reserved
for "cannot invoke" and "command not found" inside a container.
"""

from __future__ import annotations


class DockyardError(Exception):
    """Base of every expected failure. ``str(err)`` is the one-line message for users."""

    http_status = 500
    exit_code = 125


class InvalidArgument(DockyardError):
    """Bad user input: a malformed reference, flag or Dockerfile."""

    http_status = 400


class NotFound(DockyardError):
    """An image, container, volume, network or blob that does not exist."""

    http_status = 404


class Conflict(DockyardError):
    """The request clashes with current state: a name in use, an image in use."""

    http_status = 409


class Unavailable(DockyardError):
    """A resource the engine needs is not there: a runtime binary, a registry, a lock."""

    http_status = 503


class NotSupported(DockyardError):
    """What the object cannot do by its nature (Docker's errdefs.NotImplemented): reading the
    log of a container whose log driver keeps none."""

    http_status = 501


class CorruptData(DockyardError):
    """Content that fails verification: a wrong digest, a truncated or malformed archive."""

    http_status = 400


class UnsafeContent(CorruptData):
    """An archive entry that would escape its root or create something forbidden."""


class CommandNotFound(DockyardError):
    """The container's command does not exist (Docker: exit 127; the API's 400)."""

    http_status = 400
    exit_code = 127


class CommandNotExecutable(DockyardError):
    """The container's command exists but cannot be invoked (Docker: exit 126; the API's 400)."""

    http_status = 400
    exit_code = 126
