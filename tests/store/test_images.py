"""Images, tags, shared snapshots and Docker's rmi/prune rules, through the real CLI."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tests.conftest import CLI, add_child_image


def image_id(cli: CLI, ref: str) -> str:
    return cli("inspect", "--format", "{{.Id}}", ref).stdout.strip()


def snapshot_dirs(root: Path) -> list[str]:
    return sorted(n for n in os.listdir(root / "snapshots") if n != "tmp")


def blob_files(root: Path) -> set[str]:
    return set(os.listdir(root / "content" / "blobs" / "sha256"))


def test_inspect_has_docker_fields(bb: CLI) -> None:
    [obj] = json.loads(bb("inspect", "busybox").stdout)
    for key in ("Id", "RepoTags", "RepoDigests", "Created", "Size", "Config", "RootFS"):
        assert key in obj
    assert obj["RepoTags"] == ["busybox:latest"]
    assert obj["Id"].startswith("sha256:") and len(obj["Id"]) == 71
    assert obj["Config"]["Cmd"] == ["sh"]
    assert any(e.startswith("PATH=") for e in obj["Config"]["Env"])
    for key in ("WorkingDir", "ExposedPorts", "Volumes", "Labels", "User", "Entrypoint"):
        assert key in obj["Config"]
    assert obj["RootFS"]["Type"] == "layers" and len(obj["RootFS"]["Layers"]) == 1
    assert obj["Size"] > 500_000


def test_bootstrap_is_deterministic(bb: CLI, dy: CLI) -> None:
    dy("image", "bootstrap", "busybox")
    assert image_id(dy, "busybox") == image_id(bb, "busybox")


def test_images_table(bb: CLI) -> None:
    out = bb("images").stdout.splitlines()
    assert out[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert out[1].split()[:2] == ["busybox", "latest"]
    assert bb("images", "-q").stdout.strip() == image_id(bb, "busybox").split(":")[1][:12]


def test_rmi_of_one_of_several_tags_only_untags(bb: CLI) -> None:
    bb("tag", "busybox", "me/busybox:1.0")
    out = bb("rmi", "me/busybox:1.0").stdout
    assert out.strip() == "Untagged: me/busybox:1.0"
    assert json.loads(bb("inspect", "busybox").stdout)[0]["RepoTags"] == ["busybox:latest"]


def test_rmi_of_last_tag_deletes_image_and_layers(bb: CLI) -> None:
    iid = image_id(bb, "busybox")
    [layer] = json.loads(bb("inspect", "busybox").stdout)[0]["RootFS"]["Layers"]
    out = bb("rmi", "busybox").stdout.splitlines()
    assert out == ["Untagged: busybox:latest", f"Deleted: {iid}", f"Deleted: {layer}"]
    assert snapshot_dirs(bb.root) == []
    assert blob_files(bb.root) == set()
    assert bb("images", "-aq").stdout.strip() == ""
    assert bb("system", "check").stdout.strip().endswith("store consistent")


def test_two_images_on_one_base_store_the_base_once(bb: CLI) -> None:
    add_child_image(bb.root, "busybox", {"app/a.txt": b"a" * 5000}, "app-a:1", parent=False)
    add_child_image(bb.root, "busybox", {"app/b.txt": b"b" * 7000}, "app-b:1", parent=False)
    assert len(snapshot_dirs(bb.root)) == 3  # busybox + two small layers, base not copied
    df = bb("system", "df", "-v").stdout
    rows = [re.split(r"\s{2,}", ln) for ln in df.splitlines() if ln.startswith(("busybox", "app-"))]
    lines = {r[0] + ":" + r[1]: r for r in rows}
    # SHARED SIZE of each app image is the busybox layer; UNIQUE SIZE is its own file.
    assert lines["app-a:1"][5] == lines["busybox:latest"][4]
    assert lines["app-a:1"][6] == "5kB" and lines["app-b:1"][6] == "7kB"
    total = df.splitlines()[1].split()
    assert total[0] == "Images" and total[1] == "3"
    # rmi of one app image removes only its own layer.
    out = bb("rmi", "app-a:1").stdout.splitlines()
    assert len([ln for ln in out if ln.startswith("Deleted:")]) == 2
    assert len(snapshot_dirs(bb.root)) == 2


def test_image_with_children_is_untagged_but_kept(bb: CLI) -> None:
    base = image_id(bb, "busybox")
    child = add_child_image(bb.root, "busybox", {"x": b"x"}, "child:1")
    assert bb("rmi", "busybox").stdout.strip() == "Untagged: busybox:latest"
    # The parent stays as an intermediate image, hidden from `images` but listed by -a.
    assert base.split(":")[1][:12] not in bb("images", "-q").stdout
    assert base.split(":")[1][:12] in bb("images", "-aq").stdout
    err = bb("rmi", base, check=False)
    assert err.returncode != 0 and "image has dependent child images" in err.stderr
    # Removing the child prunes the untagged parent too, as Docker does.
    out = bb("rmi", "child:1").stdout.splitlines()
    assert f"Deleted: {child}" in out and f"Deleted: {base}" in out
    assert snapshot_dirs(bb.root) == []


def test_rmi_by_id_with_several_tags_needs_force(bb: CLI) -> None:
    bb("tag", "busybox", "other:2")
    iid = image_id(bb, "busybox")
    r = bb("rmi", iid[7:19], check=False)
    assert r.returncode == 1
    assert (
        "image is referenced in multiple repositories" in r.stderr and "must be forced" in r.stderr
    )
    out = bb("rmi", "-f", iid[7:19]).stdout.splitlines()
    assert "Untagged: busybox:latest" in out and "Untagged: other:2" in out
    assert f"Deleted: {iid}" in out


def test_rmi_conflicts_with_containers(ctr: CLI) -> None:
    iid = image_id(ctr, "busybox")
    cid = ctr("create", "busybox", "true").stdout.strip()
    r = ctr("rmi", "busybox", check=False)
    assert r.returncode == 1
    assert f"container {cid[:12]} is using its referenced image {iid[7:19]}" in r.stderr
    assert image_id(ctr, "busybox") == iid  # nothing changed
    running = ctr("run", "-d", "busybox", "sleep", "100").stdout.strip()
    r = ctr("rmi", "-f", iid, check=False)
    assert r.returncode == 1
    assert f"image is being used by running container {running[:12]}" in r.stderr
    assert image_id(ctr, "busybox") == iid


def test_image_prune_removes_dangling_only_unless_all(bb: CLI) -> None:
    add_child_image(bb.root, "busybox", {"v1": b"1"}, "app:1", parent=False)
    old = image_id(bb, "app:1")
    add_child_image(bb.root, "busybox", {"v2": b"22"}, "app:1", parent=False)  # moves the tag
    assert "<none>" in bb("images").stdout
    out = bb("image", "prune", "-f").stdout
    assert f"deleted: {old}" in out and "Total reclaimed space:" in out
    assert "<none>" not in bb("images").stdout
    assert "busybox" in bb("images").stdout
    out = bb("image", "prune", "-a", "-f").stdout
    assert "untagged: busybox:latest" in out and "untagged: app:1" in out
    assert bb("images", "-aq").stdout.strip() == ""
    assert snapshot_dirs(bb.root) == [] and blob_files(bb.root) == set()


def test_history(bb: CLI) -> None:
    add_child_image(bb.root, "busybox", {"hello.txt": b"hi"}, "app:1")
    lines = bb("history", "app:1").stdout.splitlines()
    assert lines[0].split()[:2] == ["IMAGE", "CREATED"]
    assert "COPY hello.txt /" in lines[1]
    assert "dockyard image bootstrap busybox" in lines[2]
    # The lower entry is a local image: its ID is shown instead of <missing>.
    assert lines[2].split()[0] == image_id(bb, "busybox")[7:19]
