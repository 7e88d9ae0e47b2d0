"""``dockyard events``: the journal every dockyard process writes, read back by time and
filter, and followed while other processes work; beside Docker's own events for the same
commands when the reference Docker runs here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from dockyard.store.events import Events
from dockyard.store.journal import HOUR_NS
from tests.conftest import BIN, CLI, terminate
from tests.helpers import reference_docker, wait_until

DOCKER = reference_docker()


def now() -> str:
    return f"{time.time():.9f}"


def events_json(cli: CLI, since: str, until: str, *flags: str) -> list[dict[str, object]]:
    out = cli("events", "--since", since, "--until", until, "--format", "{{json .}}", *flags)
    return [json.loads(line) for line in out.stdout.splitlines()]


def actions(evs: list[dict[str, object]]) -> list[str]:
    return [f"{e['Type']} {e['Action']}" for e in evs]


# A container's life through the everyday commands, as Docker reports it (checked below
# against Docker 20.10 itself when it runs).
LIFE = [
    "volume create",
    "network create",
    "volume create",  # Docker reports the named volume's "create" again at the container's
    "container create",
    "container attach",
    "network connect",
    "volume mount",
    "container start",
    "container die",
    "network disconnect",
    "volume unmount",
    "container rename",
    "container destroy",
    "network destroy",
    "volume destroy",
]


def life(run: callable, name: str) -> None:  # type: ignore[valid-type]
    run("volume", "create", f"{name}-vol")
    run("network", "create", f"{name}-net")
    run("run", "--name", name, "-l", "team=ev", "-v", f"{name}-vol:/data",
        "--network", f"{name}-net", "busybox", "sh", "-c", "exit 3")  # fmt: skip
    run("rename", name, f"{name}2")
    run("rm", f"{name}2")
    run("network", "rm", f"{name}-net")
    run("volume", "rm", f"{name}-vol")


def test_events_since_until_show_a_containers_life(ctr: CLI) -> None:
    t0 = now()
    life(lambda *a: ctr(*a, check=False), "evlife")
    t1 = now()
    evs = events_json(ctr, t0, t1)
    assert actions(evs) == LIFE
    create = evs[3]
    assert create["status"] == "create" and create["from"] == "busybox"
    actor = create["Actor"]
    assert isinstance(actor, dict)
    assert actor["Attributes"] == {"team": "ev", "image": "busybox", "name": "evlife"}
    die = evs[8]["Actor"]
    assert isinstance(die, dict) and die["Attributes"]["exitCode"] == "3"
    rename = evs[11]["Actor"]
    assert isinstance(rename, dict) and rename["Attributes"]["oldName"] == "/evlife"
    # The default line: local time, type, action, actor, sorted attributes.
    line = ctr("events", "--since", t0, "--until", t1, "--filter", "event=die").stdout
    assert line.endswith(
        f" container die {create['id']} (exitCode=3, image=busybox, name=evlife, team=ev)\n"
    )
    # Only events in the window.
    assert ctr("events", "--since", t1, "--until", now()).stdout == ""
    # `--since 0` is the epoch, not "unset": every recorded event, then it follows (Docker's
    # daemon tells a zero time from an absent one).
    follower = subprocess.Popen(
        [str(BIN), "--root", str(ctr.root), "--run-root", str(ctr.run_root), "events",
         "--since", "0", "--format", "{{json .}}"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert follower.stdout is not None
        got: list[object] = []
        reader = threading.Thread(
            target=lambda: got.extend(json.loads(follower.stdout.readline()) for _ in evs),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(timeout=60)
    finally:
        terminate(follower)
    assert got == evs


@pytest.mark.skipif(not DOCKER, reason="the reference Docker is not running")
def test_a_containers_life_is_reported_as_docker_reports_it(ctr: CLI) -> None:
    name = f"dyev{uuid.uuid4().hex[:8]}"

    def docker(*args: str) -> None:
        subprocess.run(["docker", *args], capture_output=True, timeout=120)

    t0 = now()
    try:
        life(docker, name)
    finally:
        for args in (["rm", "-f", name, f"{name}2"], ["network", "rm", f"{name}-net"],
                     ["volume", "rm", f"{name}-vol"]):  # fmt: skip
            subprocess.run(["docker", *args], capture_output=True)
    t1 = now()
    theirs = subprocess.run(
        ["docker", "events", "--since", t0, "--until", t1, "--format", "{{json .}}"],
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    mine = [json.loads(x) for x in theirs if name in x]
    t2 = now()
    life(lambda *a: ctr(*a, check=False), name)
    ours = events_json(ctr, t2, now())
    assert actions(ours) == actions(mine)
    for o, t in zip(ours, mine, strict=True):
        assert list(o) == list(t)  # the same fields, in the same order
        oa, ta = o["Actor"], t["Actor"]
        assert isinstance(oa, dict) and isinstance(ta, dict)
        assert sorted(oa["Attributes"]) == sorted(ta["Attributes"]), o["Action"]


def test_a_follower_sees_another_process_run_a_container(ctr: CLI) -> None:
    follower = subprocess.Popen(
        [str(BIN), "--root", str(ctr.root), "--run-root", str(ctr.run_root), "events",
         "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}}"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        time.sleep(0.5)  # (it reads only what comes after it started)
        ctr("run", "--rm", "--name", "seen", "busybox", "true")
        lines: list[str] = []
        assert follower.stdout is not None
        while len(lines) < 5:
            lines.append(follower.stdout.readline().strip())
    finally:
        terminate(follower)
    assert lines == ["create seen", "attach seen", "start seen", "die seen", "destroy seen"]


def test_filters(ctr: CLI) -> None:
    t0 = now()
    ctr("run", "--name", "fa", "-l", "tier=web", "busybox", "true")
    ctr("run", "--name", "fb", "busybox", "true")
    ctr("tag", "busybox", "evimg:1")
    t1 = now()

    def got(*flags: str) -> list[str]:
        return [f"{a} {n}" for a, n in (
            line.split(" ", 1) for line in ctr(
                "events", "--since", t0, "--until", t1,
                "--format", "{{.Action}} {{.Actor.Attributes.name}}", *flags
            ).stdout.splitlines()
        )]  # fmt: skip

    assert got("--filter", "event=die") == ["die fa", "die fb"]
    assert got("--filter", "container=fa", "--filter", "event=start") == ["start fa"]
    assert got("--filter", "label=tier=web", "--filter", "event=create") == ["create fa"]
    assert got("--filter", "label=tier", "--filter", "event=create") == ["create fa"]
    assert got("--filter", "type=image") == ["tag evimg:1"]
    assert got("--filter", "image=evimg", "--filter", "type=image") == ["tag evimg:1"]
    assert got("--filter", "event=create", "--filter", "event=destroy") == [
        "create fa",
        "create fb",
    ]
    # busybox's containers and image events both match image=busybox, as in Docker.
    assert "die fb" in got("--filter", "image=busybox")
    assert got("--filter", "type=network", "--filter", "event=create") == []


def test_bad_input_is_refused_with_dockers_words(ctr: CLI) -> None:
    cases = [
        (["--since", "foo"], 'failed to parse value as time or duration: "foo"'),
        (["--until", "2026-13-01"], 'parsing time "2026-13-01": month out of range'),
        (
            ["--filter", "foo"],
            'invalid argument "foo" for "-f, --filter" flag: bad format '
            "of filter (expected name=value)",
        ),  # fmt: skip
        (
            ["--since", "1796375174", "--until", "1796375169"],
            "`since` time (1796375174) cannot be after `until` time (1796375169)",
        ),  # fmt: skip
        (["--until", "1", "--format", "{{.Nope"], "template: :1: unclosed action"),
    ]
    for flags, message in cases:
        r = ctr("events", *flags, check=False)
        assert (r.returncode, r.stdout, r.stderr) == (125, "", f"Error: {message}\n"), flags


def test_concurrent_writers_lose_no_line(tmp_path: Path) -> None:
    """Many processes appending at once: every event is whole and none is missing."""
    script = (
        "import sys\nfrom dockyard.store.events import Events\n"
        "e = Events(sys.argv[1])\n"
        "for i in range(300):\n"
        "    e.emit('container', 'x', f'{sys.argv[2]}-{i}', {'pad': 'p' * (i % 900)})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(n)]) for n in range(6)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    evs = list(Events(str(tmp_path)).read(since=1))
    assert len(evs) == 1800
    assert {e["id"] for e in evs} == {f"{n}-{i}" for n in range(6) for i in range(300)}


def test_since_reads_only_the_segments_it_needs(tmp_path: Path) -> None:
    """An old hour's segment is not read at all by a --since in the last minute."""
    events = Events(str(tmp_path))
    events.emit("container", "create", "recent")
    old = time.time_ns() // HOUR_NS - 3
    line = json.dumps({"Type": "container", "Action": "x", "timeNano": old * HOUR_NS}) + "\n"
    (tmp_path / "events" / f"{old}.jsonl").write_text(line * 200_000)  # ~15 MB
    rchar = _rchar()
    got = list(events.read(since=time.time_ns() - 60_000_000_000))
    assert [e["id"] for e in got] == ["recent"]
    assert _rchar() - rchar < 1_000_000
    assert len(list(events.read(since=old * HOUR_NS))) == 200_001


def test_old_segments_go_when_a_new_one_starts(tmp_path: Path) -> None:
    events = Events(str(tmp_path))
    os.makedirs(tmp_path / "events")
    stale = time.time_ns() // HOUR_NS - 24 * 8
    (tmp_path / "events" / f"{stale}.jsonl").write_text("{}\n")
    events.emit("volume", "create", "v")
    assert not (tmp_path / "events" / f"{stale}.jsonl").exists()


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")


def test_follow_ends_at_until_in_the_future(ctr: CLI) -> None:
    until = f"{time.time() + 2:.0f}"
    proc = subprocess.Popen(
        [str(BIN), "--root", str(ctr.root), "--run-root", str(ctr.run_root), "events",
         "--until", until, "--format", "{{.Action}}"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        ctr("volume", "create", "during")
        out, _ = proc.communicate(timeout=60)  # it returns by itself once `until` passed
    finally:
        terminate(proc)
    assert out == "create\n"
    wait_until(lambda: proc.returncode == 0, timeout=5)
