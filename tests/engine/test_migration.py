"""A store written by dockyard before the typed model opens and keeps its containers.

tests/engine/data/v0_containers.json holds the container rows (Docker's inspect JSON plus a
"Dockyard" section) and the ``inspect`` output that release wrote for eleven containers made
with everyday flags. Each test puts such rows into a real store, over containers whose
directories, leases and (for running ones) processes are real, and then uses them: list,
inspect, start, stop, rm.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from dockyard.engine import Engine
from dockyard.model.container import ContainerSpec, EndpointSpec

DATA = json.loads((Path(__file__).parent / "data" / "v0_containers.json").read_text())
# The old rows' user network was 10.213.244.0/24; tests allocate from 10.213.128.0/17, so the
# subnet moves out of that pool (and away from other stores' networks).
OLD_NET, NEW_NET = "10.213.244.", "10.214.44."


def _old(name: str) -> dict[str, Any]:
    return next(c for c in DATA["containers"] if c["name"] == name)


def _spec_like(name: str) -> ContainerSpec:
    """A spec that makes the same kind of container (network, static address) as the old row,
    so that its directories and lease exist; its row is then replaced by the old one."""
    row = _old(name)["row"]
    mode = row["HostConfig"]["NetworkMode"]
    nets = {}
    if mode == "v0net":
        ep = row["NetworkSettings"]["Networks"]["v0net"]
        ip = ((ep.get("IPAMConfig") or {}).get("IPv4Address") or "").replace(OLD_NET, NEW_NET)
        nets = {"networks": (EndpointSpec("v0net", (), ip),)}
    if mode.startswith("container:"):
        mode = "none"  # the old "running" is not here: its row is what says container:
    return ContainerSpec("busybox", name=name, cmd=("true",), network_mode=mode, **nets)


def _substitute(text: str, engine: Engine, old_id: str, new_id: str, extra: dict[str, str]) -> str:
    image = engine.store.images.resolve("busybox")
    text = text.replace("{root}", engine.root).replace(old_id, new_id).replace(OLD_NET, NEW_NET)
    text = text.replace(_old("plain")["row"]["Image"], image)
    for old, new in extra.items():
        text = text.replace(old, new)
    return text


def _put_old_row(engine: Engine, name: str, extra: dict[str, str]) -> str:
    """Replace the container ``name``'s row by the old release's row of the same name (which
    kept no list entry)."""
    new_id = engine.containers.resolve(name)
    old = _old(name)
    text = _substitute(json.dumps(old["row"]), engine, old["row"]["Id"], new_id, extra)
    conn = sqlite3.connect(os.path.join(engine.root, "metadata.db"))
    with conn:
        conn.execute("UPDATE containers SET data = ?, entry = NULL WHERE id = ?", (text, new_id))
    conn.close()
    return new_id


def _row(engine: Engine, cid: str) -> dict[str, Any]:
    r = engine.store.db.one("SELECT data FROM containers WHERE id = ?", (cid,))
    assert r is not None
    doc: dict[str, Any] = json.loads(r["data"])
    return doc


def _network_ids(engine: Engine) -> dict[str, str]:
    """Old network IDs -> this store's."""
    bridge = engine.networks.ensure_default()
    old_bridge = _old("plain")["row"]["NetworkSettings"]["Networks"]["bridge"]["NetworkID"]
    out = {old_bridge: bridge}
    if any(n["Name"] == "v0net" for n in engine.networks.list_networks()):
        old_v0 = _old("netted")["row"]["NetworkSettings"]["Networks"]["v0net"]["NetworkID"]
        out[old_v0] = engine.networks.resolve("v0net")
    return out


# Differences between the old release's inspect and today's that are intended: keys Docker
# 20.10 shows that the old one lacked (HostConfig's full set, LogConfig...) are additions, not
# differences; these are the values that changed on purpose.
CHANGED = {
    # An anonymous `-v /anon` volume is in Config.Volumes, as in Docker.
    ("vols", "Config", "Volumes"),
    # Docker's GraphDriver lists Data before Name (order only; compared as dicts anyway).
}


# Keys the old release showed as null where Docker 20.10 leaves them out (omitempty).
OMITTED_WHEN_EMPTY = {"HostConfig.Sysctls", "HostConfig.Init", "Config.ExposedPorts"}


def _compare(name: str, old: Any, new: Any, path: tuple[str, ...] = ()) -> list[str]:
    """Every key the old inspect had, with the same value (except CHANGED)."""
    if (name, *path) in CHANGED:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k, v in old.items():
            if v is None and ".".join((*path, k)) in OMITTED_WHEN_EMPTY and k not in new:
                continue
            if k not in new:
                out.append(f"{'.'.join(path + (k,))}: missing")
            else:
                out += _compare(name, v, new[k], path + (k,))
        return out
    return [] if old == new else [f"{'.'.join(path)}: {old!r} became {new!r}"]


