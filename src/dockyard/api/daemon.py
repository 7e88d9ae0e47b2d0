"""``dockyard daemon``: the Engine API on a Unix socket, and the little state it keeps.

The daemon owns no container: monitors do (runtime/monitor.py), so containers outlive it and
the CLI can work beside it on the same store. What it holds in memory is what Docker's API
needs between requests: exec instances, attach/wait clients that arrived before the
container's start (``docker run`` attaches and waits first, then starts), and a connection
to the monitor of each container it started, to record its exit (api/exits.py).
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

from dockyard.api.exits import ExitWatcher
from dockyard.api.http import BASE_HEADERS, SERVER_NAME, ApiApp, Router
from dockyard.errors import DockyardError, Unavailable
from dockyard.httpd import Server, listen_unix

if TYPE_CHECKING:
    from dockyard.api.execs import ExecInstance
    from dockyard.engine.containers.sessions import Sessions

SOCKET_NAME = "dockyard.sock"


class Pending:
    """An attach or wait client of a container that is not running yet: the start connects
    it to the monitor before the process runs, so it misses no output and no exit."""

    def __init__(self, *, stdin: bool, stdout: bool, stderr: bool) -> None:
        self.streams = {"stdin": stdin, "stdout": stdout, "stderr": stderr}
        self.ready = threading.Event()
        self.sock: socket.socket | None = None
        self.error = ""
        self.exit_code: int | None = None  # what a failed start left in State.ExitCode

    def connect(self, sessions: Sessions, cid: str) -> None:
        try:
            self.sock = sessions.connect(cid, **self.streams)
        except DockyardError as e:
            self.error = str(e)
        self.ready.set()

    def fail(self, exit_code: int | None = None) -> None:
        """The start failed: its own answer says why (an attach stream just ends, as
        Docker's does); ``exit_code`` is what it left in State.ExitCode, for waiters."""
        self.exit_code = exit_code
        self.ready.set()


class Daemon:
    def __init__(self, root: str, run_root: str, *, debug: bool = False) -> None:
        self.root = root
        self.run_root = run_root
        self.debug = debug
        self.lock = threading.Lock()
        self.pending: dict[str, list[Pending]] = {}
        self.execs: dict[str, ExecInstance] = {}
        self.exits = ExitWatcher(root, run_root)

    # ------------------------------------------------------------ clients before a start

    def expect_start(self, cid: str, pending: Pending) -> None:
        with self.lock:
            self.pending.setdefault(cid, []).append(pending)

    def withdraw(self, cid: str, pending: Pending) -> bool:
        """Take ``pending`` back; False when a start already took it (it will be connected)."""
        with self.lock:
            waiting = self.pending.get(cid, [])
            if pending not in waiting:
                return False
            waiting.remove(pending)
            if not waiting:
                del self.pending[cid]
            return True

    def take_pending(self, cid: str) -> list[Pending]:
        with self.lock:
            return self.pending.pop(cid, [])


def router() -> Router:
    from dockyard.api import (
        build,
        containers,
        execs,
        files,
        images,
        registry,
        swarm,
        system,
        usage,
    )

    r = Router()
    # usage and registry before images: /images/prune and /images/search are no image names.
    for module in (system, usage, registry, images, containers, files, execs, build, swarm):
        r.include(module.routes)
    return r


def socket_path(address: str, run_root: str) -> str:
    """``-H unix:///path`` (or a bare path) -> the path; default ``<run-root>/dockyard.sock``."""
    if not address:
        return os.path.join(run_root, SOCKET_NAME)
    if address.startswith("unix://"):
        address = address[len("unix://") :]
    elif "://" in address:
        raise DockyardError(f"only unix:// sockets are supported, not {address!r}")
    if not address.startswith("/"):
        raise DockyardError(f"socket path must be absolute: {address!r}")
    return address


def _claim(path: str) -> None:
    """Remove a stale socket; refuse when a live daemon answers on it."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except FileNotFoundError:
        return
    except ConnectionRefusedError:
        os.unlink(path)  # nobody listens: left by a daemon that was killed
        return
    except OSError as e:
        if e.errno == errno.ENOTSOCK:
            raise Unavailable(f"{path} exists and is not a socket") from None
        raise
    finally:
        probe.close()
    raise Unavailable(f"another daemon is already serving {path}")


def serve(root: str, run_root: str, address: str = "", *, debug: bool = False) -> int:
    """Serve until SIGTERM or SIGINT, then close the connections and stop the helper
    processes this daemon started (containers go on: their monitors own them). The socket
    goes with the daemon."""
    path = socket_path(address, run_root)
    os.makedirs(os.path.dirname(path), mode=0o711, exist_ok=True)
    _claim(path)
    app = ApiApp(router(), Daemon(root, run_root, debug=debug))  # imports before the socket
    from dockyard.engine.containers.removal import delete_in_background

    delete_in_background()  # removed containers' dirs: a thread, not a fork of the daemon
    # The handlers come before the socket: a signal that arrives once it exists must not
    # kill the process with the socket file left behind.
    servers: list[Server] = []
    stop_asked: list[int] = []

    def stop(signum: int, _frame: Any) -> None:
        stop_asked.append(signum)
        for server in servers:
            server.shutdown()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    old_umask = os.umask(0o117)  # 0660 from the start, never briefly open to everyone
    try:
        listener = listen_unix(path)
    finally:
        os.umask(old_umask)
    try:
        with contextlib.suppress(KeyError, OSError):
            os.chown(path, 0, grp.getgrnam("docker").gr_gid)  # as dockerd does
        server = Server(
            listener,
            app,
            name=SERVER_NAME,
            base_headers=BASE_HEADERS,
            access_log=_log if debug else None,
        )
        servers.append(server)
        if stop_asked:
            server.shutdown()
        print(f"API listening on {path}", file=sys.stderr, flush=True)
        server.serve_forever()
    finally:
        listener.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        _stop_helpers()
    return 0


def _log(line: str) -> None:
    sys.stderr.write(f"dockyard daemon: {line}\n")


def _stop_helpers() -> None:
    """Stop the helper processes the engine started in this process (the network helper),
    which would otherwise outlive the daemon."""
    if "dockyard.engine.networks" in sys.modules:  # nothing was started without it
        from dockyard.engine.networks import stop_helpers

        stop_helpers()
