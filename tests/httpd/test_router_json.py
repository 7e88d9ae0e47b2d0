"""The router's two ways of resolving a path, and the JSON nesting limit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.httpd import JSONError, Router, loads
from dockyard.httpd.jsonbody import too_deep


def _api_router() -> Router:
    r = Router()
    r.add("GET", "/images/{name*}/json", "inspect")
    r.add("DELETE", "/images/{name*}", "remove")
    r.add("GET|HEAD", "/_ping", "ping")
    r.add("POST", "/containers/{id}/start", "start")
    return r


def test_api_routing_falls_through_to_a_route_with_the_method() -> None:
    r = _api_router()
    m = r.match("GET", "/images/localhost:5000/a/b:1/json")
    assert not isinstance(m, int) and (m.func, m.params) == (
        "inspect",
        {"name": "localhost:5000/a/b:1"},
    )
    m = r.match("DELETE", "/images/a/json")  # gorilla/mux: the image named "a/json"
    assert not isinstance(m, int) and (m.func, m.params) == ("remove", {"name": "a/json"})
    m = r.match("POST", "/containers/a%2Fb/start")
    assert not isinstance(m, int) and m.params == {"id": "a/b"}  # decoded
    assert r.match("PUT", "/_ping") == 405
    assert r.match("GET", "/containers/x/start/more") == 404
    assert r.match("POST", "/containers//start") == 404  # {id} is never empty


def test_hub_routing_first_path_decides_and_keeps_escapes() -> None:
    r = Router(decode=False, first_path_decides=True)
    r.add("POST", "/v2/{name*}/blobs/uploads/?", "start")
    r.add("GET|HEAD", "/v2/{name*}/blobs/{digest?}", "blob")
    r.add("*", "/v1/_ping", "ping")
    m = r.match("POST", "/v2/a/b/blobs/uploads")
    assert not isinstance(m, int) and (m.func, m.params) == ("start", {"name": "a/b"})
    assert r.match("GET", "/v2/a/blobs/uploads") == 405  # not the blob called "uploads"
    m = r.match("GET", "/v2/a%2e%2e/blobs/")
    assert not isinstance(m, int) and m.params == {"name": "a%2e%2e", "digest": ""}
    m = r.match("PATCH", "/v1/_ping")
    assert not isinstance(m, int) and m.func == "ping"


def _depth(doc: Any) -> int:
    if isinstance(doc, dict):
        return 1 + max((_depth(v) for v in doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max((_depth(v) for v in doc), default=0)
    return 0


_docs = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab,:'),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=3), children, max_size=3)
    ),
    max_leaves=40,
)


@given(_docs, st.integers(min_value=0, max_value=6))
def test_depth_check_agrees_with_the_document(doc: Any, limit: int) -> None:
    assert too_deep(json.dumps(doc).encode(), limit) == (_depth(doc) > limit)


@pytest.mark.parametrize("depth", [101, 5000, 200000])
def test_deep_nesting_is_a_json_error_never_a_recursion_error(depth: int) -> None:
    with pytest.raises(JSONError, match="nested deeper than 100 levels"):
        loads(b"[" * depth + b"]" * depth, 100)
    with pytest.raises(JSONError, match="nested deeper than 100 levels"):
        loads(b'{"a":' * depth + b"1" + b"}" * depth, 100)
    assert loads(b"[" * 100 + b"]" * 100, 100) == json.loads(b"[" * 100 + b"]" * 100)


def test_loads_reports_the_decoders_message() -> None:
    with pytest.raises(JSONError, match="Expecting value"):
        loads(b"[1,", 100)
    with pytest.raises(JSONError):
        loads(b"\xff\xfe", 100)
    assert loads('{"a": "[[["}', 1) == {"a": "[[["}
