"""Registry failures that the shared hierarchy has no class for."""

from __future__ import annotations

from dockyard.errors import DockyardError, Unavailable


class Unauthorized(DockyardError):
    """The registry refused our credentials, or we have none it accepts (401/403)."""

    http_status = 401


class TLSError(Unavailable):
    """The TLS handshake failed for a reason that trying again cannot change (a refused
    client certificate, no common cipher): never retried."""


class CertificateError(TLSError):
    """The registry's TLS certificate did not verify (an x509 error, in Go's words)."""


class NetworkError(Unavailable):
    """A registry could not be reached, or stopped sending or taking data, and retries did not
    help. ``reason`` is the last failure alone (``no data from host:port for 30s``), for a
    caller that words the message around what it was fetching."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason or message
