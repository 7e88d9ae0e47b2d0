"""The one tar extractor (image/unpack.py, image/tarstream.py), seen through its two old
front doors: ``apply_layer`` (layers, and ADD/contexts before) and ``runtime.fs`` (docker cp).

Each check here used to exist in only one of the two copies; the tests go through the copy
that lacked it (they fail on the code before the extractors were merged) and through the
other, to show the rule is now the same everywhere. Real files under tmp_path, as root.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockyard.errors import CorruptData, DockyardError, InvalidArgument, UnsafeContent
from dockyard.image.layer import apply_layer
from dockyard.runtime.fs import copy_in, extract_to_host
from tests.helpers import entry, tar

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mount)")


def layer(data: bytes, dest: Path, **kw: object) -> None:
    apply_layer(io.BytesIO(data), str(dest), **kw)  # type: ignore[arg-type]


def cp_in(data: bytes, root: Path, dst: str = "/data") -> None:
    copy_in(str(root), dst, io.BytesIO(data))


@pytest.fixture
def dirs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A layer dir and a container root (with /data) side by side, both empty."""
    dest, root = tmp_path / "layer", tmp_path / "root"
    dest.mkdir()
    (root / "data").mkdir(parents=True)
    yield dest, root


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# ------------------------------------------------------------------ checks one copy lacked


def _nul_name() -> bytes:
    ti = entry("x")
    ti.pax_headers = {"path": "a\x00b"}
    return tar((ti, b"x"))


def _nul_symlink() -> bytes:
    ti = entry("s", tarfile.SYMTYPE)
    ti.pax_headers = {"linkpath": "/etc\x00/passwd"}
    return tar(ti)


def _nul_hardlink() -> bytes:
    ti = entry("h", tarfile.LNKTYPE)
    ti.pax_headers = {"linkpath": "x\x00y"}
    return tar((entry("x"), b"x"), ti)


@pytest.mark.parametrize("data", [_nul_name(), _nul_symlink(), _nul_hardlink()])
def test_nul_bytes_in_names_are_refused_everywhere(
    dirs: tuple[Path, Path], tmp_path: Path, data: bytes
) -> None:
    # Before: a bare ValueError ("embedded null byte") from layers, and from cp's symlinks.
    dest, root = dirs
    with pytest.raises(UnsafeContent, match="has a NUL byte"):
        layer(data, dest)
    with pytest.raises(UnsafeContent, match="has a NUL byte"):
        cp_in(data, root)
    host = tmp_path / "host"
    host.mkdir()
    with pytest.raises(UnsafeContent, match="has a NUL byte"):
        extract_to_host(io.BytesIO(data), str(host))


@pytest.mark.parametrize("mtime", ["nan", "inf", "-inf", "1e30", "junk"])
def test_odd_pax_mtimes_through_cp(dirs: tuple[Path, Path], tmp_path: Path, mtime: str) -> None:
    # Before: cp took tarfile's float mtime as it was (ValueError/OverflowError).
    _, root = dirs
    ti = entry("f")
    ti.pax_headers = {"mtime": mtime}
    data = tar((ti, b"f"))
    cp_in(data, root)
    assert (root / "data" / "f").read_bytes() == b"f"
    extract_to_host(io.BytesIO(data), str(tmp_path / "f"))
    assert (tmp_path / "f").read_bytes() == b"f"


def _corrupt_second_header() -> bytes:
    data = bytearray(tar((entry("a"), b"a" * 512), (entry("b"), b"b")))
    second = data.index(b"a" * 512) + 512
    data[second + 148 : second + 156] = b"0000000\0"  # a wrong checksum
    return bytes(data)