def test_stopped_containers_of_the_old_release_list_inspect_start_and_remove(
    engine: Engine,
) -> None:
    engine.networks.create("v0net", subnet=NEW_NET + "0/24")
    names = ["plain", "flags", "vols", "pall", "hostnet", "exited", "netted"]
    os.makedirs(os.path.join(engine.root, "hostdir"), exist_ok=True)
    for name in names:
        engine.containers.create(_spec_like(name))
    engine.volumes.create("named1")
    anon = _old("vols")["row"]["Mounts"][2]["Name"]
    engine.volumes.create(anon, anonymous=True)
    extra = {**_network_ids(engine), "{hostdir}": os.path.join(engine.root, "hostdir")}
    ids = {name: _put_old_row(engine, name, extra) for name in names}
    assert all("HostConfig" in _row(engine, cid) for cid in ids.values())  # old rows in place

    fresh = Engine(root=engine.root, run_root=engine.run_root)  # a new process would do this
    try:
        listed = {c.name: c for c in fresh.containers.list_containers(all_containers=True)}
        assert sorted(listed) == sorted(names)
        assert listed["exited"].state.exit_code == 3
        assert listed["exited"].state.status == "exited"
        for name, cid in ids.items():
            old = json.loads(
                _substitute(
                    json.dumps(_old(name)["inspect"]),
                    fresh,
                    _old(name)["row"]["Id"],
                    cid,
                    extra,
                )
            )
            assert _compare(name, old, fresh.containers.inspect(name)) == [], name

        # They run as they were made: flags, mounts, network, exit code.
        flags = fresh.containers.get("flags").spec
        assert flags.args == ("/bin/sh", "-c", "echo hi") and flags.read_only and flags.init
        assert [(u.name, u.soft, u.hard) for u in flags.resources.ulimits] == [
            ("nofile", 1024, 2048)
        ]
        assert {m.target: m.mode for m in flags.mounts if m.type == "tmpfs"} == {
            "/run": "size=1m,noexec",
            "/tmp2": "",
        }
        fresh.containers.start("exited")
        assert fresh.containers.wait("exited") == 3
        fresh.containers.start("netted")
        assert fresh.containers.wait("netted") == 0
        netted = fresh.containers.get("netted")
        assert netted.endpoint("v0net") is not None
        assert netted.endpoint("v0net").ipv4_address == NEW_NET + "9"  # type: ignore[union-attr]
        # A change writes the row in the model's form.
        assert _row(fresh, ids["exited"])["v"] == 1
        assert "HostConfig" in _row(fresh, ids["plain"])

        vols = fresh.containers.get("vols")
        assert {(m.type, m.source, m.target, m.read_only) for m in vols.spec.mounts} == {
            ("bind", os.path.join(fresh.root, "hostdir"), "/host", True),
            ("volume", "named1", "/named", False),
            ("volume", anon, "/anon", False),
        }
        for name in names:
            fresh.containers.remove(name, volumes=True)
        assert fresh.containers.list_containers(all_containers=True) == []
        assert not fresh.volumes.exists(anon) and fresh.volumes.exists("named1")
    finally:
        fresh.close()


def test_a_running_container_of_the_old_release_is_stopped_and_cleaned_up(
    engine: Engine,
) -> None:
    """Upgraded while a container runs: its monitor (pid + start time) and its veth come from
    the old row's "Dockyard" section; the new engine sees it running, stops it, and removes
    its interface and address."""
    engine.networks.create("v0net", subnet=NEW_NET + "0/24")
    cid, code = engine.containers.run(
        ContainerSpec("busybox", name="running2", cmd=("sleep", "1000"), network_mode="v0net"),
        detach=True,
        detach_keys="",
    )
    assert code is None
    live = engine.containers.get(cid)
    ep = live.endpoint("v0net")
    assert ep is not None and ep.host_veth
    old = _old("running2")["row"]
    old_ep = old["NetworkSettings"]["Networks"]["v0net"]
    extra = {
        **_network_ids(engine),
        # the live container's values in place of the old row's
        f'"Pid": {old["State"]["Pid"]}': f'"Pid": {live.state.pid}',
        f'"MonitorPid": {old["Dockyard"]["MonitorPid"]}': f'"MonitorPid": {live.state.monitor_pid}',
        f'"MonitorStart": "{old["Dockyard"]["MonitorStart"]}"': (
            f'"MonitorStart": "{live.state.monitor_start}"'
        ),
        old["Dockyard"]["Interfaces"]["v0net"]["veth"]: ep.host_veth,
        old_ep["IPAddress"].replace(OLD_NET, NEW_NET): ep.ip_address,
        old_ep["MacAddress"]: ep.mac_address,
        f"/proc/{old['State']['Pid']}/ns/net": f"/proc/{live.state.pid}/ns/net",
    }
    _put_old_row(engine, "running2", extra)
    fresh = Engine(root=engine.root, run_root=engine.run_root)
    try:
        ctr = fresh.containers.get("running2")
        assert ctr.running and ctr.state.monitor_pid == live.state.monitor_pid
        assert ctr.endpoint("v0net").host_veth == ep.host_veth  # type: ignore[union-attr]
        assert os.path.exists(f"/sys/class/net/{ep.host_veth}")
        fresh.containers.stop("running2", timeout=1)
        assert not fresh.containers.get("running2").running
        assert not os.path.exists(f"/sys/class/net/{ep.host_veth}")
        assert (
            fresh.store.db.query("SELECT * FROM ip_leases WHERE container_id = ?", (cid,)) != []
        )  # a stopped container keeps its lease on a user network, as before
        fresh.containers.remove("running2")
        assert fresh.store.db.query("SELECT * FROM ip_leases WHERE container_id = ?", (cid,)) == []
    finally:
        fresh.close()


def test_a_row_from_a_newer_release_is_a_clear_error(engine: Engine) -> None:
    cid = engine.containers.create(ContainerSpec("busybox", name="c1", cmd=("true",)))
    conn = sqlite3.connect(os.path.join(engine.root, "metadata.db"))
    with conn:
        conn.execute("UPDATE containers SET data = ? WHERE id = ?", ('{"v": 7, "id": "x"}', cid))
    conn.close()
    from dockyard.errors import CorruptData

    with pytest.raises(CorruptData, match="newer dockyard"):
        engine.containers.get("c1")
