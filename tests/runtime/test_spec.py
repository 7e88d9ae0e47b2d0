"""RunOptions -> OCI config.json, user resolution inside a rootfs, seccomp profile conversion.

Fast: nothing here starts a container. Expected defaults are Docker's (moby's
daemon/oci_linux.go and oci/defaults.go as documented): Docker 20.10's, CAP_NET_RAW included.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dockyard.errors import InvalidArgument, Unavailable
from dockyard.runtime import seccomp
from dockyard.runtime.options import Mount, RunOptions, Ulimit
from dockyard.runtime.spec import (
    ALL_CAPS,
    DEFAULT_CAPS,
    MASKED_PATHS,
    READONLY_PATHS,
    build_spec,
    capabilities_for,
)
from dockyard.runtime.user import ResolvedUser, resolve_in_root, resolve_user

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
"""
GROUP = """\
root:x:0:
daemon:x:1:
wheel:x:10:alice,bob
audio:x:29:alice
alice:x:1000:
bob:x:1001:
staff:x:50:
"""


def make_rootfs(path: Path, passwd: str | None = PASSWD, group: str | None = GROUP) -> Path:
    (path / "etc").mkdir(parents=True, exist_ok=True)
    if passwd is not None:
        (path / "etc" / "passwd").write_text(passwd)
    if group is not None:
        (path / "etc" / "group").write_text(group)
    return path


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_rootfs(tmp_path / "rootfs")


def spec_for(rootfs: Path, **kw: Any) -> dict[str, Any]:
    extra = {k: kw.pop(k) for k in ("etc_files", "init_path") if k in kw}
    kw.setdefault("args", ("sh",))
    kw.setdefault("env", ("PATH=/usr/bin:/bin",))
    return build_spec(
        RunOptions(**kw),
        rootfs="rootfs",
        rootfs_dir=str(rootfs),
        container_id="0123456789abcdef0123",
        cgroups_path="/dockyard/0123456789abcdef0123",
        **extra,
    )


def mount_at(spec: dict[str, Any], dest: str) -> dict[str, Any]:
    found = [m for m in spec["mounts"] if m["destination"] == dest]
    assert len(found) == 1, f"{dest}: {found}"
    return found[0]


def ns_types(spec: dict[str, Any]) -> list[str]:
    return [n["type"] for n in spec["linux"]["namespaces"]]


def kernel_caps() -> list[str]:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return list(ALL_CAPS[: int(f.read()) + 1])


