"""``functools.cached_property`` without importing functools.

``functools`` imports ``collections`` (with ``operator``, ``keyword``, ``reprlib``): ~3 ms of
the start-up of small commands that need none of it (see dockyard/sqlite.py). Modules import
this one at run time and functools' under ``TYPE_CHECKING``, so type checkers see the real
descriptor::

    if TYPE_CHECKING:
        from functools import cached_property
    else:
        from dockyard.cached import cached_property

As functools', the value goes into the instance's ``__dict__`` under the same name (a
non-data descriptor: later reads find it there, ``del`` makes it computed again).
"""

from __future__ import annotations


class cached_property:  # noqa: N801 - functools' name
    def __init__(self, func):  # type: ignore[no-untyped-def]
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner, name):  # type: ignore[no-untyped-def]
        self.name = name

    def __get__(self, obj, owner=None):  # type: ignore[no-untyped-def]
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value
