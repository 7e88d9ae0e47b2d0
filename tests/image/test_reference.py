"""Image reference parsing. Expected values were checked against
github.com/distribution/reference v0.6.0 (ParseNormalizedNamed + TagNameOnly, go-digest v1.0.0),
which is what ``docker pull/tag/run`` use."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dockyard.errors import InvalidArgument
from dockyard.image.reference import (
    Reference,
    looks_like_image_id,
    parse_reference,
    parse_repository,
)

HEX = "f" * 64
DIGEST = "sha256:" + HEX

# input, domain, path, tag, digest, str(), familiar()
ACCEPTED: list[tuple[str, str, str, str | None, str | None, str, str]] = [
    ("busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io", "library/busybox", "1.36", None,
     "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("me/busybox:1.0", "docker.io", "me/busybox", "1.0", None,
     "docker.io/me/busybox:1.0", "me/busybox:1.0"),
    ("localhost:5000/a/b:t", "localhost:5000", "a/b", "t", None,
     "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("localhost/a", "localhost", "a", "latest", None, "localhost/a:latest", "localhost/a:latest"),
    ("127.0.0.1:5001/alice/kubia:1", "127.0.0.1:5001", "alice/kubia", "1", None,
     "127.0.0.1:5001/alice/kubia:1", "127.0.0.1:5001/alice/kubia:1"),
    ("name@" + DIGEST, "docker.io", "library/name", None, DIGEST,
     "docker.io/library/name@" + DIGEST, "name@" + DIGEST),
    ("name:tag@" + DIGEST, "docker.io", "library/name", "tag", DIGEST,
     "docker.io/library/name:tag@" + DIGEST, "name:tag@" + DIGEST),
    ("docker.io/library/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/me/x", "docker.io", "me/x", "latest", None,
     "docker.io/me/x:latest", "me/x:latest"),
    ("ghcr.io/owner/img", "ghcr.io", "owner/img", "latest", None,
     "ghcr.io/owner/img:latest", "ghcr.io/owner/img:latest"),
    ("a__b", "docker.io", "library/a__b", "latest", None,
     "docker.io/library/a__b:latest", "a__b:latest"),
    ("a.b", "docker.io", "library/a.b", "latest", None,
     "docker.io/library/a.b:latest", "a.b:latest"),
    ("a-b", "docker.io", "library/a-b", "latest", None,
     "docker.io/library/a-b:latest", "a-b:latest"),
    ("a--b", "docker.io", "library/a--b", "latest", None,
     "docker.io/library/a--b:latest", "a--b:latest"),
    ("[::1]:5000/x", "[::1]:5000", "x", "latest", None, "[::1]:5000/x:latest",
     "[::1]:5000/x:latest"),
    ("[2001:db8::1]/repo:tag", "[2001:db8::1]", "repo", "tag", None,
     "[2001:db8::1]/repo:tag", "[2001:db8::1]/repo:tag"),
    # An upper-case first component is taken as a registry, never a namespace.
    ("Foo/bar", "Foo", "bar", "latest", None, "Foo/bar:latest", "Foo/bar:latest"),
    # Looks like a domain to splitDockerDomain, but only fits the path grammar.
    ("a_b.c/x", "", "a_b.c/x", "latest", None, "a_b.c/x:latest", "a_b.c/x:latest"),
    # A single component is always an image name: "5000" is the tag.
    ("localhost:5000", "docker.io", "library/localhost", "5000", None,
     "docker.io/library/localhost:5000", "localhost:5000"),
    ("192.168.1.1:5000", "docker.io", "library/192.168.1.1", "5000", None,
     "docker.io/library/192.168.1.1:5000", "192.168.1.1:5000"),
    # "library/" is stripped only when nothing nested follows.
    ("library/a/b", "docker.io", "library/a/b", "latest", None,
     "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("docker.io/foo.com/bar", "docker.io", "foo.com/bar", "latest", None,
     "docker.io/foo.com/bar:latest", "foo.com/bar:latest"),
    ("busybox:LATEST", "docker.io", "library/busybox", "LATEST", None,
     "docker.io/library/busybox:LATEST", "busybox:LATEST"),
    ("docker.io/" + HEX, "docker.io", "library/" + HEX, "latest", None,
     f"docker.io/library/{HEX}:latest", f"{HEX}:latest"),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com", "myimage", "xn--n3h.com", None,
     "xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com"),
    ("sub-dom1.foo.com/bar/baz/quux", "sub-dom1.foo.com", "bar/baz/quux", "latest", None,
     "sub-dom1.foo.com/bar/baz/quux:latest", "sub-dom1.foo.com/bar/baz/quux:latest"),
    ("a/b/c/d", "docker.io", "a/b/c/d", "latest", None, "docker.io/a/b/c/d:latest",
     "a/b/c/d:latest"),
    ("busybox:" + "t" * 128, "docker.io", "library/busybox", "t" * 128, None,
     "docker.io/library/busybox:" + "t" * 128, "busybox:" + "t" * 128),
    ("example.com/" + "a" * 255, "example.com", "a" * 255, "latest", None,
     "example.com/" + "a" * 255 + ":latest", "example.com/" + "a" * 255 + ":latest"),
]  # fmt: skip

GENERIC = "invalid reference format"
TOO_LONG = "repository name must not be more than 255 characters"


def _lowercase(remote: str) -> str:
    return f"invalid reference format: repository name ({remote}) must be lowercase"


REJECTED: list[tuple[str, str]] = [
    ("UPPER/Case", _lowercase("Case")),
    ("a//b", GENERIC),
    (":tag", GENERIC),
    ("a" * 300, TOO_LONG),
    ("", GENERIC),
    ("a:", GENERIC),
    ("a@sha256:short", GENERIC),
    ("-a", GENERIC),
    ("a-", GENERIC),
    ("a/../b", GENERIC),
    ("a/./b", GENERIC),
    ("busybox:", GENERIC),
    ("busybox:tag with space", GENERIC),
    ("a b", GENERIC),
    ("http://x/y", GENERIC),
    ("busybox\n", GENERIC),
    ("café", GENERIC),
    ("a:b/c", GENERIC),
    ("a@" + HEX, GENERIC),
    ("busybox:" + "t" * 129, GENERIC),
    ("[fe80::1%eth0]:5000/repo", GENERIC),
    ("[2001:db8::1]:5000", GENERIC),
    ("a@sha256:" + "f" * 31, GENERIC),
    (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
    ("docker.io/" + "a" * 248, TOO_LONG),  # the path is "library/" + 248 characters
    ("example.com/" + "a" * 256, TOO_LONG),
    ("Uppercase:tag", _lowercase("library/Uppercase")),
    ("a/B:c", _lowercase("a/B")),
    ("a@SHA256:" + HEX, _lowercase("library/a@SHA256")),
    # Upper case in a part that is neither a valid domain nor a valid path.
    ("FOO_X/bar", "repository name must be lowercase"),
    ("a@sha256:" + "f" * 40, "invalid checksum digest length"),
    ("a@sha256:" + "F" * 64, "invalid checksum digest format"),
    ("a@foo:" + HEX, "unsupported digest algorithm"),
    ("a:t@foo+B:" + HEX, "invalid checksum digest format"),
    # Docker accepts sha512; dockyard's content store is sha256-only.
    ("a@sha512:" + "f" * 128, "unsupported digest algorithm"),
    ("a@sha512:" + HEX, "invalid checksum digest length"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest", "full", "familiar"),
    ACCEPTED,
    ids=[case[0][:40] for case in ACCEPTED],
)
def test_accepted(
    text: str,
    domain: str,
    path: str,
    tag: str | None,
    digest: str | None,
    full: str,
    familiar: str,
) -> None:
    ref = parse_reference(text)
    assert ref == Reference(domain=domain, path=path, tag=tag, digest=digest)
    assert str(ref) == full
    assert ref.familiar() == familiar
    assert ref.name == (f"{domain}/{path}" if domain else path)
    assert ref.repository == path
    assert str(parse_reference(full)) == full


@pytest.mark.parametrize(("text", "message"), REJECTED, ids=[c[0][:40] for c in REJECTED])
def test_rejected(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_reference(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("UPPER/Case", "invalid reference format: repository name (Case) must be lowercase"),
        ("a//b", "invalid reference format"),
        (":tag", "invalid reference format"),
        ("a" * 300, "repository name must not be more than 255 characters"),
    ],
    ids=["UPPER/Case", "a//b", ":tag", "300 characters"],
)
def test_docker_messages_for_reported_cases(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_reference(text)
    assert str(info.value) == message


def test_default_tag_is_optional() -> None:
    ref = parse_reference("busybox", default_tag=False)
    assert ref.tag is None and ref.digest is None
    assert str(ref) == "docker.io/library/busybox"
    assert ref.familiar() == "busybox"


def test_digest_only_gets_no_default_tag() -> None:
    assert parse_reference("busybox@" + DIGEST).tag is None


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("busybox", "busybox"),
        ("me/busybox", "me/busybox"),
        ("localhost:5000/a/b", "localhost:5000/a/b"),
        ("library/a/b", "library/a/b"),
        ("ghcr.io/library/x", "ghcr.io/library/x"),
    ],
)
def test_familiar_name(ref: str, name: str) -> None:
    assert parse_reference(ref).familiar_name() == name


def test_parse_repository() -> None:
    ref = parse_repository("busybox")
    assert ref == Reference("docker.io", "library/busybox")
    assert parse_repository("localhost:5000/a/b") == Reference("localhost:5000", "a/b")
    for text in ("busybox:1", "busybox@" + DIGEST, "localhost:5000"):
        with pytest.raises(InvalidArgument, match="cannot have a tag or digest"):
            parse_repository(text)
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        parse_repository("UPPER/Case")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sha256:" + HEX, True),
        ("sha256:abc", True),
        ("abc123", True),
        (HEX, True),
        ("sha256:", False),
        ("sha256:" + HEX + "0", False),
        (HEX + "0", False),
        ("ABC", False),
        ("sha256:ABC", False),
        ("busybox", False),
        ("", False),
        ("sha512:abc", False),
    ],
)
def test_looks_like_image_id(text: str, expected: bool) -> None:
    assert looks_like_image_id(text) is expected


def test_with_tag_and_with_digest_keep_the_other() -> None:
    ref = parse_reference("busybox:1")
    both = ref.with_digest(DIGEST)
    assert str(both) == "docker.io/library/busybox:1@" + DIGEST
    assert str(both.with_tag("2")) == "docker.io/library/busybox:2@" + DIGEST
    assert ref.with_tag("2").tag == "2"


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a b", "t" * 129, "a:b", "é"])
def test_with_tag_rejects(tag: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid tag format"):
        parse_reference("busybox").with_tag(tag)


@pytest.mark.parametrize(
    ("digest", "message"),
    [
        ("", "invalid digest format"),
        ("sha256:short", "invalid digest format"),
        (HEX, "invalid digest format"),
        ("sha256:" + "f" * 40, "invalid checksum digest length"),
        ("sha256:" + "F" * 64, "invalid checksum digest format"),
        ("md5:" + HEX, "unsupported digest algorithm"),
    ],
)
def test_with_digest_rejects(digest: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_reference("busybox").with_digest(digest)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "fields",
    [
        {"domain": "bad_domain", "path": "a"},
        {"domain": "docker.io", "path": "A"},
        {"domain": "docker.io", "path": ""},
        {"domain": "docker.io", "path": "a" * 256},
        {"domain": "docker.io", "path": "a", "tag": "bad tag"},
        {"domain": "docker.io", "path": "a", "digest": "sha256:x"},
    ],
)
def test_constructor_validates(fields: dict[str, str]) -> None:
    with pytest.raises(InvalidArgument):
        Reference(**fields)


def test_reference_is_frozen_and_slotted() -> None:
    ref = parse_reference("busybox")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "x"  # type: ignore[misc]
    assert not hasattr(ref, "__dict__")
    assert hash(ref) == hash(parse_reference("docker.io/library/busybox:latest"))


# --- properties -------------------------------------------------------------------------

_alnum = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])


@st.composite
def _path_component(draw: st.DrawFn) -> str:
    out = draw(_alnum)
    for _ in range(draw(st.integers(0, 2))):
        out += draw(_separator) + draw(_alnum)
    return out


_path = st.lists(_path_component(), min_size=1, max_size=4).map("/".join)
_label = st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
_port = st.integers(0, 65535).map(lambda p: f":{p}")
_host = st.one_of(
    st.just("localhost"),
    st.lists(_label, min_size=1, max_size=3).map(".".join),
    st.sampled_from(["[::1]", "[2001:db8::1]", "[fc00:1:2:3:4:5:6:7]"]),
)
_domain = st.tuples(_host, st.one_of(st.just(""), _port)).map("".join)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h)


def _is_docker_domain(domain: str) -> bool:
    # splitDockerDomain's rule for a first component being a registry.
    return domain == "localhost" or "." in domain or ":" in domain or domain.lower() != domain


@st.composite
def _references(draw: st.DrawFn) -> Reference:
    domain = draw(st.one_of(st.just("docker.io"), _domain))
    assume(_is_docker_domain(domain) and domain != "index.docker.io")
    path = draw(_path)
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path  # Docker Hub names are always normalised to this
    return Reference(
        domain=domain,
        path=path,
        tag=draw(st.none() | _tag),
        digest=draw(st.none() | _digest),
    )


@given(_references())
def test_str_round_trips(ref: Reference) -> None:
    parsed = parse_reference(str(ref), default_tag=False)
    assert parsed == ref
    assert str(parsed) == str(ref)


@given(_references())
def test_familiar_round_trips(ref: Reference) -> None:
    # Docker quirk: a Hub path whose familiar form starts with a domain-like component
    # ("docker.io/foo.com/bar" -> "foo.com/bar") reads back as that domain.
    first = ref.familiar_name().split("/", 1)[0]
    assume(
        ref.domain != "docker.io" or "/" not in ref.familiar_name() or not _is_docker_domain(first)
    )
    assert parse_reference(ref.familiar(), default_tag=False) == ref


@given(_references())
def test_default_tag_added_only_without_tag_and_digest(ref: Reference) -> None:
    parsed = parse_reference(str(ref))
    if ref.tag is None and ref.digest is None:
        assert parsed == dataclasses.replace(ref, tag="latest")
    else:
        assert parsed == ref


_ref_alphabet = st.sampled_from(list("abAB09._-/:@[]% \n") + ["sha256:", "é", "\u0130", "\u212a"])
_ref_like = st.lists(_ref_alphabet, max_size=30).map("".join)


@given(st.one_of(st.text(), _ref_like))
def test_arbitrary_text_raises_only_invalid_argument(text: str) -> None:
    for parse in (parse_reference, parse_repository):
        try:
            ref = parse(text)
        except InvalidArgument as err:
            assert str(err)
        else:
            # Whatever is accepted is already normal.
            assert parse_reference(str(ref), default_tag=False) == ref
    assert isinstance(looks_like_image_id(text), bool)


@given(st.one_of(st.text(), _ref_like))
def test_with_tag_and_digest_raise_only_invalid_argument(text: str) -> None:
    ref = parse_reference("busybox")
    for method in (ref.with_tag, ref.with_digest):
        try:
            method(text)
        except InvalidArgument:
            pass


def test_long_inputs_are_linear() -> None:
    # Guards against catastrophic backtracking in the grammar's nested repetitions.
    for text in (
        "a" * 50_000 + "!",
        "a." * 25_000 + "!",
        "a-" * 25_000 + "!",
        "x/" + "a__" * 10_000,
    ):
        with pytest.raises(InvalidArgument):
            parse_reference(text)
