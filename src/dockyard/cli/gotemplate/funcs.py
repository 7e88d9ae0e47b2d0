"""The functions a template can call: text/template's builtins and the ones Docker's CLI adds
(``templates.basicFunctions`` in docker/cli, 20.10: json, split, join, title, lower, upper,
pad, truncate), plus the header variants a ``table`` header line is rendered with."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any, NamedTuple

from dockyard.cli.gotemplate import gofmt
from dockyard.cli.gotemplate.quote import _printable
from dockyard.cli.gotemplate.values import GoNil, is_true, kind, type_name


class FuncError(Exception):
    """What a Go function returns as its error (the executor says "error calling NAME: ...")."""


class Func(NamedTuple):
    fn: Callable[..., Any]
    params: tuple[str, ...]  # "any" (interface{} or reflect.Value), "string", "int", "strslice"
    variadic: str | None = None  # the element type of a trailing ...T


def _items(v: Any) -> list[Any] | None:
    if isinstance(v, list):
        return v
    if isinstance(v, GoNil) and v.kind == "slice":
        return []
    return None


def _index_arg(i: Any, cap: int) -> int:
    if i is None:
        raise FuncError("cannot index slice/array with nil")
    if not isinstance(i, int) or isinstance(i, bool):
        raise FuncError(f"cannot index slice/array with type {type_name(i)}")
    if i < 0 or i > cap:
        raise FuncError(f"index out of range: {i}")
    return i


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("index of untyped nil")
    for ix in indexes:
        if isinstance(item, GoNil) and item.kind == "ptr":
            raise FuncError("index of nil pointer")
        seq = _items(item)
        if seq is not None or isinstance(item, str):
            s: Any = seq if seq is not None else item.encode("utf-8", "surrogateescape")
            x = _index_arg(ix, len(s))
            if x == len(s):
                raise FuncError(f"index out of range: {x}")
            item = s[x]
        elif isinstance(item, dict) or (isinstance(item, GoNil) and item.kind == "map"):
            if ix is None:
                raise FuncError("value is nil; should be of type string")
            if not isinstance(ix, str):
                raise FuncError(f"value has type {type_name(ix)}; should be string")
            item = item.get(ix) if isinstance(item, dict) else None
        else:
            raise FuncError(f"can't index item of type {type_name(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise FuncError("slice of untyped nil")
    if len(indexes) > 3:
        raise FuncError(f"too many slice indexes: {len(indexes)}")
    seq = _items(item)
    if isinstance(item, str):
        if len(indexes) == 3:
            raise FuncError("cannot 3-index slice a string")
        data = item.encode("utf-8", "surrogateescape")
        cap = len(data)
    elif seq is not None:
        cap = len(seq)
    else:
        raise FuncError(f"can't slice item of type {type_name(item)}")
    idx = [0, cap, cap]
    for i, x in enumerate(indexes):
        idx[i] = _index_arg(x, cap)
    if idx[0] > idx[1]:
        raise FuncError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise FuncError(f"invalid slice index: {idx[1]} > {idx[2]}")
    if isinstance(item, str):
        return data[idx[0] : idx[1]].decode("utf-8", "surrogateescape")
    assert seq is not None
    return seq[idx[0] : idx[1]]


def _len(item: Any) -> int:
    if isinstance(item, GoNil):
        if item.kind == "ptr":
            raise FuncError("len of nil pointer")
        return 0
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogateescape"))
    if isinstance(item, (list, dict)):
        return len(item)
    if item is None:
        raise FuncError("len of untyped nil")
    raise FuncError(f"len of type {type_name(item)}")


def _basic_kind(v: Any) -> str:
    k = kind(v)
    return k if k in ("bool", "int", "float", "string") else "invalid"


def _is_nil(v: Any) -> bool:
    return v is None or isinstance(v, GoNil)


def _eq(a: Any, *rest: Any) -> bool:
    if not rest:
        raise FuncError("missing argument for comparison")
    k1 = _basic_kind(a)
    for b in rest:
        k2 = _basic_kind(b)
        if k1 != k2:
            if a is not None and b is not None:
                raise FuncError("incompatible types for comparison")
            truth = False
        elif k1 != "invalid":
            truth = a == b
        else:
            # maps, slices, structs: only comparable with nil
            if kind(a) != kind(b) and a is not None and b is not None:
                raise FuncError(
                    f"non-comparable types {gofmt.format_v(a, False)}: {type_name(a)}, "
                    f"{type_name(b)}: {gofmt.format_v(b, False)}"
                )
            if _is_nil(a) or _is_nil(b):
                truth = _is_nil(a) == _is_nil(b)
            else:
                raise FuncError(f"non-comparable type {gofmt.format_v(b, False)}: {type_name(b)}")
        if truth:
            return True
    return False


def _lt(a: Any, b: Any) -> bool:
    k1, k2 = _basic_kind(a), _basic_kind(b)
    if k1 == "invalid" or k2 == "invalid":
        raise FuncError("invalid type for comparison")
    if k1 != k2:
        raise FuncError("incompatible types for comparison")
    if k1 == "bool":
        raise FuncError("invalid type for comparison")
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _eval_args(args: tuple[Any, ...]) -> str:
    """text/template's evalArgs: a lone string as is, else fmt.Sprint with <no value>."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return gofmt.sprint(["<no value>" if a is None else a for a in args])


