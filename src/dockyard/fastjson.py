"""``json.loads``/``json.dumps`` with the standard library's C codec, without importing ``json``.

``import json`` pulls in ``re`` and ``enum`` (its decoder compiles regular expressions at
import), ~3 ms that latency-critical commands (``exec``) feed only to read a few KiB of JSON.
The C scanner and encoder behind ``json`` need neither. Same output and errors as
``json.dumps(obj)`` / ``json.loads(s)`` with default arguments.
"""

from __future__ import annotations

import _json

# Not typing.TYPE_CHECKING: importing typing is what this module avoids.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

__all__ = ["dumps", "dumps_indented", "load", "loads", "scan"]

_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
_WHITESPACE = " \t\n\r"


class _Context:
    """What ``_json.make_scanner`` reads from a JSONDecoder: the defaults of ``json.loads``."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed decoder
# The raw scanner, for readers of many small documents (log and event lines):
# ``scan(text, index)`` -> (value, end); StopIteration where no value starts.
scan = _scan


def _fail(obj: object) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def loads(s: str | bytes) -> Any:
    if isinstance(s, bytes):
        s = s.decode()
    start = len(s) - len(s.lstrip(_WHITESPACE))
    try:
        obj, end = _scan(s, start)
    except StopIteration as err:
        raise _error("Expecting value", s, err.value) from None
    finally:
        _Context.memo.clear()
    rest = len(s) - len(s[end:].lstrip(_WHITESPACE))
    if rest != len(s):
        raise _error("Extra data", s, rest)
    return obj


def load(fp: IO[str]) -> Any:
    return loads(fp.read())


def dumps(obj: Any) -> str:
    encode = _json.make_encoder(
        {}, _fail, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return "".join(encode(obj, 0))


def dumps_indented(obj: Any, indent: int = 4) -> str:
    """``json.dumps(obj, indent=indent)``: the same text (``inspect``'s output). json's own
    indenting encoder is pure Python, so this costs no more, and needs no ``import json``."""
    out: list[str] = []
    _write(obj, out, "\n", " " * indent)
    return "".join(out)


def _float(f: float) -> str:
    if f != f:
        return "NaN"
    if f in (float("inf"), float("-inf")):
        return "Infinity" if f > 0 else "-Infinity"
    return float.__repr__(f)


def _key(k: object) -> str:
    if isinstance(k, str):
        return k
    if isinstance(k, float):
        return _float(k)
    if k is True or k is False or k is None:
        return {True: "true", False: "false", None: "null"}[k]
    if isinstance(k, int):
        return int.__repr__(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def _write(o: Any, out: list[str], newline: str, pad: str) -> None:
    """One value at the indentation ``newline`` (a newline and the current padding)."""
    if isinstance(o, str):
        out.append(_json.encode_basestring_ascii(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o))
    elif isinstance(o, (list, tuple)):
        if not o:
            out.append("[]")
            return
        inner = newline + pad
        sep = "[" + inner
        for v in o:
            out.append(sep)
            _write(v, out, inner, pad)
            sep = "," + inner
        out.append(newline + "]")
    elif isinstance(o, dict):
        if not o:
            out.append("{}")
            return
        inner = newline + pad
        sep = "{" + inner
        for k, v in o.items():
            out.append(sep + _json.encode_basestring_ascii(_key(k)) + ": ")
            _write(v, out, inner, pad)
            sep = "," + inner
        out.append(newline + "}")
    else:
        _fail(o)


def _error(message: str, doc: str, pos: int) -> ValueError:
    from json import JSONDecodeError  # only on the error path

    return JSONDecodeError(message, doc, pos)
