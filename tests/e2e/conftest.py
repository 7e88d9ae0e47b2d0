"""The tutorials' world: a store whose bridge serves package indexes, and Debian base images.

`FROM node` and `FROM python` come from `dockyard image bootstrap` (mmdebstrap, Debian's
packages). Its cache lives outside the test's store (``/var/cache/dockyard/bootstrap`` unless
``DOCKYARD_BOOTSTRAP_CACHE`` says otherwise), so a session builds each image at most once and
the next session reuses it while the mirror's package versions stay the same. The images get
one more config line through ``--change``: where npm's registry and pip's index are (the
package server on the bridge), so no container sends traffic beyond this machine.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CLI, _cleanup_containers
from tests.e2e.packages import PackageServer
from tests.hub.conftest import docker_config, hub

__all__ = ["docker_config", "hub"]  # fixtures the tutorials share with the hub's tests


@dataclass
class Tutorial:
    cli: CLI
    packages: PackageServer
    app: Path  # the directory the tutorial's files go in (the build context)

    def bootstrap(self, name: str) -> str:
        """``image bootstrap NAME`` pointed at the bridge's package indexes."""
        gateway = self.packages.host
        changes = {
            "node": [f"ENV NPM_CONFIG_REGISTRY={self.packages.url}/npm/"],
            "python": [
                f"ENV PIP_INDEX_URL={self.packages.url}/simple/",
                f"ENV PIP_TRUSTED_HOST={gateway}",
            ],
        }[name]
        args = [a for c in changes for a in ("--change", c)]
        return self.cli("image", "bootstrap", name, *args, timeout=1800).stdout.strip()

    def write(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            path = self.app / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def host_port(preferred: int) -> int:
    """The tutorial's host port if it is free here, else a free one (other tests run
    beside this one)."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise AssertionError("no free port")


@pytest.fixture(scope="session")
def flask_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flask and its dependencies as wheels, fetched by the host's pip (which may reach
    PyPI); the tutorial's container gets them from the bridge."""
    d = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "Flask"]
        + ["-d", str(d)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return d


@pytest.fixture
def tutorial(tmp_path: Path, flask_wheels: Path) -> Iterator[Tutorial]:
    cli = CLI(tmp_path / "root", tmp_path / "run")
    server: PackageServer | None = None
    try:
        # The store's bridge comes up with its first container; the package server then
        # listens on its gateway address only.
        cli("image", "bootstrap", "busybox")
        cli("run", "--rm", "busybox", "true")
        gateway = cli(
            "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}"
        ).stdout.strip()
        server = PackageServer(gateway, flask_wheels)
        app = tmp_path / "app"
        app.mkdir()
        yield Tutorial(cli, server, app)
    finally:
        if server is not None:
            server.close()
        _cleanup_containers(cli)
