"""``cached_property`` without a lock: computed on first access, then an instance attribute.

functools' (Python 3.8 to 3.11) takes one lock per property for every instance of the class:
the daemon's workers, each with an engine of its own, waited on each other's first
``engine.store`` or ``engine.containers`` (17 s of 150 runs' time under 50 docker-py
clients). Python 3.12 dropped that lock for the same reason; this is its behaviour. Two
threads reading the same instance's property at once may both compute it: none of ours is
shared between threads while it is first read. Type checkers see functools' (the same
interface); nothing of typing is imported at run time (the CLI's start-up is measured), nor
functools, whose collections import is ~3 ms of a small command (see dockyard/sqlite.py).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from functools import cached_property as cached_property
else:

    class cached_property:  # noqa: N801 - a drop-in for functools'
        def __init__(self, func):
            self.func = func
            self.name = func.__name__
            self.__doc__ = func.__doc__

        def __set_name__(self, owner, name):
            self.name = name

        def __get__(self, instance, owner=None):
            if instance is None:
                return self
            value = self.func(instance)
            instance.__dict__[self.name] = value
            return value
