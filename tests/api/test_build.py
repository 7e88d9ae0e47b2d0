"""``docker build`` through the daemon (the classic builder's API: ``DOCKER_BUILDKIT=0``, and
the newest CLI without buildx falls back to it), docker-py's ``images.build``, and what
``POST /build`` refuses; beside the reference Docker where it runs."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.api.conftest import DOCKER_20, Daemon, Reference
from tests.conftest import db_snapshot
from tests.helpers import tar_of

Docker = Callable[..., subprocess.CompletedProcess[str]]
CLASSIC = {"DOCKER_BUILDKIT": "0"}
BENCH = Path(__file__).parents[2] / "bench" / "build.py"


def bench_dockerfile() -> str:
    """bench/build.py's 9-step Dockerfile, read from the benchmark itself."""
    for node in ast.parse(BENCH.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCKERFILE":
            return str(ast.literal_eval(node.value))
    raise AssertionError("no DOCKERFILE in bench/build.py")


def bench_context(base: Path) -> Path:
    """The benchmark's context: its Dockerfile, package.json and 48 small files."""
    ctx = base / "ctx"
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(bench_dockerfile())
    (ctx / "package.json").write_text('{"name": "bench"}\n')
    for i in range(48):
        (ctx / "src" / f"file{i}.js").write_text(f"console.log({i})\n" * 20)
    return ctx


def _normalized(out: str) -> list[str]:
    """Build output without what differs by nature (IDs) or by builder detail that is not
    this API's: Docker 20.10 runs a container for metadata steps too (ENV, LABEL...)."""
    lines = []
    for line in out.splitlines():
        if line.startswith((" ---> Running in ", "Removing intermediate container ")):
            continue
        lines.append(re.sub(r"\b[0-9a-f]{12}\b", "ID", line))
    return lines


def _build_session(docker_cli: Docker, ctx: Path, tag: str) -> list[Any]:
    seen: list[Any] = []
    # The first build may find some steps cached (the reference keeps its cache between
    # runs): its step lines and result; the second is all cache hits, line for line.
    r = docker_cli("build", "-t", tag, str(ctx), env=CLASSIC)
    kept = ("Sending", "Step", "Successfully tagged")
    seen.append((r.returncode, [x for x in _normalized(r.stdout) if x.startswith(kept)]))
    r = docker_cli("build", "-t", tag, str(ctx), env=CLASSIC)
    seen.append((r.returncode, _normalized(r.stdout), r.stderr))
    r = docker_cli("run", "--rm", tag)
    seen.append((r.returncode, r.stdout))
    seen.append(docker_cli("image", "inspect", "--format", "{{json .Config.Labels}}", tag).stdout)
    return seen


@pytest.mark.parametrize("binary", [None, DOCKER_20])
def test_docker_build_bench_dockerfile_as_docker(
    api: Daemon, reference: Reference, tmp_path: Path, binary: str | None
) -> None:
    ctx = bench_context(tmp_path)
    tag = f"{reference.prefix}-bench:1"

    def ours(*a: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return api.docker(*a, env=env, binary=binary)

    def theirs(*a: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return reference.docker(*a, env=env, binary=binary)

    try:
        assert _build_session(ours, ctx, tag) == _build_session(theirs, ctx, tag)
    finally:
        api.cli("rmi", "-f", tag, check=False)


def test_docker_build_alone(api: Daemon, tmp_path: Path) -> None:
    ctx = bench_context(tmp_path)
    try:
        first, cached, ran, labels = _build_session(api.docker, ctx, "benchbuild:1")
        assert first == (
            0,
            ["Sending build context to Docker daemon  52.74kB"]
            + [f"Step {i + 1}/9 : {line}" for i, line in enumerate(bench_dockerfile().splitlines())]
            + ["Successfully tagged benchbuild:1"],
        )
        assert cached[1].count(" ---> Using cache") == 8
        assert cached[1][-2:] == ["Successfully built ID", "Successfully tagged benchbuild:1"]
        assert ran[0] == 0 and "package.json" in ran[1]
        assert json.loads(str(labels)) == {"bench": "yes"}
        # The newest CLI without DOCKER_BUILDKIT=0 and without buildx installed falls back to
        # this builder too (we announce no BuildKit in /_ping).
        if api.docker("buildx", "version").returncode != 0:
            r = api.docker("build", "-t", "benchbuild:1", str(ctx))
            assert r.returncode == 0 and "Successfully tagged benchbuild:1" in r.stdout, r.stderr
    finally:
        api.cli("rmi", "-f", "benchbuild:1", check=False)


def _failing(docker_cli: Docker, ctx: Path, tag: str) -> tuple[Any, ...]:
    # --force-rm: Docker keeps a failed step's container otherwise (we never keep one).
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo before\nRUN exit 3\n")
    r = docker_cli("build", "--force-rm", "-t", tag, str(ctx), env=CLASSIC)
    (ctx / "Dockerfile").write_text('FROM busybox\nRUN ["sh", "-c", "exit 7"]\n')
    r2 = docker_cli("build", "--force-rm", "-q", str(ctx), env=CLASSIC)
    return (
        r.returncode,
        r.stderr.splitlines()[-1],
        _normalized(r.stdout)[-2:],
        r2.returncode,
        r2.stderr.splitlines()[-1],
        docker_cli("image", "inspect", tag).returncode,
    )


def test_failing_run_as_docker(api: Daemon, reference: Reference, tmp_path: Path) -> None:
    """A failing RUN: the CLI exits with the command's code and Docker's message."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tag = f"{reference.prefix}-fails:1"
    ours = _failing(api.docker, tmp_path / "a", tag)
    assert ours[:2] == (3, "The command '/bin/sh -c exit 3' returned a non-zero code: 3")
    assert ours[3:5] == (7, "The command 'sh -c exit 7' returned a non-zero code: 7")
    assert ours == _failing(reference.docker, tmp_path / "b", tag)


# ---------------------------------------------------------------- docker-py


def test_docker_py_build(api: Daemon, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile.app").write_text(
        "FROM busybox AS base\nARG GREETING=hi\nRUN echo $GREETING > /greeting\n"
        'FROM base AS final\nCOPY data.txt /\nCMD ["cat", "/greeting"]\n'
    )
    (tmp_path / "data.txt").write_text("data\n")
    try:
        image, logs = api.client.images.build(
            path=str(tmp_path),
            dockerfile="Dockerfile.app",
            tag="pybuild:1",
            buildargs={"GREETING": "hello", "UNUSED": "x"},
            labels={"made-by": "docker-py"},
            target="base",
        )
        messages = list(logs)
        assert {"aux": {"ID": image.id}} in messages
        assert any(
            "[Warning] One or more build-args [UNUSED]" in m.get("stream", "") for m in messages
        )
        assert image.tags == ["pybuild:1"]
        assert image.labels == {"made-by": "docker-py"}
        out = api.client.containers.run("pybuild:1", "cat /greeting", remove=True)
        assert out == b"hello\n"
        # A Dockerfile alone (no context), as docker-py's fileobj= sends it.
        image2, _ = api.client.images.build(
            fileobj=io.BytesIO(b"FROM busybox\nLABEL alone=yes\n"), tag="pybuild:2"
        )
        assert image2.labels == {"alone": "yes"}
        # Quiet: one message, the ID.
        raw = list(
            api.client.api.build(
                path=str(tmp_path), dockerfile="Dockerfile.app", quiet=True, decode=True
            )
        )
        assert len(raw) == 1 and raw[0]["stream"].startswith("sha256:")
        with pytest.raises(docker.errors.BuildError) as err:
            api.client.images.build(fileobj=io.BytesIO(b"FROM busybox\nRUN exit 4\n"))
        assert str(err.value) == "The command '/bin/sh -c exit 4' returned a non-zero code: 4"
    finally:
        api.cli("rmi", "-f", "pybuild:1", "pybuild:2", check=False)


# ---------------------------------------------------------------- bad input


def _post_build(api: Daemon, query: str, body: bytes) -> tuple[int, str]:
    status, _, data = api.request(
        "POST", f"/build{query}", body, {"Content-Type": "application/x-tar"}
    )
    return status, data.decode()


DF = tar_of({"Dockerfile": b"FROM busybox\n"})
NO_DOCKERFILE = "Cannot locate specified Dockerfile: Dockerfile"


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("", tar_of({"other.txt": b"x"}), NO_DOCKERFILE),
        ("?dockerfile=../Dockerfile", DF, "must be within the build context"),
        ("", tar_of({"Dockerfile": b"FROMM busybox\n"}), "unknown instruction: FROMM"),
        ("?target=nosuch", DF, "failed to reach build target nosuch in Dockerfile"),
        ("?t=BAD", DF, "must be lowercase"),
        ("?buildargs=bad", DF, "error reading build args: invalid character 'b' looking for"),
        ("?labels=%5B%5D", DF, "error reading labels: expected an object of strings"),
        ("?version=2", DF, "BuildKit is not supported by dockyard"),
        ("?platform=linux/arm64", DF, "platform 'linux/arm64' is not supported"),
        ("?remote=/etc", b"", "remote '/etc' is not a URL"),
        ("", DF[:600], "the build context from the request"),
        ("", b"", NO_DOCKERFILE),
    ],
)
def test_build_refusals_leave_nothing(api: Daemon, query: str, body: bytes, message: str) -> None:
    before = db_snapshot(api.cli.root)["images"]
    status, data = _post_build(api, query, body)
    assert status == 400, data
    assert message in json.loads(data)["message"]
    assert db_snapshot(api.cli.root)["images"] == before
    assert os.listdir(api.cli.root / "build" / "tmp") == []


def test_failure_after_the_first_step_is_a_message(api: Daemon) -> None:
    context = tar_of({"Dockerfile": b"FROM busybox\nCOPY nosuch /x\n"})
    status, data = _post_build(api, "", context)
    messages = [json.loads(x) for x in data.splitlines() if x]
    assert status == 200
    assert messages[0] == {"stream": "Step 1/2 : FROM busybox"}
    assert "COPY failed" in messages[-1]["error"]
    assert messages[-1]["errorDetail"] == {"message": messages[-1]["error"]}


# ---------------------------------------------------------------- a context larger than memory


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _big_context(size: int) -> Iterator[bytes]:
    """A tar of a Dockerfile and one file of ``size`` bytes, made as it is sent."""
    dockerfile = b"FROM busybox\nCOPY big.bin /\n"
    for name, length in (("Dockerfile", len(dockerfile)), ("big.bin", size)):
        info = tarfile.TarInfo(name)
        info.size = length
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        if name == "Dockerfile":
            yield dockerfile + bytes(-len(dockerfile) % 512)
    chunk = os.urandom(1 << 20)
    for _ in range(size >> 20):
        yield chunk
    yield bytes(1024)


@pytest.mark.slow
def test_big_context_is_streamed(api: Daemon) -> None:
    """A 1 GiB context: the daemon's peak memory grows by far less than the context (it is
    unpacked as it arrives), and the build sees every byte."""
    import http.client

    size = 1 << 30
    pid = api.proc.pid
    before = _peak_rss_kib(pid)
    conn = http.client.HTTPConnection("localhost", timeout=600)
    conn.sock = socket.socket(socket.AF_UNIX)
    conn.sock.connect(str(api.socket))
    try:
        conn.request(
            "POST", "/build?t=bigctx:1", body=_big_context(size),
            headers={"Content-Type": "application/x-tar"}, encode_chunked=True,
        )  # fmt: skip
        resp = conn.getresponse()
        messages = [json.loads(x) for x in resp.read().splitlines() if x]
    finally:
        conn.close()
    try:
        assert resp.status == 200
        assert messages[-1] == {"stream": "Successfully tagged bigctx:1\n"}, messages[-3:]
        grown_mib = (_peak_rss_kib(pid) - before) / 1024
        assert grown_mib < 128, f"the daemon's peak memory grew by {grown_mib:.0f} MiB"
        c = api.client.containers.run("bigctx:1", "ls -l /big.bin", remove=True)
        assert str(size).encode() in c
    finally:
        api.cli("rmi", "-f", "bigctx:1", check=False)
        time.sleep(0)
