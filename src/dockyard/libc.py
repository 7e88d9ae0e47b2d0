"""libc functions by name, called through ``_ctypes``: without the ``ctypes`` package, which
costs ~1.5 ms of start-up (and ~0.5 MB of a monitor's memory) for the few calls dockyard
makes (mount, umount2, prctl, setns, unshare). Outside the layers, like sqlite.py: the
store, the runtime and the network code all call it. Arguments are ints and bytes
(``char *``); results are C ints; errno is kept for :func:`errno` after each call."""

from __future__ import annotations

import _ctypes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["errno", "function"]


class _Int(_ctypes._SimpleCData):  # type: ignore[type-arg]
    _type_ = "i"


class _Function(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


_functions: dict[str, Callable[..., int]] = {}


def function(name: str) -> Callable[..., int]:
    """The libc function ``name`` (looked up once; the program's own symbols include libc)."""
    fn = _functions.get(name)
    if fn is None:
        handle = _ctypes.dlopen(None)  # type: ignore[arg-type]  # NULL: the program itself
        fn = _functions[name] = _Function(_ctypes.dlsym(handle, name))
    return fn


def errno() -> int:
    """errno as the last call through :func:`function` on this thread left it."""
    return int(_ctypes.get_errno())