def engine_caps() -> list[str]:
    with open("/proc/self/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return [c for i, c in enumerate(kernel_caps()) if mask >> i & 1]


# --- the default spec ----------------------------------------------------------------------


def test_default_spec(rootfs: Path) -> None:
    spec = spec_for(rootfs, hostname="web")
    assert spec["ociVersion"] == "1.0.2"
    assert spec["root"] == {"path": "rootfs", "readonly": False}
    assert spec["hostname"] == "web"
    assert "domainname" not in spec

    proc = spec["process"]
    assert proc["terminal"] is False
    assert proc["user"] == {"uid": 0, "gid": 0}
    assert proc["args"] == ["sh"]
    assert proc["cwd"] == "/"
    # Docker replaces its default PATH where it stands: PATH first (docker run -e PATH=..).
    assert proc["env"] == ["PATH=/usr/bin:/bin", "HOSTNAME=web", "HOME=/root"]
    assert proc["noNewPrivileges"] is False
    # Hard requirement: no rlimits unless asked (raising one is refused on these hosts).
    assert "rlimits" not in proc
    assert "oomScoreAdj" not in proc
    assert "apparmorProfile" not in proc

    caps = proc["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"]
    assert set(caps["bounding"]) == set(DEFAULT_CAPS)
    assert "CAP_NET_RAW" in caps["bounding"]  # Docker 20.10 grants it: ping works
    assert "CAP_SYS_ADMIN" not in caps["bounding"]
    assert caps.get("inheritable", []) == [] and caps.get("ambient", []) == []

    assert [(m["destination"], m["type"]) for m in spec["mounts"]] == [
        ("/proc", "proc"),
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/sys", "sysfs"),
        ("/sys/fs/cgroup", "cgroup"),
        ("/dev/mqueue", "mqueue"),
        ("/dev/shm", "tmpfs"),
    ]
    assert mount_at(spec, "/dev")["options"] == [
        "nosuid",
        "strictatime",
        "mode=755",
        "size=65536k",
    ]
    assert mount_at(spec, "/dev/pts")["options"] == [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0620",
        "gid=5",
    ]
    assert "ro" in mount_at(spec, "/sys")["options"]
    cg = mount_at(spec, "/sys/fs/cgroup")
    assert cg["source"] == "cgroup"
    assert set(cg["options"]) == {"nosuid", "noexec", "nodev", "relatime", "ro"}
    shm = mount_at(spec, "/dev/shm")
    assert shm["source"] == "shm"
    assert shm["options"] == ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]

    linux = spec["linux"]
    assert ns_types(spec) == ["pid", "ipc", "uts", "mount", "network"]
    assert {"type": "network"} in linux["namespaces"]  # a new one, not a path
    assert linux["cgroupsPath"] == "/dockyard/0123456789abcdef0123"
    assert linux["maskedPaths"] == list(MASKED_PATHS)
    assert "/proc/kcore" in linux["maskedPaths"]
    assert linux["readonlyPaths"] == list(READONLY_PATHS)
    # Docker 20.10's, in a network namespace of the container's own.
    assert linux["sysctl"] == {
        "net.ipv4.ping_group_range": "0 2147483647",
        "net.ipv4.ip_unprivileged_port_start": "0",
    }

    res = linux["resources"]
    assert set(res) == {"devices"}  # no limits unless asked
    devices = res["devices"]
    assert devices[0] == {"allow": False, "access": "rwm"}
    allowed = {(d.get("type"), d.get("major"), d.get("minor"), d["access"]) for d in devices[1:]}
    assert allowed == {
        ("c", None, None, "m"),
        ("b", None, None, "m"),
        ("c", 1, 3, "rwm"),
        ("c", 1, 5, "rwm"),
        ("c", 1, 7, "rwm"),
        ("c", 1, 8, "rwm"),
        ("c", 1, 9, "rwm"),
        ("c", 5, 0, "rwm"),
        ("c", 5, 1, "rwm"),
        ("c", 5, 2, "rwm"),
        ("c", 136, None, "rwm"),
    }
    assert all(d["allow"] for d in devices[1:])

    sc = linux["seccomp"]
    assert sc["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "SCMP_ARCH_X86_64" in sc["architectures"]

    json.dumps(spec)  # it is plain JSON


def test_hostname_defaults_to_short_id_and_domainname(rootfs: Path) -> None:
    spec = spec_for(rootfs, domainname="example.org")
    assert spec["hostname"] == "0123456789ab"
    assert spec["domainname"] == "example.org"
    assert "HOSTNAME=0123456789ab" in spec["process"]["env"]


def test_env_rules(rootfs: Path) -> None:
    spec = spec_for(rootfs, env=("HOME=/custom", "HOSTNAME=mine", "A=1"), tty=True)
    env = spec["process"]["env"]
    assert env[0].startswith("PATH=/usr/local/sbin:")  # Docker's default PATH when none given
    assert "HOME=/custom" in env and "HOME=/root" not in env
    assert "HOSTNAME=mine" in env and not any(e == "HOSTNAME=0123456789ab" for e in env)
    assert "TERM=xterm" in env and "A=1" in env
    assert spec["process"]["terminal"] is True


def test_cwd_and_args_validation(rootfs: Path) -> None:
    assert spec_for(rootfs, cwd="/srv/app")["process"]["cwd"] == "/srv/app"
    with pytest.raises(InvalidArgument):
        spec_for(rootfs, cwd="relative")
    with pytest.raises(InvalidArgument, match="no command"):
        spec_for(rootfs, args=())


def test_read_only(rootfs: Path) -> None:
    spec = spec_for(
        rootfs,
        read_only=True,
        etc_files={"/etc/hosts": "/run/c/hosts", "/etc/resolv.conf": "/run/c/resolv.conf"},
    )
    assert spec["root"]["readonly"] is True
    hosts = mount_at(spec, "/etc/hosts")
    # Docker keeps the engine-managed files writable even with --read-only.
    assert hosts == {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": "/run/c/hosts",
        "options": ["rbind", "rprivate"],
    }
    assert mount_at(spec, "/etc/resolv.conf")["source"] == "/run/c/resolv.conf"
    # After the default mounts, in order.
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests[-2:] == ["/etc/hosts", "/etc/resolv.conf"]


def test_privileged(rootfs: Path) -> None:
    spec = spec_for(rootfs, privileged=True, cap_drop=("CHOWN",))
    caps = spec["process"]["capabilities"]
    assert caps["bounding"] == engine_caps()
    assert "CAP_SYS_ADMIN" in caps["bounding"] and "CAP_CHOWN" in caps["bounding"]
    linux = spec["linux"]
    assert linux["maskedPaths"] == [] and linux["readonlyPaths"] == []
    assert "seccomp" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    assert "ro" not in mount_at(spec, "/sys")["options"]
    assert "ro" not in mount_at(spec, "/sys/fs/cgroup")["options"]


def test_seccomp_unconfined_and_custom(rootfs: Path) -> None:
    assert "seccomp" not in spec_for(rootfs, seccomp_profile="unconfined")["linux"]
    # A custom profile arrives as its JSON text (Docker's CLI sends the file's content).
    custom = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []})
    sc = spec_for(rootfs, seccomp_profile=custom)["linux"]["seccomp"]
    assert sc == {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}
    # Docker: no default action and no rule is no filter; "builtin" is the default profile.
    assert "seccomp" not in spec_for(rootfs, seccomp_profile="{}")["linux"]
    assert "seccomp" not in spec_for(rootfs, seccomp_profile="null")["linux"]
    builtin = spec_for(rootfs, seccomp_profile="builtin")["linux"]["seccomp"]
    assert builtin == spec_for(rootfs)["linux"]["seccomp"]
    # A path is not a profile: Docker's daemon would try to decode it too.
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed: invalid char"):
        spec_for(rootfs, seccomp_profile="/etc/profile.json")


