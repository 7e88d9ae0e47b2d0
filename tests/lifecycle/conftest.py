"""Container features Docker users rely on (restart policies, health checks, pause, update,
export, the default capabilities), each tested with the command as Docker's docs write it and
compared with the reference Docker where it runs here.

``docker`` runs the reference Docker CLI (the test is skipped when Docker is not running);
containers it makes are named ``dyt-<test>-...`` and removed afterwards, also on failure.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import CLI
from tests.helpers import reference_docker


class Docker:
    """The reference Docker CLI; removes the containers it was asked to name."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def name(self, what: str = "c") -> str:
        name = f"dyt-{what}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        return name

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r

    def cleanup(self) -> None:
        if self.names:
            subprocess.run(
                ["docker", "rm", "-f", *self.names], capture_output=True, timeout=120, check=False
            )


@pytest.fixture
def docker() -> Iterator[Docker]:
    if not reference_docker():
        pytest.skip("the reference Docker is not running (../shared/tools/anchor-docker.sh)")
    d = Docker()
    try:
        yield d
    finally:
        d.cleanup()


def consistent(cli: CLI) -> bool:
    """``system check`` has nothing to say about this store (other stores' bridges' rules,
    going away while their tests end, are not ours)."""
    from tests.runtime.leftovers import own_lines

    r = cli("system", "check")
    print(r.stdout, r.stderr)  # shown by pytest when the assertion fails
    return own_lines(cli, r.stdout) == [] and "store consistent" in r.stdout
