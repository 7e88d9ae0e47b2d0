"""Tar extraction micro-benchmark: the extractor that layers, ADD, build contexts and
``docker cp`` share, timed on its own (no CLI, no store), so before/after figures of a change
to it are comparable on a busy machine.

* ``layer 100 MB, 1 file``      apply_layer of an uncompressed layer holding one 100 MB file;
* ``layer 100 MB, 10k files``   apply_layer of 10,000 files of 10 KB in 100 directories;
* ``cp in 100 MB file``         copy_to_container (``docker cp FILE CTR:/dst``);
* ``cp out 100 MB file``        extract_to_host (``docker cp CTR:/src HOSTDST``).

Usage: ``.venv/bin/python bench/unpack.py [--runs 5] [--dir /var/tmp]``. Prints min / median
/ max wall and CPU time per case; every run unpacks into a fresh directory, removed afterwards
(outside the timing). To compare with another revision, run it with ``PYTHONPATH`` pointing
at that revision's ``src`` (``git archive REV src | tar -x -C /tmp/old``).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dockyard.image.layer import apply_layer
from dockyard.runtime.fs import copy_to_container, extract_to_host

MB = 1 << 20


def _tar_of(path: Path, entries: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        dirs: set[str] = set()
        for name, data in entries:
            parent = os.path.dirname(name)
            if parent and parent not in dirs:
                dirs.add(parent)
                d = tarfile.TarInfo(parent)
                d.type, d.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(d)
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))


def _time(runs: int, work: Path, once: Callable[[Path], None]) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) seconds of each run: CPU time moves less when other
    work shares the machine."""
    wall, cpu = [], []
    for i in range(runs):
        dest = work / f"run-{i}"
        dest.mkdir()
        t0, c0 = time.perf_counter(), os.times()
        once(dest)
        c1 = os.times()
        wall.append(time.perf_counter() - t0)
        cpu.append(c1.user - c0.user + c1.system - c0.system)
        shutil.rmtree(dest)
    return wall, cpu


def _row(times: list[float]) -> str:
    return (
        f"min {min(times) * 1000:6.0f}  median {statistics.median(times) * 1000:6.0f}  "
        f"max {max(times) * 1000:6.0f} ms"
    )


def _cases(work: Path) -> dict[str, Callable[[Path], None]]:
    one, many = work / "one.tar", work / "many.tar"

    def layer(tar: Path) -> Callable[[Path], None]:
        def once(dest: Path) -> None:
            with open(tar, "rb") as f:
                apply_layer(f, str(dest))

        return once

    def cp_in(dest: Path) -> None:
        with open(one, "rb") as f:
            copy_to_container(str(dest), "/big", f)

    def cp_out(dest: Path) -> None:
        with open(one, "rb") as f:
            extract_to_host(f, str(dest / "big"))

    return {
        "layer 100 MB, 1 file": layer(one),
        "layer 100 MB, 10k files": layer(many),
        "cp in 100 MB file": cp_in,
        "cp out 100 MB file": cp_out,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--case", help=argparse.SUPPRESS)  # one case, in a process of its own
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        wall, cpu = _time(args.runs, Path(args.work), _cases(Path(args.work))[args.case])
        print(f"{args.case:24s} wall {_row(wall)}   cpu {_row(cpu)}", flush=True)
        return
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="unpack-bench-") as tmp:
        work = Path(tmp)
        _tar_of(work / "one.tar", [("big", os.urandom(MB) * 100)])
        small = os.urandom(10_000)
        _tar_of(work / "many.tar", [(f"d{i // 100:03d}/f{i:05d}", small) for i in range(10_000)])
        # A fresh interpreter per case: the allocator's state after one case (glibc raises
        # its mmap threshold after big frees) would otherwise change the next one's cost.
        for name in _cases(work):
            cmd = [sys.executable, __file__, "--case", name, "--work", tmp]
            subprocess.run([*cmd, "--runs", str(args.runs)], check=True)


if __name__ == "__main__":
    main()