# --- capabilities --------------------------------------------------------------------------


def caps_of(**kw: Any) -> list[str]:
    return capabilities_for(RunOptions(args=("sh",), **kw))


def test_cap_add_drop() -> None:
    caps = caps_of(cap_add=("net_admin", "CAP_SYS_PTRACE"), cap_drop=("cap_chown", "Kill"))
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_PTRACE" in caps
    assert "CAP_CHOWN" not in caps and "CAP_KILL" not in caps
    assert set(caps) == (set(DEFAULT_CAPS) | {"CAP_NET_ADMIN", "CAP_SYS_PTRACE"}) - {
        "CAP_CHOWN",
        "CAP_KILL",
    }
    assert caps == sorted(caps, key=ALL_CAPS.index)  # stable order: by number
    # Docker: an add of a dropped capability keeps it.
    assert "CAP_NET_RAW" in caps_of(cap_add=("NET_RAW",), cap_drop=("NET_RAW",))


def test_cap_all() -> None:
    assert caps_of(cap_drop=("ALL",)) == []
    assert caps_of(cap_drop=("all",), cap_add=("CHOWN",)) == ["CAP_CHOWN"]
    everything = caps_of(cap_add=("ALL",))
    assert everything == engine_caps()
    assert set(kernel_caps()) >= set(everything)
    assert "CAP_SYS_ADMIN" in everything
    assert "CAP_SYS_ADMIN" not in caps_of(cap_add=("ALL",), cap_drop=("SYS_ADMIN",))


def test_cap_unknown() -> None:
    with pytest.raises(InvalidArgument, match="unknown capability"):
        caps_of(cap_add=("CAP_FLY",))
    with pytest.raises(InvalidArgument, match="unknown capability"):
        caps_of(cap_drop=("bogus",))


# --- ulimits and resources -----------------------------------------------------------------


def test_ulimits(rootfs: Path) -> None:
    assert "rlimits" not in spec_for(rootfs)["process"]
    spec = spec_for(rootfs, ulimits=(Ulimit("nofile", 1024, 2048), Ulimit("nproc", 10, 10)))
    assert spec["process"]["rlimits"] == [
        {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 1024},
        {"type": "RLIMIT_NPROC", "hard": 10, "soft": 10},
    ]
    with pytest.raises(InvalidArgument, match="ulimit"):
        spec_for(rootfs, ulimits=(Ulimit("bogus", 1, 1),))
    with pytest.raises(InvalidArgument, match="soft"):
        spec_for(rootfs, ulimits=(Ulimit("nofile", 10, 5),))


