"""Registry failures that the shared hierarchy has no class for."""

from __future__ import annotations

from dockyard.errors import DockyardError, Unavailable


class Unauthorized(DockyardError):
    """The registry refused our credentials, or we have none it accepts (401/403)."""

    http_status = 401


class CertificateError(Unavailable):
    """The registry's TLS certificate did not verify (an x509 error, in Go's words)."""
