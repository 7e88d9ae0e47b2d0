"""docker-py against ``dockyard daemon``: every route, as a Python user of Docker would."""

from __future__ import annotations

import json
import socket

import docker
import pytest
from docker.errors import APIError, ImageNotFound, NotFound

from tests.api.conftest import Daemon


def _read_frames(sock: socket.socket) -> dict[int, bytes]:
    """Read a stdcopy stream to its end: stream kind -> bytes."""
    buf, out = b"", {1: b"", 2: b""}
    while chunk := sock.recv(65536):
        buf += chunk
    while len(buf) >= 8:
        size = int.from_bytes(buf[4:8], "big")
        out[buf[0]] = out.get(buf[0], b"") + buf[8 : 8 + size]
        buf = buf[8 + size :]
    return out


def _raw(sock_like: object) -> socket.socket:
    return sock_like._sock if hasattr(sock_like, "_sock") else sock_like  # type: ignore[return-value]


# ---------------------------------------------------------------- system


def test_ping_version_info(api: Daemon) -> None:
    c = api.client
    assert c.ping() is True
    v = c.version()
    assert v["ApiVersion"] == "1.45"
    assert v["Os"] == "linux"
    info = c.info()
    assert info["OSType"] == "linux"
    assert info["Images"] == 1
    assert info["DockerRootDir"] == str(api.cli.root)


def test_ping_headers_and_head(api: Daemon) -> None:
    for method in ("GET", "HEAD"):
        status, headers, body = api.request(method, "/_ping")
        assert status == 200
        assert headers["api-version"] == "1.45"
        assert headers["ostype"] == "linux"
        assert body == (b"OK" if method == "GET" else b"")
    status, _, body = api.request("GET", "/v1.41/_ping")
    assert (status, body) == (200, b"OK")


# ---------------------------------------------------------------- run


def test_run_returns_the_output(api: Daemon) -> None:
    assert api.client.containers.run("busybox", "echo hi", remove=True) == b"hi\n"
    assert api.container_rows() == []


def test_run_nonzero_raises_container_error(api: Daemon) -> None:
    with pytest.raises(docker.errors.ContainerError) as e:
        api.client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 3"], remove=True)
    assert e.value.exit_status == 3
    assert b"bad" in e.value.stderr


def test_detached_run_logs_stop_remove(api: Daemon) -> None:
    c = api.client
    ct = c.containers.run(
        "busybox",
        ["sh", "-c", "echo out; echo err >&2; exec sleep 300"],
        detach=True,
        name="pyweb",
        labels={"team": "api"},
    )
    # Follow the logs until both lines are there (no sleeping on a guess).
    seen = b""
    for chunk in ct.logs(stream=True, follow=True):
        seen += chunk
        if b"out" in seen and b"err" in seen:
            break
    ct.reload()
    assert ct.status == "running"
    assert ct.name == "pyweb"
    assert ct.logs(stdout=True, stderr=False) == b"out\n"
    assert ct.logs(stdout=False, stderr=True) == b"err\n"
    assert ct.logs(tail=1) in (b"out\n", b"err\n")
    stamped = ct.logs(timestamps=True, stdout=True, stderr=False)
    assert stamped.endswith(b" out\n") and stamped[:4].isdigit()
    assert [x.id for x in c.containers.list(filters={"label": "team=api"})] == [ct.id]
    assert c.containers.list(filters={"name": "nomatch"}) == []
    assert [x.id for x in c.containers.list(filters={"status": "running"})] == [ct.id]
    ct.stop(timeout=1)
    ct.reload()
    assert ct.status == "exited"
    assert ct.attrs["State"]["ExitCode"] == 137  # sleep as pid 1 ignores SIGTERM
    assert c.containers.list() == []
    assert [x.id for x in c.containers.list(all=True)] == [ct.id]
    ct.remove()
    with pytest.raises(NotFound):
        c.containers.get(ct.id)


def test_create_maps_dockers_body(api: Daemon) -> None:
    c = api.client
    ct = c.containers.create(
        "busybox",
        ["sh", "-c", 'echo "$A $(pwd) $(id -u)"'],
        environment={"A": "b"},
        working_dir="/tmp",
        user="1000",
        mem_limit="64m",
        nano_cpus=500_000_000,
        hostname="pyhost",
        volumes={"pyvol": {"bind": "/data", "mode": "rw"}},
    )
    try:
        attrs = ct.attrs
        assert attrs["Config"]["WorkingDir"] == "/tmp"
        assert attrs["Config"]["User"] == "1000"
        assert attrs["Config"]["Hostname"] == "pyhost"
        assert attrs["HostConfig"]["Memory"] == 64 * 1024 * 1024
        assert attrs["HostConfig"]["NanoCpus"] == 500_000_000
        assert attrs["Mounts"][0]["Name"] == "pyvol"
        ct.start()
        assert ct.wait()["StatusCode"] == 0
        assert ct.logs() == b"b /tmp 1000\n"
    finally:
        ct.remove(v=True)
        c.volumes.get("pyvol").remove()