def test_memory_cpu_pids(rootfs: Path) -> None:
    mib = 1024 * 1024
    res = spec_for(rootfs, memory=16 * mib, cpus=0.5, cpu_shares=512, pids_limit=20)["linux"][
        "resources"
    ]
    assert res["memory"]["limit"] == 16 * mib
    if os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"):
        assert res["memory"]["swap"] == 32 * mib  # Docker: swap defaults to memory again
    assert res["cpu"] == {"quota": 50000, "period": 100000, "shares": 512}
    assert res["pids"] == {"limit": 20}

    res = spec_for(rootfs, memory=16 * mib, memory_swap=-1)["linux"]["resources"]
    assert res["memory"].get("swap", -1) == -1
    res = spec_for(rootfs, memory=16 * mib, memory_swap=64 * mib)["linux"]["resources"]
    assert res["memory"].get("swap", 64 * mib) == 64 * mib

    with pytest.raises(InvalidArgument):
        spec_for(rootfs, memory_swap=64 * mib)  # swap without memory
    with pytest.raises(InvalidArgument):
        spec_for(rootfs, memory=64 * mib, memory_swap=16 * mib)
    with pytest.raises(InvalidArgument, match="6MB"):
        spec_for(rootfs, memory=1024)
    with pytest.raises(InvalidArgument, match="CPUs"):
        spec_for(rootfs, cpus=float((os.cpu_count() or 1) + 1))


def test_cfs_cpuset_and_reservation(rootfs: Path) -> None:
    # --cpu-period/--cpu-quota, --cpuset-cpus/-mems, --memory-reservation (what `update` can
    # change too): applied at every start.
    res = spec_for(
        rootfs,
        cpu_period=50000,
        cpu_quota=25000,
        cpuset_cpus="0",
        cpuset_mems="0",
        memory_reservation=32 * 1024 * 1024,
    )["linux"]["resources"]
    assert res["cpu"] == {"period": 50000, "quota": 25000, "cpus": "0", "mems": "0"}
    assert res["memory"] == {"reservation": 32 * 1024 * 1024}


# --- network -------------------------------------------------------------------------------


def test_host_network(rootfs: Path) -> None:
    spec = spec_for(rootfs, network_mode="host", hostname="h")
    assert "network" not in ns_types(spec)
    assert ns_types(spec) == ["pid", "ipc", "uts", "mount"]
    sys = mount_at(spec, "/sys")
    assert sys["type"] == "bind" and sys["source"] == "/sys"
    assert "rbind" in sys["options"] and "ro" in sys["options"]
    assert "sysctl" not in spec["linux"]  # the host's settings are not the container's
    with pytest.raises(InvalidArgument):
        spec_for(rootfs, network_mode="host", sysctls=(("net.ipv4.ip_forward", "1"),))


def test_netns_path_and_bad_mode(rootfs: Path) -> None:
    spec = spec_for(rootfs, network_mode="netns:/run/netns/x")
    assert {"type": "network", "path": "/run/netns/x"} in spec["linux"]["namespaces"]
    assert mount_at(spec, "/sys")["type"] == "sysfs"
    assert spec["linux"]["sysctl"]["net.ipv4.ping_group_range"] == "0 2147483647"
    # Another container's namespace keeps the settings it has.
    spec = spec_for(rootfs, network_mode="container:4242")
    assert {"type": "network", "path": "/proc/4242/ns/net"} in spec["linux"]["namespaces"]
    assert "sysctl" not in spec["linux"]
    with pytest.raises(InvalidArgument):
        spec_for(rootfs, network_mode="weird")


def test_sysctls(rootfs: Path) -> None:
    spec = spec_for(rootfs, sysctls=(("net.ipv4.ping_group_range", "1 0"), ("kernel.shmmax", "1")))
    assert spec["linux"]["sysctl"] == {
        "net.ipv4.ping_group_range": "1 0",  # --sysctl wins over Docker's default
        "net.ipv4.ip_unprivileged_port_start": "0",
        "kernel.shmmax": "1",
    }
    with pytest.raises(InvalidArgument, match="namespaced"):
        spec_for(rootfs, sysctls=(("vm.swappiness", "1"),))


# --- mounts --------------------------------------------------------------------------------


