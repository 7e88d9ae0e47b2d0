"""``import`` and ``load`` of a root filesystem as debootstrap/mmdebstrap make one (Docker's
docs make base images that way): device nodes, FIFOs, hard links, absolute symlinks. They
are accepted as Docker accepts them, and the container's device cgroup keeps the nodes from
being opened (as in Docker). Entries that leave the root are still refused
(tests/cli/test_untar.py, tests/cli/test_errors.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import CLI
from tests.helpers import Entry, entry, needs_docker, tar

BUSYBOX = Path("/bin/busybox")


def _dev(name: str, kind: bytes, major: int, minor: int, mode: int = 0o666) -> tarfile.TarInfo:
    return entry(name, kind, devmajor=major, devminor=minor, mode=mode)


def mmdebstrap_like() -> bytes:
    """What ``mmdebstrap --format=tar`` writes, cut down: "./" names, /dev with its nodes,
    usrmerge symlinks, a FIFO, a hard link, and a static busybox to run."""
    d = tarfile.DIRTYPE
    entries: list[Entry] = [
        entry("./", d),
        entry("./usr/", d),
        entry("./usr/bin/", d),
        (entry("./usr/bin/busybox", mode=0o755), BUSYBOX.read_bytes()),
        entry("./usr/bin/sh", tarfile.LNKTYPE, linkname="./usr/bin/busybox", mode=0o755),
        entry("./bin", tarfile.SYMTYPE, linkname="usr/bin"),
        entry("./dev/", d),
        _dev("./dev/console", tarfile.CHRTYPE, 5, 1, 0o600),
        _dev("./dev/null", tarfile.CHRTYPE, 1, 3),
        _dev("./dev/zero", tarfile.CHRTYPE, 1, 5),
        _dev("./dev/full", tarfile.CHRTYPE, 1, 7),
        _dev("./dev/random", tarfile.CHRTYPE, 1, 8),
        _dev("./dev/urandom", tarfile.CHRTYPE, 1, 9),
        _dev("./dev/tty", tarfile.CHRTYPE, 5, 0),
        _dev("./dev/ptmx", tarfile.CHRTYPE, 5, 2),
        entry("./dev/pts/", d),
        entry("./dev/shm/", d, mode=0o1777),
        entry("./dev/fd", tarfile.SYMTYPE, linkname="/proc/self/fd"),
        entry("./dev/stdin", tarfile.SYMTYPE, linkname="/proc/self/fd/0"),
        entry("./run/", d),
        entry("./run/initctl", tarfile.FIFOTYPE, mode=0o600),
        entry("./root/", d, mode=0o700),
        # /dev is a tmpfs in a container: copies elsewhere show what the image holds
        _dev("./root/console", tarfile.CHRTYPE, 5, 1, 0o600),
        _dev("./root/sda", tarfile.BLKTYPE, 8, 0, 0o660),
        _dev("./root/mem", tarfile.CHRTYPE, 1, 1, 0o640),
    ]
    for applet in ("cat", "stat", "ls", "head", "readlink"):
        entries.append(entry(f"./usr/bin/{applet}", tarfile.SYMTYPE, linkname="busybox"))
    return tar(*entries)


needs_busybox = pytest.mark.skipif(not BUSYBOX.exists(), reason="no static busybox on the host")


LIST = "stat -c '%n %F %t:%T %a %u:%g' /root/console /root/sda /root/mem /run/initctl"
EXPECTED = (
    "/root/console character special file 5:1 600 0:0\n"
    "/root/sda block special file 8:0 660 0:0\n"
    "/root/mem character special file 1:1 640 0:0\n"
    "/run/initctl fifo 0:0 600 0:0\n"
)


@needs_busybox
def test_import_a_debootstrap_root(dy: CLI, tmp_path: Path) -> None:
    """docker import rootfs.tar debian:bootstrap   (the tar mmdebstrap made)"""
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(mmdebstrap_like())
    r = dy("import", str(rootfs), "debian:bootstrap")
    assert r.stdout.startswith("sha256:")
    assert dy("run", "--rm", "debian:bootstrap", "sh", "-c", LIST).stdout == EXPECTED
    assert dy("run", "--rm", "debian:bootstrap", "readlink", "/dev/fd").stdout != ""


OPEN = "for n in /root/sda /root/mem /root/console; do (: < $n) && echo opened $n; done"
OPENED = (
    "sh: can't open /root/sda: Operation not permitted\n"
    "sh: can't open /root/mem: Operation not permitted\n"
)


@needs_busybox
def test_device_nodes_cannot_be_opened_in_a_container(dy: CLI, tmp_path: Path) -> None:
    """The device cgroup denies what Docker's denies: a disk, /dev/mem. (Docker's rules
    allow the few character devices every container has: null, zero, full, random,
    urandom, tty, ptmx and the console 5:1, wherever their nodes are.)"""
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(mmdebstrap_like())
    dy("import", str(rootfs), "devs")
    r = dy("run", "--rm", "devs", "sh", "-c", OPEN, check=False)
    assert r.stderr == OPENED
    assert r.stdout == "opened /root/console\n"


@needs_busybox
@needs_docker
def test_import_and_device_cgroup_as_docker(dy: CLI, tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(mmdebstrap_like())
    tag = f"dockyard-devs-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "import", str(rootfs), tag], check=True, capture_output=True)
    try:
        theirs = subprocess.run(["docker", "run", "--rm", tag, "sh", "-c", LIST],
                                capture_output=True, text=True)  # fmt: skip
        opened = subprocess.run(["docker", "run", "--rm", tag, "sh", "-c", OPEN],
                                capture_output=True, text=True)  # fmt: skip
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
    dy("import", str(rootfs), "devs")
    assert dy("run", "--rm", "devs", "sh", "-c", LIST).stdout == theirs.stdout == EXPECTED
    ours = dy("run", "--rm", "devs", "sh", "-c", OPEN, check=False)
    assert (ours.stdout, ours.stderr) == (opened.stdout, opened.stderr)


@needs_busybox
def test_load_an_image_with_device_nodes(dy: CLI, tmp_path: Path) -> None:
    """docker load -i debian.tar   (a docker-archive whose layer has /dev nodes)"""
    layer = mmdebstrap_like()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()],
            },
            "history": [{"created_by": "mmdebstrap"}],
        }
    ).encode()
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "RepoTags": ["deb:1"], "Layers": ["l/layer.tar"]}])
    archive = tmp_path / "deb.tar"
    archive.write_bytes(
        tar(
            (name, config),
            entry("l", tarfile.DIRTYPE),
            ("l/layer.tar", layer),
            ("manifest.json", manifest.encode()),
        )
    )
    assert dy("load", "-i", str(archive)).stdout == "Loaded image: deb:1\n"
    assert dy("run", "--rm", "deb:1", "sh", "-c", LIST).stdout == EXPECTED
    # and it goes out again as it came in
    saved = tmp_path / "again.tar"
    dy("save", "-o", str(saved), "deb:1")
    dy("rmi", "deb:1")
    assert dy("load", "-i", str(saved)).stdout == "Loaded image: deb:1\n"
    assert dy("run", "--rm", "deb:1", "sh", "-c", LIST).stdout == EXPECTED
