"""Docker 20.10's default capability set (NET_RAW included) and its network sysctls: ``ping``
works in a default container, as on Docker."""

from __future__ import annotations

from tests.conftest import CLI
from tests.lifecycle.conftest import Docker


def _gateway(ctr: CLI) -> str:
    ctr("run", "--rm", "busybox", "true")  # the default bridge exists once a container ran
    return ctr("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}").stdout


def test_ping_the_bridge_gateway(ctr: CLI) -> None:
    gateway = _gateway(ctr).strip()
    r = ctr("run", "--rm", "busybox", "ping", "-c1", "-W2", gateway, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 packets received" in r.stdout


def test_without_net_raw_busybox_ping_fails_as_on_docker(ctr: CLI, docker: Docker) -> None:
    gateway = _gateway(ctr).strip()
    ours = ctr(
        "run", "--rm", "--cap-drop", "NET_RAW", "busybox", "ping", "-c1", gateway, check=False
    )
    theirs = docker(
        "run", "--rm", "--cap-drop", "NET_RAW", "busybox", "ping", "-c1", "127.0.0.1", check=False
    )
    assert ours.returncode == theirs.returncode == 1
    assert "permission denied" in ours.stderr and "permission denied" in theirs.stderr


def test_capabilities_and_sysctls_match_docker(ctr: CLI, docker: Docker) -> None:
    script = (
        "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status; "
        "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start"
    )
    for flags in ([], ["--network", "host"], ["--cap-add", "NET_ADMIN"]):
        ours = ctr("run", "--rm", *flags, "busybox", "sh", "-c", script).stdout
        theirs = docker("run", "--rm", *flags, "busybox", "sh", "-c", script).stdout
        assert ours == theirs, flags
