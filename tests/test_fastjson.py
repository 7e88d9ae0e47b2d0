"""dockyard.fastjson gives what json.dumps/json.loads give with default arguments."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard import fastjson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_same_text_and_values_as_json(v: object) -> None:
    text = fastjson.dumps(v)
    assert text == json.dumps(v)
    assert fastjson.loads(text) == json.loads(text)
    assert fastjson.loads(f" \n{text}\t ".encode()) == json.loads(text)


def test_constants_and_errors() -> None:
    assert math.isinf(fastjson.loads("-Infinity")) and math.isnan(fastjson.loads("NaN"))
    for bad in ["", "{", "[1,]", "{} x", "nul", '{"a" 1}']:
        with pytest.raises(json.JSONDecodeError) as ours:
            fastjson.loads(bad)
        with pytest.raises(json.JSONDecodeError) as theirs:
            json.loads(bad)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match="not JSON serializable"):
        fastjson.dumps({"a": object()})
    with pytest.raises(ValueError, match="Circular"):
        loop: list[object] = []
        loop.append(loop)
        fastjson.dumps(loop)


def test_importing_it_does_not_import_re_or_json() -> None:
    code = "import sys, dockyard.fastjson; print(sorted({'re', 'json', 'enum'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


indented_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(
            st.text() | st.integers() | st.floats() | st.booleans() | st.none(), inner, max_size=4
        )
    ),
    max_leaves=30,
)


@given(indented_values)
def test_indented_text_is_json_dumps_indent_4(v: object) -> None:
    # inspect's output: byte for byte what json.dumps(objs, indent=4) printed before
    assert fastjson.dumps_indented(v) == json.dumps(v, indent=4)


def test_indented_refuses_what_json_refuses() -> None:
    with pytest.raises(TypeError, match="is not JSON serializable"):
        fastjson.dumps_indented({"a": {1, 2}})
    with pytest.raises(TypeError, match="keys must be str, int, float, bool or None"):
        fastjson.dumps_indented({(1,): 1})
