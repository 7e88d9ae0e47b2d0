"""model/values.py builds the model's classes at run time in place of ``dataclasses`` (whose
import costs every command start-up): it must behave as ``dataclass(frozen=True,
slots=True)`` does, for the features the model uses."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.model import values
from tests.helpers import bare_python

ANNOTATIONS = {"a": "int", "b": "str", "c": "tuple[int, ...]", "d": "list[int]"}
BODY = {"b": "x", "c": (), "d": dataclasses.field(default_factory=list)}


def _ours_body() -> dict[str, object]:
    return {"b": "x", "c": (), "d": values.field(default_factory=list)}


def _classes() -> tuple[type, type]:
    ns = {"__annotations__": dict(ANNOTATIONS), "__module__": __name__}
    std = dataclasses.dataclass(frozen=True, slots=True)(type("Thing", (), {**ns, **BODY}))
    ours = values.dataclass(frozen=True, slots=True)(type("Thing", (), {**ns, **_ours_body()}))
    return std, ours


STD, OURS = _classes()
ints = st.integers(-5, 5)
args = st.tuples(ints, st.text(max_size=3), st.tuples(ints), st.lists(ints, max_size=2))


@given(args, args)
def test_construction_equality_hash_and_repr_match_dataclasses(x: tuple, y: tuple) -> None:
    s1, s2, o1, o2 = STD(*x), STD(*y), OURS(*x), OURS(*y)
    assert repr(o1) == repr(s1)
    assert (o1 == o2) == (s1 == s2)
    hx = (x[0], x[1], x[2], ())  # hashable values (a list field is not)
    assert hash(OURS(*hx)) == hash(STD(*hx))
    assert OURS(a=x[0], b=x[1], c=x[2], d=x[3]) == o1
    assert values.replace(o1, a=y[0]) == OURS(y[0], *x[1:])
    assert dataclasses.replace(s1, a=y[0]) == STD(y[0], *x[1:])


def test_defaults_and_factories() -> None:
    o, s = OURS(1), STD(1)
    assert (o.b, o.c, o.d) == (s.b, s.c, s.d) == ("x", (), [])
    assert OURS(1).d is not OURS(1).d  # a fresh list each time, as default_factory promises
    assert [f.name for f in values.fields(OURS)] == [f.name for f in dataclasses.fields(STD)]


def test_frozen() -> None:
    for o in (OURS(1), STD(1)):
        with pytest.raises(AttributeError):
            o.a = 2  # type: ignore[misc]
        with pytest.raises(AttributeError):
            del o.a  # type: ignore[misc]
        with pytest.raises(AttributeError):
            o.b = "y"  # type: ignore[misc]  # a default read from the class: still frozen
    with pytest.raises(AttributeError):  # (3.11's slotted dataclass raises TypeError here)
        OURS(1).other = 1  # type: ignore[attr-defined]


def test_not_slotted_an_instance_holds_what_its_call_gave() -> None:
    """The deliberate difference (see values.dataclass): the class is built once, without
    __slots__, and a plain default is read from the class, not stored per instance."""
    o = OURS(1, d=[2])
    assert not hasattr(STD(1), "__dict__") and "__slots__" not in vars(OURS)
    assert vars(o) == {"a": 1, "d": [2]}
    assert vars(OURS(1)) == {"a": 1, "d": []}  # a factory's value is the instance's own
    assert (o.b, o.c) == ("x", ()) and o == OURS(a=1, b="x", c=(), d=[2])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda cls: cls(), "missing 1 required positional argument: 'a'"),
        (lambda cls: cls(1, "x", (), [], 5), "positional arguments but 6 were given"),
        (lambda cls: cls(1, z=2), "unexpected keyword argument 'z'"),
        (lambda cls: cls(1, a=2), "multiple values for argument 'a'"),
    ],
)
def test_bad_calls_raise_typeerror_as_dataclasses_do(call: object, message: str) -> None:
    for cls in (STD, OURS):
        with pytest.raises(TypeError, match=re.escape(message)):
            call(cls)  # type: ignore[operator]


def test_non_default_after_default_is_refused() -> None:
    ns = {"__annotations__": {"a": "int", "b": "int"}, "a": 1, "__module__": __name__}
    for make in (dataclasses.dataclass(frozen=True), values.dataclass(frozen=True)):
        with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):
            make(type("Bad", (), dict(ns)))


def test_the_model_is_built_without_importing_dataclasses() -> None:

    code = (
        "import sys, dockyard.model.codec, dockyard.model.docker, dockyard.engine.containers;"
        "print('dataclasses' in sys.modules, 'inspect' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_named_tuple_class_syntax_matches_typing() -> None:
    """store/images.py and engine/images.py define their rows with values.NamedTuple (no
    ``import typing`` on the listing path): same tuple, fields, defaults, methods, docstring."""
    import typing

    def make(base: type) -> type:
        class Row(base):  # type: ignore[valid-type,misc]
            """A row."""

            name: str
            size: int = 0
            tags: tuple[str, ...] = ()

            def label(self) -> str:
                return f"{self.name}:{self.size}"

        return Row

    ours, theirs = make(values.NamedTuple), make(typing.NamedTuple)
    for cls in (ours, theirs):
        r = cls("a", 2)
        assert (r, r.tags, r.label(), r._fields, cls.__doc__) == (
            ("a", 2, ()),
            (),
            "a:2",
            ("name", "size", "tags"),
            "A row.",
        )
        assert r._replace(size=3) == ("a", 3, ())
        assert isinstance(r, tuple)
    assert repr(ours("a")) == repr(theirs("a"))
    import pickle

    for cls in (ours, theirs):
        r = cls(name="b", tags=("x",))
        assert r == ("b", 0, ("x",)) and r._asdict() == {"name": "b", "size": 0, "tags": ("x",)}
        assert cls._make(["c", 1, ()]) == ("c", 1, ()) and cls._field_defaults == {
            "size": 0,
            "tags": (),
        }
        assert cls.__match_args__ == ("name", "size", "tags") and r[0] == r.name == "b"
        with pytest.raises(TypeError):
            cls()
        with pytest.raises(TypeError):
            cls("a", 1, (), 4)
        with pytest.raises(TypeError):
            cls("a", name="b")
        with pytest.raises(TypeError):
            cls("a", nosuch=1)
        with pytest.raises(ValueError):
            r._replace(nosuch=1)
        with pytest.raises(AttributeError):
            r.name = "c"  # type: ignore[misc]
    # Pickling needs the class importable by name: a module-level one of each.
    assert pickle.loads(pickle.dumps(_OursRow("p", 1))) == ("p", 1, ())


def test_named_tuple_needs_no_collections() -> None:
    """The image verbs' rows are values.NamedTuple: defining and using one loads neither
    collections nor typing (dockyard/model/values.py, ~2 ms of ``images``' start-up)."""
    code = (
        "import sys\n"
        "from dockyard.model.values import NamedTuple\n"
        "class Row(NamedTuple):\n"
        "    a: int\n"
        "    b: str = 'x'\n"
        "assert Row(1)._replace(b='y') == (1, 'y')\n"
        "print('collections' in sys.modules, 'typing' in sys.modules)"
    )
    out = bare_python(code)
    assert (out.returncode, out.stdout.split()) == (0, ["False", "False"]), out.stderr


class _OursRow(values.NamedTuple):
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()
