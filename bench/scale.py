"""``run -d`` of the Nth running container (the issue's figure: the 500th), side by side with
Docker: each engine first gets N-1 running ``busybox sleep`` containers on its default bridge
(``BENCH_RUNNING``, default 500), then ``run -d busybox sleep 3600`` is timed, interleaved
run by run; each timed container is removed (untimed) so every sample is the Nth. Everything
either engine gets is removed at the end. Slow to set up (minutes): run it on its own,
``./dev.sh bench run-scale``.
"""

from __future__ import annotations

import os
import time

from run import Bench, run, timed

PREFIX = "dyb-scale"


def _clean_docker() -> None:
    ids = run("docker", "ps", "-aq", "--filter", f"label={PREFIX}=1", check=False).stdout.split()
    for i in range(0, len(ids), 100):
        run("docker", "rm", "-f", *[x.decode() for x in ids[i : i + 100]], check=False)


def bench_run_scale(b: Bench, docker: bool) -> None:
    n = int(os.environ.get("BENCH_RUNNING", "500"))
    sleeper = ("run", "-d", "--label", f"{PREFIX}=1", "busybox", "sleep", "3600")
    ours_made: list[str] = []
    try:
        b.dy("image", "bootstrap", "busybox")
        if docker:
            _clean_docker()
        start = time.perf_counter()
        for _ in range(n - 1):
            ours_made.append(b.dy(*sleeper).stdout.decode().strip())
            if docker:
                run("docker", *sleeper)
        print(f"  ({n - 1} running on each engine after {time.perf_counter() - start:.0f} s)")
        ours: list[float] = []
        theirs: list[float] = []
        made: list[str] = []
        got: list[str] = []
        for _ in range(b.repeat * 2):
            ours += timed(lambda: made.append(b.dy(*sleeper).stdout.decode().strip()), 1)
            b.dy("rm", "-f", made.pop())
            if docker:
                theirs += timed(lambda: got.append(run("docker", *sleeper).stdout.decode()), 1)
                run("docker", "rm", "-f", got.pop().strip())
        b.report(f"run -d, the {n}th running container", ours, theirs if docker else None)
    finally:
        for i in range(0, len(ours_made), 100):
            b.dy("rm", "-f", *ours_made[i : i + 100])
        if docker:
            _clean_docker()
