"""What a new volume starts with, and the container's "/" as a non-root user sees it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import CLI


def test_new_volume_starts_with_the_image_content(ctr: CLI) -> None:
    # An image whose /data holds a file owned by nobody, declared as a VOLUME.
    ctr(
        "run", "--name", "src", "--network", "none", "busybox", "sh", "-c",
        "mkdir -p /data/sub && echo seed > /data/sub/f && chown -R 65534:65534 /data "
        "&& chmod 0750 /data && ln -s /etc/passwd /data/link",
    )  # fmt: skip
    ctr("commit", "-c", "VOLUME /data", "src", "seeded:1")
    out = ctr(
        "run", "--name", "aa", "--network", "none", "seeded:1", "sh", "-c",
        "cat /data/sub/f; stat -c '%u:%g %a' /data /data/sub/f; readlink /data/link; "
        "echo mine > /data/sub/f",
    ).stdout.split("\n")  # fmt: skip
    assert out[:4] == ["seed", "65534:65534 750", "65534:65534 644", "/etc/passwd"]
    # A named volume is filled only while it is empty: the second container sees the first
    # one's write, not the image's content again.
    ctr("run", "--rm", "--network", "none", "-v", "kept:/data", "seeded:1", "sh", "-c",
        "echo mine > /data/sub/f")  # fmt: skip
    out2 = ctr("run", "--rm", "--network", "none", "-v", "kept:/data", "seeded:1",
               "cat", "/data/sub/f").stdout  # fmt: skip
    assert out2 == "mine\n"


def test_copy_up_reads_only_inside_the_container(ctr: CLI, tmp_path: Path) -> None:
    # The image's mount point is a symlink to a path that exists only on the host: the copy
    # must not read the host's directory through it.
    secret = tmp_path / "hostdir"
    secret.mkdir()
    (secret / "marker").write_text("host")
    ctr("run", "--name", "ln", "--network", "none", "busybox", "ln", "-s", str(secret), "/data")
    ctr("commit", "ln", "linked:1")
    out = ctr("run", "--rm", "--network", "none", "-v", "v1:/data", "linked:1", "ls", "-a", "/data")
    assert "marker" not in out.stdout
    assert [p.name for p in secret.iterdir()] == ["marker"]


def test_root_dir_is_traversable_by_other_users(ctr: CLI) -> None:
    out = ctr("run", "--rm", "--network", "none", "--user", "65534:65534", "busybox",
              "sh", "-c", "stat -c %a /; ls / >/dev/null && echo listed")  # fmt: skip
    assert out.stdout.split() == ["755", "listed"]
