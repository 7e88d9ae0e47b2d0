"""``inspect`` of a container made with everyday flags, beside Docker's for the same command:
the same keys at every level clients read, and the same values for what the flags set."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.conftest import CLI
from tests.helpers import needs_docker

FLAGS = [
    "-v", "/tmp:/h:ro",
    "-v", "dyinspectvol:/n",
    "-v", "/anon",
    "--tmpfs", "/run:size=1m",
    "--mount", "type=tmpfs,dst=/t3,tmpfs-size=2097152",
    "-p", "127.0.0.1:18099:80",
    "--ulimit", "nofile=10:20",
    "-e", "A=1",
    "-l", "a=b",
    "-m", "64m",
    "--cpus", "0.5",
    "--cap-add", "NET_ADMIN",
    "--security-opt", "no-new-privileges",
    "--stop-signal", "SIGINT",
    "--health-cmd", "true",
    "-w", "/srv",
]  # fmt: skip


def _keys(doc: Any, path: str = "") -> set[str]:
    """Every key path of a JSON document (list items folded into [])."""
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.add(f"{path}.{k}")
            out |= _keys(v, f"{path}.{k}")
    elif isinstance(doc, list):
        for v in doc:
            out |= _keys(v, f"{path}[]")
    return out


# What dockyard shows that this Docker (20.10, overlay2, cgroup v1 host) shows differently by
# design: the storage driver's own data, and Docker's own Healthcheck defaults.
SKIP = ("GraphDriver", ".Config.Hostname")


@needs_docker
def test_inspect_has_dockers_keys_and_values(ctr: CLI) -> None:
    name = "dyinspect"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    try:
        subprocess.run(
            ["docker", "create", "--name", name, *FLAGS, "busybox", "sh"],
            check=True,
            capture_output=True,
        )
        theirs = json.loads(subprocess.check_output(["docker", "inspect", name]))[0]
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)
        subprocess.run(["docker", "volume", "rm", "dyinspectvol"], capture_output=True)
    ctr("create", "--name", name, *FLAGS, "busybox", "sh")
    ours = json.loads(ctr("inspect", name).stdout)[0]

    missing = {k for k in _keys(theirs) - _keys(ours) if not k.startswith(SKIP)}
    assert missing == set()
    hc, ohc = theirs["HostConfig"], ours["HostConfig"]
    for key in ("Binds", "Tmpfs", "PortBindings", "Ulimits", "Memory", "NanoCpus", "CapAdd",
                "SecurityOpt", "RestartPolicy", "LogConfig", "NetworkMode", "Mounts",
                "MaskedPaths", "ReadonlyPaths", "ShmSize", "PidsLimit"):  # fmt: skip
        if key == "Binds":
            # docker/cli collects -v into a Go map: Docker's own order varies run to run.
            assert sorted(ohc[key]) == sorted(hc[key]), key
            continue
        assert ohc[key] == hc[key], key
    for key in ("Cmd", "Volumes", "Labels", "StopSignal", "WorkingDir", "ExposedPorts",
                "Healthcheck", "AttachStdout", "Tty"):  # fmt: skip
        assert ours["Config"][key] == theirs["Config"][key], key
    assert [e for e in ours["Config"]["Env"] if e.startswith("A=")] == ["A=1"]

    def points(doc: dict[str, Any]) -> list[tuple[str, str, bool]]:
        # Docker keeps mount points in a map: its order is not one to match.
        return sorted((m["Type"], m["Destination"], m["RW"]) for m in doc["Mounts"])

    assert points(ours) == points(theirs)
    assert ours["State"] == theirs["State"]
