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


# ------------------------------------------------------------------ BuildKit's syntax, pure parts


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        ("[", False), ("a[", False), ("**/[", False), ("[]", False), ("[]a]", False),
        ("[a-]", False), ("[^]", False), ("a\\", False), ("[a]", True), ("[a-z]*", True),
        ("[^a]", True), ("x[\\]]y", True), ("*.log", True), ("[!a]", True), ("a]", True),
    ],
)  # fmt: skip
def test_dockerignore_pattern_syntax_is_gos(pattern: str, ok: bool) -> None:
    """Go's filepath.Match syntax, which Docker's CLI checks every line with."""
    from dockyard.builder.ignore import BadPattern

    if ok:
        IgnoreRules.parse(pattern)
    else:
        with pytest.raises(BadPattern, match="syntax error in pattern"):
            IgnoreRules.parse(pattern)


def test_dockerignore_classes_negate_with_caret_only() -> None:
    rules = IgnoreRules(["[!a]x", "[^b]y"])
    assert rules.excluded("!x") and not rules.excluded("cx")  # "!" is a member, as in Go
    assert rules.excluded("cy") and not rules.excluded("by")


def test_stage_graph() -> None:
    from dockyard.builder.stages import dependencies, needed

    names = ["base", "build", "test", ""]
    refs = [["busybox"], ["base"], ["base", "build"], ["busybox", "1", "$X"]]
    deps = dependencies(names, refs)
    assert deps == [set(), {0}, {0, 1}, {0, 1, 2}]
    assert needed(deps, 1) == [0, 1]
    assert needed(dependencies(names, [["a"], ["b"], ["c"], ["busybox", "build"]]), 3) == [1, 3]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=cache", "mount destination is required for type=cache"),
        ("type=cache,target=/c,sharing=odd", "unrecognized sharing for mount: odd"),
        ("type=bind,target=/x,size=1m", "unexpected key 'size' for mount type bind"),
        ("type=secret", "secret ID missing from mount options"),
        ("type=tmpfs,target=/", "cannot mount over /"),
        ("type=cache,target=/c,mode=9z", 'invalid value for mode: "9z"'),
        ("target=/x,src", "invalid field 'src' must be a key=value pair"),
        ("type=ssh", "feature: SSH agent forwarding"),
        ("type=weird,target=/x", "feature: RUN --mount=type=weird"),
    ],
)
def test_mount_spec_errors(spec: str, message: str) -> None:
    from dockyard.builder.mounts import parse_mount
    from dockyard.builder.parser import Instruction

    ins = Instruction("RUN", ("true",), {"mount": [spec]}, False, "RUN true", 7)
    with pytest.raises(BuildError, match="^Dockerfile:7: .*" + __import__("re").escape(message)):
        parse_mount(ins, spec)


def test_mount_spec_defaults() -> None:
    from dockyard.builder.mounts import parse_mount
    from dockyard.builder.parser import Instruction

    ins = Instruction("RUN", ("true",), {}, False, "RUN true", 1)
    cache = parse_mount(ins, "type=cache,target=/root/.npm")
    assert (cache.id, cache.sharing, cache.read_only) == ("/root/.npm", "shared", False)
    bind = parse_mount(ins, "target=src,from=build")
    assert (bind.type, bind.target, bind.read_only, bind.from_) == ("bind", "/src", True, "build")
    assert parse_mount(ins, "type=bind,target=/s,rw").read_only is False
    secret = parse_mount(ins, "type=secret,id=npmrc")
    assert (secret.target, secret.mode, secret.required) == ("/run/secrets/npmrc", None, False)
    assert parse_mount(ins, "type=secret,target=/etc/key").id == "key"
    assert parse_mount(ins, 'type=secret,"id=a,b",env=TOKEN').id == "a,b"  # CSV quoting


def test_directives_and_frontends() -> None:
    from dockyard.builder.frontend import check_frontend
    from dockyard.builder.parser import directives

    d = directives("# syntax=docker/dockerfile:1.7-labs\n#check=skip=all\n# escape=`\nFROM x\n")
    assert (d.syntax, d.check, d.escape, d.syntax_line, d.check_line) == (
        "docker/dockerfile:1.7-labs",
        "skip=all",
        "`",
        1,
        2,
    )
    # a comment or an unknown directive ends them
    assert directives("# hello\n# syntax=x/y\nFROM x\n").syntax == ""
    assert directives("# foo=bar\n# syntax=x/y\n").syntax == ""
    with pytest.raises(BuildError, match="only one syntax parser directive"):
        directives("# syntax=a\n# syntax=b\n")
    for ok in ("docker/dockerfile:1", "docker/dockerfile:1.4.3", "docker/dockerfile:labs",
               "docker/dockerfile-upstream:master", "docker/dockerfile"):  # fmt: skip
        check_frontend(directives(f"# syntax={ok}\n"))
    for bad in ("docker/dockerfile:2", "tonistiigi/dockerfile:runmount", "example.com/x"):
        with pytest.raises(BuildError, match="unsupported frontend"):
            check_frontend(directives(f"# syntax={bad}\n"))


def test_check_directive_grammar() -> None:
    from dockyard.builder.checks import parse_check

    c = parse_check("skip=JSONArgsRecommended,StageNameCasing;error=true", "x")
    assert c.skip == {"JSONArgsRecommended", "StageNameCasing"} and c.error and not c.skip_all
    assert parse_check("skip=all", "x").skip_all
    for bad in ("error=maybe", "nokey", "color=red"):
        with pytest.raises(BuildError, match="invalid check directive"):
            parse_check(bad, "Dockerfile:2")


def test_platforms() -> None:
    from dockyard.builder.platforms import automatic_args, parse_platform

    assert str(parse_platform("linux/arm64/v8")) == "linux/arm64"
    assert str(parse_platform("arm")) == "linux/arm/v7"
    assert str(parse_platform("x86_64")) == "linux/amd64"
    with pytest.raises(InvalidArgument, match="unknown operating system or architecture"):
        parse_platform("linux/vax")
    args = automatic_args(parse_platform("linux/arm/v7"), parse_platform("linux/amd64"))
    assert args["TARGETVARIANT"] == "v7" and args["BUILDARCH"] == "amd64"
    assert args["TARGETPLATFORM"] == "linux/arm/v7"


@pytest.mark.parametrize(
    ("workdir", "dest", "path", "is_dir"),
    [
        ("/app", ".", "/app", True),
        ("/app", "./", "/app/", True),
        ("/app", "x", "/app/x", False),
        ("/app", "x/", "/app/x/", True),
        ("/app", "../up", "/up", False),
        ("/", "/abs", "/abs", False),
        ("/app/", "sub/.", "/app/sub", True),
    ],
)
def test_copy_destinations(
    tmp_path: object, workdir: str, dest: str, path: str, is_dir: bool
) -> None:
    from dockyard.builder.paths import destination

    d = destination(str(tmp_path), workdir, dest)
    assert (d.path, d.is_dir) == (path, is_dir)
