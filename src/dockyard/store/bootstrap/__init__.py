"""``dockyard image bootstrap``: base images made on this machine, with no image registry.

``busybox`` comes from the host's static busybox (busybox.py, offline); ``debian``, ``node``
and ``python`` are assembled from Debian's packages with mmdebstrap (debian.py, recipes.py),
through a cache outside the store (cache.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dockyard.store.bootstrap.busybox import bootstrap_busybox

if TYPE_CHECKING:
    from collections.abc import Callable

    from dockyard.store.bootstrap.debian import BootstrapOptions
    from dockyard.store.store import Store

__all__ = ["bootstrap", "bootstrap_busybox"]


def bootstrap(
    store: Store,
    name: str,
    options: BootstrapOptions,
    progress: Callable[[dict[str, Any]], None],
) -> tuple[str, list[str]]:
    """Make image ``name`` in ``store``; its ID and the tags it got."""
    if name in ("busybox", "busybox:latest"):
        return bootstrap_busybox(store), ["busybox:latest"]
    from dockyard.store.bootstrap.debian import bootstrap_debian

    return bootstrap_debian(store, name, options, progress)
