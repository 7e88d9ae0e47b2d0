"""Two behaviours of Go's ``encoding/json`` that Docker's messages and payloads show.

* :func:`syntax_error`: the text Go gives for the first syntax error in a document
  ("invalid character 'b' looking for beginning of object key string", "unexpected end of
  JSON input"): Docker's CLI and daemon put it into their messages.
* :func:`compact`: ``json.Compact``, the insignificant whitespace removed and nothing else
  changed (key order, escapes and number spelling stay): what ``docker run --security-opt
  seccomp=FILE`` sends of the file.
"""

from __future__ import annotations

__all__ = ["compact", "syntax_error"]

_WS = " \t\r\n"
_ESCAPES = '"\\/bfnrtu'
_HEX = "0123456789abcdefABCDEF"
_DIGITS = "0123456789"
_LITERALS = {"t": "true", "f": "false", "n": "null"}
_MAX_DEPTH = 10000  # Go's decoder refuses deeper nesting


class _Bad(Exception):
    pass


def _quote(c: str) -> str:
    """A character as Go's scanner quotes it in messages (its quoteChar)."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    named = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a", "\b": "\\b"}
    named |= {"\f": "\\f", "\v": "\\v"}
    if c in named:
        return f"'{named[c]}'"
    if ord(c) < 0x20 or ord(c) == 0x7F:
        return f"'\\x{ord(c):02x}'"
    if 0x80 <= ord(c) < 0xA0 or ord(c) == 0xAD:  # not printable: strconv.Quote escapes them
        return f"'\\u{ord(c):04x}'"
    return f"'{c}'"


def _fail(s: str, i: int, context: str, *, token: bool = False) -> _Bad:
    """The error at ``s[i]``. At the end of the input Go's scanner feeds itself a space: inside
    a number, a literal or an escape (``token``) that space is the invalid character."""
    if i < len(s):
        return _Bad(f"invalid character {_quote(s[i])} {context}")
    if token:
        return _Bad(f"invalid character ' ' {context}")
    return _Bad("unexpected end of JSON input")


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _string(s: str, i: int) -> int:
    """``s[i]`` is the opening quote; the index after the closing one."""
    i += 1
    while True:
        if i >= len(s):
            raise _fail(s, i, "")
        c = s[i]
        if c == '"':
            return i + 1
        if c == "\\":
            i += 1
            if i >= len(s) or s[i] not in _ESCAPES:
                raise _fail(s, i, "in string escape code", token=True)
            if s[i] == "u":
                for _ in range(4):
                    i += 1
                    if i >= len(s) or s[i] not in _HEX:
                        raise _fail(s, i, "in \\u hexadecimal character escape", token=True)
        elif c < " ":
            raise _fail(s, i, "in string literal")
        i += 1


def _number(s: str, i: int) -> int:
    if s[i] == "-":
        i += 1
        if i >= len(s) or s[i] not in _DIGITS:
            raise _fail(s, i, "in numeric literal", token=True)
    if s[i] == "0":
        i += 1
    else:
        while i < len(s) and s[i] in _DIGITS:
            i += 1
    if i < len(s) and s[i] == ".":
        i += 1
        if i >= len(s) or s[i] not in _DIGITS:
            raise _fail(s, i, "after decimal point in numeric literal", token=True)
        while i < len(s) and s[i] in _DIGITS:
            i += 1
    if i < len(s) and s[i] in "eE":
        i += 1
        if i < len(s) and s[i] in "+-":
            i += 1
        if i >= len(s) or s[i] not in _DIGITS:
            raise _fail(s, i, "in exponent of numeric literal", token=True)
        while i < len(s) and s[i] in _DIGITS:
            i += 1
    return i


def _literal(s: str, i: int) -> int:
    word = _LITERALS[s[i]]
    for k, expected in enumerate(word[1:], 1):
        if i + k >= len(s) or s[i + k] != expected:
            raise _fail(s, i + k, f"in literal {word} (expecting {_quote(expected)})", token=True)
    return i + len(word)


def _scan(s: str) -> None:
    # An explicit stack of open containers ("{" or "["): no recursion limit to hit.
    stack: list[str] = []
    i = _skip_ws(s, 0)
    want_value = True  # else: after a value, wanting "," or a closing bracket
    while True:
        if want_value:
            if i >= len(s):
                raise _fail(s, i, "")
            c = s[i]
            if c in "{[":
                if len(stack) >= _MAX_DEPTH:
                    raise _Bad("exceeded max depth")
                stack.append(c)
                i = _skip_ws(s, i + 1)
                if i < len(s) and s[i] == ("}" if c == "{" else "]"):
                    stack.pop()
                    i += 1
                    want_value = False
                elif c == "{":
                    i = _key(s, i)
                continue
            if c == '"':
                i = _string(s, i)
            elif c == "-" or c in _DIGITS:
                i = _number(s, i)
            elif c in _LITERALS:
                i = _literal(s, i)
            else:
                raise _fail(s, i, "looking for beginning of value")
            want_value = False
            continue
        i = _skip_ws(s, i)
        if not stack:
            if i < len(s):
                raise _fail(s, i, "after top-level value")
            return
        top = stack[-1]
        close = "}" if top == "{" else "]"
        if i < len(s) and s[i] == ",":
            i = _skip_ws(s, i + 1)
            if top == "{":
                i = _key(s, i)
            want_value = True
        elif i < len(s) and s[i] == close:
            stack.pop()
            i += 1
        else:
            after = "after object key:value pair" if top == "{" else "after array element"
            raise _fail(s, i, after)


def _key(s: str, i: int) -> int:
    """An object key and its colon at ``s[i]``: the index of the value after them."""
    if i >= len(s) or s[i] != '"':
        raise _fail(s, i, "looking for beginning of object key string")
    i = _skip_ws(s, _string(s, i))
    if i >= len(s) or s[i] != ":":
        raise _fail(s, i, "after object key")
    return _skip_ws(s, i + 1)


def syntax_error(data: bytes | str) -> str | None:
    """Go's message for the first syntax error in ``data``; None if it is valid JSON."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    try:
        # Go scans bytes and names a bad byte as the code point of its value: Latin-1.
        _scan(data.decode("latin-1"))
    except _Bad as e:
        return str(e)
    return None


def compact(text: str) -> str:
    """``text`` (valid JSON) without whitespace outside its strings."""
    out: list[str] = []
    i = start = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            i = _string(text, i)
            continue
        if c in _WS:
            out.append(text[start:i])
            i = _skip_ws(text, i)
            start = i
            continue
        i += 1
    out.append(text[start:])
    return "".join(out)
