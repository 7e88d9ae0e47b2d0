"""Frozen, slotted dataclasses without importing ``dataclasses`` at run time.

The model's classes are written as ``@dataclass(frozen=True, slots=True)`` and type checkers
see the standard library's decorator (see ``model/__init__.py``'s import switch). At run time
this module builds the same classes: ``__slots__``, an ``__init__`` taking the fields
positionally or by keyword with their defaults (``field(default_factory=...)`` included),
``__eq__``/``__hash__`` over the fields, ``__repr__``, and assignment refused with
``FrozenInstanceError``. The reason is start-up time: ``import dataclasses`` pulls in
``inspect`` (and with it ``ast``, ``dis``, ``tokenize``): 5-10 ms measured on this machine,
on every ``dockyard run`` and ``exec``, which the project's benchmarks count.
tests/model/test_values.py holds both implementations to the same behaviour.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms (see engine/containers)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["FrozenInstanceError", "NamedTuple", "dataclass", "field", "fields", "replace"]


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen instance (the name ``dataclasses`` uses)."""


_MISSING = object()


class Field:
    """A field's name and default (``_MISSING`` when it has none)."""

    __slots__ = ("name", "default", "default_factory")

    def __init__(
        self, default: Any = _MISSING, default_factory: Any = _MISSING, name: str = ""
    ) -> None:
        self.name = name
        self.default = default
        self.default_factory = default_factory

    def __repr__(self) -> str:
        return f"Field(name={self.name!r})"


def field(*, default: Any = _MISSING, default_factory: Callable[[], Any] | Any = _MISSING) -> Any:
    return Field(default, default_factory)


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _bind(where: str, index: dict[str, int], args: Any, kwargs: dict[str, Any]) -> list[Any]:
    """The call's arguments on the fields' places (``index``: name -> place), ``_MISSING``
    where none was given; Python's errors for too many, unknown or repeated ones."""
    count = len(index)
    if len(args) > count:
        raise TypeError(
            f"{where} takes {count + 1} positional arguments but {len(args) + 1} were given"
        )
    values = list(args) + [_MISSING] * (count - len(args))
    for key, value in kwargs.items():
        i = index.get(key)
        if i is None:
            raise TypeError(f"{where} got an unexpected keyword argument {key!r}")
        if i < len(args):
            raise TypeError(f"{where} got multiple values for argument {key!r}")
        values[i] = value
    return values


def _make_init(
    cls_name: str,
    names: tuple[str, ...],
    required: tuple[str, ...],
    factories: tuple[tuple[str, Any], ...],
) -> Callable[..., None]:
    """An ``__init__`` that stores what the call gives and what a factory makes; a field left
    to a plain default is read from the class (see :func:`dataclass`)."""
    index = {n: i for i, n in enumerate(names)}
    setter = object.__setattr__
    where = f"{cls_name}.__init__()"

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if args:
            kwargs = _positional(where, index, names, args, kwargs)
        for key, value in kwargs.items():
            if key not in index:
                raise TypeError(f"{where} got an unexpected keyword argument {key!r}")
            setter(self, key, value)
        for name, factory in factories:
            if name not in kwargs:
                setter(self, name, factory())
        for name in required:
            if name not in kwargs:
                raise TypeError(f"{where} missing 1 required positional argument: {name!r}")

    return __init__


