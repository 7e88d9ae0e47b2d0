"""The daemon records the exits of the containers it starts, as dockerd does from its
runtime's exit events.

Each container the daemon starts (and each one a client waits on) gets one connection to
its monitor, made with ``handles_exit`` before the process runs: one thread polls them all,
and when a monitor's exit frame comes, a recorder thread records the exit
(``Sessions.exited``). The monitor, seeing its exit taken, releases the runtime itself and
starts no exit command: that command was a whole ``dockyard`` process per container (a
seventh of the machine's CPU under 50 docker-py clients running ``containers.run``), and
a waiter (``docker run --rm`` waits for the removal) waited for it to start.

Waiters learn that the exit is recorded from :meth:`ExitWatcher.wait_recorded` instead of
re-reading the row until another process has written it. When the daemon goes, its
connections close with it and the monitors fall back to their exit commands; an exit frame
received but not recorded (the daemon killed in between) is reconciled by the next reader,
as for the CLI's attached ``run``.
"""

from __future__ import annotations

import contextlib
import queue
import select
import threading
import traceback
from typing import TYPE_CHECKING

from dockyard.engine.containers.sessions import FRAME_EXIT, take_frames
from dockyard.errors import Conflict

if TYPE_CHECKING:
    import socket

    from dockyard.engine import Engine
    from dockyard.engine.containers.sessions import Sessions

RECORDERS = 4  # exits recorded at once: a write transaction, an unmount, the --rm removal
RECORD_WAIT = 10.0  # how long a reader waits for a record before writing it itself


class ExitWatcher:
    def __init__(self, root: str, run_root: str) -> None:
        self.root = root
        self.run_root = run_root
        self._lock = threading.Lock()
        self._socks: dict[int, tuple[str, socket.socket, bytearray]] = {}  # fd -> cid, ...
        self._unrecorded: dict[str, threading.Event] = {}  # watched cid -> set once recorded
        self._exits: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._poller: select.epoll | None = None

    def watch(self, sessions: Sessions, cid: str) -> None:
        """Connect to the monitor of ``cid`` (which must run, or be held before its start)
        to record its exit; nothing when it is watched already or no longer runs."""
        with self._lock:
            if cid in self._unrecorded:
                return
            self._unrecorded[cid] = threading.Event()
        try:
            sock = sessions.connect(cid, stdin=False, stdout=False, stderr=False, handles_exit=True)
        except (Conflict, OSError):
            # Ended meanwhile, or no descriptor left: its monitor's exit command records it.
            self._recorded(cid)
            return
        sock.setblocking(False)
        with self._lock:
            if self._poller is None:
                self._start_threads()
            assert self._poller is not None
            self._socks[sock.fileno()] = (cid, sock, bytearray())
            self._poller.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)

    def wait_recorded(self, cid: str, timeout: float = RECORD_WAIT) -> bool:
        """Wait until this daemon has recorded the exit of ``cid``, which has ended (its
        exit frame or exit.json seen). False at once when it does not record that one
        (another process does, or it is done already), or after ``timeout``."""
        with self._lock:
            event = self._unrecorded.get(cid)
        return event is not None and event.wait(timeout)

    def recorded_here(self, cid: str) -> bool:
        """The daemon's engines' ``exit_recorder``: a reader that finds ``cid`` ended waits
        for this record rather than writing the same one (a second turn in the store's
        write queue, ~170 of them in 200 docker-py runs: the log follower and the wait)."""
        return self.wait_recorded(cid)

    # ------------------------------------------------------------------ threads

    def _start_threads(self) -> None:
        self._poller = select.epoll()
        threading.Thread(target=self._poll, name="exit-watcher", daemon=True).start()
        for i in range(RECORDERS):
            threading.Thread(target=self._record, name=f"exit-recorder-{i}", daemon=True).start()

    def _poll(self) -> None:
        assert self._poller is not None
        while True:
            for fd, _ in self._poller.poll():
                with self._lock:
                    entry = self._socks.get(fd)
                if entry is not None:
                    self._read(fd, *entry)

    def _read(self, fd: int, cid: str, sock: socket.socket, buf: bytearray) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        buf += data
        exited = False
        for kind, _ in take_frames(buf):
            exited = exited or kind == FRAME_EXIT
        if not data or exited:
            with self._lock:
                self._socks.pop(fd, None)
                assert self._poller is not None
                self._poller.unregister(fd)
            sock.close()
            if exited:
                self._exits.put(cid)
            else:
                # The monitor went without an exit frame (killed): a reader reconciles it.
                self._recorded(cid)

    def _record(self) -> None:
        engine: Engine | None = None
        while True:
            cid = self._exits.get()
            try:
                if engine is None:
                    from dockyard.engine import Engine

                    engine = Engine(root=self.root, run_root=self.run_root)
                engine.containers.sessions.exited(cid)
            except Exception:
                # Left to the next reader's reconciliation (the row still says running).
                with contextlib.suppress(Exception):
                    traceback.print_exc()
            finally:
                self._recorded(cid)

    def _recorded(self, cid: str) -> None:
        with self._lock:
            event = self._unrecorded.pop(cid, None)
        if event is not None:
            event.set()
