"""How Python values stand for Go values inside a template.

JSON-shaped data maps onto Go as ``encoding/json`` would decode it, with two refinements that
follow what Docker's typed structs do: a list of strings is a ``[]string`` (so ``join``
takes it) and ints stay ints. ``None`` is Go's invalid value (a missing key, a nil
interface). The classes below stand for the few Go shapes JSON cannot say.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: `ps` loads this module for its rows
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class GoNil:
    """A typed nil: a nil slice prints ``[]``, a nil map ``map[]``, a nil pointer ``<nil>``;
    all encode to JSON ``null``. Docker's typed inspect structs print these for null fields."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "slice", "map" or "ptr"

    def __repr__(self) -> str:
        return f"GoNil({self.kind!r})"


NIL_SLICE = GoNil("slice")
NIL_MAP = GoNil("map")
NIL_PTR = GoNil("ptr")
# A nil interface{} held in a map or slice (JSON null). Go tells it from an invalid value
# until a pipeline ends: ``.A.B`` with A null is "nil pointer evaluating interface {}.B".
NIL_IFACE = GoNil("iface")


class StructDict(dict):  # type: ignore[type-arg]
    """A JSON object that was a Go struct in Docker's inspect types: JSON keeps its field
    order (``{{json .Config}}``) and ``%v`` prints it as ``{v1 v2}``."""

    # fields the JSON left out (omitempty) that the struct still has, with their zero value
    omitted: dict[str, Any] = {}


class GoMap(dict):  # type: ignore[type-arg]
    """A JSON object that was a typed Go map in Docker's inspect structs (``Labels``,
    ``Networks``...): Docker runs the template on the typed struct first, where a missing
    key prints ``<no value>`` even though the raw fallback would call it an error."""


class HeaderMap(dict):  # type: ignore[type-arg]
    """Docker's ``SubHeaderContext``: a map of column names with a ``Label`` method, the value
    a ``table`` template's header line is executed on."""

    go_type = "formatter.SubHeaderContext"

    def Label(self, name: str) -> str:  # noqa: N802 - Go's method name
        last = name.split(".")[-1]
        return last.replace("-", " ").replace("_", " ")

    go_methods: dict[str, tuple[str, ...]] = {"Label": ("string",)}


class GoStruct:
    """A Docker list context (``*formatter.ContainerContext``...): its exported methods are
    what ``.Name`` reaches. Subclasses list them in ``go_methods`` with their parameter
    types ("string", "int"); all of them return a string."""

    go_type = "*struct"
    go_methods: dict[str, tuple[str, ...]] = {}

    def go_method(self, name: str) -> Callable[..., Any] | None:
        if name in self.go_methods:
            fn: Callable[..., Any] = getattr(self, name)
            return fn
        return None

    def marshal(self) -> dict[str, Any]:
        """Docker's formatter.MarshalJSON: every method without arguments, by name."""
        return {
            n: getattr(self, n)() for n, params in sorted(self.go_methods.items()) if not params
        }


def is_str_list(v: list[Any]) -> bool:
    return all(type(x) is str for x in v)


def type_name(v: Any) -> str:
    """The Go type name as reflect prints it in error messages."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, HeaderMap):
        return v.go_type
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]string" if is_str_list(v) else "[]interface {}"
    if isinstance(v, GoNil):
        return {"slice": "[]string", "map": "map[string]string", "iface": "interface {}"}.get(
            v.kind, "*struct"
        )
    if isinstance(v, GoStruct):
        return v.go_type
    return type(v).__name__


def kind(v: Any) -> str:
    """reflect.Kind, as far as templates care."""
    if v is None:
        return "invalid"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "slice"
    if isinstance(v, GoNil):
        return v.kind
    return "ptr"


def is_true(v: Any) -> bool:
    """text/template's truth: zero values and empty collections are false."""
    if v is None:
        return False
    if isinstance(v, (bool, int, float, str, list, dict)):
        return bool(v)
    return not isinstance(v, GoNil)
