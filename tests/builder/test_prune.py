"""``builder prune``: the build cache goes, with the images only it kept; what a tag or a
container uses stays."""

from __future__ import annotations

import os
import re

from tests.builder.conftest import Ctx, leftovers
from tests.builder.test_build import steps_run

KEEP = "FROM busybox\nRUN echo a > /a\nRUN echo b > /b\n"
FAILS = "FROM busybox\nRUN head -c 1500000 /dev/zero > /big\nRUN false\n"


def ids(ctx: Ctx) -> set[str]:
    return set(ctx.cli("images", "-aq", "--no-trunc").stdout.split())


def reclaimed(out: str) -> float:
    m = re.search(r"^Total reclaimed space: ([\d.]+)(B|kB|MB|GB)$", out, re.M)
    assert m, out
    return float(m.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]


def cache_entries(ctx: Ctx) -> list[str]:
    d = ctx.cli.root / "build" / "cache"
    return sorted(os.listdir(d)) if d.is_dir() else []


def test_prune_dangling_keeps_what_tags_and_containers_use(ctx: Ctx) -> None:
    ctx.build(KEEP, "-t", "keep")
    tagged_chain = ids(ctx)
    # a failed build leaves its successful steps (1.5 MB) as cache, kept by nothing else
    (ctx.path / "fails.Dockerfile").write_text(FAILS)
    assert ctx.build(None, "-f", str(ctx.path / "fails.Dockerfile"), check=False).returncode == 1
    failed_step = ids(ctx) - tagged_chain
    assert len(failed_step) == 1
    # an untagged build that a (stopped) container uses
    (ctx.path / "used.Dockerfile").write_text("FROM busybox\nRUN echo used > /u\n")
    used = ctx.build(None, "-q", "-f", str(ctx.path / "used.Dockerfile")).stdout.strip()
    ctx.cli("create", "--name", "user", used, "cat", "/u")
    before = cache_entries(ctx)

    r = ctx.cli("builder", "prune", "-f")
    assert r.stdout.startswith("Deleted build cache objects:\n")
    assert reclaimed(r.stdout) >= 1_500_000  # the failed build's layer
    gone = set(before) - set(cache_entries(ctx))
    assert len(gone) == 1 and gone <= set(r.stdout.split())
    assert ids(ctx) == tagged_chain | {used}
    assert ctx.run("keep", "cat", "/a", "/b") == "a\nb\n"
    assert ctx.cli("start", "-a", "user").stdout == "used\n"
    # entries of what stays are kept without -a: the rebuilds hit the cache
    assert steps_run(ctx.build(None, "-t", "keep").stdout) == []
    used_again = ctx.build(None, "-f", str(ctx.path / "used.Dockerfile")).stdout
    assert " ---> Using cache" in used_again
    # ... but the failed build's first step runs again
    again = ctx.build(None, "-f", str(ctx.path / "fails.Dockerfile"), check=False)
    assert "RUN head -c 1500000 /dev/zero > /big" in steps_run(again.stdout)
    ctx.cli("rm", "user")
    ctx.cli("system", "check")
    assert leftovers(ctx.cli) == []


def test_prune_all_then_build_misses_the_cache(ctx: Ctx) -> None:
    ctx.build(KEEP, "-t", "keep")
    chain = ids(ctx)
    assert len(cache_entries(ctx)) == 2
    r = ctx.cli("builder", "prune", "-a", "-f")
    assert r.stdout.startswith("Deleted build cache objects:\n") and cache_entries(ctx) == []
    # images a tag keeps (the intermediate ones with it) are never removed
    assert ids(ctx) == chain
    assert ctx.run("keep", "cat", "/a") == "a\n"
    assert ctx.cli("builder", "prune", "-af").stdout == "Total reclaimed space: 0B\n"
    rebuilt = ctx.build(None, "-t", "keep")
    assert "Using cache" not in rebuilt.stdout
    assert steps_run(rebuilt.stdout) == ["RUN echo a > /a", "RUN echo b > /b"]
    assert steps_run(ctx.build(None, "-t", "keep").stdout) == []  # cached again
    ctx.cli("system", "check")


def test_prune_until_spares_recent_entries(ctx: Ctx) -> None:
    ctx.build(KEEP, "-t", "keep")
    r = ctx.cli("builder", "prune", "-af", "--filter", "until=1h")
    assert r.stdout == "Total reclaimed space: 0B\n"
    assert len(cache_entries(ctx)) == 2
    # entries last used two hours ago are older than "until=1h30m"
    cache = ctx.cli.root / "build" / "cache"
    old = os.stat(cache).st_mtime - 7200
    first = cache_entries(ctx)[0]
    os.utime(cache / first, (old, old))
    r = ctx.cli("builder", "prune", "-af", "--filter", "until=1h30m")
    assert r.stdout.splitlines()[:2] == ["Deleted build cache objects:", first]
    assert len(cache_entries(ctx)) == 1


def test_prune_bad_filters(ctx: Ctx) -> None:
    ctx.build(KEEP, "-t", "keep")
    before = cache_entries(ctx)
    r = ctx.cli("builder", "prune", "-f", "--filter", "label=x", check=False)
    assert (r.returncode, r.stderr) == (
        1,
        "Error: failed to prune build cache: Invalid filter 'label'\n",
    )
    r = ctx.cli("builder", "prune", "-f", "--filter", "until=soon", check=False)
    assert r.returncode == 1
    assert "\"until\" filter expects a duration (e.g., '24h')" in r.stderr
    assert cache_entries(ctx) == before