def test_kill_restart_rename(api: Daemon) -> None:
    c = api.client
    ct = c.containers.run("busybox", "sleep 300", detach=True)
    ct.rename("renamed")
    ct.reload()
    assert ct.name == "renamed"
    started = ct.attrs["State"]["StartedAt"]
    ct.restart(timeout=0)
    ct.reload()
    assert ct.status == "running"
    assert ct.attrs["State"]["StartedAt"] != started
    ct.kill()
    assert ct.wait()["StatusCode"] == 137
    with pytest.raises(APIError) as e:
        ct.kill()
    assert e.value.status_code == 409
    ct.remove()


def test_remove_running_needs_force(api: Daemon) -> None:
    ct = api.client.containers.run("busybox", "sleep 300", detach=True)
    with pytest.raises(APIError) as e:
        ct.remove()
    assert e.value.status_code == 409
    assert "cannot remove a running container" in str(e.value)
    ct.remove(force=True)
    assert api.container_rows() == []


# ---------------------------------------------------------------- attach, wait, exec


def test_attach_before_start_sees_all_output(api: Daemon) -> None:
    low = api.client.api
    cid = low.create_container("busybox", ["echo", "early"])["Id"]
    sock = low.attach_socket(cid, params={"stdout": 1, "stderr": 1, "stream": 1})
    low.start(cid)
    assert _read_frames(_raw(sock))[1] == b"early\n"
    sock.close()
    assert low.wait(cid)["StatusCode"] == 0


def test_attach_stdin(api: Daemon) -> None:
    low = api.client.api
    cid = low.create_container("busybox", ["cat"], stdin_open=True)["Id"]
    low.start(cid)
    sock = _raw(low.attach_socket(cid, params={"stdin": 1, "stdout": 1, "stream": 1}))
    sock.sendall(b"through stdin\n")
    sock.shutdown(socket.SHUT_WR)  # EOF: cat ends
    assert _read_frames(sock)[1] == b"through stdin\n"
    sock.close()
    assert low.wait(cid)["StatusCode"] == 0


def test_wait_next_exit_before_start(api: Daemon) -> None:
    import http.client

    low = api.client.api
    cid = low.create_container("busybox", ["sh", "-c", "exit 5"])["Id"]
    conn = http.client.HTTPConnection("localhost", timeout=120)
    conn.sock = socket.socket(socket.AF_UNIX)
    conn.sock.connect(str(api.socket))
    try:
        conn.request("POST", f"/v1.41/containers/{cid}/wait?condition=next-exit")
        resp = conn.getresponse()  # headers come before the exit, as Docker sends them
        assert resp.status == 200
        low.start(cid)
        assert json.loads(resp.read()) == {"StatusCode": 5, "Error": None}
    finally:
        conn.close()
    assert low.wait(cid)["StatusCode"] == 5  # not-running: at once


def test_exec(api: Daemon) -> None:
    c = api.client
    ct = c.containers.run("busybox", "sleep 300", detach=True)
    assert ct.exec_run("echo exec-out") == (0, b"exec-out\n")
    code, (out, err) = ct.exec_run(["sh", "-c", "echo o; echo e >&2; exit 4"], demux=True)
    assert (code, out, err) == (4, b"o\n", b"e\n")
    code, out = ct.exec_run("pwd", workdir="/tmp", user="1000", environment={"X": "y"})
    assert (code, out) == (0, b"/tmp\n")
    code, out = ct.exec_run("nosuchcommand")
    assert code == 127
    assert b"executable file not found" in out
    assert ct.exec_run("tty", tty=True).exit_code == 0  # not a terminal: 1
    low = c.api
    ex = low.exec_create(ct.id, ["cat"], stdin=True)
    sock = _raw(low.exec_start(ex["Id"], socket=True))
    sock.sendall(b"exec stdin\n")
    sock.shutdown(socket.SHUT_WR)
    assert _read_frames(sock)[1] == b"exec stdin\n"
    sock.close()
    info = low.exec_inspect(ex["Id"])
    assert info["ExitCode"] == 0 and info["Running"] is False
    assert info["ContainerID"] == ct.id
    assert info["ProcessConfig"]["entrypoint"] == "cat"
    ct.stop(timeout=0)
    with pytest.raises(APIError) as e:
        ct.exec_run("true")
    assert e.value.status_code == 409


