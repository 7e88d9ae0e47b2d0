"""The helpers every test directory shares: one tar builder, one wait loop, one question
about the reference Docker, and a bare interpreter for import-list checks.

Tars: ``tar(*entries)`` takes ``TarInfo``s (no data), ``(TarInfo, data)`` or ``(name, data)``
pairs, in order; ``tar_of(files)`` makes a tar of regular files (their parent directories
added first). ``entry()`` makes a header of any kind with Docker-like defaults.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

Entry = tarfile.TarInfo | tuple[tarfile.TarInfo, bytes] | tuple[str, bytes]

SRC = str(Path(__file__).resolve().parents[1] / "src")


def entry(name: str, kind: bytes = tarfile.REGTYPE, **attrs: object) -> tarfile.TarInfo:
    """A header: ``kind`` one of tarfile's types; mode 0755 for dirs, 0644 otherwise, unless
    ``attrs`` say (linkname=, uid=, gid=, mtime=, devmajor=, pax_headers=...)."""
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    ti.mtime = 1_600_000_000
    for key, value in attrs.items():
        setattr(ti, key, value)
    return ti


def tar(*entries: Entry, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """An uncompressed tar of ``entries``, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for e in entries:
            if isinstance(e, tarfile.TarInfo):
                tf.addfile(e)
                continue
            head, data = e
            ti = head if isinstance(head, tarfile.TarInfo) else entry(head)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def tar_of(
    files: Mapping[str, bytes], *, parents: bool = True, fmt: int = tarfile.PAX_FORMAT
) -> bytes:
    """A tar holding ``files`` (sorted), each one's parent directories first when ``parents``."""
    entries: list[Entry] = []
    dirs: set[str] = set()
    for name in sorted(files):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if parents and d not in dirs:
                dirs.add(d)
                entries.append(entry(d, tarfile.DIRTYPE))
        entries.append((name, files[name]))
    return tar(*entries, fmt=fmt)


def wait_until(
    pred: Callable[[], object], timeout: float = 20.0, what: str = "condition", step: float = 0.02
) -> None:
    """Poll ``pred`` until it is true; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


@functools.cache
def reference_docker() -> bool:
    """Whether the reference Docker (``anchor-docker.sh``) answers and has busybox:latest.

    Asked once per session. A docker CLI and a socket file are not enough: CI machines have
    both with no daemon behind them, and every comparison would then fail on "Cannot connect".
    """
    if shutil.which("docker") is None:
        return False
    try:
        r = subprocess.run(
            ["docker", "image", "inspect", "busybox:latest"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


needs_docker = pytest.mark.skipif(
    not reference_docker(),
    reason="the reference Docker (anchor-docker.sh) is not running",
)


def bare_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter without ``site`` (``-S``, as the ``dockyard`` launcher
    runs), dockyard's sources on its path: what a module imports at start-up, alone."""
    return subprocess.run(
        [sys.executable, "-S", "-c", f"import sys; sys.path[:0] = [{SRC!r}]\n" + code],
        capture_output=True,
        text=True,
        timeout=60,
    )
