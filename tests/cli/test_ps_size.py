"""``ps -s`` / ``ps --size`` (Docker's docs: "docker ps --size"): each container's writable
layer and, in parentheses, that plus its image ("virtual"), as Docker prints them; beside
Docker's own output for the same commands."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from dockyard.units import human_size
from tests.conftest import CLI
from tests.helpers import needs_docker


def _sizes(table: str) -> dict[str, str]:
    """NAMES -> SIZE of a ``ps -s`` table (SIZE is the last column, NAMES the one before)."""
    lines = table.splitlines()
    start, size_at = lines[0].index("NAMES"), lines[0].index("SIZE")
    return {line[start:size_at].strip(): line[size_at:].strip() for line in lines[1:]}


def _make(run: Callable[..., object]) -> None:
    run("run", "-d", "--name", "dysz", "busybox", "sleep", "100")
    run("exec", "dysz", "sh", "-c", "head -c 3000 /dev/zero > /big")
    run("create", "--name", "dysz2", "busybox", "true")


def test_ps_size_shows_the_writable_layer_and_the_image(ctr: CLI) -> None:
    _make(ctr)
    image = int(ctr("image", "inspect", "-f", "{{.Size}}", "busybox").stdout)
    want = {
        "dysz": f"3kB (virtual {human_size(image + 3000)})",
        "dysz2": f"0B (virtual {human_size(image)})",
    }
    assert _sizes(ctr("ps", "-as").stdout) == want
    assert _sizes(ctr("ps", "--all", "--size").stdout) == want
    assert ctr("ps", "-s", "--format", "{{.Names}} {{.Size}}").stdout == f"dysz {want['dysz']}\n"
    assert "SIZE" not in ctr("ps", "-a").stdout  # only when asked: it walks each layer


@needs_docker
def test_ps_size_as_docker_prints_it(ctr: CLI) -> None:
    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], check=True, capture_output=True, text=True)

    subprocess.run(["docker", "rm", "-f", "dysz", "dysz2"], capture_output=True)
    try:
        _make(docker)
        theirs = _sizes(docker("ps", "-as", "--filter", "name=dysz").stdout)
        their_image = int(docker("image", "inspect", "-f", "{{.Size}}", "busybox").stdout)
    finally:
        subprocess.run(["docker", "rm", "-f", "dysz", "dysz2"], capture_output=True)
    _make(ctr)
    ours = _sizes(ctr("ps", "-as").stdout)
    image = int(ctr("image", "inspect", "-f", "{{.Size}}", "busybox").stdout)
    # Both busybox images may differ in size: the image's part is compared through each's own.
    for name, text in theirs.items():
        expected = text.replace(human_size(their_image), human_size(image))
        expected = expected.replace(human_size(their_image + 3000), human_size(image + 3000))
        assert ours[name] == expected, (name, ours, theirs)
