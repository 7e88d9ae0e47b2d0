"""Container filesystem operations: ``docker cp`` both ways and ``docker diff``.

Real files under tmp_path stand in for a container's root; an "outside" sentinel directory next
to it must stay empty whatever the symlinks and archive entries try, proving nothing escapes.
"""

from __future__ import annotations

import io
import os
import re
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.errors import CorruptData, InvalidArgument, NotFound, UnsafeContent
from dockyard.runtime.fs import (
    Change,
    copy_from_host,
    copy_in,
    copy_out,
    copy_to_container,
    diff_upper,
    extract_to_host,
    go_file_mode,
    resolve_in_root,
)
from tests.helpers import Entry, entry, tar

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, trusted xattrs)")


@dataclass
class Box:
    root: Path  # the container's root dir on the host
    outside: Path  # a sentinel next to it: must stay empty

    def assert_outside_untouched(self) -> None:
        assert list(self.outside.iterdir()) == []


@pytest.fixture
def box(tmp_path: Path) -> Box:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return Box(root, outside)


def make_tar(entries: Iterable[Entry]) -> io.BytesIO:
    """A tar from TarInfos (no data) and (name, data) regular files."""
    return io.BytesIO(tar(*entries))


def info(name: str, kind: bytes, linkname: str = "", mode: int = 0o755) -> tarfile.TarInfo:
    return entry(name, kind, linkname=linkname, mode=mode)


def archive_of(
    root: Path, src: str, follow_link: bool = False
) -> tuple[dict[str, object], io.BytesIO]:
    buf = io.BytesIO()
    path_stat = copy_out(str(root), src, buf, follow_link=follow_link)
    buf.seek(0)
    return path_stat, buf


def members(buf: io.BytesIO) -> dict[str, tarfile.TarInfo]:
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        out = {m.name: m for m in tf.getmembers()}
    buf.seek(0)
    return out


