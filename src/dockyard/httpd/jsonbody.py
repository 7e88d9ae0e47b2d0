"""JSON from a client, with a nesting limit.

The C decoder recurses once per level and raises RecursionError somewhere near the
interpreter's recursion limit, depending on how deep the caller's stack already is; a
request must get a 400 with a stable limit instead. The depth is checked before decoding:
counting brackets is free for ordinary bodies (fewer brackets than the limit cannot nest
deeper), and only a body with many of them is scanned, with its strings taken out first.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

_STRINGS = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # what to delete: all but brackets
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JSONError(ValueError):
    """Not JSON, or nested deeper than allowed."""


def too_deep(data: bytes, max_depth: int) -> bool:
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return False
    brackets = _STRINGS.sub(b"", data).translate(None, _BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > max_depth


def loads(data: bytes | str, max_depth: int) -> Any:
    """The decoded document; JSONError (a ValueError) with the decoder's message otherwise."""
    raw = data.encode() if isinstance(data, str) else data
    if too_deep(raw, max_depth):
        raise JSONError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except RecursionError:  # cannot happen below the limit; a 400 all the same
        raise JSONError(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise JSONError(str(e)) from None
