"""The real docker CLI (DOCKER_HOST=unix://...) against ``dockyard daemon``, and the dockyard
CLI working on the same store at the same time."""

from __future__ import annotations

from tests.api.conftest import Daemon


def test_version_and_images(api: Daemon) -> None:
    r = api.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1.45 linux"
    r = api.docker("images", "--format", "{{.Repository}}:{{.Tag}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["busybox:latest"]


def test_run_rm_attached(api: Daemon) -> None:
    r = api.docker("run", "--rm", "busybox", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    r = api.docker("run", "--rm", "busybox", "sh", "-c", "echo e >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "", "e\n")
    r = api.docker("run", "--rm", "-i", "busybox", "cat", input=b"piped in\n")
    assert (r.returncode, r.stdout) == (0, "piped in\n"), r.stderr
    assert api.container_rows() == []


def test_ps_logs_exec_rm(api: Daemon) -> None:
    cmd = ["sh", "-c", "echo up; exec sleep 300"]
    r = api.docker("run", "-d", "--name", "cliweb", "busybox", *cmd)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    r = api.docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}")
    assert r.stdout.split()[:3] == [cid, "cliweb", "Up"]
    api.docker("exec", "cliweb", "sh", "-c", "head -c 3000 /dev/zero > /big")
    r = api.docker("ps", "-s", "--format", "{{.Names}} {{.Size}}")  # GET /containers/json?size=1
    assert r.stdout.startswith("cliweb 3kB (virtual "), (r.stdout, r.stderr)
    r = api.docker("exec", "cliweb", "echo", "from exec")
    assert (r.returncode, r.stdout) == (0, "from exec\n"), r.stderr
    r = api.docker("exec", "cliweb", "sh", "-c", "exit 9")
    assert r.returncode == 9
    r = api.docker("exec", "-i", "cliweb", "cat", input=b"exec stdin\n")
    assert (r.returncode, r.stdout) == (0, "exec stdin\n")
    r = api.docker("logs", "cliweb")
    assert r.stdout == "up\n"
    r = api.docker("rm", "cliweb")
    assert r.returncode == 1
    assert "cannot remove a running container" in r.stderr
    r = api.docker("rm", "-f", "cliweb")
    assert r.returncode == 0, r.stderr
    assert api.container_rows() == []


def test_unknown_container_message(api: Daemon) -> None:
    r = api.docker("inspect", "--type", "container", "nosuch")
    assert r.returncode == 1
    assert "No such container: nosuch" in r.stderr


def test_cli_and_daemon_share_the_store(api: Daemon) -> None:
    """One container made by each front end, each seen (and removed) by the other."""
    by_cli = api.cli("run", "-d", "--name", "from-cli", "busybox", "sleep", "300").stdout.strip()
    by_api = api.client.containers.run("busybox", "sleep 300", detach=True, name="from-api")
    seen_by_api = {c.name: c.id for c in api.client.containers.list()}
    assert seen_by_api == {"from-cli": by_cli, "from-api": by_api.id}
    ps = api.cli("ps", "--no-trunc", "--format", "{{.Names}} {{.ID}}").stdout.split("\n")
    assert sorted(x for x in ps if x) == [f"from-api {by_api.id}", f"from-cli {by_cli}"]
    assert api.cli("exec", "from-api", "echo", "cli exec").stdout == "cli exec\n"
    assert api.client.containers.get("from-cli").exec_run("echo api exec").output == b"api exec\n"
    api.cli("rm", "-f", "from-api")
    api.client.containers.get("from-cli").remove(force=True)
    assert api.client.containers.list(all=True) == []
    assert api.container_rows() == []


def test_seccomp_profile_file_and_defaults(api: Daemon, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The docker CLI reads the profile file and sends its content; the daemon applies it, and
    Docker's default profile otherwise. (Detached, then wait and logs: an attached run of a
    container that exits at once sometimes loses its output or exit code through this
    daemon, whatever the profile.)"""
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(
        '{"defaultAction": "SCMP_ACT_ALLOW",\n'
        ' "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}\n'
    )

    def output(name: str, *flags: str, script: str) -> str:
        r = api.docker("run", "-d", "--name", name, *flags, "busybox", "sh", "-c", script)
        assert r.returncode == 0, r.stderr
        assert api.docker("wait", name).stdout == "0\n"
        return api.docker("logs", name).stdout

    mkdir = "mkdir /x 2>/dev/null && echo made || echo refused"
    assert output("sc1", "--security-opt", f"seccomp={profile}", script=mkdir) == "refused\n"
    assert output("sc2", script=mkdir) == "made\n"
    unshare = "unshare -U -r id 2>&1; echo rc=$?"
    assert output("sc3", script=unshare) == (
        "unshare: unshare(0x10000000): Operation not permitted\nrc=1\n"
    )
    assert output("sc4", "--cap-add", "SYS_ADMIN", script=unshare).startswith("uid=0(root)")