def test_corrupt_header_mid_archive_through_cp(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    # Before: cp stopped quietly at the bad header and reported success ("a" only). Docker
    # refuses: "archive/tar: invalid tar header".
    _, root = dirs
    with pytest.raises(CorruptData, match="archive is not a valid tar archive"):
        cp_in(_corrupt_second_header(), root)
    with pytest.raises(CorruptData, match="not a valid tar archive"):
        extract_to_host(io.BytesIO(_corrupt_second_header()), str(tmp_path / "host"))


def test_truncated_data_through_cp(dirs: tuple[Path, Path]) -> None:
    _, root = dirs
    data = tar((entry("big"), b"b" * 10_000))
    with pytest.raises(CorruptData, match="archive tar is truncated"):
        cp_in(data[:5_000], root)


def test_implicit_parents_are_0755_whatever_the_umask(dirs: tuple[Path, Path]) -> None:
    # Before: a layer's implicit parents were mkdir(0755) minus the umask; cp's were 0755.
    dest, root = dirs
    data = tar((entry("a/b/file"), b"x"))
    old = os.umask(0o077)
    try:
        layer(data, dest)
        cp_in(data, root)
    finally:
        os.umask(old)
    for base in (dest, root / "data"):
        for d in ("a", "a/b"):
            st = os.stat(base / d)
            assert stat.S_IMODE(st.st_mode) == 0o755, (base, d)
            assert (st.st_uid, st.st_gid) == (0, 0)


@root_only
def test_ids_no_syscall_takes_are_corrupt_data(dirs: tuple[Path, Path]) -> None:
    # Before: an OverflowError traceback from both copies.
    dest, root = dirs
    ti = entry("f")
    ti.pax_headers = {"uid": str(1 << 40)}
    data = tar((ti, b"f"))
    with pytest.raises(CorruptData, match='cannot apply layer entry "f": uid is '):
        layer(data, dest)
    with pytest.raises(CorruptData, match='cannot apply archive entry "f": uid is '):
        cp_in(data, root)


@root_only
def test_host_errors_are_clear_errors(tmp_path: Path) -> None:
    # Before: a layer that filled the disk raised a bare OSError (a traceback for a user).
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        data = tar((entry("big"), os.urandom(2 << 20)))
        (small / "layer").mkdir()
        with pytest.raises(DockyardError, match='cannot write layer entry "big": No space left'):
            layer(data, small / "layer")
        (small / "root" / "data").mkdir(parents=True)
        with pytest.raises(DockyardError, match='cannot write archive entry "big": No space'):
            cp_in(data, small / "root")
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_hard_link_to_itself_is_kept(dirs: tuple[Path, Path]) -> None:
    # GNU tar writes one for a file named twice. Before: cp removed the file, then failed.
    dest, root = dirs
    data = tar((entry("f"), b"keep"), entry("f", tarfile.LNKTYPE, linkname="f"))
    layer(data, dest)
    cp_in(data, root)
    assert (dest / "f").read_bytes() == (root / "data" / "f").read_bytes() == b"keep"


def test_an_empty_stream_is_an_empty_archive(dirs: tuple[Path, Path]) -> None:
    # Docker's cp takes an empty body as an empty archive (exit 0); cp used to refuse it.
    dest, root = dirs
    cp_in(b"", root)
    layer(b"", dest)
    assert os.listdir(root / "data") == [] and os.listdir(dest) == []


# ------------------------------------------------------------------ compression


def test_one_sniffer_for_every_caller(dirs: tuple[Path, Path]) -> None:
    dest, root = dirs
    plain = tar((entry("f"), b"packed"))
    for compress in (bz2.compress, lzma.compress):
        # A layer's media type can only say tar, tar+gzip or tar+zstd.
        with pytest.raises(CorruptData, match=r"-compressed layers are not supported"):
            layer(compress(plain), dest)
        cp_in(compress(plain), root)
        assert (root / "data" / "f").read_bytes() == b"packed"
    with pytest.raises(CorruptData, match="archive xz stream is truncated or corrupt"):
        cp_in(lzma.compress(plain)[:-20], root)


# ------------------------------------------------------------------ the fd cache


def test_many_directories_and_no_fd_leak(dirs: tuple[Path, Path]) -> None:
    # More directories than the extractor keeps open, visited in turn, then an error.
    dest, root = dirs
    files = [(entry(f"d{i % 150}/s{i % 7}/f{i}"), str(i).encode()) for i in range(1500)]
    data = tar(*files)
    before = open_fds()
    layer(data, dest)
    cp_in(data, root)
    with pytest.raises(UnsafeContent):
        layer(tar(*files[:300], (entry("../x"), b"")), dest)
    assert open_fds() == before
    for base in (dest, root / "data"):
        assert (base / "d149/s1/f449").read_bytes() == b"449"
        assert sum(len(f) for _, _, f in os.walk(base)) == 1500


def test_cp_follows_a_directory_replaced_by_a_symlink(dirs: tuple[Path, Path]) -> None:
    # The directory fd kept for "a" must not outlive "a": later entries follow the new link
    # (inside the root), as a fresh resolution would.
    _, root = dirs
    (root / "b").mkdir()
    data = tar(
        entry("a", tarfile.DIRTYPE),
        (entry("a/f"), b"in a"),
        entry("a", tarfile.SYMTYPE, linkname="../b"),
        (entry("a/g"), b"in b"),
    )
    copy_in(str(root), "/data", io.BytesIO(data), no_overwrite_dir_non_dir=False)
    assert os.readlink(root / "data" / "a") == "../b"
    assert (root / "b" / "g").read_bytes() == b"in b"


# ------------------------------------------------------------------ sparse files


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar not installed")
@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_files_keep_content_and_holes(
    dirs: tuple[Path, Path], tmp_path: Path, fmt: str
) -> None:
    dest, root = dirs
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.write(b"head")
        f.seek(8 << 20)
        f.write(b"middle")
        f.truncate(16 << 20)
    archive = tmp_path / "sparse.tar"
    subprocess.run(
        ["tar", f"--format={fmt}", "--sparse", "-cf", str(archive), "-C", str(src), "sparse"],
        check=True,
    )
    expected = (src / "sparse").read_bytes()
    layer(archive.read_bytes(), dest)
    cp_in(archive.read_bytes(), root)
    for out in (dest / "sparse", root / "data" / "sparse"):
        assert out.read_bytes() == expected
        assert os.stat(out).st_blocks * 512 < 1 << 20  # the holes stayed holes


# ------------------------------------------------------------------ any name at all

_COMPONENTS = st.sampled_from(["a", "b", "..", ".", "", "link", "abs", ".wh.a", "\xe9"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(st.lists(_COMPONENTS, min_size=1, max_size=6).map("/".join), max_size=4),
    absolute=st.booleans(),
)
def test_no_name_lands_outside(names: list[str], absolute: bool) -> None:
    """Whatever the names (with links to "/" and ".." among the entries), every door either
    refuses the archive or writes only below its destination."""
    base = Path(tempfile.mkdtemp(prefix="dockyard-names-"))
    try:
        outside = base / "outside"
        outside.mkdir()
        entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]] = [
            entry("link", tarfile.SYMTYPE, linkname="../.."),
            entry("abs", tarfile.SYMTYPE, linkname=str(outside)),
        ]
        entries += [(entry(("/" if absolute else "") + n), b"x") for n in names]
        data = tar(*entries)
        for i, door in enumerate(("layer", "flat", "cp", "host")):
            root = base / f"root{i}"
            dest = root / "data" / "dest"
            dest.mkdir(parents=True)
            try:
                if door == "layer":
                    layer(data, dest)
                elif door == "flat":
                    layer(data, dest, overlay_whiteouts=False)
                elif door == "cp":
                    copy_in(str(root), "/data/dest", io.BytesIO(data))
                else:
                    extract_to_host(io.BytesIO(data), str(dest))
            except (CorruptData, InvalidArgument):
                pass  # refused: unsafe or broken content, cp's dir/non-dir rule
            # cp follows links inside the container's root, so it may write anywhere in it;
            # the others only below their destination.
            allowed = root if door == "cp" else dest
            for dirpath, dirnames, filenames in os.walk(root):
                for n in dirnames + filenames:
                    p = Path(dirpath) / n
                    assert p == allowed or allowed in p.parents or p in dest.parents, p
        assert os.listdir(outside) == []
    finally:
        shutil.rmtree(base)