def _html(*args: Any) -> str:
    s = _eval_args(args)
    rep = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\0": "\ufffd"}
    return "".join(rep.get(c, c) for c in s)


def _js(*args: Any) -> str:
    s = _eval_args(args)
    out = []
    rep = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E"}
    rep.update({"&": "\\u0026", "=": "\\u003D"})
    for c in s:
        o = ord(c)
        if c in rep:
            out.append(rep[c])
        elif o < 0x20:
            out.append(f"\\u00{o:02X}")
        elif o >= 0x80 and not _printable(c):
            out.append(f"\\u{o:04X}")
        else:
            out.append(c)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_eval_args(args), safe="-_.~")


def _call(fn: Any, *args: Any) -> Any:
    if fn is None:
        raise FuncError("call of nil")
    raise FuncError(f"non-function of type {type_name(fn)}")


# ------------------------------------------------------------------- Docker's functions


def _json(v: Any) -> str:
    # templates.formatJSON: an Encoder with SetEscapeHTML(false), trailing newline trimmed
    return gofmt.to_json(v, escape_html=False)


def _split(s: str, sep: str) -> list[str]:
    if sep == "":
        return list(s)
    return s.split(sep)


def _join(elems: list[str], sep: str) -> str:
    return sep.join(elems)


def _is_separator(c: str) -> bool:
    """strings.Title's word boundary."""
    if ord(c) < 0x80:
        return not (c.isalnum() or c == "_")
    if c.isalpha() or c.isdecimal():
        return False
    return c.isspace()


def _title(s: str) -> str:
    out, prev = [], " "
    for c in s:
        if _is_separator(prev):
            t = c.upper() if len(c.upper()) == 1 else c
            if unicodedata.category(c) == "Lt":
                t = c
            out.append(t)
        else:
            out.append(c)
        prev = c
    return "".join(out)


def _pad(source: str, prefix: int, suffix: int) -> str:
    if source == "":
        return source
    if prefix < 0 or suffix < 0:
        raise FuncError("strings: negative Repeat count")
    return " " * prefix + source + " " * suffix


def _truncate(source: str, length: int) -> str:
    data = source.encode("utf-8", "surrogateescape")
    if len(data) < length:
        return source
    if length < 0:
        raise FuncError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode("utf-8", "surrogateescape")


def _ident(v: Any, *_: Any) -> Any:
    return v


BUILTINS: dict[str, Func] = {
    "and": Func(is_true, ("any",), "any"),  # evaluated lazily by the executor
    "or": Func(is_true, ("any",), "any"),
    "not": Func(lambda v: not is_true(v), ("any",)),
    "call": Func(_call, ("any",), "any"),
    "html": Func(_html, (), "any"),
    "index": Func(_index, ("any",), "any"),
    "slice": Func(_slice, ("any",), "any"),
    "js": Func(_js, (), "any"),
    "len": Func(_len, ("any",)),
    "print": Func(lambda *a: gofmt.sprint(list(a)), (), "any"),
    "printf": Func(lambda f, *a: gofmt.sprintf(f, list(a)), ("string",), "any"),
    "println": Func(lambda *a: gofmt.sprintln(list(a)), (), "any"),
    "urlquery": Func(_urlquery, (), "any"),
    "eq": Func(_eq, ("any",), "any"),
    "ge": Func(_ge, ("any", "any")),
    "gt": Func(_gt, ("any", "any")),
    "le": Func(_le, ("any", "any")),
    "lt": Func(_lt, ("any", "any")),
    "ne": Func(lambda a, b: not _eq(a, b), ("any", "any")),
}

DOCKER_FUNCS: dict[str, Func] = {
    "json": Func(_json, ("any",)),
    "split": Func(_split, ("string", "string")),
    "join": Func(_join, ("strslice", "string")),
    "title": Func(_title, ("string",)),
    "lower": Func(lambda s: s.lower(), ("string",)),
    "upper": Func(lambda s: s.upper(), ("string",)),
    "pad": Func(_pad, ("string", "int", "int")),
    "truncate": Func(_truncate, ("string", "int")),
}

# templates.HeaderFunctions: a table's header line keeps the column names as they are.
HEADER_FUNCS: dict[str, Func] = {
    "json": Func(_ident, ("string",)),
    "split": Func(_ident, ("string", "string")),
    "join": Func(_ident, ("string", "string")),
    "title": Func(_ident, ("string",)),
    "lower": Func(_ident, ("string",)),
    "upper": Func(_ident, ("string",)),
    "truncate": Func(_ident, ("string", "int")),
}
