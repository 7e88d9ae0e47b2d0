"""Logging drivers and rotation, and ``logs`` reading by tail and by time, from the user's
side: the commands as Docker's docs write them, beside Docker's own answers when the
reference Docker runs here (the same container output on both engines)."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import BIN, CLI, terminate
from tests.helpers import needs_docker, reference_docker, wait_until

Docker = Callable[..., subprocess.CompletedProcess[str]]

# 200 lines of 60 bytes, json-file records of ~130: with max-size=1k a file holds 8 of them
# (7 stay under 1000 bytes, 8 pass it whatever zeros Go's time format drops), so the log
# rotates ~25 times and the rotation points are the same for Docker.
WRITER = 'i=0; while [ $i -lt 200 ]; do echo "line $i %s"; i=$((i+1)); done' % ("x" * 50)
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z ", re.M)


DOCKER = reference_docker()


@pytest.fixture
def docker() -> Iterator[Docker]:
    """The docker CLI; every container it made with ``run``/``create`` here goes after."""
    if not DOCKER:
        pytest.skip("the reference Docker is not running")
    label = f"dockyard-test={uuid.uuid4().hex[:12]}"

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = list(args)
        if argv and argv[0] in ("run", "create"):
            argv[1:1] = ["--label", label]
        proc = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)}: {proc.stderr}")
        return proc

    try:
        yield run
    finally:
        ids = run("ps", "-aq", "--filter", f"label={label}", check=False).stdout.split()
        if ids:
            run("rm", "-f", *ids, check=False)


def container_dir(cli: CLI, name: str) -> Path:
    cid = cli("inspect", "-f", "{{.Id}}", name).stdout.strip()
    return cli.root / "containers" / cid


def log_files(directory: Path, prefix: str) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith(prefix))


# ------------------------------------------------------------------------------ rotation


def test_max_size_rotates_and_logs_shows_the_kept_tail_in_order(ctr: CLI) -> None:
    ctr("run", "--name", "rot", "--log-opt", "max-size=1k", "--log-opt", "max-file=3",
        "busybox", "sh", "-c", WRITER)  # fmt: skip
    cdir = container_dir(ctr, "rot")
    cid = cdir.name
    assert log_files(cdir, cid) == [f"{cid}-json.log", f"{cid}-json.log.1", f"{cid}-json.log.2"]
    for name in log_files(cdir, cid)[1:]:
        # moby's rule: a file is rotated once it has reached max-size, before the next write.
        assert 1000 <= (cdir / name).stat().st_size < 1000 + 200
    lines = ctr("logs", "rot").stdout.splitlines()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], 200)) and 16 < len(numbers) <= 24
    assert ctr("logs", "--tail", "3", "rot").stdout.splitlines() == lines[-3:]


@needs_docker
def test_rotation_keeps_what_docker_keeps(ctr: CLI, docker: Docker) -> None:
    args = ["--log-opt", "max-size=1k", "--log-opt", "max-file=3", "busybox", "sh", "-c", WRITER]
    ctr("run", "--name", "rot", *args)
    theirs = docker("run", "-d", *args).stdout.strip()
    docker("wait", theirs)
    assert ctr("logs", "rot").stdout == docker("logs", theirs).stdout
    assert ctr("logs", "-n", "5", "rot").stdout == docker("logs", "-n", "5", theirs).stdout


def test_files_rotate_while_the_container_writes_and_a_follower_misses_nothing(
    ctr: CLI,
) -> None:
    slow = 'i=0; while [ $i -lt 120 ]; do echo "slow line $i ........................"; i=$((i+1)); usleep 20000; done'  # noqa: E501
    ctr("run", "-d", "--name", "slow", "--log-opt", "max-size=500", "--log-opt", "max-file=2",
        "busybox", "sh", "-c", slow)  # fmt: skip
    cdir = container_dir(ctr, "slow")
    follower = subprocess.Popen(
        [str(BIN), "--root", str(ctr.root), "--run-root", str(ctr.run_root), "logs", "-f", "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # Rotated while it runs: a ".1" appears and the container is still writing.
        wait_until(lambda: (cdir / f"{cdir.name}-json.log.1").exists(), timeout=30)
        assert ctr("inspect", "-f", "{{.State.Running}}", "slow").stdout.strip() == "true"
        out, err = follower.communicate(timeout=60)
    finally:
        terminate(follower)
    assert follower.returncode == 0, err
    got = [int(line.split()[2]) for line in out.decode().splitlines()]
    # What was kept when it started (the first lines may have rotated away already), then
    # every line once, in order, across ~25 rotations.
    assert got == list(range(got[0], 120)) and got[0] < 60
    assert len(log_files(cdir, cdir.name)) == 2


@pytest.mark.parametrize("compress", ["false", "true"])
def test_a_follower_behind_many_rotations_misses_nothing_kept(ctr: CLI, compress: str) -> None:
    """A fast writer rotates many times between two reads of a follower: the follower
    goes through every file still kept (compressed or not), in order."""
    ctr("run", "-d", "--name", "fast", "--log-opt", "max-size=300", "--log-opt", "max-file=100",
        "--log-opt", f"compress={compress}", "busybox", "sh", "-c",
        "sleep 1; seq 1 3000; sleep 0.5")  # fmt: skip
    r = ctr("logs", "-f", "fast", timeout=120)
    assert r.stdout.split() == [str(i) for i in range(1, 3001)]


def test_compressed_rotation_reads_back(ctr: CLI) -> None:
    ctr("run", "--name", "gz", "--log-opt", "max-size=1k", "--log-opt", "max-file=4",
        "--log-opt", "compress=true", "busybox", "sh", "-c", WRITER)  # fmt: skip
    cdir = container_dir(ctr, "gz")
    cid = cdir.name
    wait_until(lambda: not (cdir / f"{cid}-json.log.1").exists(), timeout=10)  # gzipped
    assert log_files(cdir, cid) == [
        f"{cid}-json.log",
        f"{cid}-json.log.1.gz",
        f"{cid}-json.log.2.gz",
        f"{cid}-json.log.3.gz",
    ]
    numbers = [int(line.split()[1]) for line in ctr("logs", "gz").stdout.splitlines()]
    assert numbers == list(range(numbers[0], 200)) and len(numbers) > 24
    assert ctr("logs", "--tail", "12", "gz").stdout.splitlines()[0].startswith("line 188 ")


# ------------------------------------------------------------------------------ drivers


def test_log_driver_none_keeps_no_log(ctr: CLI) -> None:
    r = ctr("run", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "hi")
    assert r.stdout == "hi\n"  # attached output does not need a log
    r = ctr("logs", "quiet", check=False)
    assert (r.returncode, r.stdout) == (125, "")
    assert r.stderr == "Error: configured logging driver does not support reading\n"
    cdir = container_dir(ctr, "quiet")
    assert not [n for n in os.listdir(cdir) if "log" in n]
    assert ctr("inspect", "-f", "{{.LogPath}}", "quiet").stdout == "\n"


@needs_docker
def test_log_driver_none_error_is_dockers(ctr: CLI, docker: Docker) -> None:
    ctr("run", "--name", "quiet", "--log-driver", "none", "busybox", "true")
    theirs = docker("run", "-d", "--log-driver", "none", "busybox", "true").stdout.strip()
    docker("wait", theirs)
    ours = ctr("logs", "quiet", check=False).stderr
    assert ours.removeprefix("Error: ") == docker("logs", theirs, check=False).stderr.removeprefix(
        "Error response from daemon: "
    )


def test_local_driver_rotates_compresses_and_reads(ctr: CLI) -> None:
    opts = ["--log-driver", "local", "--log-opt", "max-size=2k", "--log-opt", "max-file=3"]
    ctr("run", "--name", "loc", *opts, "busybox", "sh", "-c", WRITER + "; printf no-newline")
    logs = container_dir(ctr, "loc") / "local-logs"
    wait_until(lambda: not (logs / "container.log.1").exists(), timeout=10)
    assert sorted(os.listdir(logs)) == ["container.log", "container.log.1.gz", "container.log.2.gz"]
    out = ctr("logs", "loc").stdout
    assert out.endswith("line 199 " + "x" * 50 + "\nno-newline")
    assert ctr("logs", "-n", "1", "loc").stdout == "no-newline"
    assert ctr("inspect", "-f", "{{.LogPath}}", "loc").stdout == "\n"  # as Docker's


@needs_docker
def test_local_driver_reads_as_dockers(ctr: CLI, docker: Docker) -> None:
    args = ["--log-driver", "local", "--log-opt", "max-size=2k", "--log-opt", "max-file=3"]
    # The streams apart in time: between two pipes, which is read first is anyone's guess
    # (Docker's too).
    cmd = ["busybox", "sh", "-c", WRITER + "; sleep 0.3; echo err >&2; sleep 0.3; printf end"]
    ctr("run", "--name", "loc", *args, *cmd)
    theirs = docker("run", "-d", *args, *cmd).stdout.strip()
    docker("wait", theirs)
    for flags in ([], ["--tail", "7"], ["--tail", "0"]):
        ours = ctr("logs", *flags, "loc")
        ref = docker("logs", *flags, theirs)
        assert (ours.stdout, ours.stderr) == (ref.stdout, ref.stderr), flags


def test_local_driver_defaults_are_dockers(ctr: CLI) -> None:
    """20 MB files, 5 of them, compressed: what ``local`` means without options."""
    ctr("create", "--name", "loc", "--log-driver", "local", "busybox", "true")
    r = ctr("inspect", "-f", "{{json .HostConfig.LogConfig}}", "loc")
    assert r.stdout.strip() == '{"Type":"local","Config":{}}'
    ctr("start", "-a", "loc")
    assert (container_dir(ctr, "loc") / "local-logs" / "container.log").exists()


def test_json_file_attrs_from_labels_and_env(ctr: CLI) -> None:
    meta = ["-l", "team=web", "-l", "other=x", "-e", "STAGE=prod"]
    opts = ["--log-opt", "labels=team", "--log-opt", "env=STAGE,NOPE"]
    ctr("run", "--name", "attrs", *meta, *opts, "busybox", "echo", "hi")
    cdir = container_dir(ctr, "attrs")
    line = (cdir / f"{cdir.name}-json.log").read_text()
    assert '"stream":"stdout","attrs":{"STAGE":"prod","team":"web"},"time":"' in line
    assert ctr("logs", "attrs").stdout == "hi\n"


# ------------------------------------------------------------------------------ bad options

BAD_OPTIONS = [
    (["--log-opt", "max-size=foo"], "failed to initialize logging driver: invalid size: 'foo'"),
    (["--log-opt", "max-size=-1"], "failed to initialize logging driver: invalid size: '-1'"),
    (
        ["--log-opt", "max-size=0"],
        "failed to initialize logging driver: max-size must be a positive number",
    ),
    (
        ["--log-opt", "max-file=0"],
        "failed to initialize logging driver: max-file cannot be less than 1",
    ),
    (
        ["--log-opt", "max-size=1k", "--log-opt", "max-file=x"],
        'failed to initialize logging driver: strconv.Atoi: parsing "x": invalid syntax',
    ),
    (
        ["--log-opt", "compress=maybe"],
        'failed to initialize logging driver: strconv.ParseBool: parsing "maybe": invalid syntax',
    ),
    (
        ["--log-opt", "compress=true"],
        "failed to initialize logging driver: compress cannot be true when max-file is less "
        "than 2 or max-size is not set",
    ),
    (["--log-opt", "bogus=1"], "unknown log opt 'bogus' for json-file log driver"),
    (
        ["--log-driver", "bogus"],
        'error looking up logging plugin bogus: plugin "bogus" not found',
    ),
    (
        ["--log-driver", "local", "--log-opt", "max-size=foo"],
        "failed to initialize logging driver: invalid value for max-size: foo: invalid size: 'foo'",
    ),
    (
        ["--log-driver", "local", "--log-opt", "max-file=0"],
        "failed to initialize logging driver: compression cannot be enabled when max file "
        "count is 1",
    ),
    (
        ["--log-driver", "local", "--log-opt", "bogus=1"],
        "unknown log opt 'bogus' for log driver local",
    ),  # noqa: E501
    (["--log-driver", "none", "--log-opt", "max-size=1k"], "invalid logging opts for driver none"),
]


@pytest.mark.parametrize(
    ("flags", "message"), BAD_OPTIONS, ids=[" ".join(f) for f, _ in BAD_OPTIONS]
)
def test_bad_log_options_create_nothing(ctr: CLI, flags: list[str], message: str) -> None:
    for verb in ("run", "create"):
        r = ctr(verb, *flags, "busybox", "true", check=False)
        assert (r.returncode, r.stdout, r.stderr) == (125, "", f"Error: {message}\n")
    assert ctr("ps", "-aq").stdout == ""
    assert not (ctr.root / "containers").exists() or os.listdir(ctr.root / "containers") == []


@needs_docker
@pytest.mark.parametrize(
    ("flags", "message"), BAD_OPTIONS, ids=[" ".join(f) for f, _ in BAD_OPTIONS]
)
def test_bad_log_options_messages_are_dockers(
    docker: Docker, flags: list[str], message: str
) -> None:
    """Docker says the same; it checks option names at create and values at start."""
    r = docker("run", *flags, "busybox", "true", check=False)
    assert r.returncode != 0
    assert message in r.stderr


# ------------------------------------------------------------------------------ reading


@pytest.fixture(scope="module")
def big_log(tmp_path_factory: pytest.TempPathFactory, busybox_template: Path) -> Iterator[CLI]:
    """A store with a container "big" whose json-file log holds 100k records (~9 MB)."""
    from tests.conftest import _cleanup_containers

    base = tmp_path_factory.mktemp("biglog")
    subprocess.run(["cp", "-a", str(busybox_template), str(base / "root")], check=True)
    cli = CLI(base / "root", base / "run")
    cli("run", "--name", "big", "busybox", "sh", "-c", BIG, timeout=300)
    try:
        yield cli
    finally:
        _cleanup_containers(cli)


BIG = "seq 1 100000; sleep 0.3; echo to-stderr >&2; sleep 0.3; seq 100001 100010"


@pytest.fixture(scope="module")
def docker_big() -> Iterator[str | None]:
    """The same container output under Docker (None without it)."""
    if not DOCKER:
        yield None
        return
    label = f"dockyard-test={uuid.uuid4().hex[:12]}"
    cid = subprocess.run(
        ["docker", "run", "-d", "--label", label, "busybox", "sh", "-c", BIG],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    subprocess.run(["docker", "wait", cid], capture_output=True, check=True, timeout=300)
    try:
        # dockerd's log copier may still drain the pipes after the wait returns.
        wait_until(lambda: _docker_logs(cid, "--tail", "1").stdout == "100010\n", timeout=60)
        yield cid
    finally:
        subprocess.run(["docker", "rm", "-f", cid], capture_output=True)


def _docker_logs(cid: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "logs", *flags, cid], capture_output=True, text=True)


def _stamp_of(cli_or_docker: Callable[..., subprocess.CompletedProcess[str]], line: str) -> str:
    """The timestamp of the record ``line`` in that engine's own log (``logs -t``)."""
    out = cli_or_docker("-t")
    for row in (out.stdout + out.stderr).splitlines():
        if row.endswith(" " + line):
            return row.split(" ", 1)[0]
    raise AssertionError(f"no record {line!r}")


