"""``docker stats`` from the user's side: the table's columns as Docker's, values that mean
something (a memory hog shows its memory, a spinner its CPU), the API's JSON with dockerd's
keys, beside Docker's own for the same containers when the reference Docker runs here."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.model.docker.stats import stats_figures, stats_shape
from dockyard.runtime.stats import _io_v2, _pairs
from tests.conftest import CLI
from tests.helpers import reference_docker, wait_until

DOCKER = reference_docker()
HOG = "dd if=/dev/zero of=/dev/shm/hog bs=1M count=48 2>/dev/null; exec sleep 600"
SPIN = "while :; do :; done"
COLUMNS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O"]
COLUMNS.append("PIDS")


@pytest.fixture
def docker_ctrs() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    if made:
        subprocess.run(["docker", "rm", "-f", *made], capture_output=True)


def docker_run(made: list[str], *args: str) -> str:
    name = f"dystats-{uuid.uuid4().hex[:8]}"
    made.append(name)
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", "dockyard-test=stats", *args],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return name


def _size(text: str) -> float:
    """ "1.473MiB" -> bytes."""
    m = re.fullmatch(r"([\d.]+)([KMGT]?i?B)", text)
    assert m, text
    mult = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "kB": 1e3, "MB": 1e6}
    return float(m.group(1)) * mult[m.group(2)]


@pytest.mark.slow
def test_stats_no_stream_shows_a_hog_and_a_spinner(ctr: CLI) -> None:
    ctr("run", "-d", "--name", "hog", "-m", "256m", "busybox", "sh", "-c", HOG)
    ctr("run", "-d", "--name", "spin", "busybox", "sh", "-c", SPIN)
    ctr("create", "--name", "idle", "busybox", "true")
    wait_until(lambda: _hog_ready(ctr), timeout=30)
    out = ctr("stats", "--no-stream").stdout.splitlines()
    assert re.split(r"\s{2,}", out[0]) == COLUMNS
    rows = {line.split()[1]: line for line in out[1:]}
    assert sorted(rows) == ["hog", "spin"]  # running ones only, without -a
    docs = _json_rows(ctr, "hog", "spin")
    hog, spin = docs["hog"], docs["spin"]
    used, limit = (_size(x.strip()) for x in hog["MemUsage"].split("/"))
    assert used >= 48 << 20 and limit == 256 << 20
    assert float(hog["MemPerc"].rstrip("%")) >= 18.0
    assert float(spin["CPUPerc"].rstrip("%")) > 20.0  # a busy loop on a (shared) CPU
    assert spin["PIDs"] == hog["PIDs"] == "1"
    # Named, a row's .Container is the name as typed (Docker's); unnamed, the short ID.
    assert hog["Container"] == "hog"
    assert hog["ID"] == ctr("inspect", "-f", "{{.Id}}", "hog").stdout[:12]
    # -a adds the one that is not running, with Docker's zero row.
    everything = _json_rows(ctr, "-a")
    assert everything["idle"] == {
        "BlockIO": "0B / 0B",
        "CPUPerc": "0.00%",
        "Container": everything["idle"]["ID"],
        "ID": everything["idle"]["ID"],
        "MemPerc": "0.00%",
        "MemUsage": "0B / 0B",
        "Name": "idle",
        "NetIO": "0B / 0B",
        "PIDs": "0",
    }


def _hog_ready(ctr: CLI) -> bool:
    r = ctr("exec", "hog", "ls", "-l", "/dev/shm/hog", check=False)
    return str(48 << 20) in r.stdout


def _json_rows(ctr: CLI, *args: str) -> dict[str, dict[str, str]]:
    out = ctr("stats", "--no-stream", "--format", "{{json .}}", *args).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    return {r["Name"]: r for r in rows}


@pytest.mark.skipif(not DOCKER, reason="the reference Docker is not running")
def test_stats_table_and_json_keys_are_dockers(ctr: CLI, docker_ctrs: list[str]) -> None:
    theirs = docker_run(docker_ctrs, "busybox", "sleep", "600")
    ctr("run", "-d", "--name", theirs, "busybox", "sleep", "600")
    ours_out = ctr("stats", "--no-stream", theirs).stdout.splitlines()
    ref = subprocess.run(
        ["docker", "stats", "--no-stream", theirs], capture_output=True, text=True
    ).stdout.splitlines()
    # The header, column by column (widths follow the values, which differ).
    assert re.split(r"\s{2,}", ours_out[0]) == re.split(r"\s{2,}", ref[0]) == COLUMNS
    assert len(ours_out) == len(ref) == 2
    ours_row, ref_row = re.split(r"\s{2,}", ours_out[1]), re.split(r"\s{2,}", ref[1])
    assert ours_row[1] == ref_row[1] == theirs and len(ours_row) == len(ref_row)
    ours_json = json.loads(ctr("stats", "--no-stream", "--format", "{{json .}}", theirs).stdout)
    ref_json = json.loads(
        subprocess.run(
            ["docker", "stats", "--no-stream", "--format", "{{json .}}", theirs],
            capture_output=True,
            text=True,
        ).stdout
    )
    assert sorted(ours_json) == sorted(ref_json)


def test_stats_of_a_missing_container(ctr: CLI) -> None:
    ctr("create", "--name", "there", "busybox", "true")
    for args in (["nosuch"], ["there", "nosuch"]):  # nothing printed before the error
        r = ctr("stats", "--no-stream", *args, check=False)
        assert (r.returncode, r.stdout) == (125, "")
        assert r.stderr == "Error: No such container: nosuch\n"


def test_stats_format_errors_are_gos(ctr: CLI) -> None:
    ctr("create", "--name", "there", "busybox", "true")
    r = ctr("stats", "--no-stream", "--format", "{{.Nope}}", "there", check=False)
    assert (r.returncode, r.stdout) == (125, "")
    # Docker 20.10: the same Go text behind "template parsing error: ", exit 1.
    assert r.stderr == (
        'Error: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type '
        "*container.statsContext\n"
    )
    r = ctr("stats", "--no-stream", "--format", "{{.Name", "there", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (125, "", "Error: template: :1: unclosed action\n")


# ------------------------------------------------------------------------------ the API


def _keys(doc: Any, path: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(doc, dict):
        for k, v in doc.items():
            # Interface names and memory.stat keys are the kernel's, not the schema's.
            sub = f"{path}.{k}" if path not in (".networks", ".memory_stats.stats") else path
            out.add(sub)
            out |= _keys(v, sub)
    elif isinstance(doc, list):
        for v in doc:
            out |= _keys(v, f"{path}[]")
    return out


@pytest.mark.skipif(not DOCKER, reason="the reference Docker is not running")
def test_api_stats_json_has_dockerds_keys(ctr: CLI, docker_ctrs: list[str]) -> None:
    from tests.api.conftest import start_daemon, stop_daemon

    ctr("run", "-d", "--name", "s1", "busybox", "sleep", "600")
    ctr("create", "--name", "s0", "busybox", "true")
    theirs = docker_run(docker_ctrs, "busybox", "sleep", "600")
    theirs_stopped = f"dystats-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "create", "--name", theirs_stopped, "busybox"], check=True,
                   capture_output=True)  # fmt: skip
    docker_ctrs.append(theirs_stopped)
    daemon = start_daemon(ctr)
    try:
        sock = str(ctr.run_root / "dockyard.sock")
        for query in ("stream=false", "stream=false&one-shot=true"):
            ours = _get(sock, f"/containers/s1/stats?{query}")
            ref = _get("/var/run/docker.sock", f"/containers/{theirs}/stats?{query}")
            assert _keys(ours) == _keys(ref), query
            assert list(ours) == list(ref), query  # the same order
        # precpu: the reading a second before (stream=false), nothing with one-shot.
        two = _get(sock, "/containers/s1/stats?stream=false")
        assert two["preread"] != "0001-01-01T00:00:00Z"
        assert two["precpu_stats"]["system_cpu_usage"] < two["cpu_stats"]["system_cpu_usage"]
        one = _get(sock, "/containers/s1/stats?stream=false&one-shot=true")
        assert one["preread"] == "0001-01-01T00:00:00Z"
        # A container that is not running: Docker's zero frame, key for key.
        assert _get(sock, "/containers/s0/stats?stream=false") == {
            **_get("/var/run/docker.sock", f"/containers/{theirs_stopped}/stats?stream=false"),
            "name": "/s0",
            "id": ctr("inspect", "-f", "{{.Id}}", "s0").stdout.strip(),
        }
    finally:
        stop_daemon(daemon)


def _get(sock: str, path: str) -> Any:
    r = subprocess.run(
        ["curl", "-sf", "--unix-socket", sock, f"http://localhost{path}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# ------------------------------------------------------------------------------ cgroup v2

# These hosts mount the v1 controllers, so the v2 files are not read here by a real
# container: their parsing is checked on the kernel's documented formats.
IO_STAT = "8:16 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n"


def test_v2_files_parse_into_dockers_shape() -> None:
    from dockyard.model.stats import StatsSample

    nbytes, ios = _io_v2(IO_STAT)
    assert nbytes == ((8, 16, "read", 1459200), (8, 16, "write", 314773504))
    assert ios == ((8, 16, "read", 192), (8, 16, "write", 353))
    mstat = _pairs("anon 1000\nfile 5000\ninactive_file 3000\n")
    s = StatsSample(
        read_ns=10**18,
        cgroup_v2=True,
        cpu_total=5_000,
        memory_usage=10_000,
        memory_limit=1 << 30,
        memory_stats=tuple(sorted(mstat.items())),
        blkio_bytes=nbytes,
        blkio_ios=ios,
    )
    doc = stats_shape("c", "id", s, None)
    assert "max_usage" not in doc["memory_stats"] and "percpu_usage" not in doc["cpu_stats"]
    f = stats_figures(doc)
    assert f.mem == 7000.0  # usage - inactive_file, as Docker's CLI on v2
    assert f.block == (1459200.0, 314773504.0)


def test_a_v2_cgroup_directory_reads_as_dockers_numbers(tmp_path: Path) -> None:
    """runc records v2's unified directory under the key "": every file Docker reads there,
    in the kernel's documented formats (cgroup-v2.rst), comes out in Docker's units."""
    import os

    from dockyard.runtime.stats import read_sample

    files = {
        "cpu.stat": "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n"
        "nr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
        "memory.current": "10485760\n",
        "memory.max": "max\n",
        "memory.stat": "anon 4096\nfile 8192\ninactive_file 4096\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 0\noom_kill 0\n",
        "pids.current": "2\n",
        "pids.max": "max\n",
        "io.stat": IO_STAT,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    s = read_sample({"": str(tmp_path)}, os.getpid(), host_network=True, host_mem=1 << 33)
    assert s.cgroup_v2 and s.networks is None
    assert (s.cpu_total, s.cpu_user, s.cpu_system) == (2_500_000, 2_000_000, 500_000)
    assert (s.throttle_periods, s.throttled_periods, s.throttled_time) == (4, 1, 7000)
    assert (s.memory_usage, s.memory_limit, s.memory_failcnt) == (10485760, 1 << 33, 3)
    assert (s.pids_current, s.pids_limit) == (2, 0)
    doc = stats_shape("c", "id", s, None)
    assert doc["memory_stats"]["stats"] == {"anon": 4096, "file": 8192, "inactive_file": 4096}
    assert "networks" not in doc  # --network host, as Docker
    assert stats_figures(doc).mem == 10485760 - 4096
