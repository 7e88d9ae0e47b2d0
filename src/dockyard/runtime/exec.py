"""``docker exec``: run a process in a running container through the OCI runtime.

In the foreground the runtime itself proxies the process's stdio, or with ``-t`` the pty it
allocates (runc puts our terminal in raw mode and forwards window size changes), so exec needs
no monitor; ``-d`` leaves the process running on its own.
"""

from __future__ import annotations

import os
import sys

from dockyard import fastjson as json  # json without re: exec is latency-critical

# Light on purpose: ``dockyard exec`` imports this module on its way to becoming ``runc exec``
# (cli/exec_fast.py), so subprocess and the runtime module are imported only by run_exec, and
# typing not at all (type checkers treat any name TYPE_CHECKING as true).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, NoReturn

    from dockyard.runtime.oci import OCIRuntime


def command_found(rootfs: str, process: dict[str, Any]) -> bool:
    """Whether the process's command is an executable file in the container's root, looked up
    like execvp with the process's PATH (symlinks resolved inside the root)."""
    from dockyard.runtime.paths import resolve_in_root

    cmd = process["args"][0]
    if "/" in cmd:
        candidates = [cmd if cmd.startswith("/") else os.path.join(process.get("cwd", "/"), cmd)]
    else:
        path = next((e[5:] for e in process.get("env", []) if e.startswith("PATH=")), "")
        candidates = [os.path.join(d or ".", cmd) for d in path.split(":")]
    for c in candidates:
        host = resolve_in_root(rootfs, c)
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return True
    return False


def exec_in_place(
    binary: str,
    state_root: str,
    cid: str,
    process: dict[str, Any],
    *,
    tty: bool,
    interactive: bool,
    detach: bool = False,
) -> NoReturn:
    """Become ``runc exec`` (``binary`` with state directory ``state_root``): its exit code is
    the process's, with no interpreter waiting and tearing down beside it. The process spec
    reaches runc through a pipe, so nothing is left on disk. Use only once the command is
    known to exist (:func:`command_found`); otherwise :func:`run_exec` maps the runtime's
    failure to Docker's 126/127.

    ``detach``: ``runc exec --detach``, which exits as soon as the process has started. The
    process gets /dev/null as stdin, stdout and stderr (Docker drops a detached exec's
    output; and a caller reading our output to its end must not wait for the process); the
    runtime's own errors still reach our stderr, through its ``--log``."""
    r, w = os.pipe()
    os.write(w, json.dumps(process).encode())  # a spec is a few KiB: fits the pipe buffer
    os.close(w)
    os.set_inheritable(r, True)
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [binary, "--root", state_root]
    if detach:
        # runc marks every fd above 2 close-on-exec before the process starts: the copy of
        # our stderr stays with runc.
        err = os.dup(2)
        argv += ["--log", f"/dev/fd/{err}"]
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
    elif not interactive:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
    argv += ["exec", "--process", f"/dev/fd/{r}"]
    if tty:
        argv.append("--tty")
    if detach:
        argv.append("--detach")
    os.execv(binary, [*argv, cid])


def run_exec(
    runtime: OCIRuntime,
    cid: str,
    process: dict[str, Any],
    run_dir: str,
    *,
    tty: bool,
    interactive: bool,
    detach: bool,
) -> int:
    """Run ``process`` in container ``cid``; its exit code (0 once started when detached)."""
    import subprocess

    if detach:
        # Returns once runc has started the process; a process that could not start gets
        # Docker's 126/127 with runc's reason, as in the foreground.
        code, failure = runtime.exec_detached(cid, process)
        if failure is not None:
            raise failure
        return code
    spec_path = os.path.join(run_dir, f"exec-{os.urandom(6).hex()}.json")
    with open(spec_path, "w") as f:
        f.write(json.dumps(process))
    try:
        proc = runtime.exec(
            cid,
            spec_path,
            tty=tty,
            stdin=0 if interactive else subprocess.DEVNULL,
            stdout=1,
            stderr=2,
        )
        code = proc.wait()
        failure = proc.runtime_error()
        if failure is not None:
            # The process never ran (not found, not executable): Docker's 127/126.
            raise failure
        return code
    finally:
        try:
            os.unlink(spec_path)
        except FileNotFoundError:
            pass