def test_user_mounts(rootfs: Path) -> None:
    spec = spec_for(
        rootfs,
        mounts=(
            Mount("bind", "/srv/data", "/data", read_only=True),
            Mount("volume", "/var/lib/v/x/_data", "/vol", name="x", propagation="rslave"),
            Mount("tmpfs", "", "/tmp"),
            Mount("tmpfs", "", "/dev/shm"),
        ),
    )
    assert mount_at(spec, "/data") == {
        "destination": "/data",
        "type": "bind",
        "source": "/srv/data",
        "options": ["rbind", "rprivate", "ro"],
    }
    assert mount_at(spec, "/vol")["options"] == ["rbind", "rslave"]
    # As Docker 20.10 mounts --tmpfs and --mount type=tmpfs: noexec unless "exec" is asked.
    assert mount_at(spec, "/tmp") == {
        "destination": "/tmp",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec"],
    }
    # The user's /dev/shm replaces the default one.
    assert mount_at(spec, "/dev/shm")["source"] == "tmpfs"
    assert [m["destination"] for m in spec["mounts"]][-4:] == ["/data", "/vol", "/tmp", "/dev/shm"]
    with pytest.raises(InvalidArgument):
        spec_for(rootfs, mounts=(Mount("bind", "/x", "relative"),))
    with pytest.raises(InvalidArgument):
        spec_for(rootfs, mounts=(Mount("bind", "/x", "/y", propagation="sideways"),))
    spec = spec_for(
        rootfs, mounts=(Mount("tmpfs", "", "/t", options=("exec", "size=1048576", "uid=5")),)
    )
    assert mount_at(spec, "/t")["options"] == ["nosuid", "nodev", "size=1048576", "uid=5"]
    with pytest.raises(InvalidArgument):
        spec_for(rootfs, mounts=(Mount("nfs", "/x", "/y"),))


def test_shm_size(rootfs: Path) -> None:
    shm = mount_at(spec_for(rootfs, shm_size=1024 * 1024 * 128), "/dev/shm")
    assert "size=131072k" in shm["options"]


def test_init(rootfs: Path) -> None:
    spec = spec_for(rootfs, init=True, args=("sleep", "1"), init_path="/usr/lib/dy/init")
    assert spec["process"]["args"] == ["/dev/init", "--", "sleep", "1"]
    init = mount_at(spec, "/dev/init")
    assert init["source"] == "/usr/lib/dy/init" and "ro" in init["options"]
    with pytest.raises(Unavailable):
        spec_for(rootfs, init=True)
    # Without --init no /dev/init even when a binary is known.
    spec = spec_for(rootfs, init_path="/usr/lib/dy/init")
    assert all(m["destination"] != "/dev/init" for m in spec["mounts"])
    assert spec["process"]["args"] == ["sh"]


# --- user resolution -----------------------------------------------------------------------


def test_user_default_is_root(rootfs: Path) -> None:
    assert resolve_user(str(rootfs), "") == ResolvedUser(0, 0, (), "/root")


def test_user_by_name_with_supplementary_groups(rootfs: Path) -> None:
    assert resolve_user(str(rootfs), "alice") == ResolvedUser(1000, 1000, (10, 29), "/home/alice")
    assert resolve_user(str(rootfs), "bob") == ResolvedUser(1001, 1001, (10,), "/home/bob")


def test_user_by_uid(rootfs: Path) -> None:
    assert resolve_user(str(rootfs), "1000") == ResolvedUser(1000, 1000, (10, 29), "/home/alice")
    # A uid not in passwd is fine: gid 0, home /.
    assert resolve_user(str(rootfs), "4242") == ResolvedUser(4242, 0, (), "/")


def test_user_with_group(rootfs: Path) -> None:
    # An explicit group replaces the primary group; /etc/group memberships are not added.
    assert resolve_user(str(rootfs), "1000:1000") == ResolvedUser(1000, 1000, (), "/home/alice")
    assert resolve_user(str(rootfs), "alice:staff") == ResolvedUser(1000, 50, (), "/home/alice")
    assert resolve_user(str(rootfs), "alice:777") == ResolvedUser(1000, 777, (), "/home/alice")
    assert resolve_user(str(rootfs), "4242:4343") == ResolvedUser(4242, 4343, (), "/")
    with pytest.raises(InvalidArgument, match="unable to find group nogroup"):
        resolve_user(str(rootfs), "alice:nogroup")


def test_user_unknown_name(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument) as exc:
        resolve_user(str(rootfs), "mallory")
    assert str(exc.value) == "unable to find user mallory: no matching entries in passwd file"


def test_group_add(rootfs: Path) -> None:
    got = resolve_user(str(rootfs), "bob", ("audio", "5000", "wheel"))
    assert got == ResolvedUser(1001, 1001, (10, 29, 5000), "/home/bob")
    with pytest.raises(InvalidArgument, match="unable to find group"):
        resolve_user(str(rootfs), "bob", ("nosuch",))


def test_user_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert resolve_user(str(empty), "") == ResolvedUser(0, 0, (), "/")
    assert resolve_user(str(empty), "1000:1000") == ResolvedUser(1000, 1000, (), "/")
    with pytest.raises(InvalidArgument, match="unable to find user"):
        resolve_user(str(empty), "alice")


