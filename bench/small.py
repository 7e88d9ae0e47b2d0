"""Small commands side by side with Docker: inspect, image inspect, ps, ps -a, images, port,
version, volume ls, network ls, create, system df, image prune (nothing to prune), each
interleaved run by run with ``docker``.

``small``: a store of today's size (a few running and created containers, a few hundred tags).
``small-scale``: the sizes the issue names (1,000 created containers, 5,000 tags), where a
cost that grows with the store shows. Our store is filled through the engine in-process (a
CLI call per tag would take minutes); Docker's through its CLI. Everything either engine gets
is removed at the end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from run import DOCKYARD, Bench, interleaved, run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

PREFIX = "dyb-small"  # every name this module gives, on both engines
PUBLISH = ("-p", "127.0.0.1::80")  # a port for `port` to print (any free one, each engine)

FILL = """
import sys
from dockyard.engine import Engine
from dockyard.model.container import ContainerSpec
root, run_root, prefix, created, tags = sys.argv[1:6]
e = Engine(root=root, run_root=run_root)
for i in range(int(created)):
    e.containers.create(ContainerSpec("busybox", cmd=("true",), name=f"{prefix}-c{i}"))
for i in range(int(tags)):
    e.images.tag("busybox", f"{prefix}-t{i}:latest")
e.close()
"""


def _fill_ours(b: Bench, created: int, tags: int) -> None:
    subprocess.run(
        [
            str(Path(DOCKYARD).with_name("python")),
            "-c",
            FILL,
            str(b.root),
            str(b.work / "run"),
            PREFIX,
            str(created),
            str(tags),
        ],
        check=True,
    )


def _fill_docker(created: int, tags: int) -> None:
    for i in range(created):
        run("docker", "create", "--name", f"{PREFIX}-c{i}", "busybox", "true")
    for i in range(tags):
        run("docker", "tag", "busybox", f"{PREFIX}-t{i}:latest")


def _clean_docker() -> None:
    names = run("docker", "ps", "-aq", "--filter", f"name={PREFIX}", check=False).stdout.split()
    if names:
        run("docker", "rm", "-f", *[n.decode() for n in names], check=False)
    refs = run(
        "docker", "images", "--format", "{{.Repository}}:{{.Tag}}", check=False
    ).stdout.split()
    mine = [r.decode() for r in refs if r.decode().startswith(PREFIX)]
    for i in range(0, len(mine), 200):
        run("docker", "rmi", *mine[i : i + 200], check=False)


def _cases(b: Bench) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    def both(*args: str) -> tuple[Callable[[], object], Callable[[], object]]:
        theirs = [a.replace("@", f"{PREFIX}-") for a in args]
        return (lambda: b.dy(*[a.replace("@", f"{PREFIX}-") for a in args])), (
            lambda: run("docker", *theirs)
        )

    # A label nothing has: "nothing to prune" without touching anyone's dangling images.
    nothing = ("image", "prune", "-f", "--filter", f"label={PREFIX}-none")
    cases = [
        ("inspect <container>", *both("inspect", "@up")),
        ("image inspect busybox", *both("image", "inspect", "busybox")),
        ("ps", *both("ps")),
        ("ps -a", *both("ps", "-a")),
        ("images", *both("images")),
        ("system df", *both("system", "df")),
        ("image prune (nothing to prune)", *both(*nothing)),
        ("port <container>", *both("port", "@up")),
        ("version", *both("version")),
        ("volume ls", *both("volume", "ls")),
        ("network ls", *both("network", "ls")),
    ]
    made: list[str] = []

    def create_ours() -> None:
        made.append(b.dy("create", "busybox", "true").stdout.decode().strip())

    def create_theirs() -> None:
        out = run("docker", "create", "--label", f"{PREFIX}=1", "busybox", "true").stdout
        made.append(out.decode().strip())

    cases.append(("create busybox true", create_ours, create_theirs))
    return cases


def _measure(b: Bench, docker: bool, suffix: str) -> None:
    for name, ours, theirs in _cases(b):
        a, d = interleaved(ours, theirs if docker else None, b.repeat * 4)
        b.report(f"{name}{suffix}", a, d)


def _setup(b: Bench, docker: bool, created: int, tags: int) -> None:
    b.dy("image", "bootstrap", "busybox")
    b.dy("run", "-d", "--name", f"{PREFIX}-up", *PUBLISH, "busybox", "sleep", "3600")
    _fill_ours(b, created, tags)
    if docker:
        _clean_docker()
        run("docker", "run", "-d", "--name", f"{PREFIX}-up", *PUBLISH, "busybox", "sleep", "3600")
        _fill_docker(created, tags)


def _teardown(b: Bench, docker: bool) -> None:
    b.dy("rm", "-f", f"{PREFIX}-up")
    if docker:
        _clean_docker()
        leftovers = run("docker", "ps", "-aq", "--filter", f"label={PREFIX}=1", check=False)
        ids = leftovers.stdout.decode().split()
        if ids:
            run("docker", "rm", "-f", *ids, check=False)


def bench_small(b: Bench, docker: bool) -> None:
    """Today's store: one running container, 20 created, 100 tags."""
    try:
        _setup(b, docker, created=20, tags=100)
        _measure(b, docker, "")
    finally:
        _teardown(b, docker)


def bench_small_scale(b: Bench, docker: bool) -> None:
    """The issue's sizes: 1,000 created containers and 5,000 tags (filling takes minutes)."""
    try:
        _setup(b, docker, created=1000, tags=5000)
        _measure(b, docker, " [1,000 ctrs, 5,000 tags]")
    finally:
        _teardown(b, docker)


if __name__ == "__main__":
    print("run through bench/run.py: small, small-scale", file=sys.stderr)