def tree(path: Path) -> dict[str, str]:
    """Relative path -> "dir" / "file:<content>" / "link:<target>"."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(path))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = "file:" + p.read_text()
    return out


# ------------------------------------------------------------------------- resolve_in_root


def test_resolve_plain_and_missing_paths(box: Box) -> None:
    (box.root / "etc").mkdir()
    r = str(box.root)
    assert resolve_in_root(r, "/etc/passwd") == f"{r}/etc/passwd"
    assert resolve_in_root(r, "etc/passwd") == f"{r}/etc/passwd"  # relative to /
    assert resolve_in_root(r, "/") == r
    assert resolve_in_root(r, "") == r
    assert resolve_in_root(r, "/no/such/../file") == f"{r}/no/file"
    assert resolve_in_root(r, "/../../..") == r
    assert resolve_in_root(r, "/etc/../../../x") == f"{r}/x"


def test_resolve_absolute_link_to_slash_is_root(box: Box) -> None:
    os.symlink("/", box.root / "top")
    r = str(box.root)
    assert resolve_in_root(r, "/top") == r
    assert resolve_in_root(r, "/top/etc/passwd") == f"{r}/etc/passwd"


def test_resolve_relative_escape_is_clamped(box: Box) -> None:
    (box.root / "a" / "b").mkdir(parents=True)
    os.symlink("../../..", box.root / "a" / "b" / "up")
    os.symlink("../../outside", box.root / "a" / "out")  # on the host: tmp_path/outside
    r = str(box.root)
    assert resolve_in_root(r, "/a/b/up") == r
    assert resolve_in_root(r, "/a/b/up/a/b/up/x") == f"{r}/x"
    assert resolve_in_root(r, "/a/out/secret") == f"{r}/outside/secret"


def test_resolve_absolute_host_path_stays_inside(box: Box) -> None:
    os.symlink(str(box.outside), box.root / "host")
    r = str(box.root)
    assert resolve_in_root(r, "/host/x") == r + str(box.outside) + "/x"


def test_resolve_chains(box: Box) -> None:
    (box.root / "c" / "d").mkdir(parents=True)
    os.symlink("b", box.root / "a")
    os.symlink("/c", box.root / "b")
    os.symlink("../c/d", box.root / "c" / "dd")
    r = str(box.root)
    assert resolve_in_root(r, "/a/x") == f"{r}/c/x"
    assert resolve_in_root(r, "/a/dd/y") == f"{r}/c/d/y"
    assert resolve_in_root(r, "/a/dd/..") == f"{r}/c"  # ".." after a link: physical, like chroot


def test_resolve_loops(box: Box) -> None:
    os.symlink("l2", box.root / "l1")
    os.symlink("/l1", box.root / "l2")
    os.symlink("self", box.root / "self")
    with pytest.raises(InvalidArgument, match="too many levels of symbolic links"):
        resolve_in_root(str(box.root), "/l1")
    with pytest.raises(InvalidArgument, match="too many levels"):
        resolve_in_root(str(box.root), "/self/x")
    # A long but finite chain (40 links) is fine.
    for i in range(40):
        os.symlink(f"n{i + 1}", box.root / f"n{i}")
    (box.root / "n40").mkdir()
    assert resolve_in_root(str(box.root), "/n0") == f"{box.root}/n40"
    os.symlink("n0", box.root / "m")
    with pytest.raises(InvalidArgument):
        resolve_in_root(str(box.root), "/m")


def test_resolve_follow_final_false(box: Box) -> None:
    (box.root / "d").mkdir()
    os.symlink("/d", box.root / "link")
    os.symlink("/", box.root / "d" / "inner")
    r = str(box.root)
    assert resolve_in_root(r, "/link", follow_final=False) == f"{r}/link"
    assert resolve_in_root(r, "/link/inner", follow_final=False) == f"{r}/d/inner"
    assert resolve_in_root(r, "/link/", follow_final=False) == f"{r}/d"  # "/" forces following
    assert resolve_in_root(r, "/link/.", follow_final=False) == f"{r}/d"
    assert resolve_in_root(r, "/link") == f"{r}/d"


_PARTS = ["a", "b", "..", ".", "", "up", "abs", "host", "loop", "x"]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(_PARTS), max_size=10), st.booleans())
def test_resolve_never_leaves_root(box: Box, parts: list[str], follow: bool) -> None:
    r = box.root
    if not (r / "a").exists():
        (r / "a" / "b").mkdir(parents=True)
        os.symlink("../../../..", r / "a" / "up")
        os.symlink("../..", r / "up")
        os.symlink("/a/b/../..", r / "a" / "b" / "abs")
        os.symlink(str(box.outside), r / "host")
        os.symlink("loop/x", r / "loop")
    try:
        got = resolve_in_root(str(r), "/".join(parts), follow_final=follow)
    except InvalidArgument:
        return
    assert os.path.commonpath([str(r), got]) == str(r)


# ------------------------------------------------------------------------- copy_out


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


@pytest.fixture
def populated(box: Box) -> Box:
    r = box.root
    (r / "d" / "sub").mkdir(parents=True)
    (r / "d" / "a.txt").write_text("alpha")
    (r / "d" / "sub" / "b.txt").write_text("beta")
    os.symlink("../a.txt", r / "d" / "sub" / "rel")
    os.symlink("/", r / "d" / "rootlink")
    os.link(r / "d" / "a.txt", r / "d" / "hard")
    os.chmod(r / "d" / "a.txt", 0o640)
    os.utime(r / "d" / "a.txt", (1_600_000_000, 1_600_000_000))
    (r / "f.txt").write_text("hello")
    os.symlink("d", r / "lnk")
    (box.outside / "secret").write_text("host secret")
    snapshot = sorted(box.outside.iterdir())
    assert snapshot == [box.outside / "secret"]
    return box


def test_copy_out_file(populated: Box) -> None:
    path_stat, buf = archive_of(populated.root, "/f.txt")
    m = members(buf)
    assert list(m) == ["f.txt"]
    with tarfile.open(fileobj=buf) as tf:
        f = tf.extractfile("f.txt")
        assert f is not None and f.read() == b"hello"
    assert set(path_stat) == {"name", "size", "mode", "mtime", "linkTarget"}
    assert path_stat["name"] == "f.txt"
    assert path_stat["size"] == 5
    assert path_stat["mode"] == os.stat(populated.root / "f.txt").st_mode & 0o777
    assert RFC3339.match(str(path_stat["mtime"]))
    assert path_stat["linkTarget"] == ""


def test_copy_out_dir(populated: Box) -> None:
    path_stat, buf = archive_of(populated.root, "/d")
    m = members(buf)
    assert sorted(m) == [
        "d",
        "d/a.txt",
        "d/hard",
        "d/rootlink",
        "d/sub",
        "d/sub/b.txt",
        "d/sub/rel",
    ]
    assert m["d"].isdir()
    assert m["d/a.txt"].isreg() and m["d/a.txt"].mode == 0o640
    assert m["d/a.txt"].mtime == 1_600_000_000
    assert m["d/hard"].islnk() and m["d/hard"].linkname == "d/a.txt"
    assert m["d/rootlink"].issym() and m["d/rootlink"].linkname == "/"  # not followed
    assert m["d/sub/rel"].issym() and m["d/sub/rel"].linkname == "../a.txt"
    assert path_stat["mode"] == (1 << 31) | 0o755
    assert path_stat["name"] == "d"


def test_copy_out_dir_contents(populated: Box) -> None:
    path_stat, buf = archive_of(populated.root, "/d/.")
    m = members(buf)
    assert sorted(m) == [
        ".",
        "./a.txt",
        "./hard",
        "./rootlink",
        "./sub",
        "./sub/b.txt",
        "./sub/rel",
    ]
    assert path_stat["name"] == "."
    assert int(str(path_stat["mode"])) & (1 << 31)


def test_copy_out_symlink_itself_and_followed(populated: Box) -> None:
    path_stat, buf = archive_of(populated.root, "/lnk")
    m = members(buf)
    assert list(m) == ["lnk"] and m["lnk"].issym() and m["lnk"].linkname == "d"
    assert path_stat["mode"] == (1 << 27) | 0o777
    assert path_stat["linkTarget"] == "/d"  # resolved in the container, absolute

    path_stat, buf = archive_of(populated.root, "/lnk", follow_link=True)
    m = members(buf)
    assert m["lnk"].isdir()  # the target, under the link's name (docker cp -L)
    assert "lnk/sub/b.txt" in m
    assert path_stat["name"] == "lnk" and int(str(path_stat["mode"])) & (1 << 31)

    _, buf = archive_of(populated.root, "/lnk/")  # a trailing slash follows too
    assert members(buf)["lnk"].isdir()


def test_copy_out_links_never_read_the_host(populated: Box) -> None:
    r = populated.root
    os.symlink(str(populated.outside / "secret"), r / "abs")
    os.symlink("../outside/secret", r / "rel")
    for name in ("/abs", "/rel"):
        with pytest.raises(NotFound):
            archive_of(r, name, follow_link=True)
        path_stat, buf = archive_of(r, name)
        assert members(buf)[name[1:]].issym()
    # Through a directory link to the host's outside dir: also resolved in the root.
    os.symlink(str(populated.outside), r / "hostdir")
    with pytest.raises(NotFound):
        archive_of(r, "/hostdir/secret")


def test_copy_out_missing(populated: Box) -> None:
    with pytest.raises(NotFound, match="^Could not find the file /nope in container$"):
        archive_of(populated.root, "/nope")
    with pytest.raises(NotFound):
        archive_of(populated.root, "/f.txt/x")
    with pytest.raises(InvalidArgument, match="not a directory"):
        archive_of(populated.root, "/f.txt/")


def test_go_file_mode() -> None:
    assert go_file_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_file_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_file_mode(stat.S_IFREG | stat.S_ISUID | 0o755) == (1 << 23) | 0o755
    assert go_file_mode(stat.S_IFCHR | 0o600) == (1 << 26) | (1 << 21) | 0o600
    assert go_file_mode(stat.S_IFIFO | 0o644) == (1 << 25) | 0o644
    assert go_file_mode(stat.S_IFDIR | stat.S_ISVTX | 0o777) == (1 << 31) | (1 << 20) | 0o777


# ------------------------------------------------------------------------- copy_in


def host_tree(tmp_path: Path) -> Path:
    src = tmp_path / "hostsrc" / "pkg"
    (src / "bin").mkdir(parents=True)
    (src / "bin" / "tool").write_text("#!/bin/sh\n")
    os.chmod(src / "bin" / "tool", 0o4755)
    (src / "README").write_text("read me")
    os.utime(src / "README", (1_500_000_000, 1_500_000_000))
    os.symlink("bin/tool", src / "run")
    os.chown(src / "README", 1234, 5678)
    return src


def tar_from_host(path: str, follow_link: bool = False) -> io.BytesIO:
    buf = io.BytesIO()
    copy_from_host(path, buf, follow_link=follow_link)
    buf.seek(0)
    return buf


@root_only
def test_copy_in_tree(box: Box, tmp_path: Path) -> None:
    src = host_tree(tmp_path)
    (box.root / "opt").mkdir()
    copy_in(str(box.root), "/opt", tar_from_host(str(src)))
    dst = box.root / "opt" / "pkg"
    assert tree(dst) == tree(src)
    assert os.stat(dst / "bin" / "tool").st_mode & 0o7777 == 0o4755  # kept inside containers
    readme = os.stat(dst / "README")
    assert (readme.st_uid, readme.st_gid) == (1234, 5678)
    assert readme.st_mtime == 1_500_000_000
    assert os.stat(dst).st_mtime == int(os.stat(src).st_mtime)

    copy_in(str(box.root), "/opt", tar_from_host(str(src) + "/."), chown=(7, 8))
    readme = os.stat(box.root / "opt" / "README")
    assert (readme.st_uid, readme.st_gid) == (7, 8)
    assert (box.root / "opt" / "bin" / "tool").is_file()
    box.assert_outside_untouched()


def test_copy_in_dst_errors(box: Box) -> None:
    (box.root / "file").write_text("x")
    with pytest.raises(NotFound, match="Could not find the file /nope in container"):
        copy_in(str(box.root), "/nope", make_tar([("a", b"")]))
    with pytest.raises(InvalidArgument, match="extraction point is not a directory"):
        copy_in(str(box.root), "/file", make_tar([("a", b"")]))


@pytest.mark.parametrize("target", ["/", "..", "../../..", "/../.."])
def test_copy_in_dst_link_escaping_lands_in_root(box: Box, target: str) -> None:
    os.symlink(target, box.root / "data")
    name = f"dockyard-test-{uuid.uuid4().hex}"
    copy_in(str(box.root), "/data", make_tar([(name, b"payload")]))
    assert (box.root / name).read_bytes() == b"payload"
    assert not os.path.lexists(f"/{name}")
    assert not os.path.lexists(box.root.parent / name)
    box.assert_outside_untouched()


def test_copy_in_dst_link_to_host_path(box: Box) -> None:
    os.symlink(str(box.outside), box.root / "data")
    (box.root / str(box.outside).lstrip("/")).mkdir(parents=True)
    copy_in(str(box.root), "/data", make_tar([("f", b"x")]))
    assert (box.root / str(box.outside).lstrip("/") / "f").read_bytes() == b"x"
    box.assert_outside_untouched()


def test_copy_in_dotdot_entry_refused(box: Box) -> None:
    (box.root / "data").mkdir()
    with pytest.raises(UnsafeContent, match='"../x" is outside of "/data"'):
        copy_in(str(box.root), "/data", make_tar([("../x", b"no")]))
    with pytest.raises(UnsafeContent):
        copy_in(str(box.root), "/data", make_tar([("a/../../../outside/x", b"no")]))
    assert not (box.root / "x").exists()
    box.assert_outside_untouched()


def test_copy_in_absolute_entry_goes_under_dst(box: Box) -> None:
    (box.root / "data").mkdir()
    copy_in(str(box.root), "/data", make_tar([("/abs/file", b"1"), ("ok/../fine", b"2")]))
    assert (box.root / "data" / "abs" / "file").read_bytes() == b"1"
    assert (box.root / "data" / "fine").read_bytes() == b"2"
    box.assert_outside_untouched()


@pytest.mark.parametrize("link", ["/", "../..", "../../../../..", "HOST"])
def test_copy_in_through_container_symlink(box: Box, link: str) -> None:
    (box.root / "data").mkdir()
    landing = box.root
    if link == "HOST":  # the host path of the sentinel: taken inside the root instead
        link = str(box.outside)
        landing = box.root / str(box.outside).lstrip("/")
    os.symlink(link, box.root / "data" / "link")
    name = f"dockyard-test-{uuid.uuid4().hex}"
    copy_in(str(box.root), "/data", make_tar([(f"link/{name}", b"pwned?")]))
    assert (landing / name).read_bytes() == b"pwned?"
    assert not os.path.lexists(f"/{name}")
    box.assert_outside_untouched()


def test_copy_in_symlink_made_by_the_archive(box: Box) -> None:
    (box.root / "data").mkdir()
    evil = info("evil", tarfile.SYMTYPE, str(box.outside))
    up = info("up", tarfile.SYMTYPE, "../../..")
    tar = make_tar([evil, up, ("evil/x", b"1"), ("up/y", b"2")])
    copy_in(str(box.root), "/data", tar)
    assert (box.root / str(box.outside).lstrip("/") / "x").read_bytes() == b"1"
    assert (box.root / "y").read_bytes() == b"2"
    assert os.readlink(box.root / "data" / "evil") == str(box.outside)
    box.assert_outside_untouched()


def test_copy_in_replaces_a_symlink_instead_of_writing_through(box: Box) -> None:
    (box.root / "data").mkdir()
    (box.outside / "victim").write_text("original")
    os.symlink(str(box.outside / "victim"), box.root / "data" / "f")
    os.symlink("../../outside/victim", box.root / "data" / "g")
    copy_in(str(box.root), "/data", make_tar([("f", b"new"), ("g", b"new")]))
    assert (box.outside / "victim").read_text() == "original"
    assert not (box.root / "data" / "f").is_symlink()
    assert (box.root / "data" / "f").read_bytes() == b"new"
    assert (box.root / "data" / "g").read_bytes() == b"new"
    assert sorted(p.name for p in box.outside.iterdir()) == ["victim"]


def test_copy_in_hard_links(box: Box) -> None:
    (box.root / "data").mkdir()
    (box.root / "etc").mkdir()
    (box.root / "etc" / "shadow").write_text("container shadow")
    (box.outside / "secret").write_text("host secret")
    os.symlink("/", box.root / "data" / "rootlink")
    copy_in(
        str(box.root),
        "/data",
        make_tar(
            [
                ("a", b"data"),
                info("b", tarfile.LNKTYPE, "a"),
                info("c", tarfile.LNKTYPE, "rootlink/etc/shadow"),
            ]
        ),
    )
    assert os.stat(box.root / "data" / "b").st_ino == os.stat(box.root / "data" / "a").st_ino
    assert os.stat(box.root / "data" / "c").st_ino == os.stat(box.root / "etc" / "shadow").st_ino
    with pytest.raises(UnsafeContent):
        copy_in(
            str(box.root), "/data", make_tar([info("x", tarfile.LNKTYPE, "../../outside/secret")])
        )
    with pytest.raises(UnsafeContent, match="target does not exist"):
        copy_in(
            str(box.root),
            "/data",
            make_tar([info("y", tarfile.LNKTYPE, f"rootlink{box.outside}/secret")]),
        )
    assert os.stat(box.outside / "secret").st_nlink == 1
    assert sorted(p.name for p in box.outside.iterdir()) == ["secret"]


def test_copy_in_refuses_device_nodes(box: Box) -> None:
    (box.root / "data").mkdir()
    for kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        dev = info("null", kind)
        dev.devmajor, dev.devminor = 1, 3
        with pytest.raises(UnsafeContent, match="device"):
            copy_in(str(box.root), "/data", make_tar([dev]))
    assert not os.path.lexists(box.root / "data" / "null")


def test_copy_in_fifo(box: Box) -> None:
    (box.root / "data").mkdir()
    copy_in(str(box.root), "/data", make_tar([info("pipe", tarfile.FIFOTYPE, mode=0o640)]))
    st_ = os.lstat(box.root / "data" / "pipe")
    assert stat.S_ISFIFO(st_.st_mode) and stat.S_IMODE(st_.st_mode) == 0o640


def test_copy_in_dir_non_dir_conflicts(box: Box) -> None:
    (box.root / "data" / "sub").mkdir(parents=True)
    (box.root / "data" / "file").write_text("x")
    with pytest.raises(InvalidArgument, match="cannot overwrite directory .* with non-directory"):
        copy_in(str(box.root), "/data", make_tar([("sub", b"file now")]))
    with pytest.raises(InvalidArgument, match="cannot overwrite non-directory .* with directory"):
        copy_in(str(box.root), "/data", make_tar([info("file", tarfile.DIRTYPE)]))
    assert (box.root / "data" / "sub").is_dir()
    copy_in(
        str(box.root), "/data", make_tar([("sub", b"file now")]), no_overwrite_dir_non_dir=False
    )
    assert (box.root / "data" / "sub").read_bytes() == b"file now"
    # A directory entry over an existing directory merges and takes its metadata.
    (box.root / "data" / "d").mkdir()
    (box.root / "data" / "d" / "keep").write_text("k")
    d = info("d", tarfile.DIRTYPE, mode=0o700)
    d.mtime = 1_000_000_000
    copy_in(str(box.root), "/data", make_tar([d, ("d/new", b"n")]))
    assert (box.root / "data" / "d" / "keep").exists() and (
        box.root / "data" / "d" / "new"
    ).exists()
    assert stat.S_IMODE(os.stat(box.root / "data" / "d").st_mode) == 0o700
    assert os.stat(box.root / "data" / "d").st_mtime == 1_000_000_000


def test_copy_in_creates_missing_parents_and_rejects_garbage(box: Box) -> None:
    (box.root / "data").mkdir()
    copy_in(str(box.root), "/data", make_tar([("x/y/z", b"deep")]))
    assert (box.root / "data" / "x" / "y" / "z").read_bytes() == b"deep"
    assert stat.S_IMODE(os.stat(box.root / "data" / "x").st_mode) == 0o755
    with pytest.raises(CorruptData):
        copy_in(str(box.root), "/data", io.BytesIO(b"not a tar archive at all" * 50))
    (box.root / "data" / "plain").write_text("p")
    with pytest.raises(CorruptData, match='"plain" is not a directory'):
        copy_in(str(box.root), "/data", make_tar([("plain/inside", b"")]))


def test_copy_to_container_destination_rules(box: Box, tmp_path: Path) -> None:
    src = host_tree(tmp_path)
    r = box.root
    (r / "etc").mkdir()
    (r / "etc" / "old.conf").write_text("old")
    readme = str(src / "README")
    copy_to_container(str(r), "/etc/new.conf", tar_from_host(readme))  # renamed
    assert (r / "etc" / "new.conf").read_text() == "read me"
    copy_to_container(str(r), "/etc/old.conf", tar_from_host(readme))  # replaced
    assert (r / "etc" / "old.conf").read_text() == "read me"
    copy_to_container(str(r), "/etc", tar_from_host(readme))  # into the dir
    assert (r / "etc" / "README").read_text() == "read me"
    copy_to_container(str(r), "/opt", tar_from_host(str(src)))  # dir -> new name
    assert tree(r / "opt") == tree(src)
    copy_to_container(str(r), "/etc", tar_from_host(str(src)))  # dir -> inside
    assert tree(r / "etc" / "pkg") == tree(src)
    copy_to_container(str(r), "/contents", tar_from_host(str(src) + "/."))
    assert tree(r / "contents") == tree(src)
    with pytest.raises(InvalidArgument, match="must exist"):
        copy_to_container(str(r), "/nodir/", tar_from_host(readme))
    with pytest.raises(InvalidArgument, match="cannot copy a directory to a file"):
        copy_to_container(str(r), "/etc/old.conf", tar_from_host(str(src)))
    with pytest.raises(NotFound):
        copy_to_container(str(r), "/no/parent", tar_from_host(readme))
    with pytest.raises(UnsafeContent):
        copy_to_container(str(r), "/x", make_tar([("top", b""), ("other", b"")]))
    assert not (r / "other").exists()
    box.assert_outside_untouched()


def test_copy_to_container_follows_dst_links_inside(box: Box, tmp_path: Path) -> None:
    src = host_tree(tmp_path)
    r = box.root
    os.symlink(str(box.outside), r / "hostlink")
    os.symlink("../../../..", r / "up")
    copy_to_container(str(r), "/up", tar_from_host(str(src / "README")))
    assert (r / "README").read_text() == "read me"
    (r / str(box.outside).lstrip("/")).mkdir(parents=True)
    copy_to_container(str(r), "/hostlink/f", tar_from_host(str(src / "README")))
    assert (r / str(box.outside).lstrip("/") / "f").read_text() == "read me"
    os.symlink(str(box.outside / "dangling"), r / "dangle")
    copy_to_container(str(r), "/dangle", tar_from_host(str(src / "README")))
    assert (r / str(box.outside).lstrip("/") / "dangling").read_text() == "read me"
    box.assert_outside_untouched()


# ------------------------------------------------------------------------- extract_to_host


@pytest.fixture
def src_box(box: Box) -> Box:
    r = box.root
    (r / "dir" / "sub").mkdir(parents=True)
    (r / "dir" / "one").write_text("1")
    (r / "dir" / "sub" / "two").write_text("2")
    (r / "file").write_text("content")
    os.chmod(r / "file", 0o6755)
    return box


def out_of(box: Box, src: str) -> io.BytesIO:
    return archive_of(box.root, src)[1]


def test_host_file_to_new_name(src_box: Box, tmp_path: Path) -> None:
    dst = tmp_path / "host"
    dst.mkdir()
    extract_to_host(out_of(src_box, "/file"), str(dst / "renamed"))
    assert (dst / "renamed").read_text() == "content"
    mode = stat.S_IMODE(os.stat(dst / "renamed").st_mode)
    assert mode == 0o755  # set-id bits dropped on the host


def test_host_file_over_existing_file(src_box: Box, tmp_path: Path) -> None:
    dst = tmp_path / "existing.txt"
    dst.write_text("old")
    extract_to_host(out_of(src_box, "/file"), str(dst))
    assert dst.read_text() == "content"


def test_host_file_into_existing_dir(src_box: Box, tmp_path: Path) -> None:
    dst = tmp_path / "host"
    dst.mkdir()
    extract_to_host(out_of(src_box, "/file"), str(dst))
    extract_to_host(out_of(src_box, "/file"), str(dst) + "/")
    assert tree(dst) == {"file": "file:content"}


def test_host_file_to_missing_dir_with_slash(src_box: Box, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="destination directory .* must exist"):
        extract_to_host(out_of(src_box, "/file"), str(tmp_path / "nodir") + "/")
    with pytest.raises(NotFound):
        extract_to_host(out_of(src_box, "/file"), str(tmp_path / "no" / "parent"))
    assert not (tmp_path / "nodir").exists()


def test_host_dir_to_new_name(src_box: Box, tmp_path: Path) -> None:
    extract_to_host(out_of(src_box, "/dir"), str(tmp_path / "copy"))
    assert tree(tmp_path / "copy") == {"one": "file:1", "sub": "dir", "sub/two": "file:2"}
    extract_to_host(out_of(src_box, "/dir"), str(tmp_path / "copy2") + "/")  # "/" is fine
    assert tree(tmp_path / "copy2") == tree(tmp_path / "copy")


def test_host_dir_into_existing_dir(src_box: Box, tmp_path: Path) -> None:
    dst = tmp_path / "host"
    dst.mkdir()
    extract_to_host(out_of(src_box, "/dir"), str(dst))
    assert tree(dst) == {
        "dir": "dir",
        "dir/one": "file:1",
        "dir/sub": "dir",
        "dir/sub/two": "file:2",
    }


def test_host_dir_contents(src_box: Box, tmp_path: Path) -> None:
    dst = tmp_path / "host"
    dst.mkdir()
    (dst / "already").write_text("here")
    extract_to_host(out_of(src_box, "/dir/."), str(dst))
    assert tree(dst) == {"already": "file:here", "one": "file:1", "sub": "dir", "sub/two": "file:2"}
    extract_to_host(out_of(src_box, "/dir/."), str(tmp_path / "fresh"))
    assert tree(tmp_path / "fresh") == {"one": "file:1", "sub": "dir", "sub/two": "file:2"}


def test_host_dir_over_file_is_an_error(src_box: Box, tmp_path: Path) -> None:
    dst = tmp_path / "afile"
    dst.write_text("x")
    with pytest.raises(InvalidArgument, match="cannot copy a directory to a file"):
        extract_to_host(out_of(src_box, "/dir"), str(dst))
    assert dst.read_text() == "x"


def test_host_round_trip_keeps_links_and_times(populated: Box, tmp_path: Path) -> None:
    dst = tmp_path / "host"
    dst.mkdir()
    extract_to_host(out_of(populated, "/d"), str(dst))
    assert tree(dst / "d") == tree(populated.root / "d")
    assert os.stat(dst / "d" / "a.txt").st_mtime == 1_600_000_000
    assert stat.S_IMODE(os.stat(dst / "d" / "a.txt").st_mode) == 0o640
    assert os.stat(dst / "d" / "hard").st_ino == os.stat(dst / "d" / "a.txt").st_ino
    assert os.readlink(dst / "d" / "rootlink") == "/"


def test_host_copy_from_host_round_trip(tmp_path: Path) -> None:
    src = host_tree(tmp_path)
    extract_to_host(tar_from_host(str(src)), str(tmp_path / "again"))
    assert tree(tmp_path / "again") == tree(src)
    link = tmp_path / "hostsrc" / "pkglink"
    os.symlink("pkg", link)
    assert members(tar_from_host(str(link)))["pkglink"].issym()
    followed = members(tar_from_host(str(link), follow_link=True))
    assert followed["pkglink"].isdir() and "pkglink/bin/tool" in followed
    with pytest.raises(NotFound):
        tar_from_host(str(tmp_path / "missing"))


@pytest.mark.parametrize(
    "entries",
    [
        [info("top", tarfile.DIRTYPE), ("top/../../x", b"escape")],
        [info("top", tarfile.DIRTYPE), ("../x", b"escape")],
        [
            info("top", tarfile.DIRTYPE),
            info("top/link", tarfile.SYMTYPE, "OUTSIDE"),
            ("top/link/x", b"through a link"),
        ],
        [
            info("top", tarfile.DIRTYPE),
            info("top/up", tarfile.SYMTYPE, "../.."),
            ("top/up/outside/x", b"through a link"),
        ],
        [info("top", tarfile.DIRTYPE), ("elsewhere", b"not under top")],
        [info("top", tarfile.DIRTYPE), info("top/h", tarfile.LNKTYPE, "../outside/secret")],
        [info("top", tarfile.DIRTYPE), info("top/h", tarfile.LNKTYPE, "outside/secret")],
    ],
)
def test_host_escapes_refused(
    tmp_path: Path, entries: list[tarfile.TarInfo | tuple[str, bytes]]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    for e in entries:
        if isinstance(e, tarfile.TarInfo) and e.linkname == "OUTSIDE":
            e.linkname = str(outside)
    with pytest.raises(UnsafeContent):
        extract_to_host(make_tar(entries), str(tmp_path / "newname"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert os.stat(outside / "secret").st_nlink == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "elsewhere").exists()


def test_host_escapes_into_existing_dir(tmp_path: Path) -> None:
    dst = tmp_path / "host"
    dst.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    with pytest.raises(UnsafeContent):
        extract_to_host(make_tar([("../outside/x", b"")]), str(dst))
    with pytest.raises(UnsafeContent):
        extract_to_host(
            make_tar([info("l", tarfile.SYMTYPE, str(outside)), ("l/x", b"")]), str(dst)
        )
    # An existing symlink in the destination is replaced by the file, not written through.
    os.symlink(str(outside / "victim"), dst / "victim")
    extract_to_host(make_tar([("victim", b"mine")]), str(dst))
    assert not (dst / "victim").is_symlink() and (dst / "victim").read_bytes() == b"mine"
    # An absolute name goes under the destination.
    extract_to_host(make_tar([("/abs", b"a")]), str(dst))
    assert (dst / "abs").read_bytes() == b"a"
    assert list(outside.iterdir()) == []


def test_host_refuses_devices(tmp_path: Path) -> None:
    dev = info("null", tarfile.CHRTYPE)
    with pytest.raises(UnsafeContent):
        extract_to_host(make_tar([dev]), str(tmp_path / "n"))
    with pytest.raises(CorruptData):
        extract_to_host(make_tar([]), str(tmp_path / "n"))


# ------------------------------------------------------------------------- diff


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def opaque(path: Path) -> None:
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def same_meta(upper: Path, lower: Path) -> None:
    st_ = os.stat(lower)
    os.chmod(upper, stat.S_IMODE(st_.st_mode))
    os.utime(upper, ns=(st_.st_atime_ns, st_.st_mtime_ns))


def kinds(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.kind, c.path) for c in changes]


@root_only
def test_diff_by_hand(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    for d in ("etc", "var/lib", "opq/inner", "same", "chmod", "usr/bin"):
        (lower / d).mkdir(parents=True)
    for f in (
        "etc/passwd",
        "etc/old",
        "var/lib/x",
        "opq/a",
        "opq/inner/b",
        "same/s",
        "usr/bin/tool",
    ):
        (lower / f).write_text("lower")
    upper.mkdir()
    (upper / "etc").mkdir()
    (upper / "etc" / "passwd").write_text("changed")
    whiteout(upper / "etc" / "old")
    same_meta(upper / "etc", lower / "etc")
    (upper / "new" / "deep").mkdir(parents=True)
    (upper / "new" / "deep" / "file").write_text("new")
    (upper / "opq").mkdir()
    opaque(upper / "opq")
    (upper / "opq" / "c").write_text("c")
    (upper / "same").mkdir()
    same_meta(upper / "same", lower / "same")  # copied up, nothing changed: not reported
    (upper / "chmod").mkdir(mode=0o700)  # metadata-only change
    os.chmod(upper / "chmod", 0o700)
    (upper / "usr" / "bin").mkdir(parents=True)
    whiteout(upper / "usr" / "bin" / "tool")
    same_meta(upper / "usr" / "bin", lower / "usr" / "bin")
    same_meta(upper / "usr", lower / "usr")

    changes = diff_upper(str(upper), [str(lower)])
    assert kinds(changes) == [
        ("C", "/chmod"),
        ("C", "/etc"),
        ("D", "/etc/old"),
        ("C", "/etc/passwd"),
        ("A", "/new"),
        ("A", "/new/deep"),
        ("A", "/new/deep/file"),
        ("C", "/opq"),
        ("D", "/opq/a"),
        ("A", "/opq/c"),
        ("D", "/opq/inner"),
        ("C", "/usr"),
        ("C", "/usr/bin"),
        ("D", "/usr/bin/tool"),
    ]
    assert all(isinstance(c, Change) for c in changes)


@root_only
def test_diff_several_lowers(tmp_path: Path) -> None:
    top, bottom, upper = tmp_path / "top", tmp_path / "bottom", tmp_path / "upper"
    for d in (top, bottom, upper):
        d.mkdir()
    (bottom / "gone").write_text("deleted by the top layer")
    whiteout(top / "gone")
    (bottom / "kept").write_text("still visible")
    (bottom / "hid").mkdir()
    (bottom / "hid" / "old").write_text("hidden by the opaque top dir")
    (top / "hid").mkdir()
    opaque(top / "hid")
    (upper / "gone").write_text("recreated")
    (upper / "kept").write_text("modified")
    (upper / "hid").mkdir()
    (upper / "hid" / "old").write_text("new")
    same_meta(upper / "hid", top / "hid")
    changes = diff_upper(str(upper), [str(top), str(bottom)])
    assert kinds(changes) == [
        ("A", "/gone"),
        ("C", "/hid"),
        ("A", "/hid/old"),
        ("C", "/kept"),
    ]
    assert diff_upper(str(tmp_path / "nothing"), [str(top)]) == []


@root_only
def test_diff_real_overlay(tmp_path: Path) -> None:
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "merged"))
    for d in (lower, upper, work, merged):
        d.mkdir()
    (lower / "etc").mkdir()
    (lower / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (lower / "etc" / "motd").write_text("hello\n")
    (lower / "keep").write_text("untouched")
    (lower / "tree" / "sub").mkdir(parents=True)
    (lower / "tree" / "sub" / "f").write_text("f")
    (lower / "tree" / "g").write_text("g")
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}"
    proc = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount overlay here: {proc.stderr.strip()}")
    try:
        (merged / "new.txt").write_text("added")
        (merged / "newdir" / "inner").mkdir(parents=True)
        with open(merged / "etc" / "hosts", "a") as f:
            f.write("10.0.0.1 db\n")
        (merged / "etc" / "motd").unlink()
        # rm -rf tree && mkdir tree: overlay makes an opaque dir over the lower one
        for p in (merged / "tree" / "sub" / "f", merged / "tree" / "g"):
            p.unlink()
        (merged / "tree" / "sub").rmdir()
        (merged / "tree").rmdir()
        (merged / "tree").mkdir()
        (merged / "tree" / "h").write_text("h")
        # Writing through the merged dir never needs diff's help: sanity of the fixture.
        assert not (merged / "etc" / "motd").exists()
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    changes = diff_upper(str(upper), [str(lower)])
    assert kinds(changes) == [
        ("C", "/etc"),
        ("C", "/etc/hosts"),
        ("D", "/etc/motd"),
        ("A", "/new.txt"),
        ("A", "/newdir"),
        ("A", "/newdir/inner"),
        ("C", "/tree"),
        ("D", "/tree/g"),
        ("A", "/tree/h"),
        ("D", "/tree/sub"),
    ]
