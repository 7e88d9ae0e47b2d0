"""SQLite's C module, loaded without importing functools.

The store uses ``_sqlite3``, not the ``sqlite3`` package: the package adds only the
(deprecated) datetime adapters, which the store does not use, and its ``import datetime``
costs ~1.5 ms. ``_sqlite3`` imports ``functools`` when it loads, only to take ``lru_cache``
for each connection's statement cache; ``functools`` imports ``collections`` (with
``operator``, ``keyword``, ``reprlib``): ~3 ms of every command that opens the store, on
paths (``inspect``, ``ps``, ``images``...) benchmarked against the docker CLI. Loading it here
hands it a module that has just ``lru_cache``, built on the C cache ``functools.lru_cache``
itself uses (``_functools._lru_cache_wrapper``), and takes that module out of
``sys.modules`` again, so a later ``import functools`` gets the real one. When functools is
already loaded, or the stand-in is not enough for this Python, the ordinary way is taken.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _lru_cache(maxsize: int | None = 128, typed: bool = False) -> Callable[[Any], Any]:
    import _functools  # type: ignore[import-not-found]  # CPython's C half of functools

    def wrap(func: Any) -> Any:
        # cache_info_type is only used by cache_info(), which the C module never calls.
        return _functools._lru_cache_wrapper(func, maxsize, typed, tuple)

    return wrap


def _load() -> Any:
    if "functools" not in sys.modules and "_sqlite3" not in sys.modules:
        stand_in = type(sys)("functools")
        stand_in.lru_cache = _lru_cache  # type: ignore[attr-defined]
        sys.modules["functools"] = stand_in
        try:
            import _sqlite3

            return _sqlite3
        except Exception:  # noqa: BLE001 - a Python whose module wants more: the ordinary way
            sys.modules.pop("_sqlite3", None)
        finally:
            if sys.modules.get("functools") is stand_in:
                del sys.modules["functools"]
    import _sqlite3

    return _sqlite3


if TYPE_CHECKING:
    import _sqlite3 as sqlite3
else:
    sqlite3 = _load()

__all__ = ["sqlite3"]
