"""The daemon's waiter records a container's exit itself (api/streams.py ExitWaiter): the
monitor then starts no exit command. A waiter whose client leaves as the container ends
must not drop an exit the monitor counted on it for."""

from __future__ import annotations

import errno
import socket

import pytest

from dockyard.api.streams import _exit_frame_queued
from dockyard.runtime.attach import FRAME_EXIT, FRAME_STDOUT, frame


def test_an_exit_frame_already_sent_is_found_when_the_waiter_gives_up() -> None:
    monitor, waiter = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with monitor, waiter:
        monitor.sendall(frame(FRAME_STDOUT, b"late output\n") + frame(FRAME_EXIT, b"3"))
        assert _exit_frame_queued(waiter)


def test_an_exit_sent_after_the_waiter_gave_up_fails_for_the_monitor() -> None:
    """The monitor counts a handles_exit client only when its send went through: after the
    waiter has looked, the send fails (EPIPE), so the monitor runs its exit command."""
    monitor, waiter = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with monitor, waiter:
        assert not _exit_frame_queued(waiter)
        with pytest.raises(OSError) as e:
            monitor.send(frame(FRAME_EXIT, b"0"))
        assert e.value.errno == errno.EPIPE
