"""The daemon as a server that holds load and bad input (the Engine API parity issue): many
clients at once, bursts beyond the old backlog of 5, malformed and oversized requests on real
routes, clients that leave in the middle of a stream, and a stop that leaves nothing of its
own behind while containers run on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from tests.api.conftest import (
    DOCKER_BIN,
    REFERENCE_SOCKET,
    Daemon,
    start_daemon,
    stop_daemon,
)
from tests.api.test_errors import create_body, unchanged  # noqa: F401 - a fixture
from tests.conftest import CLI, _cleanup_containers
from tests.helpers import reference_docker
from tests.httpd.conftest import connect_nonblocking, read_to_close, recv_until, status_of
from tests.runtime.test_containers import wait_for


def _call(sock_path: Path, request: bytes) -> bytes:
    """One request on a connection opened as the docker CLI (Go) opens it: a full backlog
    refuses at once (EAGAIN) instead of waiting."""
    with connect_nonblocking(str(sock_path)) as s:
        s.sendall(request)
        return read_to_close(s)


def _message(reply: bytes) -> str:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"\r\nContent-Type: application/json" in head
    return str(json.loads(body)["message"])


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def _settled_threads(pid: int) -> int:
    """The daemon's thread count once it has stopped changing for longer than a worker
    outlives its last request (Limits.keep_waiting + worker_idle: 3 s): earlier requests'
    workers have ended."""
    seen = [_threads(pid)]
    while len(seen) < 36 or len(set(seen[-36:])) > 1:
        time.sleep(0.1)
        seen.append(_threads(pid))
    return seen[-1]


def _children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` (pid -> start time, to tell a reused pid apart)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out[int(entry)] = fields[19]
    return out


def _alive(pid: int, started: str) -> bool:
    """``pid`` still runs and is the process that started at ``started``."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == started and fields[0] != "Z"


# ---------------------------------------------------------------- bad input on real routes


CLOSE = b"Host: x\r\nConnection: close\r\n"


def test_deeply_nested_create_body_is_400_and_creates_nothing(unchanged: Daemon) -> None:  # noqa: F811
    nested = b'{"Image": "busybox", "Labels": ' + b'{"a":' * 5000 + b"1" + b"}" * 5001
    status, message = unchanged.error("POST", "/containers/create", nested)
    assert status == 400
    assert message == "invalid JSON body: JSON nested deeper than 100 levels"
    status, message = unchanged.error("GET", "/containers/json?filters=" + "%5B" * 1000)
    assert (status, message) == (400, "invalid filter: JSON nested deeper than 100 levels")


def test_malformed_chunked_create_is_400_and_creates_nothing(unchanged: Daemon) -> None:  # noqa: F811
    body = create_body()
    reply = _call(
        unchanged.socket,
        b"POST /v1.41/containers/create HTTP/1.1\r\n" + CLOSE + b"Transfer-Encoding: chunked\r\n"
        b"\r\nzz\r\n" + body + b"\r\n0\r\n\r\n",
    )
    assert status_of(reply) == 400
    assert _message(reply) == "malformed chunked body: bad chunk size"
    assert unchanged.container_rows() == []


def test_oversized_create_body_is_400_and_creates_nothing(unchanged: Daemon) -> None:  # noqa: F811
    body = create_body(Labels={"big": "x" * (17 << 20)})
    status, message = unchanged.error("POST", "/containers/create", body)
    assert (status, message) == (400, "request body too large")


def test_oversized_headers_are_431(unchanged: Daemon) -> None:  # noqa: F811
    reply = _call(
        unchanged.socket,
        b"GET /containers/json HTTP/1.1\r\n"
        + CLOSE
        + b"X-Registry-Auth: "
        + b"a" * (1 << 20)
        + b"\r\n\r\n",
    )
    assert status_of(reply) == 431
    assert _message(reply) == "request header fields too large"


