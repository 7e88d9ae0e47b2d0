"""Benchmarks, side by side with Docker in the same run (``./dev.sh bench``).

Starts the reference Docker with ../shared/tools/anchor-docker.sh, then times each case for
both engines (interleaved where a case allows) and prints min/median/max and the ratio of
medians dockyard/docker (lower is better for dockyard); memory is PSS.
Startup cases have no Docker counterpart and print the median against the issue's budget.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKYARD = str(Path(sys.executable).parent / "dockyard")
ANCHOR = REPO.parent / "shared" / "tools" / "anchor-docker.sh"


def run(*cmd: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(cmd), check=check, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]


def timed(
    fn: Callable[[], object], repeat: int, setup: Callable[[], object] | None = None
) -> list[float]:
    out = []
    for _ in range(repeat):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


class Bench:
    def __init__(self, work: Path, repeat: int):
        self.work = work
        self.repeat = repeat
        self.root = work / "root"
        self.results: list[dict[str, object]] = []

    def dy(self, *args: str, root: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        return run(
            DOCKYARD, "--root", str(root or self.root), "--run-root", str(self.work / "run"), *args
        )

    def report(
        self, name: str, ours: list[float], theirs: list[float] | None, budget: float | None = None
    ) -> None:
        """One line per case: min/median/max of each engine (ms) and the ratio of medians."""
        m = statistics.median(ours)
        row: dict[str, object] = {
            "case": name,
            "dockyard_s": round(m, 4),
            "dockyard_min_s": round(min(ours), 4),
            "dockyard_max_s": round(max(ours), 4),
            "runs": len(ours),
        }
        line = f"{name:<44} dockyard {_spread(ours)}"
        if theirs:
            d = statistics.median(theirs)
            row.update(
                docker_s=round(d, 4),
                docker_min_s=round(min(theirs), 4),
                docker_max_s=round(max(theirs), 4),
                ratio=round(m / d, 3),
            )
            line += f"   docker {_spread(theirs)}   ratio {m / d:5.2f}"
        if budget is not None:
            row["budget_s"] = budget
            line += f"   budget {budget * 1000:.0f} ms ({'ok' if m <= budget else 'OVER'})"
        self.results.append(row)
        print(line, flush=True)


def _spread(times: list[float]) -> str:
    """min/median/max in ms."""
    ms = [t * 1000 for t in times]
    return f"{min(ms):7.1f}/{statistics.median(ms):7.1f}/{max(ms):7.1f} ms"


def bench_startup(b: Bench, docker: bool) -> None:
    b.dy("image", "bootstrap", "busybox")
    for name, args in (("dockyard --version", ["--version"]), ("dockyard images", ["images"])):
        cmd = [DOCKYARD, "--root", str(b.root), *args]
        run(*cmd)
        times = timed(lambda cmd=cmd: run(*cmd), max(b.repeat * 5, 20))
        b.report(f"startup: {name}", times, None, budget=0.060)


def make_rootfs_tar(work: Path, mb: int, *, compressible: bool = False) -> Path:
    """A root filesystem tar of one ``mb`` MB file: random bytes (nothing to compress), or
    text-like data that gzip shrinks about 4x, as real layers do (``compressible``)."""
    name = f"rootfs{mb}{'c' if compressible else ''}"
    rootfs = work / name
    rootfs.mkdir(exist_ok=True)
    with open(rootfs / "payload.bin", "wb") as f:
        for _ in range(mb):
            if compressible:
                words = os.urandom(1 << 18).hex().encode()  # hex digits: ~2x, then repeats
                f.write((words[: 1 << 19] * 2)[: 1 << 20])
            else:
                f.write(os.urandom(1 << 20))
    tar = work / f"{name}.tar"
    run("tar", "-C", str(rootfs), "-cf", str(tar), ".")
    shutil.rmtree(rootfs)
    return tar


def bench_save_load(b: Bench, docker: bool) -> None:
    tar = make_rootfs_tar(b.work, 100)
    b.dy("import", str(tar), "big:1")
    if docker:
        run("docker", "rmi", "-f", "big:1", check=False)
        run("docker", "import", str(tar), "big:1")
    ours_out, theirs_out = b.work / "dy-save.tar", b.work / "docker-save.tar"

    def rm(p: Path) -> None:
        if p.exists():
            p.unlink()

    ours = timed(lambda: b.dy("save", "-o", str(ours_out), "big:1"), b.repeat, lambda: rm(ours_out))
    theirs = (
        timed(
            lambda: run("docker", "save", "-o", str(theirs_out), "big:1"),
            b.repeat,
            lambda: rm(theirs_out),
        )
        if docker
        else None
    )
    b.report("save 100 MB image", ours, theirs)

    fresh = b.work / "fresh"

    def reset_ours() -> None:
        shutil.rmtree(fresh, ignore_errors=True)
        b.dy("image", "ls", root=fresh)  # creates the empty store outside the timing

    ours = timed(lambda: b.dy("load", "-i", str(ours_out), root=fresh), b.repeat, reset_ours)
    theirs = None
    if docker:
        theirs = timed(
            lambda: run("docker", "load", "-i", str(theirs_out)),
            b.repeat,
            lambda: run("docker", "rmi", "-f", "big:1", check=False),
        )
    b.report("load 100 MB image", ours, theirs)
    shutil.rmtree(fresh, ignore_errors=True)
    if docker:
        run("docker", "rmi", "-f", "big:1", check=False)


def interleaved(
    ours: Callable[[], object], theirs: Callable[[], object] | None, n: int
) -> tuple[list[float], list[float] | None]:
    """Alternate the two engines run by run, so drift in the machine's speed hits both."""
    a: list[float] = []
    d: list[float] = []
    for _ in range(n):
        a += timed(ours, 1)
        if theirs is not None:
            d += timed(theirs, 1)
    return a, (d if theirs is not None else None)


