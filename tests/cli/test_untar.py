"""Hostile tars through every door the one extractor sits behind, as a user opens them:
``load`` (a layer), ``build -`` (a tar context), ``ADD x.tar`` and ``cp - CTR:/tmp`` (into a
container), and ``cp CTR:... HOST`` (to the host); then the everyday uses, a ``docker cp``
round trip and an ``ADD`` of a tar.gz, side by side with Docker when it runs here.

For every attack: the error each door gives (Docker's words where Docker refuses too),
nothing written outside, and the door's promise kept: a failed load or build leaves the store
as it was. ``docker cp`` promises no atomicity (Docker leaves a partial copy too).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder.conftest import leftovers
from tests.conftest import CLI, db_snapshot, tree_snapshot
from tests.helpers import Entry, entry, needs_docker, tar

UP = "../" * 16  # from any directory a store unpacks into, far past /
ATTACKS = ["dotdot", "absolute", "symlink", "hardlink", "device", "file-over-dir"]


def _up(outside: Path, leaf: str) -> str:
    """``leaf`` in ``outside``, named from far below: "../../tmp/.../outside/leaf"."""
    return f"{UP}{str(outside).lstrip('/')}/{leaf}"


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **kw: object) -> Entry:
    return (entry(name, kind, **kw), data)


def _tar(*entries: Entry) -> bytes:
    return tar(*entries)


def attack_entries(kind: str, outside: Path) -> list[Entry]:
    return {
        "dotdot": [_entry(_up(outside, "pwned"), data=b"x")],
        "absolute": [_entry(f"{outside}/pwned", data=b"x")],
        "symlink": [
            _entry("evil", tarfile.SYMTYPE, linkname=str(outside)),
            _entry("evil/pwned", data=b"x"),
        ],
        "hardlink": [_entry("h", tarfile.LNKTYPE, linkname=_up(outside, "victim"))],
        "device": [_entry("null", tarfile.CHRTYPE, devmajor=1, devminor=3)],
        "file-over-dir": [
            _entry("d", tarfile.DIRTYPE),
            _entry("d", data=b"now a file"),
            _entry("d/pwned", data=b"x"),
        ],
    }[kind]


def refusal(kind: str, noun: str, outside: Path, where: str = "") -> str | None:
    """The message a door gives for ``kind``; None where the entry lands inside (docker cp
    takes absolute names below the destination and follows symlinks inside the container's
    root, as Docker does). ``where`` is the destination docker cp names."""
    escapes = f'is outside of "{where}"' if where else "escapes the root"
    if kind == "dotdot":
        return f'unsafe path in {noun}: "{_up(outside, "pwned")}" {escapes}'
    if kind == "absolute":
        return None if where else f'unsafe path in {noun}: "{outside}/pwned" is absolute'
    if kind == "symlink":
        return None if where else f'unsafe path in {noun}: "evil/pwned" goes through symlink "evil"'
    if kind == "hardlink":
        return f'unsafe hard link in {noun}: "h" -> "{_up(outside, "victim")}" {escapes}'
    if kind == "device":
        return f'unsafe entry in {noun}: "null" is a char device 1:3; device nodes are not allowed'
    if where:  # docker cp never replaces a directory by a file (Docker's noOverwriteDirNonDir)
        return f'cannot overwrite directory "{where}/d" with non-directory "d"'
    return f'invalid path in {noun}: "d/pwned": "d" is not a directory'


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A host directory the attacks aim at; it must end as it started."""
    out = tmp_path / f"outside-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    (out / "victim").write_text("untouched\n")
    yield out
    assert sorted(os.listdir(out)) == ["victim"]
    assert (out / "victim").read_text() == "untouched\n"
    assert os.stat(out / "victim").st_nlink == 1


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _docker_archive(layer: bytes, tag: str) -> bytes:
    """A docker-archive (what ``docker save`` writes) of one image with one layer."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
            },
            "history": [{"created_by": "a hostile layer"}],
        }
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["l/layer.tar"]}])
    return _tar(
        _entry(config_name, data=config),
        _entry("l", tarfile.DIRTYPE),
        _entry("l/layer.tar", data=layer),
        _entry("manifest.json", data=manifest.encode()),
    )


def _one_error_line(stderr: str, message: str) -> None:
    assert message in stderr, stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


# ------------------------------------------------------------------ the doors


@pytest.mark.parametrize("kind", ATTACKS)
def test_docker_load(bb: CLI, tmp_path: Path, outside: Path, kind: str) -> None:
    archive = tmp_path / "evil.tar"
    archive.write_bytes(_docker_archive(_tar(*attack_entries(kind, outside)), "evil:1"))
    before = (tree_snapshot(bb.root), db_snapshot(bb.root))
    r = bb("load", "-i", str(archive), check=False)
    if kind == "device":
        # Docker's layers carry device nodes: loaded, inside the image (the container's
        # device cgroup keeps them from being opened: tests/cli/test_import_devices.py).
        assert r.returncode == 0, r.stderr
        assert r.stdout == "Loaded image: evil:1\n"
        return
    assert r.returncode == 125
    message = refusal(kind, "layer", outside)
    assert message is not None
    _one_error_line(r.stderr, f"Error: {message}")
    assert (tree_snapshot(bb.root), db_snapshot(bb.root)) == before


@pytest.mark.parametrize("kind", ATTACKS)
def test_build_from_a_tar_context(bb: CLI, outside: Path, kind: str) -> None:
    context = _tar(
        _entry("Dockerfile", data=b"FROM busybox\nCOPY . /ctx\n"),
        *attack_entries(kind, outside),
    )
    images = bb("images", "-aq").stdout
    r = bb.raw("build", "-t", "evil", "-", stdin=context)
    assert r.returncode == 1
    _one_error_line(
        r.stderr.decode(),
        "Error: unable to prepare context: the build context from stdin: "
        + str(refusal(kind, "archive", outside)),
    )
    assert b"Step 1" not in r.stdout
    assert bb("images", "-aq").stdout == images
    assert leftovers(bb) == []


@pytest.mark.parametrize("kind", ATTACKS)
def test_add_an_archive(bb: CLI, tmp_path: Path, outside: Path, kind: str) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "evil.tar").write_bytes(_tar(*attack_entries(kind, outside)))
    (ctx / "Dockerfile").write_text("FROM busybox\nADD evil.tar /dst/\n")
    images = bb("images", "-aq").stdout
    r = bb("build", "-t", "evil", str(ctx), check=False, timeout=300)
    assert r.returncode == 1
    _one_error_line(
        r.stderr,
        "Error: Dockerfile:2: ADD failed: cannot unpack archive: "
        + str(refusal(kind, "archive", outside)),
    )
    assert bb("images", "-aq").stdout == images
    assert leftovers(bb) == []


@pytest.fixture
def box(ctr: CLI) -> CLI:
    ctr("create", "--name", "box", "busybox", "sleep", "1000")
    return ctr


@pytest.fixture(scope="module")
def docker_box() -> Iterator[str]:
    name = f"dockyard-untar-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "create", "--name", name, "busybox", "true"], check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


@pytest.mark.parametrize("kind", ATTACKS)
def test_cp_into_a_container(box: CLI, tmp_path: Path, outside: Path, kind: str) -> None:
    r = box.raw("cp", "-", "box:/tmp", stdin=_tar(*attack_entries(kind, outside)))
    message = refusal(kind, "archive", outside, "/tmp")
    if message is None:
        # Inside the container: below /tmp for an absolute name, at the link's target taken
        # from the container's root for a symlink.
        assert r.returncode == 0, r.stderr
        inside = f"/tmp{outside}/pwned" if kind == "absolute" else f"{outside}/pwned"
        got = tmp_path / "got"
        box("cp", f"box:{inside}", str(got))
        assert got.read_bytes() == b"x"
    else:
        assert r.returncode == 125
        _one_error_line(r.stderr.decode(), f"Error: {message}")


@needs_docker
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "hardlink", "file-over-dir"])
def test_cp_into_a_container_as_docker(box: CLI, docker_box: str, outside: Path, kind: str) -> None:
    """Docker refuses what we refuse and takes what we take; where both refuse for the
    same reason, our message holds Docker's words. (Into /etc: Docker clamps ".." at the
    container's root before it checks, so a name climbing out of /tmp back into it passes
    there; we refuse any ".." above the destination.)"""
    tar = _tar(*attack_entries(kind, outside))
    ours = box.raw("cp", "-", "box:/etc", stdin=tar)
    theirs = subprocess.run(["docker", "cp", "-", f"{docker_box}:/etc"], input=tar,
                            capture_output=True)  # fmt: skip
    assert (ours.returncode == 0) == (theirs.returncode == 0), theirs.stderr
    shared = {
        "dotdot": f'"{_up(outside, "pwned")}" is outside of "/etc"',
        "file-over-dir": 'cannot overwrite directory "/etc/d" with non-directory',
    }.get(kind)
    if shared:
        assert shared in ours.stderr.decode() and shared in theirs.stderr.decode()


def test_cp_to_the_host_never_writes_through_what_a_container_left(
    box: CLI, tmp_path: Path, outside: Path
) -> None:
    """A container plants a symlink to a host directory in a first copy, then sends a
    directory of the same name: the second copy must not write through the link."""
    box("start", "box")
    box("exec", "box", "sh", "-c", f"mkdir -p /data && ln -s {outside} /data/evil")
    host = tmp_path / "host"
    host.mkdir()
    box("cp", "box:/data", str(host))
    assert os.readlink(host / "data" / "evil") == str(outside)  # a link, as in the container
    box("exec", "box", "sh", "-c", "rm /data/evil && mkdir /data/evil && echo x > /data/evil/pwned")
    r = box("cp", "box:/data", str(host), check=False)
    assert r.returncode == 125
    _one_error_line(
        r.stderr, f'Error: cannot overwrite non-directory "{host}/data/evil" with directory'
    )
    assert os.path.islink(host / "data" / "evil")


# ------------------------------------------------------------------ everyday use


def _host_tree(path: Path) -> dict[str, tuple[str, int, str]]:
    """Relative path -> (kind, permission bits, content or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            st = os.lstat(p)
            rel = str(p.relative_to(path))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", 0, os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_text())
    return out


def _site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "css").mkdir(parents=True)
    (site / "index.html").write_text("<h1>hello</h1>\n")
    (site / "css" / "main.css").write_text("h1 { color: red }\n")
    (site / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(site / "run.sh", 0o755)
    os.symlink("index.html", site / "home.html")
    return site


def test_cp_round_trip(ctr: CLI, tmp_path: Path) -> None:
    """docker run -d --name web busybox sleep 1000
    docker cp site web:/srv/
    docker cp web:/srv/site ./back"""
    site = _site(tmp_path)
    ctr("run", "-d", "--name", "web", "busybox", "sleep", "1000")
    ctr("exec", "web", "mkdir", "/srv")
    ctr("cp", str(site), "web:/srv/")
    assert ctr("exec", "web", "cat", "/srv/site/css/main.css").stdout == "h1 { color: red }\n"
    assert ctr("exec", "web", "/srv/site/run.sh").stdout == "hi\n"
    ctr("cp", "web:/srv/site", str(tmp_path / "back"))
    assert _host_tree(tmp_path / "back") == _host_tree(site)
    mtime = os.stat(site / "index.html").st_mtime
    assert os.stat(tmp_path / "back" / "index.html").st_mtime == int(mtime)


@needs_docker
def test_cp_round_trip_as_docker(ctr: CLI, tmp_path: Path) -> None:
    site = _site(tmp_path)
    ctr("run", "-d", "--name", "web", "busybox", "sleep", "1000")
    ctr("exec", "web", "mkdir", "/srv")
    name = f"dockyard-cp-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "run", "-d", "--name", name, "busybox", "sleep", "1000"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        subprocess.run(["docker", "exec", name, "mkdir", "/srv"], check=True)
        subprocess.run(["docker", "cp", str(site), f"{name}:/srv/"], check=True)
        subprocess.run(["docker", "cp", f"{name}:/srv/site", str(tmp_path / "docker")], check=True)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    ctr("cp", str(site), "web:/srv/")
    ctr("cp", "web:/srv/site", str(tmp_path / "ours"))
    assert _host_tree(tmp_path / "ours") == _host_tree(tmp_path / "docker")


def _app_tar_gz(tmp_path: Path) -> Path:
    """tar czf app.tar.gz -C src .   (GNU tar: a "./" entry first, with src's own mode)"""
    src = tmp_path / "src"
    (src / "conf").mkdir(parents=True)
    (src / "app.py").write_text("print('hi')\n")
    (src / "conf" / "app.ini").write_text("[app]\n")
    os.chmod(src / "conf" / "app.ini", 0o600)
    os.chmod(src, 0o700)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    subprocess.run(["tar", "czf", str(ctx / "app.tar.gz"), "-C", str(src), "."], check=True)
    (ctx / "Dockerfile").write_text("FROM busybox\nADD app.tar.gz /app/\n")
    return ctx


LIST = "find /app | sort | xargs stat -c '%n %a %u:%g %s'"


def test_add_a_tar_gz(bb: CLI, tmp_path: Path) -> None:
    """ADD app.tar.gz /app/   (unpacked; /app keeps its own owner and mode, as in Docker)"""
    ctx = _app_tar_gz(tmp_path)
    bb("build", "-t", "app", str(ctx), timeout=300)
    out = bb("run", "--rm", "app", "sh", "-c", LIST).stdout.splitlines()
    assert out[0].startswith("/app 755 0:0 ")  # not the "./" entry's 700
    assert "/app/app.py 644 0:0 12" in out
    assert "/app/conf/app.ini 600 0:0 6" in out


@needs_docker
def test_add_a_tar_gz_as_docker(bb: CLI, tmp_path: Path) -> None:
    ctx = _app_tar_gz(tmp_path)
    tag = f"dockyard-add-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)], check=True, env=env,
                   capture_output=True)  # fmt: skip
    try:
        theirs = subprocess.run(["docker", "run", "--rm", tag, "sh", "-c", LIST], check=True,
                                capture_output=True, text=True).stdout  # fmt: skip
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
    bb("build", "-t", "app", str(ctx), timeout=300)
    ours = bb("run", "--rm", "app", "sh", "-c", LIST).stdout

    def without_dir_sizes(text: str) -> list[str]:  # directory sizes are the fs's business
        return [
            line.rsplit(" ", 1)[0] if not line.split()[0].endswith((".py", ".ini")) else line
            for line in text.splitlines()
        ]

    assert without_dir_sizes(ours) == without_dir_sizes(theirs)


