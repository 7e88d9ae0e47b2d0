"""Start-up of the two servers: time from spawning ``dockyard daemon`` / ``dockyard hub serve``
to the first answered request (``GET /_ping`` on the Unix socket, ``GET /v2/`` on TCP), and
the time its imports take before it listens (the modules ``python -X importtime`` lists).

    .venv/bin/python bench/servers.py [--repeat N] [--against OTHER/src]

Runs both servers alternately on throw-away data and prints min / median in ms. With
``--against``, the same runs interleaved with another checkout's sources (PYTHONPATH), e.g.
an export of the commit before a change: ``git archive <commit> src | tar -x -C /tmp/old``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCKYARD = str(Path(sys.executable).parent / "dockyard")


def _answered(connect: socket.socket, address: object, request: bytes) -> bool:
    try:
        connect.settimeout(5)
        connect.connect(address)
        connect.sendall(request)
        return connect.recv(12).startswith(b"HTTP/1.1 ")
    except OSError:
        return False
    finally:
        connect.close()


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src
    return env


def _first_answer(
    argv: list[str], family: int, address: object, request: bytes, src: str | None
) -> tuple[float, float]:
    """Seconds from spawn to the first answer, and the CPU seconds the server used from its
    start to its exit after that one request (less sensitive to a loaded machine)."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(src)
    )
    try:
        while not _answered(socket.socket(family, socket.SOCK_STREAM), address, request):
            if proc.poll() is not None:
                raise SystemExit(f"{argv} exited {proc.returncode}")
            time.sleep(0.001)
        elapsed = time.perf_counter() - t
    finally:
        proc.send_signal(signal.SIGTERM)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# What each server imports before it listens (the daemon also loads its route modules).
_LOADS = {
    "daemon": "from dockyard.api import daemon; daemon.router()",
    "hub serve": "import dockyard.cli.hub, dockyard.registry.hub.server",
}


def _import_ms(code: str, src: str | None) -> tuple[float, int]:
    """Wall time of ``code``'s imports in a fresh interpreter (no -X importtime: its own
    overhead is most of what it would show), and how many modules they added."""
    probe = (
        "import sys, time; before = set(sys.modules); t = time.perf_counter(); "
        f"{code}; t = time.perf_counter() - t; print(t, len(set(sys.modules) - before))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=_env(src)
    ).stdout.split()
    return float(out[0]) * 1000, int(out[1])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--against", metavar="SRC", help="another checkout's src directory")
    a = p.parse_args()
    sources: dict[str, str | None] = {"this": None}
    if a.against:
        sources["against"] = os.path.abspath(a.against)
    work = Path(tempfile.mkdtemp(prefix="dy-bench-servers-"))
    root, run_root, data = work / "root", work / "run", work / "hub"
    sock = run_root / "dockyard.sock"
    daemon = [DOCKYARD, "--root", str(root), "--run-root", str(run_root), "daemon"]
    hub = [DOCKYARD, "hub", "serve", "-q", "--data", str(data), "--addr"]
    ping = b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"
    v2 = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n"
    times: dict[tuple[str, str], list[tuple[float, float]]] = {}
    imports: dict[tuple[str, str], list[tuple[float, int]]] = {}
    try:
        subprocess.run([*daemon, "--help"], capture_output=True, check=True)  # warm caches
        for _ in range(a.repeat):
            for label, src in sources.items():
                t = _first_answer(daemon, socket.AF_UNIX, str(sock), ping, src)
                times.setdefault(("daemon", label), []).append(t)
                port = _free_port()
                addr = ("127.0.0.1", port)
                t = _first_answer([*hub, f"127.0.0.1:{port}"], socket.AF_INET, addr, v2, src)
                times.setdefault(("hub serve", label), []).append(t)
                for name, code in _LOADS.items():
                    imports.setdefault((name, label), []).append(_import_ms(code, src))
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    # Min and median: on a shared machine the minimum is the figure least disturbed.
    print("ms (min / median)          first answer   CPU to exit   imports")
    for (name, label), values in sorted(times.items()):
        wall = [v[0] * 1000 for v in values]
        cpu = [v[1] * 1000 for v in values]
        imp = [s[0] for s in imports[(name, label)]]
        print(
            f"{name:10s} {label:8s}  {min(wall):6.1f} / {statistics.median(wall):6.1f}"
            f"  {min(cpu):5.1f} / {statistics.median(cpu):5.1f}"
            f"  {min(imp):5.1f} / {statistics.median(imp):5.1f}"
            f" ({imports[(name, label)][0][1]} modules)"
        )


if __name__ == "__main__":
    main()
