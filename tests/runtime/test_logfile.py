"""runtime/logfile.py and logread.py: the json-file and local formats as Docker writes and
reads them, and reads whose cost follows what they return (bytes read, from /proc/self/io)."""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.runtime import logfile
from dockyard.runtime.logfile import LogWriter, format_ns, parse_ns
from dockyard.runtime.logread import gzip_last_time, read_log
from tests.conftest import CLI


def _docker_root() -> str:
    if not shutil.which("docker"):
        return ""
    r = subprocess.run(
        ["docker", "info", "-f", "{{.DockerRootDir}}"], capture_output=True, text=True, timeout=30
    )
    return r.stdout.strip() if r.returncode == 0 else ""


DOCKER_ROOT = _docker_root()
needs_docker = pytest.mark.skipif(not DOCKER_ROOT, reason="the reference Docker is not running")


@pytest.fixture
def docker_container() -> Iterator[list[str]]:
    """Docker container IDs made by the test, removed after it."""
    made: list[str] = []
    yield made
    if made:
        subprocess.run(["docker", "rm", "-f", *made], capture_output=True)


def _docker(*args: str) -> str:
    label = f"dockyard-test={uuid.uuid4().hex[:8]}"
    argv = list(args)
    if argv[0] in ("run", "create"):
        argv[1:1] = ["--label", label]
    return subprocess.run(
        ["docker", *argv], capture_output=True, text=True, check=True, timeout=120
    ).stdout


def read_bytes() -> int:
    """Bytes this process has read so far (rchar: reads through any fd, cached or not)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


# ------------------------------------------------------------------------------ interop


@needs_docker
def test_docker_reads_our_local_files(docker_container: list[str]) -> None:
    cid = _docker("create", "--log-driver", "local", "busybox", "true").strip()
    docker_container.append(cid)
    path = Path(DOCKER_ROOT, "containers", cid, "local-logs", "container.log")
    w = LogWriter(str(path), driver="local", max_size=300, max_file=3, compress=True)
    for i in range(20):
        w.write("stdout" if i % 2 else "stderr", [f"ours {i}\n".encode()])
    w.write("stdout", [b"x" * 10, b"partial"])
    w.close()
    assert sorted(os.listdir(path.parent)) == [
        "container.log",
        "container.log.1.gz",
        "container.log.2.gz",
    ]
    ours = list(read_log(str(path), "local"))
    r = subprocess.run(["docker", "logs", cid], capture_output=True, text=True)
    assert r.stdout == "".join(t for s, t, _ in ours if s == "stdout")
    assert r.stderr == "".join(t for s, t, _ in ours if s == "stderr")
    assert r.stdout.endswith("ours 19\nxxxxxxxxxxpartial")
    r = subprocess.run(["docker", "logs", "-t", "--tail", "3", cid], capture_output=True, text=True)
    assert r.stdout == "".join(f"{ts} {t}" for s, t, ts in ours[-3:] if s == "stdout")


@needs_docker
def test_we_read_dockers_local_files(docker_container: list[str]) -> None:
    script = "seq 1 400; sleep 0.3; echo err >&2; sleep 0.3; seq 401 420; printf end"
    cid = _docker("run", "-d", "--log-driver", "local", "--log-opt", "max-size=1k",
                  "busybox", "sh", "-c", script).strip()  # fmt: skip
    docker_container.append(cid)
    _docker("wait", cid)
    path = os.path.join(DOCKER_ROOT, "containers", cid, "local-logs", "container.log")
    assert any(n.endswith(".gz") for n in os.listdir(os.path.dirname(path)))
    for tail in (None, 5, 0):
        flags = ["--tail", str(tail)] if tail is not None else []
        ref = subprocess.run(["docker", "logs", "-t", *flags, cid], capture_output=True, text=True)
        ours = list(read_log(path, "local", tail=tail))
        assert "".join(f"{ts} {t}" for s, t, ts in ours if s == "stdout") == ref.stdout
        assert "".join(f"{ts} {t}" for s, t, ts in ours if s == "stderr") == ref.stderr
    # Docker's rotated files carry the last record's time in their gzip header, as ours do.
    gz = path + ".1.gz"
    with open(gz, "rb") as f:
        last = gzip_last_time(f.fileno())
    with gzip.open(gz) as f:
        records = logfile.LocalFile.split(bytearray(f.read()))
    assert last == logfile.LocalFile.time_of(records[-1])


@needs_docker
def test_json_file_records_are_dockers_byte_for_byte(ctr: CLI, docker_container: list[str]) -> None:
    """Same escapes, so the same record sizes (and rotation points) as Docker's."""
    script = r"printf '<a>&b\tc\001\r\n'; printf '\342\200\250x\n'; printf 'bad \377 byte\n'; printf 'q\"\\\n'"  # noqa: E501
    ctr.raw("run", "--name", "esc", "busybox", "sh", "-c", script)
    cid = ctr("inspect", "-f", "{{.Id}}", "esc").stdout.strip()
    ours = (ctr.root / "containers" / cid / f"{cid}-json.log").read_text().splitlines()
    theirs_id = _docker("run", "-d", "busybox", "sh", "-c", script).strip()
    docker_container.append(theirs_id)
    _docker("wait", theirs_id)
    log = Path(DOCKER_ROOT, "containers", theirs_id, f"{theirs_id}-json.log")
    theirs = log.read_text().splitlines()

    def masked(line: str) -> str:
        return line[: line.rindex('"time":"')]

    assert [masked(x) for x in ours] == [masked(x) for x in theirs]
    ref = subprocess.run(["docker", "logs", theirs_id], capture_output=True).stdout
    assert ctr.raw("logs", "esc").stdout == ref


