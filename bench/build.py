"""Build benchmarks, side by side with ``docker build`` (Docker's classic builder,
``DOCKER_BUILDKIT=0``: the step-by-step model with an image per step that ours follows).

* ``build: cached rebuild``: a 9-step Dockerfile over a 50-file context, nothing changed;
* ``build: edit last COPY``: one file copied by the last COPY changes before each run;
* ``build: cached, docker CLI -> daemon``: the cached rebuild again, by the same docker CLI,
  through ``dockyard daemon`` and through dockerd (``build-daemon``);
* ``build: cold 1 GB / 10k files``: ``--no-cache`` with the previous result removed and (for
  us) the content-digest cache dropped, so every byte is read, copied and committed again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from run import DOCKYARD, Bench, run, timed  # type: ignore[import-not-found]

DOCKERFILE = """FROM busybox
ENV APP=/app
WORKDIR /app
COPY package.json ./
RUN echo installed > /installed
LABEL bench=yes
EXPOSE 8080
COPY . /app
CMD ["ls", "/app"]
"""

DOCKER_ENV = {**os.environ, "DOCKER_BUILDKIT": "0"}


def _docker(*args: str, check: bool = True) -> object:
    return run("docker", *args, check=check, env=DOCKER_ENV)


def _small_context(work: Path) -> Path:
    ctx = work / "build-ctx"
    shutil.rmtree(ctx, ignore_errors=True)
    (ctx / "src").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "package.json").write_text('{"name": "bench"}\n')
    for i in range(48):
        (ctx / "src" / f"file{i}.js").write_text(f"console.log({i})\n" * 20)
    return ctx


def bench_build(b: Bench, docker: bool) -> None:
    b.dy("image", "bootstrap", "busybox")
    ctx = _small_context(b.work)
    b.dy("build", "-q", "-t", "bench-build", str(ctx))
    if docker:
        _docker("build", "-q", "-t", "bench-build", str(ctx))

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(b.repeat * 4):
        ours += timed(lambda: b.dy("build", "-t", "bench-build", str(ctx)), 1)
        if docker:
            theirs += timed(lambda: _docker("build", "-t", "bench-build", str(ctx)), 1)
    b.report("build: cached rebuild, 9 steps, 50 files", ours, theirs or None)

    edited = ctx / "src" / "file7.js"
    ours, theirs = [], []
    for _ in range(b.repeat * 2):
        # New contents every time (a nonce): an earlier run's cache must not answer.
        edited.write_text(f"console.log('{os.urandom(8).hex()}')\n")
        ours += timed(lambda: b.dy("build", "-t", "bench-build", str(ctx)), 1)
        if docker:
            edited.write_text(f"console.log('{os.urandom(8).hex()}')\n")
            theirs += timed(lambda: _docker("build", "-t", "bench-build", str(ctx)), 1)
    b.report("build: rebuild after editing the last COPY", ours, theirs or None)
    if docker:
        _docker("rmi", "-f", "bench-build", check=False)


def bench_build_daemon(b: Bench, docker: bool) -> None:
    """``docker build`` (the same docker CLI, classic builder) of the cached 9-step
    Dockerfile through ``dockyard daemon`` and through dockerd, interleaved: the context
    upload, the daemon's build and the JSON stream back, end to end."""
    import signal
    import socket
    import time

    b.dy("image", "bootstrap", "busybox")
    ctx = _small_context(b.work)
    sock = b.work / "run" / "dockyard.sock"
    cmd = [DOCKYARD, "--root", str(b.root), "--run-root", str(b.work / "run"), "daemon"]
    daemon = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(str(sock))
                break
            except OSError:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise RuntimeError("dockyard daemon did not start") from None
                time.sleep(0.05)
        ours_env = {**DOCKER_ENV, "DOCKER_HOST": f"unix://{sock}"}

        def through_ours() -> object:
            return run("docker", "build", "-t", "bench-build", str(ctx), env=ours_env)

        def through_docker() -> object:
            return _docker("build", "-t", "bench-build", str(ctx))

        through_ours()  # the first build fills the cache: every later one is all hits
        if docker:
            through_docker()
        ours: list[float] = []
        theirs: list[float] = []
        for _ in range(b.repeat * 4):
            ours += timed(through_ours, 1)
            if docker:
                theirs += timed(through_docker, 1)
        b.report("build: cached, docker CLI -> daemon", ours, theirs or None)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        if docker:
            _docker("rmi", "-f", "bench-build", check=False)


def _big_context(work: Path) -> Path:
    ctx = work / "build-big"
    if (ctx / "Dockerfile").exists():
        return ctx
    shutil.rmtree(ctx, ignore_errors=True)
    ctx.mkdir()
    block = os.urandom(100 * 1024)
    for d in range(100):
        sub = ctx / f"d{d:02}"
        sub.mkdir()
        for i in range(100):
            # distinct contents: nothing deduplicates by accident
            (sub / f"f{i:03}").write_bytes(block[: 100 * 1024 - 8] + (d * 100 + i).to_bytes(8))
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY . /data\nRUN du -sh /data\n")
    return ctx


def bench_build_cold(b: Bench, docker: bool) -> None:
    b.dy("image", "bootstrap", "busybox")
    ctx = _big_context(b.work)

    def reset_ours() -> None:
        b.dy("rmi", "-f", "bench-cold").returncode  # noqa: B018
        shutil.rmtree(b.root / "build" / "hashes", ignore_errors=True)
        run("sync")

    def reset_docker() -> None:
        # --no-cache makes the classic builder run every step: the anchor's other build cache
        # (other users', other benches') is left alone.
        _docker("rmi", "-f", "bench-cold", check=False)
        run("sync")

    ours: list[float] = []
    theirs: list[float] = []
    b.dy("build", "-q", "-t", "bench-cold", str(ctx))  # warm the page cache for both
    for _ in range(max(2, b.repeat // 2)):
        ours += timed(
            lambda: b.dy("build", "--no-cache", "-t", "bench-cold", str(ctx)), 1, reset_ours
        )
        if docker:
            theirs += timed(
                lambda: _docker("build", "--no-cache", "-t", "bench-cold", str(ctx)),
                1,
                reset_docker,
            )
    b.report("build: cold, 1 GB context in 10k files", ours, theirs or None)
    b.dy("rmi", "-f", "bench-cold")
    if docker:
        reset_docker()
