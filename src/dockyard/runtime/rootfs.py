"""A container's root filesystem: an overlay of its image's snapshots under its own upper dir.

Lower dirs are passed relative to the snapshots dir (the mount call runs with that as its cwd),
so the option string stays short: ``123/fs:98/fs:...`` fits well over 100 layers in the
kernel's one-page limit for mount options.
"""

from __future__ import annotations

import _thread
import os

from dockyard.errors import DockyardError
from dockyard.libc import errno, function
from dockyard.store.mounts import detach

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

PAGE_LIMIT = 4096
_cwd_lock = _thread.allocate_lock()  # not threading's module: `run` loads this one


def overlay_options(
    lower_ids: Sequence[int], upper: str, work: str, extra_lower_top: str = ""
) -> str:
    """Options for the overlay mount; lowers are given top layer first, as overlayfs wants.
    ``extra_lower_top`` (relative to the snapshots dir) goes above the image's layers: the
    container's init layer of mount points."""
    parts = [f"{i}/fs" for i in lower_ids] or ["empty"]
    if extra_lower_top:
        parts.insert(0, extra_lower_top)
    lowers = ":".join(parts)
    opts = f"lowerdir={lowers},upperdir={upper},workdir={work}"
    if len(opts) >= PAGE_LIMIT:
        raise DockyardError(f"image has too many layers ({len(lower_ids)}) for one overlay mount")
    return opts


def mount_overlay(
    snapshots_dir: str,
    lower_ids: Sequence[int],
    upper: str,
    work: str,
    target: str,
    *,
    extra_lower_top: str = "",
) -> None:
    os.makedirs(os.path.join(snapshots_dir, "empty"), exist_ok=True)
    opts = overlay_options(lower_ids, upper, work, extra_lower_top)
    with _cwd_lock:
        old = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(snapshots_dir)
            rc = function("mount")(b"overlay", target.encode(), b"overlay", 0, opts.encode())
            err = errno()
        finally:
            os.fchdir(old)
            os.close(old)
    if rc != 0:
        raise DockyardError(f"mounting the container's root filesystem failed: {os.strerror(err)}")


def mount_tmpfs(target: str, options: str) -> None:
    """A tmpfs (nosuid, nodev, noexec, as Docker's /dev/shm) at ``target``."""
    flags = 0x2 | 0x4 | 0x8  # MS_NOSUID | MS_NODEV | MS_NOEXEC
    if function("mount")(b"shm", target.encode(), b"tmpfs", flags, options.encode()) != 0:
        err = errno()
        raise DockyardError(f"mounting a tmpfs at {target} failed: {os.strerror(err)}")


def unmount(target: str) -> None:
    """Lazy unmount (store/mounts.py ``detach``); a target that is not mounted is fine."""
    try:
        detach(target)
    except OSError as e:
        raise DockyardError(f"unmounting {target} failed: {os.strerror(e.errno or 0)}") from None


def is_mounted(target: str) -> bool:
    target = os.path.realpath(target)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)
