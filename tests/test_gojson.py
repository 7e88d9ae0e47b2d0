"""dockyard.gojson: Go's JSON syntax errors and json.Compact, as Docker's messages show them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.gojson import compact, syntax_error

# Each message is what Docker's CLI (Go's json.Compact) printed for the same bytes.
CASES = [
    (b"{bad", "invalid character 'b' looking for beginning of object key string"),
    (b"", "unexpected end of JSON input"),
    (b"\n", "unexpected end of JSON input"),
    (b'{"a":1,}', "invalid character '}' looking for beginning of object key string"),
    (b'{"a" 1}', "invalid character '1' after object key"),
    (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair"),
    (b"[1 2]", "invalid character '2' after array element"),
    (b"[1,]", "invalid character ']' looking for beginning of value"),
    (b'{"a":tru}', "invalid character '}' in literal true (expecting 'e')"),
    (b'{"a":nul', "invalid character ' ' in literal null (expecting 'l')"),
    (b'{"a":-x}', "invalid character 'x' in numeric literal"),
    (b'{"a":1.}', "invalid character '}' after decimal point in numeric literal"),
    (b'{"a":1.', "invalid character ' ' after decimal point in numeric literal"),
    (b'{"a":1e}', "invalid character '}' in exponent of numeric literal"),
    (b"[-", "invalid character ' ' in numeric literal"),
    (b'{"a":"\\q"}', "invalid character 'q' in string escape code"),
    (b'{"a":"\\', "invalid character ' ' in string escape code"),
    (b'{"a":"\\u12g4"}', "invalid character 'g' in \\u hexadecimal character escape"),
    (b'{"a":"x\ty"}', "invalid character '\\t' in string literal"),
    (b"{} x", "invalid character 'x' after top-level value"),
    (b'{"a":01}', "invalid character '1' after object key:value pair"),
    (b"'", "invalid character '\\'' looking for beginning of value"),
    (b'{"a":[1,2}', "invalid character '}' after array element"),
    (b'{"a"', "unexpected end of JSON input"),
    (b'{"a":"x', "unexpected end of JSON input"),
    (b"\xc3\xa9", "invalid character '\u00c3' looking for beginning of value"),
    (b"NaN", "invalid character 'N' looking for beginning of value"),
]


@pytest.mark.parametrize(("data", "message"), CASES)
def test_syntax_errors_read_as_gos(data: bytes, message: str) -> None:
    assert syntax_error(data) == message


def test_valid_documents() -> None:
    for text in ("{}", " [ ] ", '{"a": [1, -2.5e+3, true, false, null, "\\u00e9\\n"]}', "1 "):
        assert syntax_error(text) is None


def test_compact_keeps_everything_but_whitespace() -> None:
    text = '{\n  "b": "two  words",\t"a" : [1.50, 2E3, "\\"x y\\""]\r\n}\n'
    assert compact(text) == '{"b":"two  words","a":[1.50,2E3,"\\"x y\\""]}'


def _python_accepts(text: str) -> bool:
    def no_constants(name: str) -> None:
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=no_constants)
    except ValueError:
        return False
    return True


TOKENS = ["{", "}", "[", "]", ",", ":", '"a"', '"', "1", "-", ".", "e", "0", "true", "nul"]
TOKENS += [" ", "\n", "\\", "\\u12", "x", "\t"]


@given(st.lists(st.sampled_from(TOKENS), max_size=12).map("".join))
def test_accepts_what_a_strict_json_parser_accepts(text: str) -> None:
    assert (syntax_error(text) is None) == _python_accepts(text)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_compact_of_any_document_is_the_same_document(value: object) -> None:
    text = json.dumps(value, indent=3)
    assert syntax_error(text) is None
    assert json.loads(compact(text)) == value
    assert compact(text) == json.dumps(value, separators=(",", ":"))
