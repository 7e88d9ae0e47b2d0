"""Layer tarballs: round trips, OCI whiteouts on real overlayfs, and hostile archives.

Everything runs on real files under tmp_path (as root: ownership, device nodes, trusted.*
xattrs and overlay mounts are real). Attack tests check the error AND that nothing outside
the destination changed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import struct
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dockyard.errors import CorruptData, Unavailable, UnsafeContent
from dockyard.image.layer import (
    AppliedLayer,
    WrittenLayer,
    apply_layer,
    open_decompressed,
    write_layer,
)
from tests.helpers import entry, tar

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# ------------------------------------------------------------------ helpers


ti = entry  # a header (tests/helpers.py)
make_tar = tar


def file(name: str, data: bytes = b"data", **attrs: object) -> tuple[tarfile.TarInfo, bytes]:
    return ti(name, **attrs), data


def apply(data: bytes, dest: Path, **kw: object) -> AppliedLayer:
    return apply_layer(io.BytesIO(data), str(dest), **kw)  # type: ignore[arg-type]


def write(src: Path, **kw: object) -> tuple[bytes, WrittenLayer]:
    out = io.BytesIO()
    written = write_layer(str(src), out, **kw)  # type: ignore[arg-type]
    return out.getvalue(), written


def names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tf:
        return [m.name + ("/" if m.isdir() else "") for m in tf.getmembers()]


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tf:
        return {m.name: m for m in tf.getmembers()}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def xattrs(path: str) -> dict[str, bytes]:
    return {
        n: os.getxattr(path, n, follow_symlinks=False)
        for n in sorted(os.listxattr(path, follow_symlinks=False))
        if n != "security.selinux"
    }


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything the round trip must preserve, per relative path."""
    out: dict[str, tuple[object, ...]] = {}
    first_of_inode: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            content = b""
            link = ""
            if stat.S_ISREG(st.st_mode):
                content = Path(p).read_bytes()
            if stat.S_ISLNK(st.st_mode):
                link = os.readlink(p)
            group = ""
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
                group = first_of_inode.setdefault(st.st_ino, rel)
            out[rel] = (
                st.st_mode,
                st.st_uid,
                st.st_gid,
                st.st_size if not stat.S_ISDIR(st.st_mode) else 0,
                int(st.st_mtime),
                content,
                link,
                group,
                xattrs(p),
            )
    return out