def test_resize_routes(api: Daemon) -> None:
    low = api.client.api
    cid = low.create_container("busybox", ["sleep", "300"], tty=True, stdin_open=True)["Id"]
    low.start(cid)
    low.resize(cid, height=33, width=77)
    ex = low.exec_create(cid, ["tty"], tty=True)
    low.exec_resize(ex["Id"], height=21, width=55)  # kept until the exec has a terminal
    low.exec_start(ex["Id"])
    assert low.exec_inspect(ex["Id"])["ExitCode"] == 0
    low.remove_container(cid, force=True)
    with pytest.raises(APIError) as e:
        low.resize(cid, height=1, width=1)
    assert e.value.status_code == 404


# ---------------------------------------------------------------- images


def test_images(api: Daemon) -> None:
    c = api.client
    [img] = c.images.list()
    assert img.tags == ["busybox:latest"]
    assert c.images.get("busybox").id == img.id
    history = img.history()
    assert history[0]["Id"] == img.id and history[0]["Tags"] == ["busybox:latest"]
    img.tag("pybox", "v1")
    assert sorted(c.images.get(img.id).tags) == ["busybox:latest", "pybox:v1"]
    assert [i.tags for i in c.images.list(name="pybox")] == [["busybox:latest", "pybox:v1"]]
    assert c.api.remove_image("pybox:v1") == [{"Untagged": "pybox:v1"}]
    with pytest.raises(ImageNotFound):
        c.images.get("pybox:v1")


def test_save_and_load_round_trip(api: Daemon) -> None:
    c = api.client
    img = c.images.get("busybox")
    data = b"".join(img.save(named=True))  # by name: the archive carries the tag
    img.tag("roundtrip", "1")
    c.images.remove("busybox:latest")
    try:
        loaded = c.images.load(data)
        assert [i.id for i in loaded] == [img.id]
        assert "busybox:latest" in c.images.get(img.id).tags
    finally:
        img.tag("busybox", "latest")  # the next tests need it, also if this one failed
        c.images.remove("roundtrip:1")
    assert c.images.get("busybox").tags == ["busybox:latest"]


def test_pull_streams_dockers_progress(api: Daemon, registry: object) -> None:
    addr = registry.addr  # type: ignore[attr-defined]
    api.cli("tag", "busybox", f"{addr}/api/bb:1")
    api.cli("push", f"{addr}/api/bb:1")
    api.cli("rmi", f"{addr}/api/bb:1")
    messages = list(api.client.api.pull(f"{addr}/api/bb", tag="1", stream=True, decode=True))
    statuses = [m.get("status", "") for m in messages]
    assert statuses[-1] == f"Status: Downloaded newer image for {addr}/api/bb:1"
    assert any(s.startswith("Digest: sha256:") for s in statuses)
    img = api.client.images.get(f"{addr}/api/bb:1")
    assert img.id == api.client.images.get("busybox").id
    api.client.images.remove(f"{addr}/api/bb:1")
    with pytest.raises(NotFound):
        api.client.images.pull(f"{addr}/api/nothing", tag="1")


# ---------------------------------------------------------------- volumes, networks


def test_volumes(api: Daemon) -> None:
    c = api.client
    v = c.volumes.create("pydata", labels={"k": "v"})
    try:
        assert v.attrs["Driver"] == "local"
        assert c.volumes.get("pydata").attrs["Labels"] == {"k": "v"}
        assert "pydata" in [x.name for x in c.volumes.list()]
    finally:
        v.remove()
    with pytest.raises(NotFound):
        c.volumes.get("pydata")


def test_networks(api: Daemon) -> None:
    c = api.client
    n = c.networks.create("pynet", labels={"k": "v"})
    try:
        assert c.networks.get("pynet").attrs["Labels"] == {"k": "v"}
        assert {"bridge", "pynet"} <= {x.name for x in c.networks.list()}
        assert [x.name for x in c.networks.list(names=["pynet"])] == ["pynet"]
        ct = c.containers.run("busybox", "sleep 300", detach=True, network="pynet")
        n.reload()
        assert list(n.attrs["Containers"]) == [ct.id]
        with pytest.raises(APIError) as e:
            n.remove()
        assert e.value.status_code == 409
        ct.remove(force=True)
    finally:
        n.remove()
    with pytest.raises(NotFound):
        c.networks.get("pynet")
