"""The build's pure parts: word expansion, .dockerignore, the Dockerfile front end."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockyard.builder.expand import expand
from dockyard.builder.ignore import IgnoreRules
from dockyard.builder.parser import BuildError, parse
from dockyard.errors import InvalidArgument

ENV = {"a": "1", "empty": "", "spaced": "x y"}


@pytest.mark.parametrize(
    ("word", "want"),
    [
        ("$a", "1"),
        ("${a}", "1"),
        ("pre${a}post", "pre1post"),
        ("${unset}", ""),
        ("${unset:-def}", "def"),
        ("${empty:-def}", "def"),
        ("${empty-def}", ""),
        ("${unset-def}", "def"),
        ("${a:+yes}", "yes"),
        ("${empty:+yes}", ""),
        ("${empty+yes}", "yes"),
        ("${unset:-${a}x}", "1x"),
        ('"$spaced"', "x y"),
        ("'$a'", "$a"),
        ('"it\'s"', "it's"),
        ("\\$a", "$a"),
        ('"a\\b"', "a\\b"),
        ('"a\\"b"', 'a"b'),
        ("$", "$"),
        ("a$", "a$"),
        ("$-x", "$-x"),
    ],
)
def test_expand(word: str, want: str) -> None:
    assert expand(word, ENV) == want


def test_expand_backtick_escape() -> None:
    assert expand("`$a", ENV, "`") == "$a"
    assert expand("C:\\dir", ENV, "`") == "C:\\dir"


@pytest.mark.parametrize(
    "word", ["'open", '"open', "${a", "${}", "${a:?must be set}x".replace("a", "unset")]
)
def test_expand_errors(word: str) -> None:
    with pytest.raises(InvalidArgument):
        expand(word, ENV)


@given(st.text(alphabet=st.characters(blacklist_characters="$'\"\\`"), max_size=40))
def test_expand_leaves_plain_text_alone(text: str) -> None:
    assert expand(text, ENV) == text


@given(st.text(alphabet=st.characters(blacklist_characters="'"), max_size=40))
def test_single_quotes_are_literal(text: str) -> None:
    assert expand(f"'{text}'", ENV) == text


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("*.log", "a.log", True),
        ("*.log", "sub/a.log", False),
        ("**/*.log", "sub/deep/a.log", True),
        ("**/*.log", "a.log", True),
        ("/secret", "secret", True),
        ("secret", "secret/inner/file", True),
        ("node_modules\n!node_modules/keep", "node_modules/keep", False),
        ("node_modules\n!node_modules/keep", "node_modules/drop", True),
        ("*\n!src\n", "src/main.c", False),
        ("# comment\n\n  tmp  \n", "tmp", True),
        ("# comment", "# comment", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[a-c].txt", "b.txt", True),
        ("[^a-c].txt", "d.txt", True),
        ("docs/**", "docs/x/y", True),
        ("docs/**", "docs", False),
        ("./build", "build/out", True),
        ("a/../b", "b", True),
        ("!x", "x", False),
    ],
)
def test_dockerignore(patterns: str, path: str, excluded: bool) -> None:
    assert IgnoreRules.parse(patterns).excluded(path) is excluded


_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=8)


@given(st.lists(_name, min_size=1, max_size=4), st.lists(_name, max_size=3))
def test_literal_pattern_excludes_the_path_and_below(parts: list[str], below: list[str]) -> None:
    rules = IgnoreRules.parse("/".join(parts))
    assert rules.excluded("/".join(parts + below))
    assert not rules.excluded("/".join(parts[:-1] + [parts[-1] + "x"]))
    assert not IgnoreRules.parse("/".join(parts) + "\n!" + "/".join(parts)).excluded(
        "/".join(parts)
    )


def test_parse_stages_and_errors() -> None:
    df = parse("ARG V=1\nFROM busybox:${V} AS Build\nRUN x\nFROM scratch\nCOPY --from=build a b\n")
    assert [s.name for s in df.stages] == ["build", ""]
    assert df.meta_args[0].args == ("V=1",)
    assert df.stages[1].instructions[0].flag("from") == "build"
    with pytest.raises(BuildError, match="Dockerfile:2: unknown instruction: BOGUS"):
        parse("FROM a\nBOGUS x\n")
    with pytest.raises(BuildError, match="Dockerfile:3: duplicate name"):
        parse("FROM a AS x\nFROM b AS x\nFROM c AS X\n".replace("FROM b AS x\n", "RUN y\n"))
    with pytest.raises(BuildError, match="no build stage"):
        parse("RUN x\n")
    with pytest.raises(BuildError, match="unknown flag: --nope"):
        parse("FROM a\nRUN --nope=1 x\n")


def test_escape_directive_and_heredoc_details() -> None:
    df = parse('# escape=`\nFROM a\nRUN echo `\n  b\nCOPY <<-"EOT" /x\n\tq\n\tEOT\n')
    run, copy = df.stages[0].instructions
    assert df.escape == "`"
    assert run.args == ("echo   b",)
    assert copy.heredocs[0].content == "q\n" and copy.heredocs[0].expand is False


@pytest.mark.parametrize(
    "url, git, parsed",
    [
        ("https://h/r.git", True, ("https://h/r.git", "", "")),
        ("https://h/r.git#v1:sub/dir", True, ("https://h/r.git", "v1", "sub/dir")),
        ("http://h/r.git#:sub", True, ("http://h/r.git", "", "sub")),
        ("git://h/r#main", True, ("git://h/r", "main", "")),
        ("git@h:o/r.git#dev:d", True, ("git@h:o/r.git", "dev", "d")),
        ("github.com/o/r", True, ("https://github.com/o/r", "", "")),
        ("https://h/ctx.tar.gz", False, None),
        ("https://h/r.git/x.tar", False, None),
        ("./r.git", False, None),
    ],
)
def test_git_urls(url: str, git: bool, parsed: tuple[str, str, str] | None) -> None:
    from dockyard.builder.prepare import is_git_url, parse_git_url

    assert is_git_url(url) is git
    if parsed is not None:
        assert parse_git_url(url) == parsed


def test_git_ref_that_is_an_option_is_refused() -> None:
    from dockyard.builder.prepare import parse_git_url

    with pytest.raises(BuildError, match="invalid refspec: -u"):
        parse_git_url("https://h/r.git#-u")
