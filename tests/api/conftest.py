"""A real ``dockyard daemon`` per session on a socket in a temp run root, driven by real
clients: docker-py and (when installed) the docker CLI. Every test leaves no container."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import BIN, CLI, _cleanup_containers, remove_networks, terminate
from tests.registry_client.conftest import registry  # noqa: F401 - a fixture for pulls

DOCKER_BIN = shutil.which("docker")
# The docker CLIs the daemon is tested with: Debian's (20.10, beside the reference daemon) and
# the newest installed (28.x here), when they are different programs.
DOCKER_CLIS = {
    name: path
    for name, path in (("debian-20.10", "/usr/bin/docker"), ("newest", DOCKER_BIN))
    if path and os.path.exists(path)
}
if len({os.path.realpath(p) for p in DOCKER_CLIS.values()}) < len(DOCKER_CLIS):
    DOCKER_CLIS.pop("newest")
REFERENCE_SOCKET = "/var/run/docker.sock"  # Docker 20.10, started by anchor-docker.sh
_reference_up: list[bool] = []


def reference_docker_up() -> bool:
    """Whether the reference Docker answers (checked once per session)."""
    if not _reference_up:
        ok = DOCKER_BIN is not None and os.path.exists(REFERENCE_SOCKET)
        if ok:
            r = subprocess.run(
                [str(DOCKER_BIN), "-H", f"unix://{REFERENCE_SOCKET}", "version"],
                capture_output=True,
                timeout=30,
            )
            ok = r.returncode == 0
        _reference_up.append(ok)
    return _reference_up[0]


def run_docker(
    bin_: str, host: str, *args: str, input: bytes | None = None, config: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": host}
    env.pop("DOCKER_CONTEXT", None)
    if config:
        env["DOCKER_CONFIG"] = config
    return subprocess.run(
        [bin_, *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@dataclass
class Reference:
    """The docker CLI against the reference Docker: what Docker does, to compare with."""

    bin: str

    def __call__(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return run_docker(self.bin, f"unix://{REFERENCE_SOCKET}", *args, input=input)

    @property
    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=f"unix://{REFERENCE_SOCKET}", timeout=120)


@pytest.fixture
def reference() -> Reference:
    """Docker itself (skips when it is not running here)."""
    if not reference_docker_up():
        pytest.skip("the reference Docker is not running (../shared/tools/anchor-docker.sh)")
    return Reference(str(DOCKER_BIN))


def start_daemon(cli: CLI, *args: str) -> subprocess.Popen[bytes]:
    """``dockyard daemon`` on ``cli``'s store, returned once its socket answers."""
    sock = Path(args[-1].removeprefix("unix://")) if args else cli.run_root / "dockyard.sock"
    # Its log goes to a file: a pipe nobody reads would stall a daemon that logs much.
    log = open(cli.root.parent / "daemon.log", "ab")  # noqa: SIM115 - the child keeps it
    try:
        proc = subprocess.Popen(
            [str(BIN), "--root", str(cli.root), "--run-root", str(cli.run_root), "daemon", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = (cli.root.parent / "daemon.log").read_text()
            raise AssertionError(f"dockyard daemon exited {proc.returncode}: {out}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(sock))
            return proc
        except OSError:
            time.sleep(0.05)
    stop_daemon(proc)
    raise AssertionError("dockyard daemon did not listen within 30 s")


def stop_daemon(proc: subprocess.Popen[bytes]) -> int:
    return terminate(proc, 30)


@dataclass
class Daemon:
    cli: CLI
    socket: Path
    proc: subprocess.Popen[bytes]
    client: docker.DockerClient

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def docker(
        self, *args: str, input: bytes | None = None, bin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The real docker CLI (``bin``, else the newest) against this daemon (skips when it
        is not installed)."""
        bin = bin or DOCKER_BIN
        if bin is None:
            pytest.skip("the docker CLI is not installed")
        return run_docker(bin, self.url, *args, input=input, config=str(self.cli.root.parent))

    def request(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """One raw HTTP/1.1 request: for what no well-behaved client sends."""
        import http.client

        conn = http.client.HTTPConnection("localhost", timeout=60)
        conn.sock = socket.socket(socket.AF_UNIX)
        conn.sock.settimeout(60)
        conn.sock.connect(str(self.socket))
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def error(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        status, headers, data = self.request(method, path, body)
        assert headers["content-type"] == "application/json"
        return status, json.loads(data)["message"]

    def container_rows(self) -> list[Any]:
        return self.cli("ps", "-aq", "--no-trunc").stdout.split()


@pytest.fixture(scope="session")
def daemon_session(
    tmp_path_factory: pytest.TempPathFactory, busybox_template: Path
) -> Iterator[Daemon]:
    base = tmp_path_factory.mktemp("api")
    root = base / "root"
    subprocess.run(["cp", "-a", str(busybox_template), str(root)], check=True)
    cli = CLI(root, base / "run")
    proc = start_daemon(cli)
    client = docker.DockerClient(base_url=f"unix://{cli.run_root / 'dockyard.sock'}", timeout=120)
    try:
        yield Daemon(cli, cli.run_root / "dockyard.sock", proc, client)
    finally:
        client.close()
        _cleanup_containers(cli)
        stop_daemon(proc)
        remove_networks(root, cli.run_root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def api(daemon_session: Daemon) -> Iterator[Daemon]:
    """The session's daemon; whatever containers a test made are removed after it."""
    try:
        yield daemon_session
    finally:
        _cleanup_containers(daemon_session.cli)
        assert daemon_session.proc.poll() is None, "the daemon died during the test"
