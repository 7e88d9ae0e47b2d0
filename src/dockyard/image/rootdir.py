"""Directories below a root, opened by file descriptor the way a chroot would resolve them.

The root is often a tree that someone else controls while we work in it (a running
container's filesystem), so paths are never handed to the kernel whole: each component is
opened with ``O_NOFOLLOW`` relative to the directory before it, and symlinks are read and
followed by hand, absolute targets taken from the root and ``..`` clamped at it. A symlink
swapped in after a check cannot redirect the result: what is returned was a directory
below the root when it was opened.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Callable, Sequence

from dockyard.errors import InvalidArgument

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_SYMLINKS = 40  # Linux's limit (ELOOP) for one path resolution
LOOP_MESSAGE = "too many levels of symbolic links"


def open_dir_in_root(
    root_fd: int, parts: Sequence[str], *, create: Callable[[int], None] | None = None
) -> int:
    """A new fd of directory ``parts`` below ``root_fd``, resolved as a chroot at it would.

    Raises FileNotFoundError for a missing component (unless ``create``: missing directories
    are made, mode 0700, and handed as an open fd to ``create`` to set their owner and mode),
    NotADirectoryError (``filename``: the component) for a non-directory on the way, and
    InvalidArgument for more than 40 symlinks.
    """
    stack = [os.dup(root_fd)]
    pending = deque(parts)
    links = retries = 0
    try:
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            cur = stack[-1]
            made = False
            try:
                st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            except FileNotFoundError:
                if create is None:
                    raise
                try:
                    os.mkdir(name, 0o700, dir_fd=cur)
                    made = True
                except FileExistsError:
                    pass
                st = os.stat(name, dir_fd=cur, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_SYMLINKS:
                    raise InvalidArgument(LOOP_MESSAGE)
                target = os.readlink(name, dir_fd=cur)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending.extendleft(reversed(target.split("/")))
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), name)
            try:
                fd = os.open(name, DIR_FLAGS, dir_fd=cur)
            except OSError as e:
                # Replaced between the stat and the open: look at it again.
                if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT) and retries < 100:
                    retries += 1
                    pending.appendleft(name)
                    continue
                raise
            stack.append(fd)
            if made and create is not None:
                create(fd)
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)
