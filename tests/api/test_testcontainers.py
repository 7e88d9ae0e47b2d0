"""testcontainers-python against ``dockyard daemon``: start a container, wait for a log
line, read the mapped port and talk to it, then leave nothing behind."""

from __future__ import annotations

import urllib.request

import pytest

from tests.api.conftest import Daemon

testcontainers = pytest.importorskip("testcontainers", reason="./dev.sh setup installs it")


def test_testcontainers_log_wait_and_mapped_port(
    api: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    monkeypatch.setenv("DOCKER_HOST", api.url)
    # Ryuk (the reaper) is an image from Docker Hub, which tests never reach.
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    script = (
        "mkdir -p /w && echo tc-ok > /w/index.html && echo serving && exec httpd -f -p 80 -h /w"
    )
    container = (
        DockerContainer("busybox")
        .with_command(["sh", "-c", script])
        .with_exposed_ports(80)
        .waiting_for(LogMessageWaitStrategy("serving"))
    )
    with container:
        port = int(container.get_exposed_port(80))
        host = container.get_container_host_ip()
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as r:
            assert r.read() == b"tc-ok\n"
        stdout, _ = container.get_logs()
        assert stdout == b"serving\n"
    assert api.container_rows() == []
