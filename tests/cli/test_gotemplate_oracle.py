"""Property tests: dockyard's text/template against Go's own, run by a small Go program
(tests/cli/gotemplate_oracle) with Docker's function map. Hypothesis writes templates from
text/template's grammar, valid and not, over generated JSON; output and error text must be
the same byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dockyard.cli.gotemplate import Template, TemplateError

ORACLE_SRC = Path(__file__).parent / "gotemplate_oracle" / "main.go"


class Oracle:
    def __init__(self, binary: Path) -> None:
        self.proc = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, template: str, data: Any, missing_key_error: bool = False) -> tuple[str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        req = {"template": template, "data": data, "missingkey_error": missing_key_error}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        ans = json.loads(self.proc.stdout.readline())
        return ans["out"], ans["err"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (dev.sh setup installs golang-go)")
    tmp = tmp_path_factory.mktemp("gooracle")
    env = {
        **os.environ,
        "HOME": str(tmp),
        "GOCACHE": str(tmp / "cache"),
        "GOPATH": str(tmp / "gopath"),
        "GO111MODULE": "off",  # stdlib only: no module download, works offline
        "GOFLAGS": "",
    }
    binary = tmp / "oracle"
    subprocess.run([go, "build", "-o", str(binary), str(ORACLE_SRC)], check=True, env=env, cwd=tmp)
    o = Oracle(binary)
    yield o
    o.close()


def ours(template: str, data: Any, missing_key_error: bool = False) -> tuple[str, str]:
    try:
        t = Template(template)
        return t.execute(data, missing_key_error=missing_key_error), ""
    except TemplateError as e:
        return "", str(e)


def check(oracle: Oracle, template: str, data: Any, missing_key_error: bool = False) -> None:
    want_out, want_err = oracle.run(template, data, missing_key_error)
    got_out, got_err = ours(template, data, missing_key_error)
    assert got_err == want_err, (template, data)
    if not want_err:
        assert got_out == want_out, (template, data)


# ------------------------------------------------------------------------ data

KEYS = ["A", "B", "Name", "List", "Map", "x", "a-b"]
texts = st.text(alphabet="ab Z-_.:,/<>&\"'\\\n\té☃", max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-1000, max_value=10**7)
    | st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda f: abs(f) < 1e300)
    | texts
)
json_data = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(KEYS), json_data, max_size=6)

# ------------------------------------------------------------------------ templates

fields = st.lists(st.sampled_from(KEYS[:5] + ["Missing"]), min_size=1, max_size=3).map(
    lambda parts: "." + ".".join(parts)
)
string_lits = texts.map(json.dumps) | st.sampled_from(
    ['"\\x41\\u00e9"', "`raw\\n`", '"a\\tb"', '"%d-%s"', '"%5.2f|%-4s|%q|%x|%v"', '""', '":"']
)
number_lits = st.sampled_from(
    ["0", "1", "-1", "2", "42", "1.5", "-0.25", "1e3", "0x1F", "'a'", "'\\n'", "3.0", "1_000"]
)
literals = string_lits | number_lits | st.sampled_from(["true", "false", "nil"])
variables = st.sampled_from(["$", "$x", "$v", "$i", "$.A", "$.Name", "$v.A"])
FUNCS = {
    "len": 1,
    "index": 2,
    "slice": 2,
    "not": 1,
    "and": 2,
    "or": 2,
    "eq": 2,
    "ne": 2,
    "lt": 2,
    "le": 2,
    "gt": 2,
    "ge": 2,
    "print": 2,
    "println": 2,
    "printf": 3,
    "html": 1,
    "js": 1,
    "urlquery": 1,
    "json": 1,
    "join": 2,
    "split": 2,
    "lower": 1,
    "upper": 1,
    "title": 1,
    "pad": 3,
    "truncate": 2,
}


def pipelines(depth: int) -> st.SearchStrategy[str]:
    operand = st.just(".") | fields | literals | variables
    if depth > 0:
        operand = operand | pipelines(depth - 1).map(lambda p: f"({p})")
        operand = operand | st.tuples(pipelines(depth - 1), fields).map(lambda t: f"({t[0]}){t[1]}")
    call = st.tuples(st.sampled_from(sorted(FUNCS)), st.lists(operand, min_size=0, max_size=3)).map(
        lambda t: " ".join([t[0], *t[1]])
    )
    command = operand | call
    piped = st.tuples(command, st.sampled_from(sorted(FUNCS))).map(lambda t: f"{t[0]} | {t[1]}")
    return command | piped


def actions(depth: int) -> st.SearchStrategy[str]:
    def wrap(p: str, left: bool, right: bool) -> str:
        return "{{" + ("- " if left else "") + p + (" -" if right else "") + "}}"

    pipe = pipelines(1)
    simple = st.tuples(pipe, st.booleans(), st.booleans()).map(lambda t: wrap(*t))
    decl = st.tuples(st.sampled_from(["$x", "$v"]), st.sampled_from([":=", "="]), pipe).map(
        lambda t: "{{" + f"{t[0]} {t[1]} {t[2]}" + "}}"
    )
    comment = st.just("{{/* note */}}") | st.just("{{- /* x */ -}}")
    out = simple | decl | comment
    if depth > 0:
        body = bodies(depth - 1)
        opt_else = st.none() | body
        if_ = st.tuples(pipe, body, opt_else).map(
            lambda t: "{{if " + t[0] + "}}" + t[1] + ("{{else}}" + t[2] if t[2] else "") + "{{end}}"
        )
        elif_ = st.tuples(pipe, body, pipe, body).map(
            lambda t: "{{if " + t[0] + "}}" + t[1] + "{{else if " + t[2] + "}}" + t[3] + "{{end}}"
        )
        range_head = st.sampled_from(["", "$v := ", "$i, $v := "])
        range_ = st.tuples(range_head, pipe, body, opt_else).map(
            lambda t: (
                "{{range "
                + t[0]
                + t[1]
                + "}}"
                + t[2]
                + ("{{else}}" + t[3] if t[3] else "")
                + "{{end}}"
            )
        )
        with_ = st.tuples(pipe, body, opt_else).map(
            lambda t: (
                "{{with " + t[0] + "}}" + t[1] + ("{{else}}" + t[2] if t[2] else "") + "{{end}}"
            )
        )
        loop_ctl = st.sampled_from(["{{break}}", "{{continue}}"])
        out = out | if_ | elif_ | range_ | with_ | loop_ctl
    return out


def bodies(depth: int) -> st.SearchStrategy[str]:
    return st.lists(texts.filter(lambda s: "{" not in s) | actions(depth), max_size=3).map("".join)


SLOW_OK = settings(
    max_examples=int(os.environ.get("GOTEMPLATE_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SLOW_OK
@given(template=bodies(2), data=documents)
def test_templates_match_go(oracle: Oracle, template: str, data: dict[str, Any]) -> None:
    check(oracle, template, data)


@SLOW_OK
@given(template=bodies(1), data=documents)
def test_missingkey_error_matches_go(oracle: Oracle, template: str, data: dict[str, Any]) -> None:
    check(oracle, template, data, missing_key_error=True)


@settings(max_examples=200, deadline=None)
@given(
    value=json_data,
    verb=st.sampled_from(
        [
            "%v",
            "%s",
            "%d",
            "%q",
            "%x",
            "%5.1f",
            "%-6v|",
            "%t",
            "%08.3f",
            "%+d",
            "%e",
            "%g",
            "%T",
            "%c",
            "%U",
            "%o",
            "%X",
            "%10s",
            "%.2s",
            "% x",
        ]
    ),
)
@example(value=[[1.1125369292536007e-308]], verb="%x")  # a subnormal: Go says 0x1p-1023
@example(value=[55296], verb="%q")  # a surrogate is no rune: Go quotes U+FFFD
@example(value=[55296], verb="%c")
def test_printf_and_printing_match_go(oracle: Oracle, value: Any, verb: str) -> None:
    check(
        oracle,
        "{{printf " + json.dumps(verb) + " .A}}|{{.A}}|{{json .A}}|{{print .A .A}}",
        {"A": value},
    )


# Hand-picked cases: Go's parse errors and the examples of Go's text/template documentation.
CASES = [
    "{{.A",
    "{{.A}",
    "{{if .A}}x",
    "{{end}}",
    "{{else}}",
    "{{range .A}}{{else}}{{else}}{{end}}",
    "{{$y}}",
    "{{.A | 3}}",
    "{{(1)}}{{)}}",
    "{{(.A}}",
    "{{'ab'}}",
    '{{"abc}}',
    "{{`abc}}",
    "{{3x}}",
    "{{1.2.3}}",
    "{{.A.}}",
    "{{$x := 1}}{{$x.A.B}}",
    "{{/* unclosed }}",
    "{{/* a */ .A}}",
    "{{break}}",
    "{{range .List}}{{continue}}{{end}}",
    '{{template "nope"}}',
    '{{define "t"}}[{{.}}]{{end}}{{template "t" .Name}}{{block "b" .A}}<{{.}}>{{end}}',
    "{{with $x := .Name}}{{$x}}{{end}}",
    "{{range $i, $e := .List}}{{$i}}:{{$e}} {{end}}",
    "{{range $k, $v := .Map}}{{$k}}={{$v}};{{end}}",
    "{{range $a, $b, $c := .List}}{{end}}",
    "{{if and .A .B}}y{{end}}",
    '{{printf "%q" "output" | printf "%q"}}',
    '{{"output" | printf "%s"}}',
    '{{printf "%d %s" 1}}',
    '{{printf "%d" 1 2}}',
    "{{index .List 10}}",
    '{{index .Map "zz"}}',
    "{{index 1 1}}",
    "{{len 3}}",
    "{{slice .Name 1 2}}",
    "{{eq .Name 1}}",
    "{{lt .List 1}}",
    '{{eq .Name "a" "b" "n"}}',
    "{{nil}}",
    "{{.Name 1}}",
    "{{call .Name}}",
    '{{join .Name ","}}',
    "{{pad .Name -1 0}}",
    "{{truncate .Name -1}}",
    "{{truncate .Name 2.5}}",
    "{{upper 3}}",
    "{{upper nil}}",
    "{{json}}",
    "{{html .Missing}}",
    "{{.Missing.Deeper}}",
    "{{$.Name}} {{$}}",
    "a {{- 3 -}} b {{- 4}}",
    "{{23 -}} < {{- 45}}",
    "{{-3}}",
]


@pytest.mark.parametrize("template", CASES)
def test_documented_cases_match_go(oracle: Oracle, template: str) -> None:
    data = {"A": 1, "B": "", "Name": "name", "List": ["a", "b", 3], "Map": {"k": "v", "j": 2}}
    check(oracle, template, data)
    check(oracle, template, data, missing_key_error=True)