# ------------------------------------------------------------------------------ formats


def test_times_round_trip() -> None:
    for ns in (0, 1, 999_999_999, 1_796_375_106_500_000_000, 4_102_444_800_000_000_001):
        assert parse_ns(format_ns(ns)) == ns
    assert parse_ns("2026-12-04T09:08:37.07596281Z") == parse_ns("2026-12-04T09:08:37.075962810Z")
    assert parse_ns("2026-12-04T11:08:37+02:00") == parse_ns("2026-12-04T09:08:37Z")
    assert parse_ns("not a time") is None


def test_gzip_rotation_is_gzip_with_dockers_header(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    w = LogWriter(str(path), max_size=200, max_file=3, compress=True)
    for i in range(30):
        w.write("stdout", [f"record {i}\n".encode()])
    w.close()
    gz = tmp_path / "c-json.log.1.gz"
    lines = gzip.decompress(gz.read_bytes()).decode().splitlines()
    last = json.loads(lines[-1])["time"]
    with open(gz, "rb") as f:
        assert gzip_last_time(f.fileno()) == parse_ns(last)
    assert gz.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("driver", ["json-file", "local"])
def test_since_and_tail_read_little_of_a_big_log(tmp_path: Path, driver: str) -> None:
    """``--tail`` reads from the end and ``--since`` searches by time: the bytes read stay
    a small fraction of a 60 MB log (the whole file would be read otherwise)."""
    path = tmp_path / ("c-json.log" if driver == "json-file" else "local-logs/container.log")
    w = LogWriter(str(path), driver=driver)
    line = b"0123456789 the quick brown fox jumps over the lazy dog\n"
    for _ in range(1000):
        w.write("stdout", [line] * 1000)
    w.write("stdout", [b"last one\n"])
    w.close()
    size = path.stat().st_size
    assert size > 60_000_000
    before = read_bytes()
    tail = list(read_log(str(path), driver, tail=10))
    tail_cost = read_bytes() - before
    assert [t for _, t, _ in tail][-2:] == [line.decode(), "last one\n"]
    assert tail_cost < 1_000_000
    # since = the time of the 900,000th record: a binary search lands near it.
    mid = next(iter(read_log(str(path), driver, tail=100_001)))[2]
    before = read_bytes()
    got = sum(1 for _ in read_log(str(path), driver, since=parse_ns(mid) or 0))
    since_cost = read_bytes() - before
    assert got >= 100_001
    assert since_cost < size / 4


def test_local_search_by_time_resyncs_on_any_bytes(tmp_path: Path) -> None:
    """Records full of frame-like bytes: the search still finds the boundary, and
    ``--since`` returns exactly what a scan from the start would."""
    rng = random.Random(7)
    path = tmp_path / "container.log"
    w = LogWriter(str(path), driver="local")
    for _ in range(3000):
        junk = bytes(rng.choice(b"\x00\x0a\x12\x1a\x20\xff") for _ in range(rng.randrange(1, 300)))
        w.write("stdout", [junk + b"\n"])
    w.close()
    everything = list(read_log(str(path), "local"))
    assert len(everything) == 3000
    for k in (0, 1, 1234, 2999):
        since = parse_ns(everything[k][2]) or 0
        expected = [e for e in everything if (parse_ns(e[2]) or 0) >= since]
        assert list(read_log(str(path), "local", since=since)) == expected
