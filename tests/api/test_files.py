"""A container's files and processes through the daemon: ``docker cp`` both ways (the
archive routes), ``docker commit``, ``docker top``, ``docker diff``, by the docker CLIs and
docker-py, side by side with the reference Docker where it runs."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.api.conftest import DOCKER_20, Daemon, Reference
from tests.conftest import db_snapshot, tree_snapshot
from tests.helpers import tar, tar_of

Docker = Callable[..., subprocess.CompletedProcess[str]]
BUSYBOX_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _tree(path: Path) -> dict[str, tuple[str, int, bytes]]:
    """What a copy left on the host: kind, permission bits and content of every entry."""
    out: dict[str, tuple[str, int, bytes]] = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        st = p.lstat()
        if p.is_symlink():
            out[rel] = ("link", 0, os.readlink(p).encode())
        elif p.is_dir():
            out[rel] = ("dir", st.st_mode & 0o777, b"")
        else:
            out[rel] = ("file", st.st_mode & 0o777, p.read_bytes())
    return out


def _host_files(base: Path) -> Path:
    src = base / "src"
    (src / "dir" / "sub").mkdir(parents=True)
    (src / "one.txt").write_text("one\n")
    (src / "dir" / "two.txt").write_text("two\n")
    (src / "dir" / "sub" / "three.sh").write_text("#!/bin/sh\n")
    (src / "dir" / "sub" / "three.sh").chmod(0o755)
    os.symlink("two.txt", src / "dir" / "link")
    return src


def _cp_session(docker_cli: Docker, name: str, base: Path) -> list[Any]:
    """``docker cp`` as its documentation shows it, both ways; what each step gave."""
    src = _host_files(base)
    out = base / "out"
    out.mkdir()
    seen: list[Any] = []

    def step(*args: str, stdin: bytes | None = None) -> None:
        r = docker_cli(*args, input=stdin)
        # The CLI's own log lines (time=...) and this run's paths are not the daemon's doing.
        lines = [x for x in r.stderr.splitlines() if not x.startswith("time=")]
        err = "\n".join(lines).replace(name, "NAME").replace(str(base), "BASE")
        seen.append((args[0], r.returncode, err))

    step("run", "-d", "--name", name, "busybox", "sleep", "300")
    step("cp", str(src / "one.txt"), f"{name}:/tmp/")
    step("cp", str(src / "one.txt"), f"{name}:/tmp/renamed.txt")
    step("cp", str(src / "dir"), f"{name}:/tmp/newdir")
    step("cp", str(src / "dir") + "/.", f"{name}:/root")
    step("cp", "-", f"{name}:/tmp", stdin=tar_of({"streamed/a.txt": b"from a stream\n"}))
    seen.append(docker_cli("exec", name, "sh", "-c", "cd /tmp && find . | sort").stdout)
    seen.append(docker_cli("exec", name, "sh", "-c", "ls -l /root/sub /tmp/newdir").stdout[:0])
    step("cp", f"{name}:/tmp/newdir", str(out / "back"))
    step("cp", f"{name}:/tmp/renamed.txt", str(out))
    step("cp", f"{name}:/etc/hostname", str(out / "hostname-copy"))
    step("cp", f"{name}:/tmp/newdir/.", str(out / "dir-contents"))
    step("cp", f"{name}:/etc", str(out / "etc"))
    r = docker_cli("cp", f"{name}:/tmp/streamed", "-")
    with tarfile.open(fileobj=io.BytesIO(r.stdout.encode("latin-1"))) as tf:
        seen.append(sorted((m.name, m.isdir()) for m in tf.getmembers()))
    tree = _tree(out)
    # The container's ID and address differ by nature, and the images' own /etc files.
    for key in ("hostname-copy", "etc/hostname", "etc/hosts"):
        tree[key] = tree[key][:2]
    etc = ("etc", "etc/hostname", "etc/hosts", "etc/resolv.conf")
    tree = {k: v for k, v in tree.items() if not k.startswith("etc") or k in etc}
    seen.append(tree)
    # What Docker refuses, as it says it.
    step("cp", f"{name}:/nosuch", str(out / "x"))
    step("cp", str(src / "one.txt"), f"{name}:/nosuchdir/")
    step("cp", str(src / "dir"), f"{name}:/etc/hostname")
    step("cp", str(base / "nosuch"), f"{name}:/tmp")
    step("cp", "nosuchcontainer:/etc", str(out))
    return seen


@pytest.mark.parametrize("cli", ["newest", "debian"])
def test_docker_cp_both_ways_as_docker(
    api: Daemon, reference: Reference, tmp_path: Path, cli: str
) -> None:
    binary = DOCKER_20 if cli == "debian" else None
    name = f"{reference.prefix}-cp"

    def ours(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return api.docker(*args, input=input, binary=binary)

    def theirs(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return reference.docker(*args, input=input, binary=binary)

    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    assert _cp_session(ours, name, tmp_path / "ours") == _cp_session(
        theirs, name, tmp_path / "theirs"
    )


def test_docker_cp_without_the_reference(api: Daemon, tmp_path: Path) -> None:
    """The same, judged on its own where no reference Docker runs."""
    seen = _cp_session(api.docker, "cp-alone", tmp_path)
    assert seen[0] == ("run", 0, "")
    assert all(rc == 0 for kind, rc, _ in seen[1:6])
    tree = seen[-6]
    assert isinstance(tree, dict)
    assert tree["back/two.txt"] == ("file", 0o644, b"two\n")
    assert tree["back/link"] == ("link", 0, b"two.txt")
    assert tree["back/sub/three.sh"] == ("file", 0o755, b"#!/bin/sh\n")
    assert tree["renamed.txt"] == ("file", 0o644, b"one\n")
    assert tree["dir-contents/two.txt"] == ("file", 0o644, b"two\n")
    assert tree["etc/resolv.conf"][2]  # the container's, not the empty mount point below it
    assert seen[-5] == (
        "cp",
        1,
        "Error response from daemon: Could not find the file /nosuch in container NAME",
    )


# ---------------------------------------------------------------- the archive routes


def test_docker_py_put_and_get_archive(api: Daemon) -> None:
    c = api.client.containers.run("busybox", "sleep 300", detach=True)
    assert c.put_archive("/tmp", tar_of({"app/conf.txt": b"k=v\n"})) is True
    stream, stat = c.get_archive("/tmp/app")
    assert stat["name"] == "app"
    assert stat["mode"] & (1 << 31)  # Go's os.ModeDir
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        assert tf.extractfile("app/conf.txt").read() == b"k=v\n"
    # HEAD: the stat alone, base64 JSON in Docker's header.
    status, headers, body = api.request("HEAD", f"/containers/{c.id}/archive?path=/tmp/app")
    assert (status, body) == (200, b"")
    head_stat = json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))
    assert head_stat == stat
    # A stopped container's files are there too (its root is mounted for the copy).
    c.stop(timeout=0)
    stream, stat = c.get_archive("/tmp/app/conf.txt")
    assert stat["size"] == 4


def test_archive_bad_input(api: Daemon) -> None:
    c = api.client.containers.run("busybox", "sleep 300", detach=True, name="arch-bad")
    base = "/containers/arch-bad/archive"
    assert api.error("GET", base) == (400, "bad parameter: path cannot be empty")
    assert api.error("GET", f"{base}?path=/nosuch") == (
        404,
        "Could not find the file /nosuch in container arch-bad",
    )
    assert api.error("GET", "/containers/nosuch/archive?path=/") == (
        404,
        "No such container: nosuch",
    )
    assert api.request("HEAD", f"{base}?path=/nosuch")[0] == 404
    assert api.error("PUT", f"{base}?path=/etc/hostname", tar_of({"x": b"1"}))[0] == 400
    assert api.error("PUT", f"{base}?path=/nosuch", tar_of({"x": b"1"})) == (
        404,
        "Could not find the file /nosuch in container arch-bad",
    )
    # A corrupt archive: refused, nothing written.
    before = c.exec_run("ls -a /tmp").output
    status, message = api.error("PUT", f"{base}?path=/tmp", b"x" * 700)
    assert status == 400 and "archive" in message
    truncated = tar_of({"big.bin": b"y" * 100_000})[:50_000]
    assert api.error("PUT", f"{base}?path=/tmp", truncated)[0] == 400
    assert c.exec_run("ls -a /tmp").output in (before, before.replace(b"..\n", b"..\nbig.bin\n"))
    # An entry that would climb out of the destination: refused as Docker's cp refuses.
    status, message = api.error("PUT", f"{base}?path=/tmp", tar(("../../etc/evil", b"x")))
    assert status == 400
    assert c.exec_run("ls /etc/evil").exit_code != 0
    # noOverwriteDirNonDir: a file over a directory is refused when the client asks.
    c.exec_run("mkdir /tmp/d")
    status, message = api.error(
        "PUT", f"{base}?path=/tmp&noOverwriteDirNonDir=1", tar(("d", b"not a dir"))
    )
    assert status == 400 and "cannot overwrite directory" in message


def test_archive_copy_uid_gid(api: Daemon) -> None:
    c = api.client.containers.run("busybox", "sleep 300", detach=True, user="65534:65534")
    owned = tar(
        (tarfile.TarInfo("f"), b"x"),
    )
    status, _, _ = api.request("PUT", f"/containers/{c.id}/archive?path=/tmp&copyUIDGID=1", owned)
    assert status == 200
    assert c.exec_run("stat -c %u:%g /tmp/f").output == b"65534:65534\n"


def test_archive_large_file_streams(api: Daemon, tmp_path: Path) -> None:
    """64 MiB each way through docker cp: streamed, not held whole by the daemon."""
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        for i in range(64):
            f.write(bytes([i]) * (1 << 20))
    api.docker("run", "-d", "--name", "cp-big", "busybox", "sleep", "300")
    r = api.docker("cp", str(big), "cp-big:/tmp/big.bin")
    assert r.returncode == 0, r.stderr
    r = api.docker("cp", "cp-big:/tmp/big.bin", str(tmp_path / "back.bin"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "back.bin").read_bytes() == big.read_bytes()


# ---------------------------------------------------------------- diff, top


def _changes(docker_cli: Docker, name: str) -> tuple[Any, ...]:
    docker_cli("run", "-d", "--name", name, "busybox", "sleep", "300")
    docker_cli(
        "exec", name, "sh", "-c", "echo x > /tmp/f; rm /etc/group; mkdir -p /a/b; touch /etc/passwd"
    )
    created = docker_cli("create", "--name", name + "-c", "busybox")
    assert created.returncode == 0, created.stderr
    # Docker lists siblings in Go's map order (it varies from one run to the next): sorted.
    return (
        sorted(docker_cli("diff", name).stdout.splitlines()),
        docker_cli("diff", name + "-c").stdout,
        docker_cli("diff", "nosuch").stderr,
    )


def test_docker_diff_as_docker(api: Daemon, reference: Reference) -> None:
    name = f"{reference.prefix}-diff"
    assert _changes(api.docker, name) == _changes(reference.docker, name)


def test_diff_shapes(api: Daemon) -> None:
    ours = _changes(api.docker, "diff-alone")
    assert ours[0] == sorted(
        ["A /a", "A /a/b", "C /etc", "D /etc/group", "C /etc/passwd", "C /tmp", "A /tmp/f"]
    )
    assert ours[1] == ""
    status, _, body = api.request("GET", "/containers/diff-alone/changes")
    assert (status, json.loads(body)[:2]) == (
        200,
        [{"Path": "/a", "Kind": 1}, {"Path": "/a/b", "Kind": 1}],
    )
    assert json.loads(api.request("GET", "/containers/diff-alone-c/changes")[2]) is None
    assert api.client.containers.get("diff-alone-c").diff() is None


def _top(docker_cli: Docker, name: str) -> tuple[Any, ...]:
    docker_cli("run", "-d", "--name", name, "busybox", "sleep", "300")
    docker_cli("create", "--name", name + "-stopped", "busybox")
    default = docker_cli("top", name).stdout.splitlines()
    aux = docker_cli("top", name, "aux").stdout.splitlines()
    stopped = docker_cli("top", name + "-stopped")
    bad = docker_cli("top", name, "-bogus")
    return (
        default[0].split(),
        default[1].split()[-2:],
        aux[0].split(),
        len(aux),
        stopped.returncode,
        stopped.stderr.split("Container ")[0],
        bad.returncode,
        bad.stderr.split(":")[0],
    )


def test_docker_top_as_docker(api: Daemon, reference: Reference) -> None:
    name = f"{reference.prefix}-top"
    assert _top(api.docker, name) == _top(reference.docker, name)


def test_top_shapes(api: Daemon) -> None:
    c = api.client.containers.run("busybox", "sleep 300", detach=True)
    top = c.top()
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [row[-1] for row in top["Processes"]] == ["sleep 300"]
    assert c.top(ps_args="-o pid,comm")["Titles"] == ["PID", "COMMAND"]
    status, message = api.error("GET", f"/containers/{c.id}/top?ps_args=-bogus")
    assert status == 500 and message.startswith("ps: ")
    stopped = api.client.containers.create("busybox")
    assert api.error("GET", f"/containers/{stopped.id}/top") == (
        409,
        f"Container {stopped.id} is not running",
    )


# ---------------------------------------------------------------- commit


def _commit(docker_cli: Docker, name: str, image: str) -> tuple[Any, ...]:
    docker_cli("run", "-d", "--name", name, "-e", "BASE=1", "busybox", "sleep", "300")
    docker_cli("exec", name, "sh", "-c", "echo data > /data.txt")
    r = docker_cli(
        "commit", "-c", "ENV A=1", "-c", 'CMD ["sh"]', "-m", "a message", "-a", "me",
        name, image,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    fmt = (
        "{{json .Config.Env}} {{json .Config.Cmd}} {{.Comment}} {{.Author}} {{len .RootFS.Layers}}"
    )
    inspected = docker_cli("image", "inspect", image, "--format", fmt).stdout
    # The two busybox images differ in PATH (ours has Docker Hub's): not the commit's doing.
    inspected = inspected.replace(f'"{BUSYBOX_PATH}",', "")
    ran = docker_cli("run", "--rm", image, "cat", "/data.txt").stdout
    bad_change = docker_cli("commit", "-c", "RUN x", name, image + "-bad")
    missing = docker_cli("commit", "nosuch", image + "-bad")
    upper = docker_cli("commit", name, "UPPER")
    return (
        inspected,
        ran,
        (bad_change.returncode, bad_change.stderr),
        (missing.returncode, missing.stderr),
        (upper.returncode, upper.stderr),
    )


def test_docker_commit_as_docker(api: Daemon, reference: Reference) -> None:
    image = f"{reference.prefix}-committed:1"
    try:
        assert _commit(api.docker, f"{reference.prefix}-commit", image) == _commit(
            reference.docker, f"{reference.prefix}-commit", image
        )
    finally:
        api.cli("rmi", "-f", image, check=False)


def test_commit_with_a_config_body(api: Daemon) -> None:
    """docker-py's ``commit(conf=...)``: the body's config, the changes on it, then the
    container's config completing it (moby's merge)."""
    c = api.client.containers.run(
        "busybox", "sleep 300", detach=True, environment={"FROM_CTR": "1", "SHARED": "ctr"}
    )
    try:
        image = c.commit(
            "bodycommit",
            "1",
            conf={"Env": ["SHARED=body"], "Labels": {"k": "v"}, "Cmd": "echo"},
            changes=["EXPOSE 8080"],
        )
        cfg = image.attrs["Config"]
        assert cfg["Env"][0] == "SHARED=body"
        assert "FROM_CTR=1" in cfg["Env"] and "SHARED=ctr" not in cfg["Env"]
        assert cfg["Labels"] == {"k": "v"}
        assert cfg["Cmd"] == ["echo"]
        assert cfg["ExposedPorts"] == {"8080/tcp": {}}
    finally:
        api.cli("rmi", "-f", "bodycommit:1", check=False)


def test_commit_bad_input_creates_nothing(api: Daemon) -> None:
    c = api.client.containers.run("busybox", "sleep 300", detach=True)
    root = api.cli.root
    before = (db_snapshot(root)["images"], sorted(tree_snapshot(root / "content")))
    url = f"/commit?container={c.id}&repo=bad"
    for body, want in [
        (b"{bad", "invalid JSON body"),
        (b"[]", "invalid JSON body: expected an object"),
        (json.dumps({"Env": "A=1"}).encode(), "json: cannot unmarshal string into Go struct"),
        (json.dumps({"Labels": {"k": 1}}).encode(), "json: cannot unmarshal"),
    ]:
        status, message = api.error("POST", url, body)
        assert status == 400 and message.startswith(want), message
    assert api.error("POST", "/commit") == (400, 'invalid name or ID supplied: ""')
    assert api.error("POST", f"/commit?container={c.id}&changes=BOGUS%20x") == (
        400,
        "bogus is not a valid change command",
    )
    assert api.error("POST", "/commit?container=nosuch") == (404, "No such container: nosuch")
    after = (db_snapshot(root)["images"], sorted(tree_snapshot(root / "content")))
    assert after == before


def test_docker_py_commit_top_diff(api: Daemon) -> None:
    c = api.client.containers.run("busybox", "sh -c 'touch /made; sleep 300'", detach=True)
    try:
        image = c.commit("pycommit", "v1", message="m", author="a")
        assert image.tags == ["pycommit:v1"]
        assert image.attrs["Comment"] == "m"
        assert {"Path": "/made", "Kind": 1} in (c.diff() or [])
        assert len(c.top()["Processes"]) >= 1
    finally:
        api.cli("rmi", "-f", "pycommit:v1", check=False)
    with pytest.raises(docker.errors.NotFound):
        api.client.api.top("nosuch")
