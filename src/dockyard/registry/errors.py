"""Registry failures that the shared hierarchy has no class for."""

from __future__ import annotations

from dockyard.errors import DockyardError


class Unauthorized(DockyardError):
    """The registry refused our credentials, or we have none it accepts (401/403)."""

    http_status = 401