def test_tail_since_until_on_a_large_log(big_log: CLI) -> None:
    def ours(*flags: str) -> subprocess.CompletedProcess[str]:
        return big_log("logs", *flags, "big")

    assert ours("--tail", "3").stdout == "100008\n100009\n100010\n"
    assert ours("--tail", "11").stderr == "to-stderr\n"
    assert ours("--tail", "0").stdout == ""
    assert ours("--tail", "nonsense").stdout.count("\n") == 100010  # Docker's "all"
    stamped = ours("-t", "--tail", "2").stdout
    assert len(STAMP.findall(stamped)) == 2 and stamped.endswith(" 100010\n")
    since = _stamp_of(ours, "50000")
    assert ours("--since", since).stdout.splitlines() == [str(i) for i in range(50000, 100011)]
    until = _stamp_of(ours, "20")
    assert ours("--until", until).stdout.splitlines() == [str(i) for i in range(1, 21)]
    assert ours("--since", since, "--until", since).stdout == "50000\n"
    assert ours("--since", since, "--tail", "2").stdout == "100009\n100010\n"
    assert ours("--since", "2099-01-01").stdout == ""
    assert ours("--until", "2000-01-01T00:00:00Z").stdout == ""


def test_since_until_tail_equal_dockers(big_log: CLI, docker_big: str | None) -> None:
    if docker_big is None:
        pytest.skip("the reference Docker is not running")

    def ours(*flags: str) -> subprocess.CompletedProcess[str]:
        return big_log("logs", *flags, "big")

    def theirs(*flags: str) -> subprocess.CompletedProcess[str]:
        return _docker_logs(docker_big, *flags)

    for flags in (["--tail", "10"], ["-n", "1"], ["--tail", "0"], ["--tail", "x"]):
        o, t = ours(*flags), theirs(*flags)
        assert (o.stdout, o.stderr) == (t.stdout, t.stderr), flags
    o, t = ours("-t", "--tail", "10"), theirs("-t", "--tail", "10")
    assert STAMP.sub("T ", o.stdout) == STAMP.sub("T ", t.stdout)
    # The same record as the bound in each engine's log: the same records out.
    for since_line, until_line in (("99990", "100005"), ("1", "5"), ("100009", "")):
        o_flags = ["--since", _stamp_of(ours, since_line)]
        t_flags = ["--since", _stamp_of(theirs, since_line)]
        if until_line:
            o_flags += ["--until", _stamp_of(ours, until_line)]
            t_flags += ["--until", _stamp_of(theirs, until_line)]
        o, t = ours(*o_flags), theirs(*t_flags)
        assert o.stdout == t.stdout, (since_line, until_line)
        # Each engine stamps a record when it reads it from the pipe: on a loaded machine
        # dockerd's stdout reader lags behind its stderr one, so where "to-stderr" falls
        # among the numbers is each engine's own; each must follow its own stamps.
        for engine, flags, out in ((ours, o_flags, o), (theirs, t_flags, t)):
            stamp = _stamp_of(engine, "to-stderr")
            inside = flags[1] <= stamp and (len(flags) == 2 or stamp <= flags[3])
            assert out.stderr == ("to-stderr\n" if inside else ""), (since_line, until_line)


