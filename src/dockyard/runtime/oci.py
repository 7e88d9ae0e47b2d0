"""The OCI runtime (runc, crun) driven through its command line: one subprocess per call, no
shell. Runtime failures become dockyard errors:

* the container's command does not exist -> CommandNotFound (exit 127), it exists but cannot
  be executed -> CommandNotExecutable (126), with Docker's wording, e.g.
  ``exec: "nonexist": executable file not found in $PATH``;
* an unknown container -> NotFound; a container in the wrong state -> Conflict;
* anything else -> DockyardError with the runtime's last error line.

The runtime runs with ``--log-format json``; where its stderr is the container's (``create``,
``exec``) its messages go to a temporary ``--log`` file instead, read back on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from typing import Any

from dockyard.errors import (
    CommandNotExecutable,
    CommandNotFound,
    Conflict,
    DockyardError,
    NotFound,
    Unavailable,
)
from dockyard.runtime.paths import which as _which

__all__ = ["ExecProcess", "OCIRuntime", "error_from_output"]

_NOT_FOUND = ("container does not exist", "does not exist", "no such file or directory")
_CONFLICT = (
    "not running",
    "not stopped",
    "already running",
    "has stopped",
    "already exists",
    "with id exists",
    "cannot start a container",
    "is paused",
)


def error_from_output(op: str, cid: str, text: str) -> DockyardError:
    """The dockyard error for a failed runtime ``op`` on ``cid`` from its log/stderr text."""
    # The monitor classifies runc's messages too; import it only when something failed.
    from dockyard.runtime.monitor import runtime_error

    code, msg = runtime_error(text)
    if code == 127:
        return CommandNotFound(msg)
    if code == 126:
        return CommandNotExecutable(msg)
    low = msg.lower()
    if op != "create" and any(s in low for s in _NOT_FOUND):
        return NotFound(f"No such container: {cid}")
    if any(s in low for s in _CONFLICT):
        return Conflict(f"OCI runtime {op} failed: {msg}")
    return DockyardError(f"OCI runtime {op} failed: {msg}")


def _is_missing(text: str) -> bool:
    from dockyard.runtime.monitor import runtime_error

    low = runtime_error(text)[1].lower()
    return any(s in low for s in _NOT_FOUND)


class ExecProcess(subprocess.Popen[bytes]):
    """``runc exec`` running. After it exits, :meth:`runtime_error` tells a runtime failure
    (command not found, container gone...) from the process's own exit status."""

    log_path: str = ""
    _log_text: str = ""

    def wait(self, timeout: float | None = None) -> int:
        """As Popen's; once the runtime has exited its log file is read and removed, so no
        caller (communicate() waits too) can leave it behind."""
        code = super().wait(timeout)
        if self.log_path:
            with contextlib.suppress(OSError):
                with open(self.log_path, encoding="utf-8", errors="replace") as f:
                    self._log_text = f.read()
                os.unlink(self.log_path)
            self.log_path = ""
        return code

    def runtime_error(self) -> DockyardError | None:
        """The runtime's failure, if any (waits for the runtime to exit)."""
        self.wait()
        text = self._log_text
        if not any(m in text for m in ('"level":"error"', '"level":"fatal"')):
            return None
        return error_from_output("exec", "", text)


