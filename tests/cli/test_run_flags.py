"""``run`` flags as Docker's docs write them, through the one flag table: ``--mount`` (bind,
volume, tmpfs with options), ``--tmpfs`` options reaching the mount, ``--volumes-from``,
``--cidfile``; bad values get Docker's messages, exit 125, and create nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CLI
from tests.helpers import needs_docker


def _mounts_of(out: str) -> dict[str, str]:
    """/proc/mounts lines -> {mount point: options}."""
    return {ln.split()[1]: ln.split()[3] for ln in out.splitlines() if len(ln.split()) > 3}


def test_mount_volume_bind_and_tmpfs_as_docker_docs_write_them(ctr: CLI, tmp_path: Path) -> None:
    src = tmp_path / "target"
    src.mkdir()
    (src / "hello.txt").write_text("from the host\n")
    # The issue's own example, then the docs' ("Use bind mounts", "Use tmpfs mounts").
    assert ctr("run", "--mount", "type=volume,src=vol1,dst=/d", "busybox", "true").returncode == 0
    out = ctr(
        "run",
        "--rm",
        "--mount",
        f"type=bind,source={src},target=/app,readonly",
        "--mount",
        "type=tmpfs,destination=/app2,tmpfs-size=2m,tmpfs-mode=1770",
        "--mount",
        "source=myvol2,target=/app3",
        "busybox",
        "sh",
        "-c",
        "cat /app/hello.txt; touch /app/x 2>&1; grep -E ' /app[23]? ' /proc/mounts; "
        "stat -c %a /app2",
    ).stdout
    assert "from the host" in out and "Read-only file system" in out
    mounts = _mounts_of(out)
    assert mounts["/app"].startswith("ro,")
    assert "size=2048k" in mounts["/app2"] and "mode=1770" in mounts["/app2"]
    assert "noexec" in mounts["/app2"]  # Docker's default for tmpfs mounts
    assert out.strip().endswith("1770")
    assert {v["Name"] for v in json.loads(ctr("volume", "inspect", "vol1", "myvol2").stdout)} == {
        "vol1",
        "myvol2",
    }


def test_tmpfs_options_reach_the_mount(ctr: CLI) -> None:
    out = ctr(
        "run",
        "--rm",
        "--tmpfs",
        "/run:rw,size=1m,exec,mode=1777",
        "--tmpfs",
        "/plain",
        "busybox",
        "grep",
        "-E",
        " /(run|plain) ",
        "/proc/mounts",
    ).stdout
    mounts = _mounts_of(out)
    assert "size=1024k" in mounts["/run"] and "noexec" not in mounts["/run"]
    assert "noexec" in mounts["/plain"] and "nosuid" in mounts["/plain"]


def test_volumes_from_and_cidfile(ctr: CLI, tmp_path: Path) -> None:
    ctr("run", "--name", "data", "-v", "/shared", "busybox", "sh", "-c", "echo kept > /shared/f")
    cidfile = tmp_path / "cid"
    r = ctr("run", "--rm", "--cidfile", str(cidfile), "--volumes-from", "data:ro", "busybox",
            "sh", "-c", "cat /shared/f; touch /shared/g 2>&1; true")  # fmt: skip
    assert "kept" in r.stdout and "Read-only file system" in r.stdout
    assert len(cidfile.read_text()) == 64
    again = ctr("run", "--cidfile", str(cidfile), "busybox", "true", check=False)
    assert again.returncode == 125 and "Container ID file found" in again.stderr


BAD = [
    (["--mount", "src=v"], 'invalid argument "src=v" for "--mount" flag: target is required'),
    (
        ["--mount", "type=volume,src=vv,dst=/d,foo=bar"],
        "unexpected key 'foo' in 'foo=bar'",
    ),
    (["--mount", "dst"], "invalid field 'dst' must be a key=value pair"),
    (
        ["--mount", "type=tmpfs,dst=/t,tmpfs-size=abc"],
        "invalid value for tmpfs-size: abc",
    ),
    (["--mount", "type=foo,dst=/x"], 'invalid mount config for type "foo": mount type unknown'),
    (
        ["--mount", "type=bind,dst=/x"],
        'invalid mount config for type "bind": field Source must not be empty',
    ),
    (
        ["--mount", "type=bind,src=/nonexistent-dir-xyz,dst=/x"],
        "bind source path does not exist: /nonexistent-dir-xyz",
    ),
    (["--mount", "type=volume,src=v,dst=/d"], "volume name is too short"),
    (["--ulimit", "nofile"], "invalid ulimit argument: nofile"),
    (["--restart", "always:3"], "maximum retry count cannot be used with restart policy"),
    (
        ["--rm", "--restart", "always"],
        "conflicting options: cannot specify both --restart and --rm",
    ),
    (["--security-opt", "foo"], 'Invalid --security-opt: "foo"'),
    (["--health-interval", "abc"], 'time: invalid duration "abc"'),
    (["-a", "foo"], "valid streams are STDIN, STDOUT and STDERR"),
    (["--mac-address", "zz"], "zz is not a valid mac address"),
    (["--pid", "foo"], "--pid: invalid PID mode"),
    (["-p", "1:2:3:4"], "invalid IP address: 1:2"),
    (["--volumes-from", "nonexistent"], "No such container: nonexistent"),
]


@pytest.mark.parametrize(("flags", "message"), BAD)
def test_bad_values_are_dockers_errors_and_create_nothing(
    ctr: CLI, flags: list[str], message: str
) -> None:
    r = ctr("run", *flags, "busybox", "true", check=False)
    assert r.returncode == 125, r.stderr
    assert message in r.stderr and r.stderr.startswith("Error:")
    assert "Traceback" not in r.stderr
    assert ctr("ps", "-aq").stdout == ""
    assert [v for v in ctr("volume", "ls", "-q").stdout.split() if v != "vol1"] == []


@needs_docker
@pytest.mark.parametrize(("flags", "message"), BAD[:8])
def test_docker_says_the_same(flags: list[str], message: str) -> None:
    r = subprocess.run(
        ["docker", "run", "--rm", *flags, "busybox", "true"], capture_output=True, text=True
    )
    assert r.returncode == 125 and message in r.stderr