def test_user_in_spec(rootfs: Path) -> None:
    proc = spec_for(rootfs, user="alice", group_add=("staff",))["process"]
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [10, 29, 50]}
    assert "HOME=/home/alice" in proc["env"]
    with pytest.raises(InvalidArgument, match="unable to find user"):
        spec_for(rootfs, user="mallory")


def test_passwd_symlink_cannot_escape(tmp_path: Path) -> None:
    """rootfs/etc/passwd -> a host file: the link is resolved inside the rootfs, so the host
    file (a sentinel naming a user "escaped") is never read."""
    outside = tmp_path / "host-etc"
    outside.mkdir()
    (outside / "passwd").write_text("escaped:x:0:0::/escaped:/bin/sh\nroot:x:0:0::/HOST:/bin/sh\n")
    (outside / "group").write_text("escapedgroup:x:0:escaped\n")
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    # An absolute link to the sentinel's real host path, and a ../ climb out of the root.
    (root / "etc" / "passwd").symlink_to(outside / "passwd")
    (root / "etc" / "group").symlink_to("../../../../../../../" + str(outside / "group"))

    with pytest.raises(InvalidArgument, match="unable to find user escaped"):
        resolve_user(str(root), "escaped")
    assert resolve_user(str(root), "") == ResolvedUser(0, 0, (), "/")  # not /HOST
    with pytest.raises(InvalidArgument, match="unable to find group escapedgroup"):
        resolve_user(str(root), "0:escapedgroup")

    # The same link names a file *inside* the rootfs when one exists there.
    inner = root / str(outside).lstrip("/")
    inner.mkdir(parents=True)
    (inner / "passwd").write_text("inside:x:7:7::/in:/bin/sh\n")
    assert resolve_user(str(root), "inside") == ResolvedUser(7, 7, (), "/in")


def test_passwd_symlinked_etc_dir_and_loops(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "real").mkdir(parents=True)
    (root / "real" / "passwd").write_text("carol:x:5:5::/c:/bin/sh\n")
    (root / "etc").symlink_to("/real")  # absolute: relative to the rootfs, not the host
    assert resolve_user(str(root), "carol").uid == 5
    assert resolve_in_root(str(root), "/etc/passwd") == str(root / "real" / "passwd")
    assert resolve_in_root(str(root), "/../../..") == str(root)

    loop = tmp_path / "loop"
    (loop / "etc").mkdir(parents=True)
    (loop / "etc" / "passwd").symlink_to("passwd")
    with pytest.raises(InvalidArgument, match="symbolic links"):
        resolve_user(str(loop), "x")


def test_passwd_fifo_is_not_read(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "passwd")
    assert resolve_user(str(root), "1:2") == ResolvedUser(1, 2, (), "/")


# --- seccomp -------------------------------------------------------------------------------


def rule_names(profile: dict[str, Any], action: str) -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == action for n in r["names"]}


def unconditional(profile: dict[str, Any]) -> set[str]:
    """Names an argument-free ALLOW rule lets through."""
    return {
        n
        for r in profile["syscalls"]
        if r["action"] == "SCMP_ACT_ALLOW" and not r.get("args")
        for n in r["names"]
    }


def test_default_profile_is_dockers() -> None:
    p = seccomp.load_profile("", DEFAULT_CAPS)
    assert p is not None
    # moby's shape: EPERM for everything not allowed, one ENOSYS rule (clone3).
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and "defaultErrnoRet" not in p
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    allowed = unconditional(p)
    assert {"read", "write", "execve", "arch_prctl", "modify_ldt", "chroot", "ptrace"} <= allowed
    assert {"io_uring_setup", "landlock_create_ruleset", "clone3"} - {"clone3"} <= allowed
    # Denied: not named by any rule that applies.
    named = {n for r in p["syscalls"] for n in r["names"]}
    denied = {"keyctl", "add_key", "request_key", "unshare", "setns", "mount", "bpf", "mbind"}
    denied |= {"process_vm_readv", "name_to_handle_at", "pivot_root", "userfaultfd", "kexec_load"}
    assert not denied & named
    assert [r for r in p["syscalls"] if r["names"] == ["clone3"]] == [
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
    ]
    # Other architectures' rules are gone.
    assert "s390_runtime_instr" not in allowed and "breakpoint" not in allowed
    for rule in p["syscalls"]:
        assert set(rule) <= {"names", "action", "errnoRet", "args"}
    # Decoded once, converted per call: callers can't corrupt each other.
    p["syscalls"].clear()
    again = seccomp.load_profile("", DEFAULT_CAPS)
    assert again is not None and again["syscalls"]


