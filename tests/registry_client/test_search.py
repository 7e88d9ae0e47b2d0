"""``search``: Docker's /v1/search protocol and table."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.conftest import CLI
from tests.registry_client.conftest import Peer

RESULTS = [
    {
        "name": "library/kubia",
        "description": "The official kubia image, small and fast, "
        "with a description longer than forty-five characters",
        "star_count": 42,
        "is_official": True,
        "is_automated": False,
    },
    {
        "name": "alice/kubia",
        "description": "alice's kubia",
        "star_count": 3,
        "is_official": False,
        "is_automated": True,
    },
    {
        "name": "bob/kubia-dev",
        "description": "",
        "star_count": 0,
        "is_official": False,
        "is_automated": False,
    },
]


def _search_peer(peer: Peer) -> list[dict[str, list[str]]]:
    queries: list[dict[str, list[str]]] = []

    def search(h: BaseHTTPRequestHandler) -> bool:
        url = urlsplit(h.path)
        if url.path != "/v1/search":
            return False
        q = parse_qs(url.query)
        queries.append(q)
        n = int(q.get("n", ["25"])[0])
        hits = [r for r in RESULTS if q["q"][0] in str(r["name"])][:n]
        body = {"num_results": len(hits), "query": q["q"][0], "results": hits}
        h.send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})  # type: ignore[attr-defined]
        return True

    peer.before = search
    return queries


def test_search_table(dy: CLI, peer: Peer) -> None:
    queries = _search_peer(peer)
    out = dy("search", f"{peer.addr}/kub").stdout.splitlines()
    assert queries[0]["q"] == ["kub"] and queries[0]["n"] == ["25"]
    assert out[0].split() == ["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "AUTOMATED"]
    assert out[1].startswith("library/kubia")
    assert out[1].rstrip().endswith("[OK]")
    assert "…" in out[1] and " 42 " in out[1]
    assert " 3 " in out[2] and out[2].split()[-1] == "[OK]"  # AUTOMATED, as in 20.10
    assert len(out) == 4
    # Columns line up as a table.
    col = out[0].index("STARS")
    assert all(line[col - 1] == " " for line in out[1:])


def test_search_flags(dy: CLI, peer: Peer) -> None:
    queries = _search_peer(peer)
    out = dy("search", "--limit", "2", f"{peer.addr}/kub").stdout.splitlines()
    assert queries[-1]["n"] == ["2"] and len(out) == 3
    out = dy("search", "--no-trunc", f"{peer.addr}/kubia").stdout
    assert "longer than forty-five characters" in out
    out = dy("search", "--filter", "is-official=true", f"{peer.addr}/kub").stdout.splitlines()
    assert [line.split()[0] for line in out[1:]] == ["library/kubia"]
    out = dy("search", "-f", "stars=3", f"{peer.addr}/kub").stdout.splitlines()
    assert [line.split()[0] for line in out[1:]] == ["library/kubia", "alice/kubia"]
    out = dy("search", "--format", "{{.Name}}:{{.StarCount}}", f"{peer.addr}/kub").stdout
    assert out.split() == ["library/kubia:42", "alice/kubia:3", "bob/kubia-dev:0"]
    for bad in (["--limit", "0"], ["--limit", "101"], ["-f", "nope=1"], ["-f", "stars=x"]):
        r = dy("search", *bad, f"{peer.addr}/kub", check=False)
        assert r.returncode == 125 and r.stderr.startswith("Error:"), bad


def test_search_on_a_registry_without_search(dy: CLI, peer: Peer) -> None:
    r = dy("search", f"{peer.addr}/kub", check=False)
    assert r.returncode == 125 and "does not offer search" in r.stderr
