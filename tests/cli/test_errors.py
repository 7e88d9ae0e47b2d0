"""Bad input gets one clear ``Error:`` line, exit 125, and changes nothing."""

from __future__ import annotations

import os
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import CLI, db_snapshot, tree_snapshot
from tests.helpers import entry, tar


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("UPPER/Case", "repository name (Case) must be lowercase"),
        ("a//b", "invalid reference format"),
        (":tag", "invalid reference format"),
        ("a" * 300, "must not be more than 255 characters"),
        ("busybox:", "invalid reference format"),
        ("a@sha256:abc", "invalid"),
    ],
)
def test_bad_references_are_rejected(bb: CLI, ref: str, message: str) -> None:
    before = (tree_snapshot(bb.root), db_snapshot(bb.root))
    r = bb("tag", "busybox", ref, check=False)
    assert r.returncode == 125
    assert r.stderr.startswith("Error: ") and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert (tree_snapshot(bb.root), db_snapshot(bb.root)) == before


def test_missing_image(bb: CLI) -> None:
    r = bb("inspect", "nope", check=False)
    assert r.returncode == 1 and "No such object: nope" in r.stderr
    r = bb("tag", "nope", "x", check=False)
    assert r.returncode == 125 and r.stderr.strip() == "Error: No such image: nope"


def test_unknown_flag_and_command(dy: CLI) -> None:
    r = dy("images", "--bogus", check=False)
    assert r.returncode == 125 and "unrecognized arguments: --bogus" in r.stderr
    r = dy("frobnicate", check=False)
    assert r.returncode == 125 and "unknown command" in r.stderr


def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> bytes:
    return tar(*((ti, (data or {})[ti.name]) if ti.name in (data or {}) else ti for ti in entries))


_entry = entry


def _attacks(outside: Path) -> dict[str, bytes]:
    target = outside / "pwned"
    return {
        "dotdot": _tar([_entry("../../../../" + str(target).lstrip("/"))], {}),
        "absolute": _tar([_entry(str(target))], {str(target): b"x"}),
        "symlink-then-write": _tar(
            [_entry("evil", tarfile.SYMTYPE, linkname=str(outside)), _entry("evil/pwned")],
            {"evil/pwned": b"x"},
        ),
        "hardlink-outside": _tar([_entry("h", tarfile.LNKTYPE, linkname="/etc/passwd")]),
        "hardlink-dotdot": _tar([_entry("h", tarfile.LNKTYPE, linkname="../../etc/passwd")]),
    }


@pytest.mark.parametrize(
    "attack",
    [
        "dotdot",
        "absolute",
        "symlink-then-write",
        "hardlink-outside",
        "hardlink-dotdot",
    ],
)
def test_unsafe_layers_are_refused(bb: CLI, tmp_path: Path, attack: str) -> None:
    outside = tmp_path / f"outside-{uuid.uuid4().hex}"
    outside.mkdir()
    passwd = os.stat("/etc/passwd")
    tar = tmp_path / "attack.tar"
    tar.write_bytes(_attacks(outside)[attack])
    before = (tree_snapshot(bb.root), db_snapshot(bb.root))
    r = bb("import", str(tar), "evil:1", check=False)
    assert r.returncode == 125, r.stdout
    assert r.stderr.startswith("Error: ") and "Traceback" not in r.stderr
    assert os.listdir(outside) == []
    assert os.stat("/etc/passwd").st_mtime == passwd.st_mtime
    assert (tree_snapshot(bb.root), db_snapshot(bb.root)) == before