def test_default_profile_capability_rules() -> None:
    plain = seccomp.load_profile("", DEFAULT_CAPS)
    assert plain is not None
    # clone only without namespace flags (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|
    # NEWNET masked to 0): Docker's rule for a container without CAP_SYS_ADMIN.
    clone = [r for r in plain["syscalls"] if "clone" in r["names"]]
    assert clone == [
        {
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
        }
    ]

    admin = seccomp.load_profile("", [*DEFAULT_CAPS, "CAP_SYS_ADMIN"])
    assert admin is not None
    opened = {"clone", "clone3", "unshare", "setns", "mount", "umount2", "bpf", "fsopen"}
    opened |= {"name_to_handle_at", "perf_event_open", "quotactl", "sethostname", "syslog"}
    assert opened <= unconditional(admin)
    assert not rule_names(admin, "SCMP_ACT_ERRNO")  # the clone3 ENOSYS rule is gone
    assert not {"keyctl", "pivot_root", "swapon", "kexec_load"} & unconditional(admin)

    ptrace = seccomp.load_profile("", [*DEFAULT_CAPS, "CAP_SYS_PTRACE"])
    assert ptrace is not None
    assert {"process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"} <= unconditional(ptrace)

    # chroot needs CAP_SYS_CHROOT (granted by default); dropping it drops the rule.
    no_chroot = seccomp.load_profile("", [c for c in DEFAULT_CAPS if c != "CAP_SYS_CHROOT"])
    assert no_chroot is not None and "chroot" not in unconditional(no_chroot)


def test_spec_seccomp_follows_caps(rootfs: Path) -> None:
    plain = spec_for(rootfs)["linux"]["seccomp"]
    admin = spec_for(rootfs, cap_add=("SYS_ADMIN",))["linux"]["seccomp"]
    assert "unshare" not in rule_names(plain, "SCMP_ACT_ALLOW")
    assert "unshare" in rule_names(admin, "SCMP_ACT_ALLOW")


MOBY_STYLE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {
            "architecture": "SCMP_ARCH_X86_64",
            "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        },
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
    ],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": []},
        {
            "names": ["mount", "umount2", "unshare", "setns"],
            "action": "SCMP_ACT_ALLOW",
            "includes": {"caps": ["CAP_SYS_ADMIN"]},
        },
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}],
        },
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
        {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["no_x86"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
        # Docker compares with Go's name only: "x86_64" never matches.
        {"names": ["kernel_name"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["x86_64"]}},
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": 22,
            "excludes": {"caps": ["CAP_AUDIT_WRITE"]},
        },
        {"names": ["future"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "255.0"}},
        {"names": ["old"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["pre"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "4.8"}},
        {"name": "single", "action": "SCMP_ACT_ALLOW"},
    ],
}


def load(doc: Any, caps: list[str], **kw: Any) -> dict[str, Any]:
    p = seccomp.load_profile(json.dumps(doc), caps, **kw)
    assert p is not None
    return p


def test_moby_format_conversion() -> None:
    p = load(MOBY_STYLE, ["CAP_CHOWN"])
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    names = [n for r in p["syscalls"] for n in r["names"]]
    assert "mount" not in names and "setns" not in names  # needs CAP_SYS_ADMIN
    assert "arch_prctl" in names and "set_tls" not in names and "no_x86" not in names
    assert "kernel_name" not in names
    assert "socket" in names  # CAP_AUDIT_WRITE not granted: the EINVAL rule applies
    assert "future" not in names and "pre" not in names
    assert "old" in names and "single" in names
    assert {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"} in p["syscalls"]
    personality = next(r for r in p["syscalls"] if r["names"] == ["personality"])
    assert personality["args"] == [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]
    socket_rule = next(r for r in p["syscalls"] if r["names"] == ["socket"])
    assert socket_rule["errnoRet"] == 22

    p = load(MOBY_STYLE, ["CAP_SYS_ADMIN", "CAP_AUDIT_WRITE"])
    names = [n for r in p["syscalls"] for n in r["names"]]
    assert {"mount", "umount2", "unshare", "setns"} <= set(names)
    assert "socket" not in names

    arm = load(MOBY_STYLE, [], arch="aarch64")
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    arm_names = {n for r in arm["syscalls"] for n in r["names"]}
    assert "set_tls" in arm_names and "arch_prctl" not in arm_names and "no_x86" in arm_names


def test_keys_match_as_go_matches_them() -> None:
    # Go's decoder matches field names case-insensitively and ignores unknown keys.
    doc = {
        "DefaultAction": "SCMP_ACT_ALLOW",
        "comment": "not a field of the profile",
        "Syscalls": [{"NAMES": ["mkdir"], "Action": "SCMP_ACT_ERRNO", "errnoret": 13}],
    }
    assert load(doc, []) == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}],
    }


