"""NetworkService and the ``network`` verbs on real bridge devices.

Every bridge is named ``dyt...`` (DOCKYARD_BRIDGE_PREFIX) and every explicit subnet lies in
10.213.0.0/16; the fixture deletes every ``dytn`` bridge afterwards, also on failure.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dockyard.cli import networks as cli
from dockyard.cli.context import Context
from dockyard.engine import Engine
from dockyard.engine.networks import NetworkService
from dockyard.errors import Conflict, DockyardError, InvalidArgument, NotFound
from dockyard.network import bridge as br

PREFIX = "dytn"  # "n" is no hex digit: only this module's bridges start so


def dev_of(nid: str) -> str:
    return PREFIX + nid[:11]


def _del_test_bridges() -> None:
    from dockyard.network import firewall

    for name in br.list_bridges(PREFIX):
        subprocess.run(["ip", "link", "del", name], check=False, capture_output=True)
    firewall.remove(lambda c: c.startswith("dyn:" + PREFIX) or c.endswith(":" + PREFIX))


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("DOCKYARD_BRIDGE_PREFIX", PREFIX)
    e = Engine(root=str(tmp_path / "root"), run_root=str(tmp_path / "run"))
    try:
        yield e
    finally:
        e.close()
        _del_test_bridges()


@pytest.fixture
def svc(engine: Engine) -> NetworkService:
    return engine.networks


def addresses(dev: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-o", "-4", "addr", "show", "dev", dev], capture_output=True, text=True, check=True
    ).stdout
    return [line.split()[3] for line in out.splitlines()]


def rows(engine: Engine, table: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in engine.store.db.query(f"SELECT * FROM {table}")]  # noqa: S608


# ---------------------------------------------------------------------- service


def test_create_makes_bridge_with_gateway(svc: NetworkService) -> None:
    nid = svc.create("net1", subnet="10.213.1.0/24")
    assert len(nid) == 64 and all(c in "0123456789abcdef" for c in nid)
    dev = dev_of(nid)
    assert br.bridge_exists(dev)
    assert dev in br.list_bridges(PREFIX)
    assert addresses(dev) == ["10.213.1.1/24"]
    state = Path(f"/sys/class/net/{dev}/flags").read_text()
    assert int(state, 16) & 1  # IFF_UP


def test_create_custom_gateway(svc: NetworkService) -> None:
    nid = svc.create("gw", subnet="10.213.2.0/24", gateway="10.213.2.254")
    assert addresses(dev_of(nid)) == ["10.213.2.254/24"]
    assert svc.inspect("gw")["IPAM"]["Config"] == [
        {"Subnet": "10.213.2.0/24", "Gateway": "10.213.2.254"}
    ]
    # the lowest address still goes first; the gateway is never handed out
    assert svc.lease("gw", "c1") == "10.213.2.1"


def test_gateway_without_subnet_or_outside(svc: NetworkService) -> None:
    with pytest.raises(InvalidArgument):
        svc.create("g1", gateway="10.213.3.1")
    with pytest.raises(InvalidArgument):
        svc.create("g2", subnet="10.213.3.0/24", gateway="10.213.4.1")
    assert br.list_bridges(PREFIX) == []


def test_create_default_pool(svc: NetworkService, engine: Engine) -> None:
    from ipaddress import IPv4Network

    from dockyard.network import ipam

    nid = svc.create("auto")
    subnet = IPv4Network(svc.inspect(nid)["IPAM"]["Config"][0]["Subnet"])
    assert subnet in list(ipam.default_pools())
    assert not subnet.overlaps(IPv4Network("172.17.0.0/16"))
    assert br.bridge_exists(dev_of(nid))
    # a second automatic network takes another pool
    nid2 = svc.create("auto2")
    subnet2 = IPv4Network(svc.inspect(nid2)["IPAM"]["Config"][0]["Subnet"])
    assert not subnet2.overlaps(subnet)


@pytest.mark.parametrize("name", ["", "-x", ".x", "a b", "a/b", "é"])
def test_invalid_names(svc: NetworkService, name: str) -> None:
    with pytest.raises(InvalidArgument):
        svc.create(name, subnet="10.213.5.0/24")


def test_name_conflict(svc: NetworkService, engine: Engine) -> None:
    svc.create("dup", subnet="10.213.6.0/24")
    before = br.list_bridges(PREFIX)
    with pytest.raises(Conflict, match="network with name dup already exists"):
        svc.create("dup", subnet="10.213.7.0/24")
    assert br.list_bridges(PREFIX) == before
    assert len(rows(engine, "networks")) == 1


def test_overlapping_subnet_refused(svc: NetworkService, engine: Engine) -> None:
    svc.create("a", subnet="10.213.8.0/24")
    before = br.list_bridges(PREFIX)
    for sub in ("10.213.8.0/24", "10.213.8.128/25", "10.213.0.0/16"):
        with pytest.raises(Conflict, match="Pool overlaps with other one on this address space"):
            svc.create("b", subnet=sub)
    assert br.list_bridges(PREFIX) == before
    assert [r[1] for r in rows(engine, "networks")] == ["a"]


def test_overlapping_host_route_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ipaddress import IPv4Network

    monkeypatch.setenv("DOCKYARD_BRIDGE_PREFIX", PREFIX)
    e = Engine(root=str(tmp_path / "r2"), run_root=str(tmp_path / "run2"))
    try:
        s = NetworkService(e, routes=lambda: [IPv4Network("10.213.9.0/24")])
        with pytest.raises(Conflict, match="Pool overlaps"):
            s.create("x", subnet="10.213.9.0/25")
        assert rows(e, "networks") == []
        assert br.list_bridges(PREFIX) == []
    finally:
        e.close()
        _del_test_bridges()


def test_bridge_failure_rolls_back_row(svc: NetworkService, engine: Engine, monkeypatch) -> None:
    def boom(name: str, gateway: str, prefixlen: int, owner: str = "") -> None:
        raise br.BridgeError("no bridge for you")

    monkeypatch.setattr(br, "ensure_bridge", boom)
    with pytest.raises(DockyardError, match="no bridge for you"):
        svc.create("fails", subnet="10.213.10.0/24")
    assert rows(engine, "networks") == []


def test_rm_removes_device_and_row(svc: NetworkService, engine: Engine) -> None:
    nid = svc.create("gone", subnet="10.213.11.0/24")
    svc.remove("gone")
    assert not br.bridge_exists(dev_of(nid))
    assert rows(engine, "networks") == []
    with pytest.raises(NotFound, match="network gone not found"):
        svc.remove("gone")


def test_rm_by_id_prefix(svc: NetworkService) -> None:
    nid = svc.create("byid", subnet="10.213.12.0/24")
    assert svc.inspect(nid[:5])["Name"] == "byid"
    svc.remove(nid[:12])
    with pytest.raises(NotFound):
        svc.inspect(nid)


def test_rm_with_lease_of_a_container_not_running(svc: NetworkService, engine: Engine) -> None:
    # Only running containers block (Docker's rule; the CLI tests cover a running one): the
    # lease of a container that does not run goes with the network.
    nid = svc.create("busy", subnet="10.213.13.0/24")
    svc.lease("busy", "c" * 64)
    svc.remove("busy")
    assert not br.bridge_exists(dev_of(nid))
    assert rows(engine, "networks") == [] and rows(engine, "ip_leases") == []


def test_default_bridge(svc: NetworkService) -> None:
    nid = svc.ensure_default()
    assert svc.ensure_default() == nid
    info = svc.inspect("bridge")
    assert info["Id"] == nid
    assert info["Options"]["com.docker.network.bridge.name"] == dev_of(nid)
    assert br.bridge_exists(dev_of(nid))
    with pytest.raises(Conflict, match="bridge is a pre-defined network and cannot be removed"):
        svc.remove("bridge")
    assert br.bridge_exists(dev_of(nid))


def test_prune_removes_user_networks_no_running_container_uses(svc: NetworkService) -> None:
    svc.ensure_default()
    ids = {n: svc.create(n, subnet=f"10.213.{14 + i}.0/24") for i, n in enumerate("abc")}
    svc.lease("b", "container-b")  # not running: it does not keep the network
    assert svc.prune() == ["a", "b", "c"]
    assert [n["Name"] for n in svc.list_networks()] == ["bridge"]
    assert not any(br.bridge_exists(dev_of(i)) for i in ids.values())
    assert svc.prune() == []


def test_lease_release(svc: NetworkService) -> None:
    svc.create("l", subnet="10.213.20.0/29")
    got = [svc.lease("l", f"c{i}") for i in range(5)]
    assert got == [f"10.213.20.{i}" for i in range(2, 7)]
    assert svc.lease("l", "c0") == "10.213.20.2"  # the same container keeps its address
    with pytest.raises(Conflict, match="no available IPv4 addresses"):
        svc.lease("l", "c5")
    svc.release("l", "c2")
    assert svc.lease("l", "c9") == "10.213.20.4"
    svc.release("l", "nobody")
    svc.release("no-such-network", "c1")


def test_parallel_leases_distinct(svc: NetworkService, engine: Engine, tmp_path: Path) -> None:
    svc.create("par", subnet="10.213.21.0/24")
    barrier = threading.Barrier(50)

    def one(i: int) -> str:
        e = Engine(root=engine.root, run_root=engine.run_root)
        try:
            s = NetworkService(e)
            barrier.wait()
            return s.lease("par", f"container-{i}")
        finally:
            e.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        addrs = list(pool.map(one, range(50)))
    assert len(set(addrs)) == 50
    assert "10.213.21.1" not in addrs
    assert sorted(addrs, key=lambda a: int(a.rsplit(".", 1)[1])) == [
        f"10.213.21.{i}" for i in range(2, 52)
    ]
    assert len(rows(engine, "ip_leases")) == 50


def test_inspect_shape(svc: NetworkService) -> None:
    nid = svc.create("shape", subnet="10.213.22.0/24", labels={"a": "b"}, internal=True)
    svc.lease("shape", "f" * 64)
    info = svc.inspect("shape")
    assert info["Name"] == "shape" and info["Id"] == nid
    assert info["Created"].endswith("Z")
    assert info["Scope"] == "local" and info["Driver"] == "bridge"
    assert info["EnableIPv6"] is False
    assert info["IPAM"] == {
        "Driver": "default",
        "Options": None,
        "Config": [{"Subnet": "10.213.22.0/24", "Gateway": "10.213.22.1"}],
    }
    assert info["Internal"] is True
    assert info["Attachable"] is False and info["Ingress"] is False
    assert info["ConfigFrom"] == {"Network": ""} and info["ConfigOnly"] is False
    # Containers lists endpoints of running containers only (tests/network/test_containers.py
    # shows a real one); a lease alone is not an endpoint.
    assert info["Containers"] == {}
    assert info["Options"] == {}  # only what the user set, as Docker (Compose compares them)
    assert info["Labels"] == {"a": "b"}
    with pytest.raises(NotFound, match="network nope not found"):
        svc.inspect("nope")


# ---------------------------------------------------------------------- CLI


def run(engine: Engine, verb: str, *args: str) -> int:
    ctx = Context(engine.root, engine.run_root, prog=f"network {verb}")
    ctx.__dict__["engine"] = engine
    fn = getattr(cli, f"cmd_network_{verb}")
    return int(fn(ctx, list(args)))


def test_cli_create_ls_inspect_rm(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(engine, "create", "--subnet", "10.213.30.0/24", "--label", "k=v", "web") == 0
    nid = capsys.readouterr().out.strip()
    assert len(nid) == 64
    assert br.bridge_exists(dev_of(nid))

    assert run(engine, "ls") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert lines[1].split() == [nid[:12], "web", "bridge", "local"]

    assert run(engine, "ls", "-q") == 0
    assert capsys.readouterr().out == nid[:12] + "\n"
    assert run(engine, "ls", "-q", "--no-trunc") == 0
    assert capsys.readouterr().out == nid + "\n"
    assert run(engine, "ls", "--format", "{{.Name}} {{.Driver}}") == 0
    assert capsys.readouterr().out == "web bridge\n"

    assert run(engine, "inspect", "web") == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["Id"] == nid and data[0]["Labels"] == {"k": "v"}
    assert run(engine, "inspect", "-f", "{{.Name}} {{.Scope}}", "web", "nope") == 1
    out = capsys.readouterr()
    assert out.out == "web local\n"
    assert "network nope not found" in out.err

    assert run(engine, "rm", "web", "nope") == 1
    out = capsys.readouterr()
    assert out.out == "web\n"
    assert "nope" in out.err
    assert not br.bridge_exists(dev_of(nid))


def test_cli_create_errors(engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidArgument, match="it should be 10.213.31.0/24"):
        run(engine, "create", "--subnet", "10.213.31.7/24", "x")
    with pytest.raises(InvalidArgument):
        run(engine, "create", "-d", "overlay", "x")
    with pytest.raises(SystemExit) as exc:
        run(engine, "create")
    assert exc.value.code == 125
    assert br.list_bridges(PREFIX) == []


def test_cli_prune(engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    engine.networks.create("p1", subnet="10.213.32.0/24")
    engine.networks.create("p2", subnet="10.213.33.0/24")
    engine.networks.lease("p2", "c")  # no running container: pruned all the same
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert run(engine, "prune") == 0
    assert "Are you sure" in capsys.readouterr().out
    assert len(engine.networks.list_networks()) == 2

    assert run(engine, "prune", "-f") == 0
    assert capsys.readouterr().out == "Deleted Networks:\np1\np2\n\n"
    assert engine.networks.list_networks() == []
    assert run(engine, "prune", "-f") == 0
    assert capsys.readouterr().out == ""


def test_real_cli_end_to_end(dy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed ``dockyard network`` verbs (the subprocess inherits the dyt prefix)."""
    monkeypatch.setenv("DOCKYARD_BRIDGE_PREFIX", PREFIX)
    try:
        nid = dy("network", "create", "--subnet", "10.213.40.0/24", "e2e").stdout.strip()
        assert br.bridge_exists(dev_of(nid))
        assert dy("network", "ls", "-q").stdout.split() == [nid[:12]]
        proc = dy("network", "create", "--subnet", "10.213.40.0/25", "e2e2", check=False)
        assert proc.returncode != 0
        assert "Pool overlaps" in proc.stderr
        fmt = dy("network", "inspect", "-f", "{{.IPAM.Driver}}", "e2e").stdout
        assert fmt == "default\n"
        assert dy("network", "rm", "e2e").stdout == "e2e\n"
        assert not br.bridge_exists(dev_of(nid))
    finally:
        _del_test_bridges()