def mtime_fix(root: Path, stamp: int = 1_650_000_000) -> None:
    """Integer mtimes everywhere, directories last (so that nothing disturbs them)."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for n in filenames + dirnames:
            os.utime(os.path.join(dirpath, n), (stamp, stamp), follow_symlinks=False)
    os.utime(root, (stamp, stamp))


@contextmanager
def overlay_mount(target: Path, lower: list[Path], upper: Path | None = None) -> Iterator[Path]:
    opts = "lowerdir=" + ":".join(str(p) for p in lower)
    if upper is not None:
        work = upper.parent / (upper.name + "-work")
        work.mkdir()
        opts += f",upperdir={upper},workdir={work}"
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


@pytest.fixture
def area(tmp_path: Path) -> tuple[Path, Path]:
    """``dest`` to apply into and an ``outside`` dir next to it that must stay empty."""
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    return dest, outside


def outside_snapshot(tmp_path: Path) -> list[str]:
    """Everything under tmp_path except dest: an escape would show up here."""
    out = []
    for dirpath, dirnames, filenames in os.walk(tmp_path):
        if Path(dirpath) == tmp_path and "dest" in dirnames:
            dirnames.remove("dest")
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out.append(f"{os.path.relpath(p, tmp_path)} {st.st_mode:o} {st.st_nlink}")
    return sorted(out)


# ------------------------------------------------------------------ round trip

LONG_DIR = "d" * 70 + "/" + "e" * 70  # needs a PAX path record (> 100 bytes)


def build_tree(src: Path) -> None:
    (src / "bin").mkdir(parents=True)
    (src / "bin/sh").write_bytes(b"#!shell\n" * 1000)
    os.chmod(src / "bin/sh", 0o755)
    os.symlink("/bin/sh", src / "bin/abs-link")
    os.symlink("sh", src / "bin/rel-link")
    os.symlink("../" + "t" * 150, src / "bin/long-link")
    (src / "etc").mkdir()
    (src / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    os.link(src / "etc/passwd", src / "etc/passwd-hard")
    os.link(src / "etc/passwd", src / "hard-top")
    os.mkfifo(src / "fifo", 0o640)
    suid = src / "bin/suid"
    suid.write_bytes(b"\x7fELF")
    os.chown(suid, 1000, 1000)
    os.chmod(suid, 0o4755)
    sgid_dir = src / "shared"
    sgid_dir.mkdir()
    os.chown(sgid_dir, 33, 44)
    os.chmod(sgid_dir, 0o2775)
    tmp = src / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)
    x = src / "with-xattr"
    x.write_bytes(b"x")
    os.setxattr(x, "user.foo", b"bar")
    os.setxattr(x, "user.binary", b"\x00\xff\xfe")
    (src / "with space").write_bytes(b"space")
    (src / "ünïcødé ☃").write_bytes(b"unicode")
    (src / os.fsdecode(b"latin1-\xe9")).write_bytes(b"not utf-8")
    ping = src / "bin/ping"
    ping.write_bytes(b"ping")
    os.chown(ping, 0, 0)
    # security.capability v2: effective, permitted = CAP_NET_RAW (13).
    os.setxattr(ping, "security.capability", struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0))
    (src / LONG_DIR).mkdir(parents=True)
    (src / LONG_DIR / ("f" * 120)).write_bytes(b"long")
    (src / "empty-dir").mkdir()
    (src / "empty-file").write_bytes(b"")
    owned = src / "owned"
    owned.write_bytes(b"o")
    os.chown(owned, 1234, 5678)
    os.lchown(src / "bin/rel-link", 7, 8)
    mtime_fix(src)


@root_only
def test_round_trip_preserves_the_tree(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    build_tree(src)
    data, written = write(src, from_overlay_upper=False)
    assert written.diff_id == sha(data)
    assert written.tar_size == len(data)

    dest.mkdir()
    applied = apply(data, dest, overlay_whiteouts=True)

    assert applied == AppliedLayer(written.diff_id, len(data), written.size)
    regular = sum(
        os.lstat(os.path.join(d, n)).st_size
        for d, _, fs in os.walk(src)
        for n in fs
        if stat.S_ISREG(os.lstat(os.path.join(d, n)).st_mode)
    )
    # Hard links count once.
    assert written.size == regular - 2 * len((src / "etc/passwd").read_bytes())
    assert snapshot(dest) == snapshot(src)
    hard = os.lstat(dest / "etc/passwd")
    assert hard.st_nlink == 3
    assert os.lstat(dest / "hard-top").st_ino == hard.st_ino
    assert stat.S_IMODE(os.lstat(dest / "bin/suid").st_mode) == 0o4755
    assert "security.capability" in xattrs(str(dest / "bin/ping"))
    assert (dest / os.fsdecode(b"latin1-\xe9")).read_bytes() == b"not utf-8"
    assert xattrs(str(dest / "with-xattr")) == {
        "user.binary": b"\x00\xff\xfe",
        "user.foo": b"bar",
    }


@root_only
def test_write_is_deterministic_and_sorted(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "b").write_bytes(b"b")
    (src / "a").mkdir()
    (src / "a/z").write_bytes(b"z")
    (src / "a/y").mkdir()
    (src / "a/y/x").write_bytes(b"x")
    (src / "a.txt").write_bytes(b"t")
    (src / "C").write_bytes(b"c")
    mtime_fix(src)
    first, w1 = write(src)
    second, w2 = write(src)
    assert first == second
    assert w1 == w2
    assert names(first) == ["C", "a/", "a/y/", "a/y/x", "a/z", "a.txt", "b"]
    for m in members(first).values():
        assert m.uname == "" and m.gname == ""
        assert not m.name.startswith("./")


@root_only
def test_write_mtime_clamp(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "old").write_bytes(b"")
    (src / "new").write_bytes(b"")
    os.utime(src / "old", (100, 100))
    os.utime(src / "new", (2_000_000_000, 2_000_000_000))
    data, _ = write(src, mtime_clamp=1_000)
    got = {n: m.mtime for n, m in members(data).items()}
    assert got == {"new": 1_000, "old": 100}


@root_only
def test_write_layer_is_pax_with_numeric_owners_and_xattrs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    build_tree(src)
    data, _ = write(src)
    ms = members(data)
    assert f"{LONG_DIR}/{'f' * 120}" in ms
    assert ms["with-xattr"].pax_headers["SCHILY.xattr.user.foo"] == "bar"
    assert ms["owned"].uid == 1234 and ms["owned"].gid == 5678
    assert ms["etc/passwd-hard"].type == tarfile.LNKTYPE
    assert ms["etc/passwd-hard"].linkname == "etc/passwd"
    assert ms["fifo"].type == tarfile.FIFOTYPE
    assert ms["bin/abs-link"].linkname == "/bin/sh"


@root_only
def test_write_keeps_device_nodes_and_skips_sockets(tmp_path: Path) -> None:
    import socket

    src = tmp_path / "src"
    src.mkdir()
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(src / "sock"))
        data, _ = write(src, from_overlay_upper=False)
    finally:
        sock.close()
    ms = members(data)
    assert list(ms) == ["null"]
    assert ms["null"].ischr() and (ms["null"].devmajor, ms["null"].devminor) == (1, 3)


# ------------------------------------------------------------------ apply semantics


def test_apply_docker_style_dot_slash_names_and_root_entry(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    data = make_tar(
        ti("./", tarfile.DIRTYPE, mode=0o755),
        ti("./bin/", tarfile.DIRTYPE),
        file("./bin/sh", b"sh", mode=0o755),
        ti("./usr/lib/deep", tarfile.SYMTYPE, linkname="/nowhere"),
    )
    applied = apply(data, dest)
    assert (dest / "bin/sh").read_bytes() == b"sh"
    assert os.readlink(dest / "usr/lib/deep") == "/nowhere"  # parents made implicitly
    assert applied.size == 2
    assert int(os.stat(dest / "bin").st_mtime) == 1_600_000_000
    assert int(os.stat(dest).st_mtime) == 1_600_000_000


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep-dir").mkdir()
    (dest / "keep-dir/old").write_bytes(b"old")
    data = make_tar(
        file("x", b"file first"),
        ti("x/", tarfile.DIRTYPE),
        file("x/y", b"y"),
        ti("d/", tarfile.DIRTYPE),
        file("d/inner", b"i"),
        file("d", b"now a file"),
        file("f", b"one"),
        file("f", b"two"),
        ti("keep-dir/", tarfile.DIRTYPE, mode=0o700),
        file("keep-dir/new", b"new"),
        ti("s", tarfile.SYMTYPE, linkname="/etc"),
        ti("s/", tarfile.DIRTYPE),
    )
    apply(data, dest, overlay_whiteouts=False)
    assert (dest / "x/y").read_bytes() == b"y"
    assert (dest / "d").read_bytes() == b"now a file"
    assert (dest / "f").read_bytes() == b"two"
    assert sorted(os.listdir(dest / "keep-dir")) == ["new", "old"]  # dir over dir merges
    assert stat.S_IMODE(os.stat(dest / "keep-dir").st_mode) == 0o700
    assert stat.S_ISDIR(os.lstat(dest / "s").st_mode)  # symlink replaced, not followed


def test_file_replacing_a_symlink_does_not_write_through_it(
    tmp_path: Path, area: tuple[Path, Path]
) -> None:
    dest, outside = area
    target = outside / "target"
    target.write_bytes(b"untouched")
    os.symlink(target, dest / "f")
    apply(make_tar(file("f", b"evil")), dest)
    assert target.read_bytes() == b"untouched"
    assert (dest / "f").read_bytes() == b"evil"
    assert not os.path.islink(dest / "f")


def test_hard_link_to_a_symlink_links_the_symlink_itself(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    before = os.stat("/etc/passwd")
    apply(
        make_tar(
            ti("s", tarfile.SYMTYPE, linkname="/etc/passwd"),
            ti("h", tarfile.LNKTYPE, linkname="s"),
        ),
        dest,
    )
    assert os.readlink(dest / "h") == "/etc/passwd"
    assert os.lstat(dest / "h").st_ino == os.lstat(dest / "s").st_ino
    assert os.stat("/etc/passwd").st_nlink == before.st_nlink


@root_only
def test_overlay_xattrs_in_a_layer_are_ignored(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    d = ti("d/", tarfile.DIRTYPE)
    d.pax_headers = {
        "SCHILY.xattr.trusted.overlay.opaque": "y",
        "SCHILY.xattr.trusted.overlay.redirect": "/etc",
        "SCHILY.xattr.user.kept": "yes",
    }
    apply(make_tar(d), dest)
    assert xattrs(str(dest / "d")) == {"user.kept": b"yes"}


def test_name_too_long_is_corrupt_data(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(CorruptData, match=r"cannot apply layer entry .*too long"):
        apply(make_tar(file("n" * 300, b"")), dest)


@pytest.mark.parametrize("mtime", ["nan", "inf", "1e30", "junk", "1600000000.123456789"])
def test_odd_pax_mtimes_do_not_crash(tmp_path: Path, mtime: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    f = ti("f")
    f.pax_headers = {"mtime": mtime}
    apply(make_tar(f), dest)
    if mtime.startswith("16"):
        assert os.lstat(dest / "f").st_mtime_ns == 1_600_000_000_123_456_789


def test_empty_stream_is_an_empty_layer(tmp_path: Path) -> None:
    applied = apply(b"", tmp_path)
    assert applied == AppliedLayer(sha(b""), 0, 0)


def test_diff_id_covers_padding_after_the_archive(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    data = make_tar(file("a", b"a" * 700)) + b"\0" * 4096
    applied = apply(data, dest, expected_diff_id=sha(data))
    assert applied.diff_id == sha(data)
    assert applied.tar_size == len(data)
    assert applied.size == 700


def test_non_seekable_stream(tmp_path: Path) -> None:
    class Pipe:
        """Only read(), and short reads."""

        def __init__(self, data: bytes) -> None:
            self._f = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self._f.read(min(n, 777) if n > 0 else 777)

    plain = make_tar(file("a", b"hello" * 1000))
    for data in (plain, gzip.compress(plain)):
        dest = tmp_path / f"d{len(data)}"
        dest.mkdir()
        applied = apply_layer(Pipe(data), str(dest))  # type: ignore[arg-type]
        assert applied.diff_id == sha(plain)
        assert (dest / "a").read_bytes() == b"hello" * 1000


def test_gzip_layer_diff_id_is_of_the_uncompressed_tar(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    plain = make_tar(ti("d/", tarfile.DIRTYPE), file("d/f", os.urandom(300_000)))
    applied = apply(gzip.compress(plain), dest, expected_diff_id=sha(plain))
    assert applied.diff_id == sha(plain)
    assert applied.tar_size == len(plain)
    assert applied.size == 300_000


def test_open_decompressed_sniffs() -> None:
    plain = b"not compressed at all"
    with open_decompressed(io.BytesIO(plain)) as f:
        assert f.read() == plain
    with open_decompressed(io.BytesIO(gzip.compress(plain))) as f:
        assert f.read() == plain
    with open_decompressed(io.BytesIO(b"ab")) as f:  # shorter than any magic
        assert f.read() == b"ab"


def test_zstd_layer(tmp_path: Path) -> None:
    import zstandard

    plain = make_tar(file("z", b"zstd"))
    blob = zstandard.ZstdCompressor().compress(plain)
    applied = apply(blob, tmp_path)
    assert applied.diff_id == sha(plain)
    assert (tmp_path / "z").read_bytes() == b"zstd"


def test_corrupt_zstd_layer_is_a_clear_error(tmp_path: Path) -> None:
    import zstandard

    plain = make_tar(file("z", os.urandom(200_000)))
    blob = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(plain))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(CorruptData, match="zstd stream is truncated or corrupt"):
        apply(bytes(blob), tmp_path)


def test_zstd_without_the_zstandard_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # An install without the dependency (a distro's python3 without python3-zstandard): one
    # line that says what is missing, not an ImportError.
    monkeypatch.setitem(sys.modules, "zstandard", None)
    blob = b"\x28\xb5\x2f\xfd" + b"\0" * 32
    with pytest.raises(Unavailable, match="zstd-compressed layers need the zstandard Python"):
        apply(blob, tmp_path)


def test_large_file_applies_fast(tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    (src / "big").write_bytes(os.urandom(1 << 20) * 100)
    blob = tmp_path / "layer.tar"
    with open(blob, "wb") as out:
        written = write_layer(str(src), out)
    with open(blob, "rb") as f:
        start = time.perf_counter()
        applied = apply_layer(f, str(dest))
        elapsed = time.perf_counter() - start
    assert applied.diff_id == written.diff_id
    assert applied.size == 100 << 20
    assert elapsed < 1.0, f"100 MB layer took {elapsed:.2f}s"


# ------------------------------------------------------------------ whiteouts

LOWER = (
    ti("d/", tarfile.DIRTYPE),
    file("d/x", b"x"),
    file("d/y", b"y"),
    ti("e/", tarfile.DIRTYPE),
    file("e/p", b"p"),
    ti("e/sub/", tarfile.DIRTYPE),
    file("e/sub/q", b"q"),
    file("top", b"top"),
)
UPPER = (
    ti("d/", tarfile.DIRTYPE),
    file("d/.wh.x", b""),
    ti("e/", tarfile.DIRTYPE),
    file("e/new", b"new"),
    file("e/.wh..wh..opq", b""),
    file(".wh.top", b""),
    file("gone/.wh.nothing", b""),
)


def is_whiteout(path: Path) -> bool:
    st = os.lstat(path)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)


@root_only
def test_oci_whiteouts_become_overlay_whiteouts(tmp_path: Path) -> None:
    l1, l2 = tmp_path / "l1", tmp_path / "l2"
    l1.mkdir()
    l2.mkdir()
    apply(make_tar(*LOWER), l1)
    apply(make_tar(*UPPER), l2, overlay_whiteouts=True)

    assert is_whiteout(l2 / "d/x")
    assert is_whiteout(l2 / "top")
    assert is_whiteout(l2 / "gone/nothing")
    assert os.getxattr(l2 / "e", "trusted.overlay.opaque") == b"y"
    assert (l2 / "e/new").read_bytes() == b"new"
    assert not (l2 / "d/.wh.x").exists()

    merged = tmp_path / "merged"
    with overlay_mount(merged, [l2, l1]):
        assert sorted(os.listdir(merged / "d")) == ["y"]
        assert sorted(os.listdir(merged / "e")) == ["new"]
        assert not (merged / "top").exists()


@root_only
def test_char_device_0_0_entry_is_a_whiteout(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "old").write_bytes(b"lower")
    data = make_tar(ti("wh", tarfile.CHRTYPE, devmajor=0, devminor=0, mode=0))
    apply(data, dest, overlay_whiteouts=True)
    assert is_whiteout(dest / "wh")
    flat = make_tar(ti("old", tarfile.CHRTYPE, devmajor=0, devminor=0, mode=0))
    apply(flat, dest, overlay_whiteouts=False)
    assert not (dest / "old").exists()


def test_flat_whiteouts_delete(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    apply(make_tar(*LOWER), dest, overlay_whiteouts=False)
    apply(make_tar(*UPPER), dest, overlay_whiteouts=False)
    assert sorted(os.listdir(dest / "d")) == ["y"]
    assert sorted(os.listdir(dest / "e")) == ["new"]  # opaque: lower entries gone
    assert not (dest / "top").exists()
    assert not (dest / "gone").exists()


def test_whiteouts_never_hide_entries_of_their_own_layer(tmp_path: Path) -> None:
    for overlay in (True, False):
        dest = tmp_path / f"dest-{overlay}"
        dest.mkdir()
        (dest / "o").mkdir()
        (dest / "o/lower").write_bytes(b"lower")
        data = make_tar(
            file("a", b"mine"),
            file(".wh.a", b""),
            ti("o/", tarfile.DIRTYPE),
            file("o/mine", b"mine"),
            file("o/.wh..wh..opq", b""),
        )
        apply(data, dest, overlay_whiteouts=overlay)
        assert (dest / "a").read_bytes() == b"mine"
        assert (dest / "o/mine").read_bytes() == b"mine"
        if not overlay:
            assert sorted(os.listdir(dest / "o")) == ["mine"]


@root_only
def test_write_layer_converts_overlay_upper_to_oci(tmp_path: Path) -> None:
    l1 = tmp_path / "l1"
    l1.mkdir()
    apply(make_tar(*LOWER), l1)
    upper = tmp_path / "upper"
    upper.mkdir()
    merged = tmp_path / "merged"
    with overlay_mount(merged, [l1], upper=upper):
        os.unlink(merged / "d/x")
        os.unlink(merged / "d/y")
        os.unlink(merged / "top")
        subprocess.run(["rm", "-rf", str(merged / "e")], check=True)
        (merged / "e").mkdir()
        (merged / "e/new").write_bytes(b"new")
    assert is_whiteout(upper / "d/x")

    data, written = write(upper, from_overlay_upper=True)
    ms = members(data)
    assert ms["d/.wh.x"].isreg() and ms["d/.wh.x"].size == 0
    assert ms["d/.wh.y"].isreg()  # never a hard link, even if the kernel shares the inode
    assert ms[".wh.top"].isreg()
    assert ms["e/.wh..wh..opq"].isreg()
    order = names(data)
    assert order.index("e/.wh..wh..opq") == order.index("e/") + 1
    for m in ms.values():
        assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for k in m.pax_headers)

    # And back: applied to a fresh layer dir, stacked on l1, it hides the same things.
    l2 = tmp_path / "l2"
    l2.mkdir()
    applied = apply(data, l2)
    assert applied.diff_id == written.diff_id
    with overlay_mount(tmp_path / "merged2", [l2, l1]) as m2:
        assert os.listdir(m2 / "d") == []
        assert os.listdir(m2 / "e") == ["new"]
        assert not (m2 / "top").exists()


# ------------------------------------------------------------------ attacks


@pytest.mark.parametrize("name", ["../x", "a/../../x", "./../x", "a/b/../../../x"])
def test_dotdot_escape(tmp_path: Path, area: tuple[Path, Path], name: str) -> None:
    dest, _ = area
    before = outside_snapshot(tmp_path)
    with pytest.raises(UnsafeContent, match=r"escapes the root"):
        apply(make_tar(file(name, b"pwned")), dest)
    assert not (tmp_path / "x").exists()
    assert outside_snapshot(tmp_path) == before


def test_absolute_path(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, _ = area
    target = f"/tmp/dockyard-layer-test-{uuid.uuid4().hex}"
    with pytest.raises(UnsafeContent, match=r"is absolute"):
        apply(make_tar(file(target, b"pwned")), dest)
    assert not os.path.lexists(target)
    assert os.listdir(dest) == []


def test_symlink_to_outside_then_entry_through_it(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, outside = area
    before = outside_snapshot(tmp_path)
    data = make_tar(
        ti("evil", tarfile.SYMTYPE, linkname=str(outside)),
        file("evil/pwned", b"pwned"),
    )
    with pytest.raises(UnsafeContent, match=r'"evil/pwned" goes through symlink "evil"'):
        apply(data, dest)
    assert os.listdir(outside) == []
    assert outside_snapshot(tmp_path) == before


def test_symlink_to_dotdot_then_entry_through_it(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, _ = area
    before = outside_snapshot(tmp_path)
    data = make_tar(ti("evil", tarfile.SYMTYPE, linkname=".."), file("evil/x", b"pwned"))
    with pytest.raises(UnsafeContent, match=r"goes through symlink"):
        apply(data, dest)
    assert not (tmp_path / "x").exists()
    assert outside_snapshot(tmp_path) == before


def test_directory_replaced_by_symlink_then_entry_through_it(
    tmp_path: Path, area: tuple[Path, Path]
) -> None:
    dest, outside = area
    data = make_tar(
        ti("a/", tarfile.DIRTYPE),
        file("a/f", b"fine"),
        ti("a", tarfile.SYMTYPE, linkname=str(outside)),
        file("a/pwned", b"pwned"),
    )
    with pytest.raises(UnsafeContent, match=r"goes through symlink"):
        apply(data, dest)
    assert os.listdir(outside) == []


@pytest.mark.parametrize("overlay", [True, False])
@pytest.mark.parametrize("marker", [".wh.secret", ".wh..wh..opq"])
def test_whiteout_through_symlink(
    tmp_path: Path, area: tuple[Path, Path], overlay: bool, marker: str
) -> None:
    dest, outside = area
    (outside / "secret").write_bytes(b"keep")
    before = outside_snapshot(tmp_path)
    data = make_tar(
        ti("evil", tarfile.SYMTYPE, linkname=str(outside)),
        file(f"evil/{marker}", b""),
    )
    with pytest.raises(UnsafeContent, match=r"symlink"):
        apply(data, dest, overlay_whiteouts=overlay)
    assert (outside / "secret").read_bytes() == b"keep"
    assert outside_snapshot(tmp_path) == before
    assert os.listxattr(outside) == []


@pytest.mark.parametrize("name", [".wh..", ".wh...", "d/.wh."])
def test_bad_whiteout_names(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (tmp_path / "keep").write_bytes(b"keep")
    with pytest.raises(UnsafeContent, match=r"unsafe whiteout"):
        apply(make_tar(file(name, b"")), dest, overlay_whiteouts=False)
    assert (tmp_path / "keep").exists()
    assert dest.exists()


def test_hardlink_to_absolute_etc_passwd(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, _ = area
    before = os.stat("/etc/passwd")
    content = Path("/etc/passwd").read_bytes()
    data = make_tar(ti("h", tarfile.LNKTYPE, linkname="/etc/passwd"))
    with pytest.raises(UnsafeContent, match=r'"h" -> "/etc/passwd" is absolute'):
        apply(data, dest)
    after = os.stat("/etc/passwd")
    assert (after.st_nlink, after.st_mtime_ns, after.st_ino) == (
        before.st_nlink,
        before.st_mtime_ns,
        before.st_ino,
    )
    assert Path("/etc/passwd").read_bytes() == content
    assert not os.path.lexists(dest / "h")


def test_hardlink_to_dotdot_outside(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, outside = area
    (outside / "file").write_bytes(b"secret")
    before = outside_snapshot(tmp_path)
    data = make_tar(ti("h", tarfile.LNKTYPE, linkname="../outside/file"))
    with pytest.raises(UnsafeContent, match=r"escapes the root"):
        apply(data, dest)
    assert os.stat(outside / "file").st_nlink == 1
    assert outside_snapshot(tmp_path) == before
    assert not os.path.lexists(dest / "h")


def test_hardlink_through_symlink(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, outside = area
    (outside / "secret").write_bytes(b"secret")
    data = make_tar(
        ti("s", tarfile.SYMTYPE, linkname=str(outside)),
        ti("h", tarfile.LNKTYPE, linkname="s/secret"),
    )
    with pytest.raises(UnsafeContent, match=r'"h" -> "s/secret": target goes through a symlink'):
        apply(data, dest)
    assert os.stat(outside / "secret").st_nlink == 1
    assert not os.path.lexists(dest / "h")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([ti("h", tarfile.LNKTYPE, linkname="missing")], "does not exist"),
        ([ti("d/", tarfile.DIRTYPE), ti("h", tarfile.LNKTYPE, linkname="d")], "is a directory"),
        ([ti("h", tarfile.LNKTYPE, linkname=".")], "is a directory"),
    ],
)
def test_bad_hardlink_targets(tmp_path: Path, entries: list[tarfile.TarInfo], message: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeContent, match=message):
        apply(make_tar(*entries), dest)
    assert not os.path.lexists(dest / "h")


@pytest.mark.parametrize(
    ("kind", "major", "minor", "fmt"),
    [(tarfile.BLKTYPE, 8, 0, stat.S_IFBLK), (tarfile.CHRTYPE, 5, 1, stat.S_IFCHR)],
)
@pytest.mark.parametrize("overlay", [True, False])
def test_device_nodes_are_made(
    tmp_path: Path,
    area: tuple[Path, Path],
    kind: bytes,
    major: int,
    minor: int,
    fmt: int,
    overlay: bool,
) -> None:
    """Docker's layers carry device nodes (a debootstrap root has /dev/console): they are
    made as archived, in a layer dir and in a flat tree alike; never opened."""
    dest, _ = area
    data = make_tar(
        ti("dev", tarfile.DIRTYPE),
        ti("dev/node", kind, devmajor=major, devminor=minor, mode=0o620, uid=0, gid=5),
        ti("dev/again", tarfile.LNKTYPE, linkname="dev/node"),
    )
    apply(data, dest, overlay_whiteouts=overlay)
    st = os.lstat(dest / "dev" / "node")
    assert stat.S_IFMT(st.st_mode) == fmt and stat.S_IMODE(st.st_mode) == 0o620
    assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (major, minor)
    assert (st.st_uid, st.st_gid, st.st_nlink) == (0, 5, 2)
    assert st.st_mtime == 1_600_000_000
    assert outside_snapshot(tmp_path) == ["outside 40755 2"]
    # and they go back out as they came in
    out, _ = write(dest)
    with tarfile.open(fileobj=io.BytesIO(out)) as tf:
        first, second = tf.getmember("dev/again"), tf.getmember("dev/node")  # sorted names
        assert (first.type, first.devmajor, first.devminor) == (kind, major, minor)
        assert (second.type, second.linkname) == (tarfile.LNKTYPE, "dev/again")


def test_device_nodes_are_refused_where_the_caller_says(tmp_path: Path) -> None:
    """Build contexts, ADD archives and docker cp keep refusing them (UnpackOptions'
    default)."""
    from dockyard.image.tarstream import TarStream
    from dockyard.image.unpack import UnpackOptions, open_root, unpack

    dest = tmp_path / "dest"
    dest.mkdir()
    data = make_tar(ti("null", tarfile.CHRTYPE, devmajor=1, devminor=3))
    root = open_root(str(dest))
    try:
        with (
            TarStream(io.BytesIO(data)) as stream,
            pytest.raises(
                UnsafeContent, match=r'"null" is a char device 1:3; device nodes are not allowed'
            ),
        ):
            unpack(stream, root, UnpackOptions(noun="archive"))
    finally:
        os.close(root)
    assert os.listdir(dest) == []


def test_unsupported_entry_type(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeContent, match=r"unsupported type"):
        apply(make_tar(ti("vol", b"V")), dest)
    assert os.listdir(dest) == []


def test_root_cannot_be_replaced(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeContent, match=r"would replace the root"):
        apply(make_tar(ti(".", tarfile.SYMTYPE, linkname="/")), dest)
    assert dest.is_dir() and not dest.is_symlink()


def test_truncated_tar(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, _ = area
    data = make_tar(file("a", b"a" * 600), file("big", b"b" * 10_000))
    cut = data.index(b"b" * 100) + 5_000  # in the middle of big's data
    with pytest.raises(CorruptData, match=r"layer tar is truncated"):
        apply(data[:cut], dest)
    assert outside_snapshot(tmp_path) == ["outside 40755 2"]


def test_truncated_header(tmp_path: Path) -> None:
    data = make_tar(file("a", b"a" * 512), file("b", b"b"))
    cut = data.index(b"a" * 512) + 512 + 100  # inside b's header
    with pytest.raises(CorruptData, match=r"layer tar is truncated"):
        apply(data[:cut], tmp_path)


def test_corrupt_header_mid_archive_is_not_silently_ignored(tmp_path: Path) -> None:
    data = bytearray(make_tar(file("a", b"a" * 512), file("b", b"b")))
    second = data.index(b"a" * 512) + 512
    data[second + 148 : second + 156] = b"0000000\0"  # a wrong checksum
    with pytest.raises(CorruptData, match=r"not a valid tar archive"):
        apply(bytes(data), tmp_path)


def test_random_bytes_are_not_a_tar(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, _ = area
    junk = b"this is not a tar archive, just text\n" * 100
    with pytest.raises(CorruptData, match=r"layer is not a valid tar archive"):
        apply(junk, dest)
    assert os.listdir(dest) == []


def test_truncated_gzip(tmp_path: Path, area: tuple[Path, Path]) -> None:
    dest, _ = area
    blob = gzip.compress(make_tar(file("f", os.urandom(100_000))))
    with pytest.raises(CorruptData, match=r"gzip stream is truncated or corrupt"):
        apply(blob[: len(blob) // 2], dest)
    assert outside_snapshot(tmp_path) == ["outside 40755 2"]


def test_diff_id_mismatch(tmp_path: Path) -> None:
    data = make_tar(file("f", b"f"))
    wrong = "sha256:" + "0" * 64
    with pytest.raises(
        CorruptData, match=rf"layer diff_id mismatch: expected {wrong}, got {sha(data)}"
    ):
        apply(data, tmp_path, expected_diff_id=wrong)