def test_plain_architectures_and_errors() -> None:
    plain = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"]}
    assert load(plain, [])["architectures"] == ["SCMP_ARCH_X86_64"]

    with pytest.raises(InvalidArgument, match="'architectures' and 'archMap' were specified"):
        load({**MOBY_STYLE, "architectures": ["SCMP_ARCH_X86_64"]}, [])
    both = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"]}]}
    with pytest.raises(InvalidArgument, match="'name' and 'names' were specified"):
        load(both, [])
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed: invalid char"):
        seccomp.load_profile("{nope", [])
    with pytest.raises(InvalidArgument, match="syscalls has a null entry"):
        load({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [None]}, [])
    deep = "[" * 5000 + "]" * 5000  # deeper than Python's parser goes, not than Go's
    with pytest.raises(InvalidArgument, match="Decoding seccomp profile failed"):
        seccomp.load_profile(deep, [])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"defaultAction": 1},
            "json: cannot unmarshal number into Go struct field Seccomp.defaultAction of type"
            " specs.LinuxSeccompAction",
        ),
        (
            {"syscalls": [{"names": ["read"], "args": [{"index": "0"}]}]},
            "json: cannot unmarshal string into Go struct field LinuxSeccompArg.syscalls.args"
            ".index of type uint",
        ),
        (
            {"syscalls": [{"names": ["read"], "args": [{"index": 1.5}]}]},
            "json: cannot unmarshal number 1.5 into Go struct field LinuxSeccompArg.syscalls.args"
            ".index of type uint",
        ),
        (
            {"syscalls": [{"names": ["read"], "args": [{"value": True}]}]},
            "json: cannot unmarshal bool into Go struct field LinuxSeccompArg.syscalls.args"
            ".value of type uint64",
        ),
        (
            {"syscalls": [{"includes": {"caps": "CAP_X"}}]},
            "json: cannot unmarshal string into Go struct field Filter.syscalls.includes.caps of"
            " type []string",
        ),
        (
            {"syscalls": [{"excludes": [1]}]},
            "json: cannot unmarshal array into Go struct field Syscall.syscalls.excludes of type"
            " seccomp.Filter",
        ),
        (
            {"archMap": [{"architecture": 1}]},
            "json: cannot unmarshal number into Go struct field Architecture.archMap.architecture"
            " of type specs.Arch",
        ),
        (
            {"syscalls": [{"includes": {"minKernel": 4.8}}]},
            'invalid kernel version: 4.8, expected "<kernel>.<major>": json: cannot unmarshal'
            " number into Go value of type string",
        ),
        (
            {"syscalls": [{"includes": {"minKernel": "0.0"}}]},
            'invalid kernel version: "0.0", expected "<kernel>.<major>": version cannot be 0.0',
        ),
        (
            {"syscalls": [{"includes": {"minKernel": "4.300"}}]},
            'invalid kernel version: "4.300", expected "<kernel>.<major>": strconv.ParseUint:'
            ' parsing "300": value out of range',
        ),
    ],
)
def test_decoding_errors_are_dockers(doc: Any, message: str) -> None:
    # Each message as Docker 20.10's daemon gave it for the same document.
    with pytest.raises(InvalidArgument) as exc:
        seccomp.load_profile(json.dumps(doc), [])
    assert str(exc.value) == f"Decoding seccomp profile failed: {message}"


def test_empty_min_kernel_is_version_0_0() -> None:
    # moby: "" decodes to 0.0, so the include always holds and the exclude always drops.
    doc = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["a"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": ""}},
            {"names": ["b"], "action": "SCMP_ACT_ERRNO", "excludes": {"minKernel": ""}},
        ],
    }
    assert [r["names"] for r in load(doc, [])["syscalls"]] == [["a"]]


def test_default_profile_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(seccomp, "DEFAULT_PROFILE", str(tmp_path / "seccomp_default.json"))
    with pytest.raises(Unavailable, match="cannot read the default seccomp profile"):
        seccomp.load_profile("", [])
