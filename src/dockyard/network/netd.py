"""netd: a small long-lived helper that forks network sandboxes with pyroute2 already loaded.

Loading pyroute2's netlink message classes costs a new process ~20-25 ms of CPU, and a
container start has only two cores to share between the CLI, the monitor's interpreter,
``runc create`` and the sandbox. netd pays it once: it listens on ``<run-root>/netd.sock``
(0600), and for each connection forks a child that runs the sandbox helper
(:func:`dockyard.network.sandbox._helper`) over that connection: it reads one JSON request line
(veths, firewall batch, embedded DNS), answers its pid, then ``n`` / ``k`` / ``e<message>``
exactly as the forked helper does, and exits when the engine closes the connection (after
naming the container's init, which the embedded DNS server then follows).

It is started on demand by the first start that finds no socket (that start uses an ordinary
forked helper), holds ``netd.lock`` so only one runs per run root, and exits after
``IDLE_SECONDS`` without a request. Nothing depends on it: without it, starts fork their own.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys

TYPE_CHECKING = False  # typing is not imported on the start path
if TYPE_CHECKING:
    import subprocess

    from dockyard.runtime.leftovers import Process, Scan

IDLE_SECONDS = 300.0
CHECK_SECONDS = 10.0  # how often an idle netd checks that its socket is still its own


def paths(run_root: str) -> tuple[str, str, str]:
    """(socket, lock, pid file) of the run root's netd."""
    return tuple(os.path.join(run_root, n) for n in ("netd.sock", "netd.lock", "netd.pid"))  # type: ignore[return-value]


# The netd processes this process started: a long-lived one (the API daemon) stops them when
# it stops (stop_started), and reaps those that ended on their own.
_started: list[subprocess.Popen[bytes]] = []


def spawn(sock_path: str) -> None:
    """Start netd for the run root of ``sock_path`` in the background (best effort)."""
    import subprocess

    _started[:] = [p for p in _started if p.poll() is None]
    run_root = os.path.dirname(sock_path)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "dockyard.network.netd", run_root],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )
    except OSError:
        return
    _started.append(proc)


def stop_started(timeout: float = 5.0) -> None:
    """Stop (SIGTERM, then SIGKILL after ``timeout``) the netd processes this process
    started. The next container start forks its own sandbox helper and starts a new netd."""
    import subprocess

    for proc in _started:
        if proc.poll() is None:
            proc.terminate()
    for proc in _started:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _started.clear()


def stop(run_root: str) -> None:
    """Stop the run root's netd, if one runs (tests; ``system`` tooling)."""
    _, _, pid_file = paths(run_root)
    try:
        with open(pid_file) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"dockyard.network.netd" not in f.read():
                return
        os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


def _serve_one(conn: socket.socket) -> int:
    from dockyard.network.sandbox import Endpoint, _helper

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the helper waits for iptables-restore
    line = b""
    while not line.endswith(b"\n"):
        chunk = conn.recv(65536)
        if not chunk:
            return 1
        line += chunk
    request = json.loads(line)
    endpoints = [Endpoint(*e) for e in request["veths"]]
    dns = None
    if request.get("dns"):
        from dockyard.network.embedded_dns import DNSConfig

        names, upstreams, ndots_set = request["dns"]
        dns = DNSConfig(str(names), tuple(upstreams), bool(ndots_set))
    conn.sendall(f"{os.getpid()}\n".encode())
    fd = conn.fileno()
    return _helper(endpoints, str(request.get("firewall") or ""), fd, fd, dns)


def serve(run_root: str) -> int:
    import fcntl

    sock_path, lock_path, pid_file = paths(run_root)
    os.makedirs(run_root, mode=0o700, exist_ok=True)
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another netd serves this run root
    # Preload what every sandbox needs, so the forked children start warm.
    import ctypes  # noqa: F401
    import ipaddress  # noqa: F401
    import subprocess  # noqa: F401

    from dockyard.network import sandbox  # noqa: F401
    from dockyard.network.netlink import _msg

    _msg("ifinfmsg")
    from dockyard.runtime.monitor import listen_unix

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listen_unix(listener, sock_path)
    with open(pid_file, "w") as f:
        f.write(f"{os.getpid()}\n")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(0)  # select() would resume after a handler that returns

    signal.signal(signal.SIGTERM, on_term)
    ident = os.stat(sock_path).st_ino
    try:
        idle = 0.0
        while idle < IDLE_SECONDS:
            ready, _, _ = select.select([listener], [], [], CHECK_SECONDS)
            if not ready:
                idle += CHECK_SECONDS
                try:
                    if os.stat(sock_path).st_ino != ident:
                        return 0  # our socket was replaced or the run root removed: retire
                except OSError:
                    return 0
                continue
            idle = 0.0
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the sandbox helper
                code = 1
                try:
                    listener.close()
                    os.close(lock)  # the next netd must not wait for our helpers
                    signal.signal(signal.SIGTERM, signal.SIG_DFL)
                    code = _serve_one(conn)
                except BaseException:  # noqa: BLE001 - the engine sees the closed connection
                    pass
                finally:
                    os._exit(code)
            conn.close()
    finally:
        # Unlink first (if still ours): a client that connects now gets ENOENT and forks its
        # own helper.
        try:
            if os.stat(sock_path).st_ino == ident:
                os.unlink(sock_path)
                os.unlink(pid_file)
        except OSError:
            pass
        listener.close()
    return 0


def leftovers(scan: Scan, procs: list[Process]) -> None:
    """For ``system check``: a network helper's files with no helper, and helpers that no
    longer serve (runtime/leftovers.py's scan calls this over the same process list)."""
    from functools import partial

    from dockyard.runtime.leftovers import GRACE_SECONDS, remove_files, terminate

    sock, _, pid_file = paths(scan.run_root)
    try:
        with open(pid_file) as f:
            serving = int(f.read().strip() or 0)
    except (OSError, ValueError):
        serving = 0
    # A netd leads its own session; its forks (sandbox helpers) live in it while they serve a
    # start or a build step, and end with their connection.
    netds = [
        p
        for p in procs
        if __name__ in p.argv
        and p.argv[-1] in (scan.run_root, scan.run_root + "/")
        and p.session == p.pid
    ]
    if (os.path.lexists(pid_file) or os.path.lexists(sock)) and not netds:
        scan.add("files of a network helper that is gone", partial(remove_files, [sock, pid_file]))
    for p in netds:
        if p.pid != serving and p.age >= GRACE_SECONDS:
            scan.add(f"network helper {p.pid} that no longer serves", partial(terminate, p.pid))


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1]))