def test_bad_since_and_until_messages(big_log: CLI, docker_big: str | None) -> None:
    cases = {
        "foo": 'failed to parse value as time or duration: "foo"',
        "2026-13-01": 'parsing time "2026-13-01": month out of range',
        "2026-12-04T09:5": 'parsing time "2026-12-04T09:5" as "2006-01-02T15:04": cannot parse '
        '"5" as "04"',
        "2026-12-04 09:00": 'parsing time "2026-12-04 09:00": extra text: " 09:00"',
    }
    for value, message in cases.items():
        for flag in ("since", "until"):
            r = big_log("logs", f"--{flag}", value, "big", check=False)
            assert (r.returncode, r.stdout) == (125, "")
            assert r.stderr == f'Error: invalid value for "{flag}": {message}\n'
            if docker_big:
                ref = _docker_logs(docker_big, f"--{flag}", value)
                assert ref.stderr.strip() == f'invalid value for "{flag}": {message}'


def test_logs_of_a_missing_container(ctr: CLI) -> None:
    r = ctr("logs", "--tail", "1", "nosuch", check=False)
    assert (r.returncode, r.stderr) == (125, "Error: No such container: nosuch\n")


def test_follow_with_tail_then_new_records(ctr: CLI) -> None:
    # "after" waits for the follower to have its tail (no race with a loaded machine).
    ctr("run", "-d", "--name", "tick", "busybox", "sh", "-c",
        "seq 1 50; until [ -e /tmp/go ]; do usleep 50000; done; echo after; sleep 1")  # fmt: skip
    wait_until(lambda: "50" in ctr("logs", "--tail", "1", "tick").stdout, timeout=30)
    follower = subprocess.Popen(
        [str(BIN), "--root", str(ctr.root), "--run-root", str(ctr.run_root), "logs", "-f",
         "--tail", "2", "tick"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        first = [follower.stdout.readline(), follower.stdout.readline()]
        ctr("exec", "tick", "touch", "/tmp/go")
        rest, err = follower.communicate(timeout=60)
    finally:
        terminate(follower)
    assert follower.returncode == 0, err
    assert first == [b"49\n", b"50\n"]
    assert rest == b"after\n"  # and it returned: the container ended