def test_add_a_truncated_tar_gz(bb: CLI, tmp_path: Path) -> None:
    ctx = _app_tar_gz(tmp_path)
    data = (ctx / "app.tar.gz").read_bytes()
    (ctx / "app.tar.gz").write_bytes(gzip.compress(gzip.decompress(data) + b"\0" * 100_000)[:-30])
    images = bb("images", "-aq").stdout
    r = bb("build", "-t", "app", str(ctx), check=False, timeout=300)
    assert r.returncode == 1
    _one_error_line(
        r.stderr,
        "Error: Dockerfile:2: ADD failed: cannot unpack archive: archive gzip stream is"
        " truncated or corrupt",
    )
    assert bb("images", "-aq").stdout == images
    assert leftovers(bb) == []


def test_import_an_xz_rootfs(bb: CLI, tmp_path: Path) -> None:
    """docker import rootfs.tar.xz app:xz   (Docker's import takes gzip, bzip2, xz)"""
    import lzma

    rootfs = _tar(_entry("etc", tarfile.DIRTYPE), _entry("etc/motd", data=b"from xz\n"))
    (tmp_path / "rootfs.tar.xz").write_bytes(lzma.compress(rootfs))
    bb("import", str(tmp_path / "rootfs.tar.xz"), "app:xz")
    with tarfile.open(fileobj=io.BytesIO(bb.raw("save", "app:xz").stdout)) as tf:
        layers = [m for m in tf.getmembers() if m.name.endswith("layer.tar")]
        assert len(layers) == 1
        inner = tf.extractfile(layers[0])
        assert inner is not None
        with tarfile.open(fileobj=inner) as lt:
            motd = lt.extractfile("etc/motd")
            assert motd is not None and motd.read() == b"from xz\n"