def test_bridges_of_deleted_stores_are_reclaimed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store deleted without `network rm` leaves its bridge; the next network creation
    (any store) deletes it and its rules, since its alias names a metadata.db that is gone."""
    import shutil

    from dockyard.engine.networks import reclaim_orphans
    from dockyard.network import firewall

    monkeypatch.setenv("DOCKYARD_BRIDGE_PREFIX", PREFIX)
    gone = Engine(root=str(tmp_path / "gone"), run_root=str(tmp_path / "gone-run"))
    kept = Engine(root=str(tmp_path / "kept"), run_root=str(tmp_path / "kept-run"))
    try:
        dead = dev_of(gone.networks.create("old", subnet="10.213.30.0/24"))
        alive = dev_of(kept.networks.create("live", subnet="10.213.31.0/24"))
        gone.close()
        shutil.rmtree(tmp_path / "gone")
        assert dead in br.orphans() and alive not in br.orphans()
        from dockyard.engine.networks import check_leftovers

        assert f"bridge {dead} of a store that no longer exists" in check_leftovers(
            kept.networks, repair=False
        )
        kept.networks.create("another", subnet="10.213.32.0/24")
        assert not br.bridge_exists(dead) and br.bridge_exists(alive)
        assert firewall.rules(lambda c: c.endswith(":" + dead) or c == "dyn:" + dead) == []
        assert dead not in reclaim_orphans()
    finally:
        kept.close()
        _del_test_bridges()


def test_rule_removal_beside_another_remover(
    svc: NetworkService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes removing the same rules (a container's exit handling beside `network
    rm`, or `system check --repair` beside either): the one whose listing went stale lists
    again instead of failing with iptables-restore's "Bad rule"."""
    from dockyard.network import firewall

    dev = dev_of(svc.create("raced", subnet="10.213.33.0/24"))
    mine = lambda c: c == "dyn:" + dev  # noqa: E731
    listed = firewall.rules(mine)
    assert listed
    table, line = listed[0]
    # The other remover: deletes one of them between our listing and our batch.
    subprocess.run(["iptables", "-w", "30", "-t", table, "-D", *shlex.split(line[3:])], check=True)
    real_rules = firewall.rules
    calls = iter([listed])
    monkeypatch.setattr(firewall, "rules", lambda m: next(calls, None) or real_rules(m))
    assert firewall.remove(mine) == len(listed) - 1
    assert real_rules(mine) == []
