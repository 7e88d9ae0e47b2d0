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
from tests.helpers import reference_docker
from tests.registry_client.conftest import registry  # noqa: F401 - a fixture for pulls

DOCKER_BIN = shutil.which("docker")
DOCKER_20 = "/usr/bin/docker"  # Debian's docker.io CLI, beside a newer one in /usr/local/bin
REFERENCE_SOCKET = Path("/var/run/docker.sock")  # Docker 20.10, started by anchor-docker.sh
# The docker CLIs the daemon is tested with: Debian's (20.10, beside the reference daemon) and
# the newest installed (28.x here), when they are different programs.
DOCKER_CLIS = {
    name: path
    for name, path in (("debian-20.10", DOCKER_20), ("newest", DOCKER_BIN))
    if path and os.path.exists(path)
}
if len({os.path.realpath(p) for p in DOCKER_CLIS.values()}) < len(DOCKER_CLIS):
    DOCKER_CLIS.pop("newest")


def run_docker(
    url: str,
    config_dir: Path | None,
    *args: str,
    input: bytes | None = None,
    binary: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """A docker CLI (``binary``, else the newest) against the daemon at ``url``, with its
    own config dir when given."""
    binary = binary or DOCKER_BIN
    if binary is None or not os.path.exists(binary):
        pytest.skip(f"the docker CLI {binary or ''} is not installed")
    environ = {**os.environ, "DOCKER_HOST": url, **(env or {})}
    if config_dir is not None:
        environ["DOCKER_CONFIG"] = str(config_dir)
    environ.pop("DOCKER_CONTEXT", None)
    return subprocess.run(
        [binary, *args],
        input=input.decode("latin-1") if input is not None else None,
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        cwd=cwd,
    )


def raw_request(
    sock: Path,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on a Unix socket."""
    import http.client

    conn = http.client.HTTPConnection("localhost", timeout=120)
    conn.sock = socket.socket(socket.AF_UNIX)
    conn.sock.settimeout(120)
    conn.sock.connect(str(sock))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@dataclass
class Reference:
    """The reference Docker, for the same command side by side: ``reference(*args)`` or
    ``reference.docker(*args)`` runs a docker CLI (``bin``) against it. What a test makes
    there is named with ``self.prefix`` and removed afterwards."""

    bin: str = DOCKER_BIN or ""
    config: Path | None = None
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"unix://{REFERENCE_SOCKET}"

    @property
    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=120)

    def __call__(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return self.docker(*args, input=input)

    def docker(
        self,
        *args: str,
        input: bytes | None = None,
        binary: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_docker(
            self.url,
            self.config,
            *args,
            input=input,
            binary=binary or self.bin or None,
            env=env,
            cwd=cwd,
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        return raw_request(REFERENCE_SOCKET, method, path, body, headers)

    def error(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        status, _, data = self.request(method, path, body)
        return status, json.loads(data)["message"]

    def cleanup(self) -> None:
        if not self.prefix:
            return
        d = self.docker
        names = d("ps", "-aq", "--filter", f"name={self.prefix}").stdout.split()
        if names:
            d("rm", "-f", *names)
        refs = d("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        mine = [r for r in refs if r.startswith(self.prefix)]
        if mine:
            d("rmi", "-f", *mine)
        for kind in ("network", "volume"):
            listed = d(kind, "ls", "-q", "--filter", f"name={self.prefix}").stdout.split()
            if listed:
                d(kind, "rm", *listed)


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Reference]:
    """The reference Docker (skips when it does not run here)."""
    if not reference_docker():
        pytest.skip("the reference Docker is not running (../shared/tools/anchor-docker.sh)")
    ref = Reference(config=tmp_path / "reference-config", prefix=f"dyref{os.getpid()}")
    try:
        yield ref
    finally:
        ref.cleanup()


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
        self,
        *args: str,
        input: bytes | None = None,
        binary: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The real docker CLI against this daemon (skips when it is not installed);
        ``binary``: another docker CLI (Debian's 20.10 at /usr/bin/docker)."""
        return run_docker(
            self.url, self.cli.root.parent, *args, input=input, binary=binary, env=env, cwd=cwd
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One raw HTTP/1.1 request: for what no well-behaved client sends."""
        return raw_request(self.socket, method, path, body, headers)

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
    """The session's daemon; whatever containers a test made are removed after it, and the
    dangling images a failed build leaves (Docker leaves them too)."""
    try:
        yield daemon_session
    finally:
        _cleanup_containers(daemon_session.cli)
        daemon_session.cli("image", "prune", "-f", check=False)
        assert daemon_session.proc.poll() is None, "the daemon died during the test"