def _positional(
    where: str, index: dict[str, int], names: tuple[str, ...], args: Any, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's positional and keyword arguments as keywords, with Python's errors for too
    many, unknown or repeated ones."""
    values = _bind(where, index, args, kwargs)
    return {n: v for n, v in zip(names, values, strict=True) if v is not _MISSING}


def dataclass(
    cls: type | None = None, /, *, frozen: bool = False, slots: bool = False, **_: Any
) -> Any:
    """``dataclasses.dataclass`` for the options the model uses (eq, frozen, slots).

    One deliberate difference: the class is not rebuilt with ``__slots__`` (``slots`` is
    accepted for type checkers). Building each class a second time was most of the model's
    import cost (~1 ms of every command), and an instance now holds only the fields its call
    gave (a stored row gives those that differ from their defaults): a plain default stays a
    class attribute and is read from there, which makes decoding a listing of many rows
    several times cheaper. Frozen instances refuse assignment as before."""

    def wrap(cls: type) -> type:
        # One pass over the annotations (one dict lookup and one Field a field: the model
        # builds ~20 classes of ~250 fields at every start of create, inspect, run).
        own = cls.__dict__
        specs: list[Field] = []
        seen_default = False
        for name, ann in own.get("__annotations__", {}).items():
            text = ann if ann.__class__ is str else getattr(ann, "__name__", "")
            if text.startswith(("ClassVar", "typing.ClassVar")):
                continue
            value = own.get(name, _MISSING)
            if value.__class__ is Field:
                f = value
                if f.default is _MISSING:
                    if f.default_factory is not _MISSING:
                        delattr(cls, name)  # a factory's value is the instance's own
                else:
                    setattr(cls, name, f.default)
                f.name = name
            else:
                f = Field(value, _MISSING, name)
            if f.default is _MISSING and f.default_factory is _MISSING:
                if seen_default:
                    raise TypeError(f"non-default argument {name!r} follows default argument")
            else:
                seen_default = True
            specs.append(f)
        # Inherited fields come first, as in dataclasses.
        base_specs: tuple[Field, ...] = ()
        for base in cls.__mro__[-1:0:-1]:
            base_specs = getattr(base, "__dataclass_fields_tuple__", base_specs)
        all_specs = (*base_specs, *specs)
        by_name = {}
        required = []
        factories = []
        for f in all_specs:
            by_name[f.name] = f
            if f.default is _MISSING:
                if f.default_factory is _MISSING:
                    required.append(f.name)
                else:
                    factories.append((f.name, f.default_factory))
        names = tuple(by_name)
        add = {
            "__dataclass_fields_tuple__": all_specs,
            "__dataclass_fields__": by_name,
            "__match_args__": names,
            "__init__": _make_init(cls.__name__, names, tuple(required), tuple(factories)),
        }

        def __repr__(self: Any) -> str:
            inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
            return f"{type(self).__qualname__}({inner})"

        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is not self.__class__:
                return NotImplemented
            return all(getattr(self, n) == getattr(other, n) for n in names)

        for key, method in (("__repr__", __repr__), ("__eq__", __eq__)):
            if key not in cls.__dict__:
                add[key] = method
        if frozen:

            def __hash__(self: Any) -> int:
                return hash(tuple(getattr(self, n) for n in names))

            add["__hash__"] = __hash__
            add["__setattr__"] = _frozen_setattr
            add["__delattr__"] = _frozen_delattr
        else:
            add["__hash__"] = None
        for key, value in add.items():
            setattr(cls, key, value)
        return cls

    return wrap if cls is None else wrap(cls)


def fields(obj: Any) -> tuple[Field, ...]:
    cls = obj if isinstance(obj, type) else type(obj)
    specs: tuple[Field, ...] = getattr(cls, "__dataclass_fields_tuple__")  # noqa: B009
    return specs


def replace(obj: Any, /, **changes: Any) -> Any:
    """A copy of ``obj`` with ``changes`` (the class's ``__init__`` checks them)."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    values.update(changes)
    return type(obj)(**values)


def _tuple_class(
    name: str, names: tuple[str, ...], defaults: tuple[Any, ...], ns: dict[str, Any]
) -> Any:
    """A tuple subclass as ``collections.namedtuple`` makes it (fields as C item getters,
    ``_fields``, ``_field_defaults``, ``_make``, ``_replace``, ``_asdict``, its repr), built
    without importing ``collections`` (with ``operator``, ``keyword``, ``reprlib``: ~2 ms)
    nor compiling a ``__new__`` per class (namedtuple's ``eval``: ~0.2 ms a class)."""
    from _collections import _tuplegetter  # type: ignore[import-not-found]  # namedtuple's own

    count = len(names)
    required = count - len(defaults)
    index = {n: i for i, n in enumerate(names)}
    new_tuple = tuple.__new__
    where = f"{name}.__new__()"

    def __new__(cls: Any, *args: Any, **kwargs: Any) -> Any:
        if not kwargs and len(args) == count:
            return new_tuple(cls, args)
        values = _bind(where, index, args, kwargs)
        for i in range(count):
            if values[i] is _MISSING:
                if i < required:
                    raise TypeError(f"{where} missing 1 required positional argument: {names[i]!r}")
                values[i] = defaults[i - required]
        return new_tuple(cls, values)

    def _make(cls: Any, iterable: Any) -> Any:
        result = new_tuple(cls, iterable)
        if len(result) != count:
            raise TypeError(f"Expected {count} arguments, got {len(result)}")
        return result

    def _replace(self: Any, /, **changes: Any) -> Any:
        values = [changes.pop(n, v) for n, v in zip(names, self, strict=True)]
        if changes:
            raise ValueError(f"Got unexpected field names: {list(changes)!r}")
        return new_tuple(type(self), values)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={v!r}" for n, v in zip(names, self, strict=True))
        return f"{type(self).__name__}({inner})"

    def _asdict(self: Any) -> dict[str, Any]:
        return dict(zip(names, self, strict=True))

    def __getnewargs__(self: Any) -> tuple[Any, ...]:
        return tuple(self)

    body: dict[str, Any] = {
        "__slots__": (),
        "__new__": __new__,
        "_make": classmethod(_make),
        "_replace": _replace,
        "__repr__": __repr__,
        "_asdict": _asdict,
        "__getnewargs__": __getnewargs__,
        "_fields": names,
        "_field_defaults": dict(zip(names[required:], defaults, strict=True)),
        "__match_args__": names,
        "__module__": ns["__module__"],
        "__qualname__": ns.get("__qualname__", name),
    }
    for i, n in enumerate(names):
        body[n] = _tuplegetter(i, f"Alias for field number {i}")
    for key, value in ns.items():
        if key not in names and key not in ("__annotations__", "__module__", "__qualname__"):
            body[key] = value
    return type(name, (tuple,), body)


class _NamedTupleMeta(type):
    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any]) -> Any:
        if not bases:
            return super().__new__(mcls, name, bases, ns)
        names = tuple(ns.get("__annotations__", {}))
        defaults = tuple(ns[n] for n in names if n in ns)
        return _tuple_class(name, names, defaults, ns)


class NamedTuple(metaclass=_NamedTupleMeta):
    """``typing.NamedTuple``'s class syntax over ``collections.namedtuple`` (fields from the
    annotations, defaults, methods and docstring kept), without ``import typing``: the image
    listing and inspect paths use it. Type checkers see typing's (the import switch)."""
