"""Real clients through ``dockyard daemon``, side by side with dockerd (the issue's targets):

* docker CLI ``run --rm busybox true``: median wall time, interleaved with the same command
  against dockerd (target: at most 0.5x dockerd's);
* N concurrent docker-py clients (threads, each its own DockerClient) each running M
  ``containers.run("busybox", "true", remove=True)``: refused or failed calls, throughput
  (runs/s) and p50/p99 latency of one run (targets: no failure, throughput >= 1.5x
  dockerd's, p99 <= dockerd's).

    .venv/bin/python bench/api.py [--runs 30] [--clients 50] [--per-client 10] [--only cli|load]

Starts its own daemon on a throw-away store (busybox bootstrapped from the host's
busybox-static); dockerd is the reference one (../shared/tools/anchor-docker.sh, socket
/var/run/docker.sock, busybox:latest). Prints one line per case and engine, then a JSON line.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
DOCKERD_SOCKET = "/var/run/docker.sock"


def _docker_bin() -> str:
    found = shutil.which("docker")
    if not found:
        raise SystemExit("the docker CLI is not installed")
    return found


class OurDaemon:
    """``dockyard daemon`` on a fresh store with busybox, stopped (and its store removed)
    on exit."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.root, self.run_root = work / "root", work / "run"
        self.socket = self.run_root / "dockyard.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OurDaemon:
        base = [DOCKYARD, "--root", str(self.root), "--run-root", str(self.run_root)]
        subprocess.run([*base, "image", "bootstrap", "busybox"], check=True, capture_output=True)
        self.proc = subprocess.Popen(
            [*base, "daemon"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit("dockyard daemon did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        base = [DOCKYARD, "--root", str(self.root), "--run-root", str(self.run_root)]
        ids = subprocess.run([*base, "ps", "-aq"], capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run([*base, "rm", "-f", *ids], capture_output=True)
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
        subprocess.run([*base, "network", "prune", "-f"], capture_output=True)

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"


def cli_case(ours: str, theirs: str, runs: int) -> dict[str, object]:
    """``docker run --rm busybox true``, the two engines alternating run by run."""
    docker = _docker_bin()
    times: dict[str, list[float]] = {"dockyard": [], "docker": []}
    for i in range(runs + 2):
        for name, host in (("dockyard", ours), ("docker", theirs)):
            env = {**os.environ, "DOCKER_HOST": host}
            t = time.perf_counter()
            r = subprocess.run([docker, "run", "--rm", "busybox", "true"], env=env,
                               capture_output=True)  # fmt: skip
            elapsed = time.perf_counter() - t
            if r.returncode != 0:
                raise SystemExit(f"{name}: docker run exited {r.returncode}: {r.stderr!r}")
            if i >= 2:  # the first runs warm caches (netd, page cache)
                times[name].append(elapsed)
    m_ours, m_theirs = statistics.median(times["dockyard"]), statistics.median(times["docker"])
    for name, ts in times.items():
        print(f"docker run --rm busybox true  {name:<8} min {min(ts) * 1000:7.1f} ms  "
              f"median {statistics.median(ts) * 1000:7.1f} ms  max {max(ts) * 1000:7.1f} ms  "
              f"({len(ts)} runs)")  # fmt: skip
    print(f"  ratio of medians dockyard/docker {m_ours / m_theirs:.2f} (target <= 0.5)")
    return {"case": "cli run --rm true", "dockyard_s": m_ours, "docker_s": m_theirs,
            "ratio": m_ours / m_theirs}  # fmt: skip


def load_case(url: str, clients: int, per_client: int) -> dict[str, object]:
    """``clients`` docker-py clients at once, each ``per_client`` runs with remove=True."""
    import docker

    def client_loop(_: int) -> tuple[list[float], list[str]]:
        c = docker.DockerClient(base_url=url, timeout=300)
        lat, errors = [], []
        try:
            for _ in range(per_client):
                t = time.perf_counter()
                try:
                    out = c.containers.run("busybox", ["echo", "ok"], remove=True)
                    if out != b"ok\n":
                        errors.append(f"output {out!r}")
                except Exception as e:  # a refused connection, a 5xx, a wrong exit...
                    errors.append(f"{type(e).__name__}: {e}")
                lat.append(time.perf_counter() - t)
        finally:
            c.close()
        return lat, errors

    t = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client_loop, range(clients)))
    wall = time.perf_counter() - t
    lat = sorted(x for r in results for x in r[0])
    errors = [e for r in results for e in r[1]]
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return {"runs": len(lat), "failed": len(errors), "first_errors": errors[:3],
            "wall_s": wall, "runs_per_s": len(lat) / wall, "p50_s": p50, "p99_s": p99}  # fmt: skip


def _print_load(name: str, r: dict[str, object]) -> None:
    print(f"{r['runs']} x containers.run(remove=True)  {name:<8} failed {r['failed']:3}  "
          f"{r['runs_per_s']:6.2f} runs/s  p50 {float(r['p50_s']) * 1000:7.0f} ms  "  # type: ignore[arg-type]
          f"p99 {float(r['p99_s']) * 1000:7.0f} ms")  # type: ignore[arg-type]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--per-client", type=int, default=10)
    ap.add_argument("--only", choices=("cli", "load"))
    a = ap.parse_args()
    theirs = f"unix://{DOCKERD_SOCKET}"
    with tempfile.TemporaryDirectory(prefix="dy-bench-api-") as tmp, OurDaemon(Path(tmp)) as d:
        out: list[dict[str, object]] = []
        if a.only in (None, "cli"):
            out.append(cli_case(d.url, theirs, a.runs))
        if a.only in (None, "load"):
            ours_r = load_case(d.url, a.clients, a.per_client)
            _print_load("dockyard", ours_r)
            theirs_r = load_case(theirs, a.clients, a.per_client)
            _print_load("docker", theirs_r)
            ratio = float(ours_r["runs_per_s"]) / float(theirs_r["runs_per_s"])  # type: ignore[arg-type]
            print(f"  throughput dockyard/docker {ratio:.2f} (target >= 1.5); p99 "
                  f"{float(ours_r['p99_s']) / float(theirs_r['p99_s']):.2f}x docker's "  # type: ignore[arg-type]
                  "(target <= 1)")  # fmt: skip
            out.append({"case": "docker-py load", "dockyard": ours_r, "docker": theirs_r})
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
