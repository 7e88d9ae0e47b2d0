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

__all__ = ["dumps", "load", "loads"]

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


def _error(message: str, doc: str, pos: int) -> ValueError:
    from json import JSONDecodeError  # only on the error path

    return JSONDecodeError(message, doc, pos)