def test_truncated_body_is_400(unchanged: Daemon) -> None:  # noqa: F811
    with connect_nonblocking(str(unchanged.socket)) as s:
        s.sendall(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
        s.shutdown(socket.SHUT_WR)  # and no more: the body ended early
        reply = read_to_close(s)
    assert status_of(reply) == 400
    assert _message(reply) == "request body ended early"


# ---------------------------------------------------------------- load


def test_ten_clients_a_hundred_calls_none_refused(api: Daemon) -> None:
    """Was: 26 of the first 100 calls refused, "Resource temporarily unavailable"."""

    def client(_: int) -> list[int]:
        return [
            status_of(
                _call(
                    api.socket, b"GET /v1.41/containers/json?all=1 HTTP/1.1\r\n" + CLOSE + b"\r\n"
                )
            )
            for _ in range(10)
        ]

    with ThreadPoolExecutor(10) as pool:
        statuses = [s for batch in pool.map(client, range(10)) for s in batch]
    assert statuses == [200] * 100


def _runs_echo_hi(url: str, clients: int, runs: int) -> list[bytes | str]:
    """``clients`` docker-py clients at once, each ``runs`` times
    ``client.containers.run("busybox", "echo hi", remove=True)``: what each returned (or the
    error it raised)."""

    def client(_: int) -> list[bytes | str]:
        c = docker.DockerClient(base_url=url, timeout=120)
        got: list[bytes | str] = []
        try:
            for _ in range(runs):
                try:
                    got.append(c.containers.run("busybox", "echo hi", remove=True))
                except Exception as e:  # a closed connection, a 5xx: the failure itself
                    got.append(f"{type(e).__name__}: {e}")
        finally:
            c.close()
        return got

    with ThreadPoolExecutor(clients) as pool:
        return [out for batch in pool.map(client, range(clients)) for out in batch]


@pytest.mark.slow
def test_concurrent_dockerpy_runs_with_remove_all_return_their_output(api: Daemon) -> None:
    """The issue's load, smaller: docker-py's run asks for the log stream, waits, removes,
    then reads the stream. Was: b"" now and then (the log opened after the remove), and a
    failed call when the server closed a pooled keep-alive connection for a newcomer."""
    assert _runs_echo_hi(api.url, 8, 6) == [b"hi\n"] * 48
    assert api.container_rows() == []
    if reference_docker():  # Docker, the same
        assert _runs_echo_hi(f"unix://{REFERENCE_SOCKET}", 8, 6) == [b"hi\n"] * 48


@pytest.mark.skipif(DOCKER_BIN is None, reason="the docker CLI is not installed")
def test_23_parallel_docker_rm_f_are_all_answered(api: Daemon) -> None:
    """Was: 23 parallel `docker rm -f` all refused."""
    ids = [api.cli("create", "busybox", "true").stdout.strip() for _ in range(23)]
    env = {**os.environ, "DOCKER_HOST": api.url, "DOCKER_CONFIG": str(api.cli.root.parent)}
    env.pop("DOCKER_CONTEXT", None)
    assert DOCKER_BIN is not None
    procs = [
        subprocess.Popen(
            [DOCKER_BIN, "rm", "-f", cid], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for cid in ids
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 23, [err for _, err in outputs if err]
    assert sorted(out.decode().strip() for out, _ in outputs) == sorted(ids)
    assert api.container_rows() == []
    # And 23 parallel `docker ps`.
    procs = [
        subprocess.Popen(
            [DOCKER_BIN, "ps", "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(23)
    ]
    for p in procs:
        p.communicate(timeout=120)
    assert [p.returncode for p in procs] == [0] * 23


# ---------------------------------------------------------------- clients that leave


def _quiet_container(api: Daemon) -> str:
    return api.client.containers.run("busybox", "sleep 300", detach=True).id


@pytest.mark.parametrize(
    "request_line",
    [
        "GET /v1.41/containers/{id}/logs?follow=1&stdout=1&stderr=1",
        "POST /v1.41/containers/{id}/wait",
        "POST /v1.41/containers/{id}/wait?condition=removed",
    ],
)
def test_client_leaving_a_quiet_stream_frees_its_thread(api: Daemon, request_line: str) -> None:
    """Was: a `logs -f` or `wait` client that went away held its thread until the container
    wrote or exited. (Its worker ends Limits.worker_idle after.)"""
    cid = _quiet_container(api)
    pid = api.proc.pid
    before = _settled_threads(pid)
    s = connect_nonblocking(str(api.socket))
    try:
        s.sendall(request_line.format(id=cid).encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until(s, b"\r\n\r\n")  # the headers: the stream runs
        wait_for(lambda: _threads(pid) > before)
    finally:
        s.close()
    wait_for(lambda: _threads(pid) <= before)
    assert api.client.containers.get(cid).status == "running"


# ---------------------------------------------------------------- a daemon of its own


@pytest.fixture
def own_daemon(bb: CLI) -> Iterator[tuple[CLI, subprocess.Popen[bytes]]]:
    proc = start_daemon(bb)
    try:
        yield bb, proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
        stop_daemon(proc)
        _cleanup_containers(bb)


def test_fifty_connections_queue_while_the_daemon_is_not_accepting(
    own_daemon: tuple[CLI, subprocess.Popen[bytes]],
) -> None:
    cli, proc = own_daemon
    path = str(cli.run_root / "dockyard.sock")
    os.kill(proc.pid, signal.SIGSTOP)
    socks: list[socket.socket] = []
    try:
        socks = [connect_nonblocking(path) for _ in range(50)]  # Python's default backlog: 6
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    try:
        for s in socks:
            s.sendall(b"GET /_ping HTTP/1.1\r\n" + CLOSE + b"\r\n")
        assert [read_to_close(s).endswith(b"\r\n\r\nOK") for s in socks] == [True] * 50
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_ends_connections_and_helpers_and_containers_run_on(
    own_daemon: tuple[CLI, subprocess.Popen[bytes]], signum: int
) -> None:
    cli, proc = own_daemon
    path = cli.run_root / "dockyard.sock"
    client = docker.DockerClient(base_url=f"unix://{path}", timeout=120)
    try:
        # Two starts on the default bridge: the first starts netd, the second uses it.
        first = client.containers.run("busybox", "sleep 300", detach=True)
        second = client.containers.run("busybox", "sleep 300", detach=True)
    finally:
        client.close()
    netd_pid = int((cli.run_root / "netd.pid").read_text())
    children = _children(proc.pid)
    assert netd_pid in children, "netd was started by the daemon"
    # A follower and an idle keep-alive connection, open while it stops.
    follower = connect_nonblocking(str(path))
    idle = connect_nonblocking(str(path))
    try:
        logs = f"GET /containers/{first.id}/logs?follow=1&stdout=1 HTTP/1.1\r\n"
        follower.sendall(logs.encode() + b"Host: x\r\n\r\n")
        recv_until(follower, b"\r\n\r\n")
        idle.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        recv_until(idle, b"\r\n\r\nOK")
        os.kill(proc.pid, signum)
        assert proc.wait(30) == 0
        read_to_close(follower)
        assert read_to_close(idle) == b""
    finally:
        follower.close()
        idle.close()
    assert not path.exists()
    left = {pid for pid, started in children.items() if _alive(pid, started)}
    assert left == set(), f"left behind by the daemon: {left}"
    # The containers belong to their monitors: they run on, and the CLI still drives them.
    for c in (first, second):
        state = json.loads(cli("inspect", c.id).stdout)[0]["State"]
        assert state["Running"] and os.path.exists(f"/proc/{state['Pid']}")
    assert cli("exec", first.id, "echo", "still here").stdout == "still here\n"


def test_stop_waits_for_a_request_in_progress(
    own_daemon: tuple[CLI, subprocess.Popen[bytes]],
) -> None:
    """A `docker stop` being handled when SIGTERM comes still gets its answer."""
    cli, proc = own_daemon
    script = "trap 'touch /stopping; sleep 2; exit 0' TERM; sleep 300 & wait"
    cid = cli("run", "-d", "busybox", "sh", "-c", script).stdout.strip()
    s = connect_nonblocking(str(cli.run_root / "dockyard.sock"))
    try:
        s.sendall(f"POST /containers/{cid}/stop?t=10 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        # The daemon is handling it once the container has its SIGTERM.
        wait_for(lambda: cli("exec", cid, "test", "-e", "/stopping", check=False).returncode == 0)
        os.kill(proc.pid, signal.SIGTERM)
        reply = read_to_close(s)
    finally:
        s.close()
    assert status_of(reply) == 204
    assert b"Connection: close" in reply
    assert proc.wait(30) == 0