RUN_RM_CASE = "run --rm busybox true (default bridge)"


def bench_run_rm(b: Bench, docker: bool) -> None:
    """`run --rm busybox true` on each engine's default bridge network (both wire a veth
    endpoint), side by side; measured once per bench run (the run and network cases both
    want it)."""
    if any(r["case"] == RUN_RM_CASE for r in b.results):
        return
    b.dy("image", "bootstrap", "busybox")
    b.dy("run", "--rm", "busybox", "true")  # makes the default bridge, warms caches
    if docker:
        run("docker", "run", "--rm", "busybox", "true")
    ours, theirs = interleaved(
        lambda: b.dy("run", "--rm", "busybox", "true"),
        (lambda: run("docker", "run", "--rm", "busybox", "true")) if docker else None,
        b.repeat * 4,
    )
    b.report(RUN_RM_CASE, ours, theirs)


def bench_run(b: Bench, docker: bool) -> None:
    """`run --rm busybox true` and `exec <c> true`, side by side."""
    bench_run_rm(b, docker)

    b.dy("run", "-d", "--name", "bench-exec", "busybox", "sleep", "3600")
    if docker:
        run("docker", "rm", "-f", "bench-exec", check=False)
        run("docker", "run", "-d", "--name", "bench-exec", "busybox", "sleep", "3600")
    ours, theirs = interleaved(
        lambda: b.dy("exec", "bench-exec", "true"),
        (lambda: run("docker", "exec", "bench-exec", "true")) if docker else None,
        b.repeat * 4,
    )
    b.report("exec <c> true", ours, theirs)

    # Memory of what keeps one container alive: our monitor vs containerd-shim, as PSS
    # (shared pages counted once: the interpreter's text is shared by every monitor).
    cid = b.dy("inspect", "--format", "{{.Id}}", "bench-exec").stdout.decode().strip()
    mon = int((b.work / "run" / "containers" / cid / "monitor.pid").read_text())
    ours_kb = _pss_kb(mon)
    line = f"{'monitor PSS per container':<44} dockyard {ours_kb / 1024:9.1f} MB"
    row: dict[str, object] = {"case": "monitor PSS", "dockyard_kb": ours_kb}
    if docker:
        pid = run("docker", "inspect", "--format", "{{.State.Pid}}", "bench-exec").stdout
        shim = _parent_pid(int(pid.decode().strip()))
        theirs_kb = _pss_kb(shim)
        row.update(docker_kb=theirs_kb, ratio=round(ours_kb / theirs_kb, 3))
        line += f"   docker {theirs_kb / 1024:9.1f} MB   ratio {ours_kb / theirs_kb:5.2f}"
        run("docker", "rm", "-f", "bench-exec", check=False)
    b.results.append(row)
    print(line, flush=True)
    b.dy("rm", "-f", "bench-exec")


def _pss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _remove_work_dir(path: str) -> None:
    """`rm` leaves a container's dirs to a detached remover: retry until it is done."""
    for _ in range(100):
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            return
        time.sleep(0.1)
    print(f"left {path} behind", file=sys.stderr)


def start_docker() -> bool:
    if not ANCHOR.exists():
        print(f"no {ANCHOR}: Docker columns left empty", file=sys.stderr)
        return False
    r = subprocess.run(["bash", str(ANCHOR), "start"], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"anchor-docker failed: {r.stderr.strip()[-500:]}", file=sys.stderr)
        return False
    print(r.stdout.strip())
    return True


CASES = {"startup": bench_startup, "saveload": bench_save_load, "run": bench_run}
CASES["registry"] = lambda b, d: __import__("registry").bench_registry(b, d)  # bench/registry.py
CASES["registry-zstd"] = lambda b, d: __import__("registry").bench_registry_zstd(b, d)
CASES["hub"] = lambda b, d: __import__("hub").bench_hub(b, d)  # bench/hub.py
CASES["network"] = lambda b, d: __import__("network").bench_network(b, d)  # bench/network.py
CASES["build"] = lambda b, d: __import__("build").bench_build(b, d)  # bench/build.py
CASES["build-cold"] = lambda b, d: __import__("build").bench_build_cold(b, d)  # bench/build.py
CASES["build-daemon"] = lambda b, d: __import__("build").bench_build_daemon(b, d)
CASES["small"] = lambda b, d: __import__("small").bench_small(b, d)  # bench/small.py
CASES["small-scale"] = lambda b, d: __import__("small").bench_small_scale(b, d)
CASES["logs"] = lambda b, d: __import__("logs").bench_logs(b, d)  # bench/logs.py
CASES["stats"] = lambda b, d: __import__("stats").bench_stats(b, d)  # bench/stats.py
CASES["run-scale"] = lambda b, d: __import__("scale").bench_run_scale(b, d)  # bench/scale.py


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("cases", nargs="*", default=list(CASES), help=f"some of {list(CASES)}")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-docker", action="store_true")
    a = p.parse_args()
    docker = False if a.no_docker else start_docker()
    tmp = tempfile.mkdtemp(prefix="dockyard-bench-", dir="/var/tmp")
    try:
        b = Bench(Path(tmp), a.repeat)
        for name in a.cases:
            if name not in CASES:
                p.error(f"unknown case {name!r}: choose from {list(CASES)}")
            CASES[name](b, docker)
    finally:
        _remove_work_dir(tmp)
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(b.results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