class OCIRuntime:
    """One OCI runtime binary with one state directory (``--root``)."""

    def __init__(self, binary: str, state_root: str) -> None:
        path = _which(binary)
        if path is None:
            raise Unavailable(f"OCI runtime {binary!r} not found in PATH")
        self.binary = path
        self.state_root = os.path.abspath(state_root)

    def _argv(self, *args: str, log: str | None = None) -> list[str]:
        argv = [self.binary, "--root", self.state_root, "--log-format", "json"]
        if log is not None:
            argv += ["--log", log]
        return [*argv, *args]

    def _run(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            self._argv(*args),
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            check=False,
        )

    def _check(
        self, op: str, cid: str, *args: str, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        proc = self._run(*args, input=input)
        if proc.returncode != 0:
            raise error_from_output(op, cid, proc.stderr.decode("utf-8", "replace"))
        return proc

    def _log_file(self, op: str) -> str:
        # Not tempfile: it imports random and shutil, ~4 ms on every exec and start.
        tmp = os.environ.get("TMPDIR") or "/tmp"
        path = os.path.join(tmp, f"dockyard-{op}-{os.urandom(6).hex()}.log")
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        return path

    def create(
        self,
        cid: str,
        bundle: str,
        *,
        pid_file: str,
        console_socket: str | None = None,
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
    ) -> None:
        """``runc create``: the container's init is set up and waits for :meth:`start`.

        ``stdin``/``stdout``/``stderr`` become the container process's stdio (/dev/null when
        None); with ``console_socket`` the runtime sends a pty master there instead."""
        log = self._log_file("create")
        args = ["create", "--bundle", os.path.abspath(bundle), "--pid-file", pid_file]
        if console_socket is not None:
            args += ["--console-socket", console_socket]
        try:
            proc = subprocess.run(
                self._argv(*args, cid, log=log),
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=subprocess.DEVNULL if stdout is None else stdout,
                stderr=subprocess.DEVNULL if stderr is None else stderr,
                check=False,
            )
            if proc.returncode != 0:
                with open(log, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                raise error_from_output("create", cid, text)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(log)

    def start(self, cid: str) -> None:
        """``runc start``: run the user's process in a created container."""
        self._check("start", cid, "start", cid)

    def kill(self, cid: str, signal: int | str = "TERM", *, all_processes: bool = False) -> None:
        """``runc kill``: signal the init process (every process with ``all_processes``).
        ``signal`` is a number or a name with or without ``SIG``."""
        args = ["kill"]
        if all_processes:
            args.append("--all")
        self._check("kill", cid, *args, cid, str(signal))

    def pause(self, cid: str) -> None:
        """``runc pause``: freeze every process of the container (the freezer cgroup)."""
        self._check("pause", cid, "pause", cid)

    def resume(self, cid: str) -> None:
        """``runc resume``: thaw what :meth:`pause` froze."""
        self._check("resume", cid, "resume", cid)

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        """``runc update --resources -``: change a running container's cgroup limits
        (``resources`` in the runtime spec's ``linux.resources`` form)."""
        self._check(
            "update", cid, "update", "--resources", "-", cid, input=json.dumps(resources).encode()
        )

    def delete(self, cid: str, *, force: bool = False) -> None:
        """``runc delete``; ``force`` kills a running container first. A container the
        runtime does not know is not an error."""
        args = ["delete", "--force", cid] if force else ["delete", cid]
        proc = self._run(*args)
        if proc.returncode != 0:
            text = proc.stderr.decode("utf-8", "replace")
            if _is_missing(text):
                return
            raise error_from_output("delete", cid, text)

    def state(self, cid: str) -> dict[str, Any] | None:
        """``runc state`` as a dict (``status``: created, running, paused, stopped; ``pid``),
        or None when the runtime does not know ``cid``."""
        proc = self._run("state", cid)
        if proc.returncode != 0:
            text = proc.stderr.decode("utf-8", "replace")
            if _is_missing(text):
                return None
            raise error_from_output("state", cid, text)
        doc = json.loads(proc.stdout)
        if not isinstance(doc, dict):
            raise DockyardError(f"OCI runtime state: unexpected output for {cid}")
        return doc

    def exec(
        self,
        cid: str,
        process_json_path: str,
        *,
        tty: bool = False,
        detach: bool = False,
        console_socket: str | None = None,
        pid_file: str | None = None,
        stdin: int | None = None,
        stdout: int | None = None,
        stderr: int | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> ExecProcess:
        """Start ``runc exec --process <json>``; the caller waits for it. ``stdin``/
        ``stdout``/``stderr`` are passed to the runtime (and so to the process unless
        ``tty``); None inherits ours. The result is an :class:`ExecProcess`: after it exits,
        ``runtime_error()`` tells whether the runtime failed (e.g. CommandNotFound)."""
        log = self._log_file("exec")
        args = ["exec", "--process", process_json_path]
        if tty:
            args.append("--tty")
        if detach:
            args.append("--detach")
        if console_socket is not None:
            args += ["--console-socket", console_socket]
        if pid_file is not None:
            args += ["--pid-file", pid_file]
        try:
            proc = ExecProcess(
                self._argv(*args, cid, log=log),
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                pass_fds=pass_fds,
            )
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(log)
            raise
        proc.log_path = log
        return proc

    def exec_detached(
        self, cid: str, process: str | dict[str, Any]
    ) -> tuple[int, DockyardError | None]:
        """``runc exec --detach`` of ``process`` (a spec file's path, or the spec itself,
        which goes through a pipe: nothing on disk for a killed caller to leave). Returns
        as soon as the runtime has started the process, or failed to: the runtime's exit code
        and, when it failed, why (from its log).

        The process gets /dev/null as its stdio (Docker drops a detached exec's output). It
        must not inherit a pipe of ours: reading that to its end would mean waiting for the
        process to exit (``exec -d c sleep 4`` took 4 s)."""
        spec_fd = -1
        path = process if isinstance(process, str) else ""
        if not isinstance(process, str):
            spec_fd, w = os.pipe()
            os.write(w, json.dumps(process).encode())  # a few KiB: fits the pipe buffer
            os.close(w)
            path = f"/dev/fd/{spec_fd}"
        try:
            proc = self.exec(
                cid,
                path,
                detach=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(spec_fd,) if spec_fd >= 0 else (),
            )
        finally:
            if spec_fd >= 0:
                os.close(spec_fd)
        code = proc.wait()
        if not code:
            return 0, None
        return code, proc.runtime_error() or DockyardError(f"OCI runtime exec failed: {code}")

    def ps(self, cid: str) -> list[int]:
        """Host pids of every process in the container."""
        proc = self._check("ps", cid, "ps", "--format", "json", cid)
        doc = json.loads(proc.stdout or b"null")
        if doc is None:
            return []
        if not isinstance(doc, list):
            raise DockyardError(f"OCI runtime ps: unexpected output for {cid}")
        return [int(p) for p in doc]
