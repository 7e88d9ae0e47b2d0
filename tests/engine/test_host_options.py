"""What the engine checks of namespaces, devices, links, MAC addresses and storage options
whoever the caller is (an API body skips the CLI's grammar): Docker's daemon messages, and
nothing created."""

from __future__ import annotations

import pytest

from dockyard.engine import Engine
from dockyard.errors import DockyardError
from dockyard.model.container import ContainerSpec, Device, Resources


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pid_mode": "bogus"}, "invalid PID mode: bogus"),
        ({"ipc_mode": "bogus"}, "Invalid IPC mode: bogus"),
        ({"uts_mode": "container:x"}, "invalid UTS mode: container:x"),
        ({"cgroupns_mode": "bogus"}, "invalid cgroup namespace mode: bogus"),
        ({"ipc_mode": "container:nosuch"}, "No such container: nosuch"),
        ({"devices": (Device("/dev/null", "rel"),)}, "rel is not an absolute path"),
        ({"devices": (Device("/dev/nosuch"),)}, "adding custom device"),
        ({"device_cgroup_rules": ("bad",)}, "invalid device cgroup format 'bad'"),
        ({"storage_opt": (("SIZE", "1G"),)}, "supported only for overlay over xfs"),
        ({"storage_opt": (("foo", "1"),)}, "Unknown option foo"),
        ({"mac_address": "zz"}, "zz is not a valid mac address"),
        (
            {"mac_address": "92:d0:c6:0a:29:33", "network_mode": "host"},
            "conflicting options: mac-address and the network mode",
        ),
        (
            {"links": (("x", "y"),), "network_mode": "container:abc"},
            "conflicting options: container type network can't be used with links",
        ),
        ({"links": (("", ""),)}, 'could not get container for : invalid name or ID supplied: ""'),
        ({"resources": Resources(memory=1 << 20)}, "Minimum memory limit allowed is 6MB"),
        ({"resources": Resources(cpuset_mems="7")}, "Requested memory nodes are not available"),
    ],
)
def test_refused_before_anything_exists(
    engine: Engine, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(DockyardError) as e:
        engine.containers.create(ContainerSpec("busybox", **changes))  # type: ignore[arg-type]
    assert message in str(e.value)
    assert engine.store.db.query("SELECT id FROM containers") == []
    assert engine.store.db.query("SELECT * FROM ip_leases") == []


def test_links_on_user_networks_name_no_container_yet(engine: Engine) -> None:
    """Docker: on a user network a link is an alias its DNS server resolves when asked, so
    the linked container need not exist at create."""
    engine.networks.create("appnet")
    cid = engine.containers.create(
        ContainerSpec("busybox", network_mode="appnet", links=(("later", "l"),))
    )
    assert engine.containers.get(cid).spec.links == (("later", "l"),)
