"""`image bootstrap debian|node|python`: Debian's packages made into images with mmdebstrap.

The slow tests build from the Debian mirror (through the bootstrap cache outside the store);
the others check bad input, which fails before anything is built, and the pieces.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from dockyard.store.bootstrap.cache import BootstrapCache
from dockyard.store.bootstrap.debian import installed_packages, newest_package_time
from dockyard.store.bootstrap.mmdebstrap import deb_file_name
from dockyard.store.bootstrap.recipes import parse_name, upstream_version
from tests.conftest import CLI, tree_snapshot

needs_mmdebstrap = pytest.mark.skipif(
    shutil.which("mmdebstrap") is None, reason="mmdebstrap is not installed (./dev.sh setup)"
)


def image_ids(cli: CLI) -> list[str]:
    return cli("images", "-q").stdout.split() if cli.root.exists() else []


@needs_mmdebstrap
def test_unreachable_mirror_is_one_clear_line_and_leaves_nothing(
    dy: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "bootstrap-cache"
    monkeypatch.setenv("DOCKYARD_BOOTSTRAP_CACHE", str(cache))
    dy("image", "bootstrap", "busybox")
    before = tree_snapshot(dy.root)
    r = dy("image", "bootstrap", "node", "--mirror", "http://127.0.0.1:9/debian", check=False)
    assert r.returncode == 125, r
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: cannot reach the Debian mirror: Could not connect to 127.0.0.1:9 (127.0.0.1)."
        " - connect (111: Connection refused)"
        " (http://127.0.0.1:9/debian/dists/bookworm/InRelease)"
    ], r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert tree_snapshot(dy.root) == before  # no half-made image
    assert dy("images", "--format", "{{.Repository}}").stdout.split() == ["busybox"]
    for sub in ("layers", "tmp"):  # nothing cached, no scratch left
        assert not (cache / sub).exists() or not list((cache / sub).iterdir())


def test_unknown_image_and_bad_tags_are_refused_before_any_work(dy: CLI) -> None:
    r = dy("image", "bootstrap", "ubuntu", check=False)
    assert r.returncode == 125
    assert r.stderr.strip() == (
        "Error: cannot bootstrap 'ubuntu': known images are busybox, debian, node, python"
    )
    r = dy("image", "bootstrap", "debian:trixie", "--suite", "bookworm", check=False)
    assert r.returncode == 125
    assert r.stderr.strip() == "Error: debian:trixie is suite 'trixie', not 'bookworm'"
    assert image_ids(dy) == []


def test_a_missing_mmdebstrap_is_named(dy: CLI, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    import subprocess

    from tests.conftest import BIN

    r = subprocess.run(
        [str(BIN), "--root", str(dy.root), "image", "bootstrap", "python"],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(empty)},
        timeout=60,
    )
    assert r.returncode == 125
    assert r.stderr.strip() == (
        "Error: bootstrapping Debian images needs mmdebstrap: apt-get install mmdebstrap"
    )


@pytest.mark.slow
@needs_mmdebstrap
def test_a_version_debian_does_not_have_is_refused_before_building(dy: CLI) -> None:
    # The Flask note's `FROM python:3.8`: bookworm's python is 3.11.
    r = dy("image", "bootstrap", "python:3.8", check=False, timeout=600)
    assert r.returncode == 125, r
    [line] = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert line.startswith("Error: Debian bookworm cannot make python:3.8: its packages give")
    assert "python:3.11" in line
    assert image_ids(dy) == []


@pytest.mark.slow
@needs_mmdebstrap
def test_same_package_versions_give_the_same_image(dy: CLI, tmp_path: Path) -> None:
    """Reproducible: a build from scratch (--no-cache) in another store gives the image ID
    the cache gives; the cache is keyed by the package versions."""
    cached = dy("image", "bootstrap", "debian", timeout=1800)
    other = CLI(tmp_path / "other-root", tmp_path / "other-run")
    rebuilt = other("image", "bootstrap", "debian", "--no-cache", timeout=1800)
    assert rebuilt.stdout == cached.stdout
    again = other("image", "bootstrap", "debian:bookworm", timeout=1800)
    assert again.stdout == cached.stdout and "Using the cached layer" in again.stderr

    [img] = json.loads(dy("image", "inspect", "debian").stdout)
    assert sorted(img["RepoTags"]) == ["debian:bookworm", "debian:latest"]
    assert img["Config"]["Cmd"] == ["bash"]
    assert len(img["RootFS"]["Layers"]) == 1
    out = dy("run", "--rm", "debian", "bash", "-c", ". /etc/os-release; echo $VERSION_CODENAME")
    assert out.stdout == "bookworm\n"
    assert dy("run", "--rm", "debian", "apt-get", "--version").stdout.startswith("apt ")


# ---------------------------------------------------------------- pieces


def test_names_suites_and_tags() -> None:
    recipe, suite, tag = parse_name("node", None)
    assert (recipe.repo, suite, tag) == ("node", "bookworm", None)
    assert parse_name("debian:trixie", None)[1:] == ("trixie", "trixie")
    assert parse_name("docker.io/library/python:3.11", "bookworm")[0].repo == "python"
    versions = {"nodejs": "18.20.4+dfsg-1~deb12u1", "python3.11": "3.11.2-6+deb12u9"}
    assert parse_name("node", None)[0].tags(versions, "bookworm") == [
        "latest",
        "18",
        "18.20",
        "18.20.4",
    ]
    assert parse_name("python", None)[0].config(versions)["Env"][-1] == "PYTHON_VERSION=3.11.2"


@pytest.mark.parametrize(
    ("debian", "upstream"),
    [
        ("18.20.4+dfsg-1~deb12u1", "18.20.4"),
        ("1:2.39.2-1.1", "2.39.2"),
        ("3.11.2-6+deb12u9", "3.11.2"),
        ("9.2.0~ds1-1", "9.2.0"),
        ("5.2.15-2+b13", "5.2.15"),
    ],
)
def test_upstream_version(debian: str, upstream: str) -> None:
    assert upstream_version(debian) == upstream


def test_deb_file_names_as_apt_writes_them() -> None:
    assert deb_file_name("libcap2=1:2.66-4+deb12u3+b1") == "libcap2_1%3a2.66-4+deb12u3+b1_"


def test_installed_packages_and_their_newest_file(tmp_path: Path) -> None:
    dpkg = tmp_path / "var/lib/dpkg"
    (dpkg / "info").mkdir(parents=True)
    (dpkg / "status").write_text(
        "Package: a\nStatus: install ok installed\nVersion: 1.0-1\n\n"
        "Package: b\nStatus: deinstall ok config-files\nVersion: 2\n\n"
        "Package: c\nStatus: install ok installed\nVersion: 1:3~rc1\n"
    )
    assert installed_packages(str(tmp_path)) == ("a=1.0-1", "c=1:3~rc1")
    for rel, mtime in (("usr/bin/a", 1_700_000_000), ("etc/a.conf", 1_800_000_000)):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
        os.utime(tmp_path / rel, (mtime, mtime))
    (dpkg / "info/a.list").write_text("/usr\n/usr/bin\n/usr/bin/a\n/etc/a.conf\n/gone\n")
    (dpkg / "info/a.conffiles").write_text("/etc/a.conf\n")
    # a conffile a maintainer script touched does not count; the shipped file does
    assert newest_package_time(str(tmp_path)) == 1_700_000_000


def test_cache_publishes_atomically_and_keeps_one_entry_per_recipe(tmp_path: Path) -> None:
    cache = BootstrapCache(str(tmp_path / "c"))
    with cache.new_entry() as scratch:
        for key, pkgs in (("k1", ["a=1"]), ("k2", ["a=2"])):
            layer = Path(scratch) / "layer.tar"
            layer.write_bytes(b"tar")
            meta = {
                "diff_id": "sha256:x",
                "tar_size": 3,
                "created": "2026-01-01T00:00:00Z",
                "recipe": "node bookworm v1",
                "packages": pkgs,
            }
            got = cache.publish(key, str(layer), meta)
            assert got.versions == {"a": pkgs[0][2:]}
    assert cache.get("k1") is None and cache.get("k2") is not None
    assert os.listdir(tmp_path / "c" / "tmp") == []
    # a damaged entry is not used
    (tmp_path / "c" / "layers" / "k2" / "layer.tar").write_bytes(b"ta")
    assert cache.get("k2") is None


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_progress_display(tty: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bars of packages on a terminal; elsewhere one line per phase, no counts."""
    from dockyard.cli.images import BootstrapProgress

    err = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    show = BootstrapProgress()
    show({"status": "Building node from 483 packages (mmdebstrap)"})
    for done in (1, 2, 483):
        show(
            {
                "id": "install",
                "status": "Installing",
                "progressDetail": {"current": done, "total": 483},
                "unit": "packages",
            }
        )
    show({"id": "layer", "status": "Writing the layer"})
    out = err.getvalue()
    if tty:
        assert "install: Installing [" in out and "483/483 packages" in out
        assert "\x1b[1A" in out  # the install line is redrawn in place
    else:
        assert out.splitlines() == [
            "Building node from 483 packages (mmdebstrap)",
            "install: Installing",
            "layer: Writing the layer",
        ]
