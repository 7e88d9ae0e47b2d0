"""A ``RUN --mount=type=cache`` install, rebuilt after a dependency change: does the second
install read its cache?

busybox has neither npm nor pip, so the package manager is a stand-in that behaves like
them: ``install.sh`` reads ``package.list`` ("name version" lines), downloads each missing
``name-version.tgz`` into its cache dir from a registry (here an HTTP server on 127.0.0.1,
sending at a registry-like rate) and unpacks it into ``node_modules``. The build runs it
with ``--network=host`` to reach the server.

    python bench/cache_mount.py [--packages 20] [--size-kb 1024] [--rate-kbps 8192]

Three ways, each: a cold build, then one version bumped and the build again (only the
install step and what follows rerun):
  dockyard, RUN --mount=type=cache,target=/root/.npm  (BuildKit's way)
  dockyard, a plain RUN  (the cache dies with the step)
  Docker's classic builder, the plain RUN (it has no --mount), when Docker is up
Times are wall seconds of the whole ``build``.
"""

from __future__ import annotations

import argparse
import http.server
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

INSTALL = """\
set -e
mkdir -p /root/.npm node_modules
while read name version; do
  f=/root/.npm/$name-$version.tgz
  if [ ! -e $f ]; then
    wget -q -O $f.part http://127.0.0.1:$PORT/$name-$version.tgz && mv $f.part $f
  fi
  mkdir -p node_modules/$name && tar xzf $f -C node_modules/$name
done < package.list
echo installed $(ls node_modules | wc -l) packages
"""

DOCKERFILE = """\
FROM busybox
WORKDIR /app
COPY install.sh package.list ./
RUN {mount}PORT={port} sh install.sh
"""


def package(size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as t:
        data = os.urandom(size)
        ti = tarfile.TarInfo("index.js")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def serve(root: Path, rate: int) -> tuple[http.server.ThreadingHTTPServer, int]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a: object) -> None:
            pass

        def copyfile(self, source, outputfile):  # type: ignore[no-untyped-def]
            while chunk := source.read(64 * 1024):  # a registry's pace, not loopback's
                outputfile.write(chunk)
                time.sleep(len(chunk) / rate)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}")
    return time.monotonic() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--packages", type=int, default=20)
    p.add_argument("--size-kb", type=int, default=1024)
    p.add_argument("--rate-kbps", type=int, default=8192)
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cache-mount-"))
    dockyard = [str(Path(sys.executable).parent / "dockyard"), "--root", str(work / "root"),
                "--run-root", str(work / "run")]  # fmt: skip
    try:
        www = work / "www"
        www.mkdir()
        names = [f"pkg{i}" for i in range(a.packages)]
        for n in names:
            for v in ("1.0", "1.1"):
                (www / f"{n}-{v}.tgz").write_bytes(package(a.size_kb * 1024))
        srv, port = serve(www, a.rate_kbps * 1024)
        run([*dockyard, "image", "bootstrap", "busybox"])
        results = []
        docker = (
            shutil.which("docker")
            and subprocess.run(
                ["docker", "image", "inspect", "busybox"], capture_output=True
            ).returncode
            == 0
        )
        ways = [("dockyard, RUN --mount=type=cache", "dockyard", True),
                ("dockyard, plain RUN", "dockyard", False)]  # fmt: skip
        if docker:
            ways.append(("Docker classic, plain RUN", "docker", False))
        for label, tool, mount in ways:
            ctx = work / f"ctx-{tool}-{mount}"
            ctx.mkdir()
            (ctx / "install.sh").write_text(INSTALL)
            (ctx / "package.list").write_text("".join(f"{n} 1.0\n" for n in names))
            flag = "--mount=type=cache,target=/root/.npm " if mount else ""
            (ctx / "Dockerfile").write_text(DOCKERFILE.format(mount=flag, port=port))
            if tool == "dockyard":
                build = [*dockyard, "build", "--network", "host", "-q", "-t", "bench", str(ctx)]
                env = None
            else:
                build = ["docker", "build", "--network", "host", "-q", "-t", "dockyard-bench-cm",
                         str(ctx)]  # fmt: skip
                env = {**os.environ, "DOCKER_BUILDKIT": "0"}
            cold = run(build, env)
            (ctx / "package.list").write_text(
                "".join(f"{n} {'1.1' if i == 0 else '1.0'}\n" for i, n in enumerate(names))
            )
            again = run(build, env)
            results.append((label, cold, again))
        if docker:
            subprocess.run(["docker", "rmi", "-f", "dockyard-bench-cm"], capture_output=True)
        srv.shutdown()
        total = a.packages * a.size_kb / 1024
        print(f"{a.packages} packages, {total:.0f} MiB, served at {a.rate_kbps // 1024} MiB/s")
        print(f"{'':36} {'cold':>8} {'one dependency bumped':>22}")
        for label, cold, again in results:
            print(f"{label:36} {cold:7.1f}s {again:21.1f}s")
    finally:
        subprocess.run([*dockyard, "system", "prune", "-af"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
