"""Networking benchmarks, side by side with Docker (``./dev.sh bench network``).

- ``run --rm busybox true`` on the default bridge (both engines wire a veth endpoint);
- 100 MB through a published port on 127.0.0.1: the container's busybox httpd serves the
  file, curl on the host downloads it (Docker: through docker-proxy, its default for
  loopback; dockyard: kernel DNAT);
- for the mechanism choice (docs/architecture.md), the same download through a userland
  proxy written in Python (what a proxy-only design would cost), informational.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from run import Bench  # bench/run.py (sys.path[0])

MB = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                if s.recv(16):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


class _Proxy:
    """A plain userland TCP proxy (thread per direction, 256 KiB buffers)."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        buf = bytearray(1 << 18)
        view = memoryview(buf)
        try:
            while n := src.recv_into(buf):
                dst.sendall(view[:n])
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


def bench_network(b: Bench, docker: bool) -> None:
    from run import bench_run_rm, run, timed  # bench/run.py (sys.path[0])

    bench_run_rm(b, docker)

    www = Path(b.work) / "www"
    www.mkdir(exist_ok=True)
    with open(www / "big", "wb") as f:
        for _ in range(MB):
            f.write(os.urandom(1 << 20))
    port = _free_port()
    b.dy(
        "run", "-d", "--name", "bench-web", "-v", f"{www}:/www", "-p", f"127.0.0.1:{port}:80",
        "busybox", "httpd", "-f", "-p", "80", "-h", "/www",
    )  # fmt: skip
    dport = 0
    if docker:
        run("docker", "rm", "-f", "bench-web", check=False)
        dport = _free_port()
        run(
            "docker", "run", "-d", "--name", "bench-web", "-v", f"{www}:/www",
            "-p", f"127.0.0.1:{dport}:80", "busybox", "httpd", "-f", "-p", "80", "-h", "/www",
        )  # fmt: skip
    try:
        _wait_http(port)
        if docker:
            _wait_http(dport)

        def fetch(p: int) -> None:
            run("curl", "-sf", "-o", "/dev/null", f"http://127.0.0.1:{p}/big")

        ip = b.dy("inspect", "-f", "{{.NetworkSettings.IPAddress}}", "bench-web").stdout
        proxy = _Proxy((ip.decode().strip(), 80))
        ours: list[float] = []
        theirs: list[float] = []
        alt: list[float] = []
        proxy_cpu = 0.0
        try:
            # Interleaved, so drift in the machine's load hits all three alike.
            for _ in range(b.repeat * 2):
                ours += timed(lambda: fetch(port), 1)
                if docker:
                    theirs += timed(lambda: fetch(dport), 1)
                cpu = time.process_time()
                alt += timed(lambda: fetch(proxy.port), 1)
                proxy_cpu += time.process_time() - cpu
        finally:
            proxy.close()
        b.report(f"{MB} MB via published port (time)", ours, theirs or None)
        b.report(f"{MB} MB via a Python userland proxy (alt.)", alt, None)
        print(
            f"{'  proxy CPU per 100 MB (DNAT: none)':<44} {proxy_cpu / len(alt) * 1000:9.1f} ms",
            flush=True,
        )
    finally:
        b.dy("rm", "-f", "bench-web")
        if docker:
            run("docker", "rm", "-f", "bench-web", check=False)
