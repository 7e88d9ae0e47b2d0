"""Talking to a container's monitor: attach (this process's stdio, or a client that speaks
the frames itself), wait, signals, resizes, and ``run`` as one operation.

The monitor speaks Docker's stdcopy frames on ``attach.sock`` (runtime/attach.py), plus exit,
error, resize, signal and start frames. A start can hold the monitor until the clients that
want the first byte are connected: the CLI's ``run``/``start -a`` and the daemon's attach and
wait clients both go through :meth:`Sessions.start_attached`.
"""

from __future__ import annotations

import os

from dockyard.errors import DockyardError
from dockyard.runtime.attach import (
    FRAME_ERROR,
    FRAME_EXIT,
    FRAME_STDERR,
    FRAME_STDIN,
    FRAME_STDIN_EOF,
    FRAME_STDOUT,
    frame,
    take_frames,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from typing import Any

    from dockyard.engine.containers.create import Creator
    from dockyard.engine.containers.lifecycle import Lifecycle
    from dockyard.engine.containers.records import ContainerRecords
    from dockyard.engine.containers.removal import Removal
    from dockyard.model.container import Container, ContainerSpec
    from dockyard.runtime.tty import DetachMatcher as DetachMatcher
    from dockyard.store.events import Events

__all__ = [
    "FRAME_ERROR",
    "FRAME_EXIT",
    "FRAME_STDERR",
    "FRAME_STDIN",
    "FRAME_STDIN_EOF",
    "FRAME_STDOUT",
    "Sessions",
    "detach_matcher",
    "frame",
    "take_frames",
]

_FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"


def detach_matcher(keys: str) -> DetachMatcher:
    """A watcher of a client's TTY input for Docker's detach sequence (``keys`` in Docker's
    syntax, "" for the default); InvalidArgument with Docker's message for a bad one."""
    from dockyard.runtime.tty import DetachMatcher, parse_detach_keys

    return DetachMatcher(parse_detach_keys(keys or DEFAULT_DETACH_KEYS))


class Sessions:
    def __init__(
        self,
        records: ContainerRecords,
        lifecycle: Lifecycle,
        creator: Callable[[], Creator],
        removal: Callable[[], Removal],
        events: Events,
    ) -> None:
        self.records = records
        self.lifecycle = lifecycle
        self.creator = creator  # run's create and clean-up; made only when run needs them
        self.removal = removal
        self.events = events

    def attached(self, ctr: Container) -> None:
        """Docker's ``attach`` event: a client attached to the container's streams."""
        self.events.container(ctr, "attach")

    # ------------------------------------------------------------------ clients

    def connect(
        self, cid: str, *, stdin: bool, stdout: bool, stderr: bool, handles_exit: bool = False
    ) -> socket.socket:
        """A connection to the running container's monitor for a client that relays the
        frames itself (the daemon). Conflict when the container is not running.

        ``handles_exit``: the client calls :meth:`exited` once it has the exit frame, so the
        monitor starts no exit command (a whole ``dockyard`` process per container: under
        50 docker-py clients a seventh of the machine's CPU) and its exit is recorded without
        waiting for one to start."""
        from dockyard.runtime.attach import connect_session

        return connect_session(
            self.records.run_dir_of(cid),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            handles_exit=handles_exit,
        )

    def exited(self, cid: str) -> None:
        """Record the exit of ``cid``, whose exit frame a client connected with
        ``handles_exit`` received (the monitor, seeing it taken, releases the runtime's
        state itself)."""
        self.lifecycle.on_exit(cid, runtime_cleanup=False)

    def request_start(self, cid: str) -> None:
        """Let a container started with ``attach=True`` run (its clients are connected)."""
        from dockyard.runtime.attach import request_start

        request_start(self.records.run_dir_of(cid))

    def resize(self, cid: str, rows: int, cols: int) -> None:
        from dockyard.runtime.attach import send_resize

        send_resize(self.records.run_dir_of(cid), rows, cols)

    def signal(self, cid: str, signum: int) -> None:
        from dockyard.runtime.attach import send_signal

        send_signal(self.records.run_dir_of(cid), signum)

    def start_attached(self, cid: str, connect: Callable[[], None]) -> None:
        """Start ``cid`` with its monitor held, run ``connect()`` (which connects the clients
        that must see the first byte and the exit), then let the process go."""
        self.lifecycle.start(cid, attach=True)
        connect()
        self.request_start(cid)

    def attach(
        self,
        cid: str,
        *,
        stdin: bool,
        tty: bool,
        detach_keys: str,
        start: bool = False,
        sig_proxy: bool = True,
    ) -> int | None:
        """Attach this process's stdio to the container (``docker attach``, ``run``,
        ``start -a``): output copied out, stdin in, signals forwarded unless ``tty`` or not
        ``sig_proxy``, detach keys honoured. With ``start`` the held monitor is told to go
        once we are connected. Returns the container's exit code (the exit is recorded, as
        ``docker run`` does, before returning) or None when we detached."""
        # The C module under signal's own, which builds enums (~1 ms of `run`'s start-up).
        import _signal as signals  # type: ignore[import-not-found]

        from dockyard.runtime.attach import attach, send_signal

        rdir = self.records.run_dir_of(cid)
        if not start:  # run and start -a report theirs before the start
            self.attached(self.records.load(cid))
        restore = []
        if sig_proxy and not tty:

            def forward(signum: int, _frame: Any) -> None:
                try:
                    send_signal(rdir, signum)
                except (OSError, DockyardError):
                    pass

            for name in _FORWARDED:
                s = getattr(signals, name)
                restore.append((s, signals.signal(s, forward)))
        try:
            code = attach(
                rdir,
                stdin=stdin,
                tty=tty,
                start=start,
                detach_keys=detach_keys,
                handles_exit=True,
            )
        finally:
            for s, h in restore:
                signals.signal(s, h)
        if code is None:
            return None
        self.exited(cid)
        return code

    # ------------------------------------------------------------------ run

    def run(
        self,
        spec: ContainerSpec,
        *,
        detach: bool,
        detach_keys: str,
        sig_proxy: bool = True,
    ) -> tuple[str, int | None]:
        """``docker run``: create, then start detached, or attached until it exits.
        Returns (container ID, exit code; None when detached)."""
        # The container's monitor starts first: its interpreter comes up while the container
        # is created and its bundle written (start() lets it go).
        cid = os.urandom(32).hex()
        launch = self.lifecycle.launch_early(cid, spec)
        try:
            self.creator().create(spec, container_id=cid)
        except BaseException:
            if launch is not None:
                launch.cancel()
            self.lifecycle.forget_run_dir(cid)
            raise
        if not detach:
            self.attached(self.records.load(cid))
        try:
            self.lifecycle.start(cid, attach=not detach, launch=launch)
        except DockyardError:
            # Docker keeps the failed container (created, with the error) unless --rm.
            if spec.auto_remove:
                try:
                    self.removal().remove(cid, force=True)
                except DockyardError:
                    pass
            raise
        if detach:
            return cid, None
        code = self.attach(
            cid,
            stdin=spec.attach_stdin,
            tty=spec.tty,
            detach_keys=detach_keys,
            start=True,
            sig_proxy=sig_proxy,
        )
        return cid, code
