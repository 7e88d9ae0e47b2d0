"""The per-container monitor: a small long-lived process that owns one container.

Started by :func:`dockyard.runtime.attach.spawn_monitor` as
``python -I -S run_monitor.py --id ID --bundle DIR --runtime runc --runtime-root DIR
--run-dir DIR --log-path FILE [--log-driver json-file|local|none] [--log-max-size BYTES]
[--log-max-file N] [--log-compress] [--log-attrs JSON] [--tty] [--stdin] [--start]
[--ready-fd N] [--exit-command JSON]``.

It forks once more and starts a new session (so the launching CLI reaps its direct child at
once), becomes a child subreaper, runs ``runc create`` with the container's stdio pipes (or a
console socket for ``--tty``), reports ``ok <init pid>`` / ``err <code> <message>`` on the
ready fd, starts the container (``--start`` or a client's start request), then copies output
into the log (Docker's json-file or local format, rotated at ``--log-max-size``: see
runtime/logfile.py) and to attached clients until the init process exits. It then
writes ``exit.json``, tells clients the exit code, then runs the exit command (with the
monitor's pid appended).

Files in ``--run-dir``: ``monitor.pid`` (removed when the monitor is done), ``init.pid``
(runc's pid file), ``attach.sock`` (0600; removed once the container has exited),
``exit.json`` (``{"ExitCode", "FinishedAt", "Signal"}``, written atomically), ``monitor.log``
(only if the monitor itself crashed), ``console.sock`` and ``.runtime-*.log`` (briefly).

Signals sent to the monitor are not forwarded: SIGINT, SIGHUP and SIGPIPE are ignored, SIGTERM
and SIGKILL end the monitor and leave the container running as an orphan.

Attach protocol (``attach.sock``, AF_UNIX stream): the client first sends one JSON line
``{"stdin": bool, "stdout": bool, "stderr": bool, "start": bool}``, then frames with an 8-byte
header ``[type, 0, 0, 0, len (4 bytes big-endian)]`` + payload:

* monitor -> client: 1 stdout, 2 stderr (TTY output is 1), 3 exit (payload: ASCII exit code;
  the connection is closed after it), 4 error (UTF-8 message, e.g. ``runc start`` failed;
  closed after it).
* client -> monitor: 0 stdin data, 4 stdin EOF (closes the container's stdin; ignored with a
  TTY), 5 resize (``"rows cols"``), 6 signal (ASCII number, sent to the init process with
  kill(2)), 7 start request.

This module is deliberately import-light (it must run without site-packages and stay small):
only built-in modules, the low-level ``_socket``/``_json``/``_signal`` instead of their
enum-heavy wrappers, no ``subprocess``, no ``argparse``; of dockyard only runtime/logfile.py
(and dockyard/fastjson.py, its JSON scanner), which hold to the same rules (``main`` puts
the package on ``sys.path``: ``-I`` leaves it out).

Why one file of ~1,300 lines: it is one process's program. ``Monitor`` is a single poll loop
whose handlers share its state (the container's fds, the attached clients' queues, the exit
being drained), and every module the monitor imports costs each running container start-up
time and memory (it is measured as PSS against Docker's shim). What is not the loop already
lives apart and is imported only when needed: the log formats and rotation
(runtime/logfile.py), the health checks (runtime/healthcheck.py); the attach client is
runtime/attach.py.
"""

from __future__ import annotations

import _json
import _socket
import fcntl
import os
import select
import sys
import termios
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from collections.abc import Sequence

    from dockyard.runtime.healthcheck import Prober
    from dockyard.runtime.logfile import LogWriter
else:
    import _signal  # the C module behind ``signal``: same functions, no enum classes

__all__ = ["FRAME_EXIT", "main", "runtime_error"]

# Frame types (the first byte of the 8-byte header).
FRAME_STDIN = 0
FRAME_STDOUT = 1
FRAME_STDERR = 2
FRAME_EXIT = 3
FRAME_ERROR = 4  # monitor -> client
FRAME_STDIN_EOF = 4  # client -> monitor
FRAME_RESIZE = 5
FRAME_SIGNAL = 6
FRAME_START = 7

PR_SET_CHILD_SUBREAPER = 36
# While an attached client has this much unsent, the container's output is not read: the
# container waits for its slowest reader, as with Docker (nothing is dropped).
CLIENT_BUFFER_LIMIT = 4 << 20
STDIN_BUFFER_LIMIT = 1 << 20  # stop reading clients while the container does not read stdin
MAX_FRAME = 1 << 20
MAX_HEADER = 4096
LOG_PARTIAL_LIMIT = 16 * 1024  # Docker splits longer lines into partial messages, so do we
DRAIN_SECONDS = 2.0  # after the init exited: how long the output may stay silent before we stop
FLUSH_SECONDS = 30.0  # at the end: how long a client may take no data before it is dropped
EXIT_COMMAND_SECONDS = 120.0
CGROUP_REMOVE_SECONDS = 5.0
READ_SIZE = 65536

# Signals whose disposition the monitor changes; children get them back at their defaults.
_RESET_SIGNALS = (_signal.SIGINT, _signal.SIGHUP, _signal.SIGPIPE, _signal.SIGCHLD)


# --------------------------------------------------------------------------- shared helpers


class _JSONContext:
    """What ``_json.make_scanner`` reads from ``json.JSONDecoder`` (without importing json,
    which pulls in ``re``)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo: dict[str, str] = {}


_scan = _json.make_scanner(_JSONContext())  # type: ignore[arg-type]


def json_loads(text: str) -> object:
    """``json.loads`` for one JSON value (leading/trailing whitespace allowed)."""
    start = len(text) - len(text.lstrip())
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError(f"not JSON: {text[:80]!r}") from None
    if text[end:].strip():
        raise ValueError(f"extra data after JSON: {text[:80]!r}")
    return value


def _log_message(line: str) -> tuple[str, str] | None:
    """(level, msg) of one runtime log line: JSON (``--log-format json``), logfmt
    (``time=... level=error msg="..."``) or plain text."""
    line = line.strip()
    if not line:
        return None
    if line.startswith("{"):
        try:
            obj = json_loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("msg"), str):
            return str(obj.get("level", "error")), obj["msg"]
    if line.startswith("time=") and " msg=" in line:
        level = "error"
        lpos = line.find(" level=")
        if lpos >= 0:
            level = line[lpos + 7 :].split(" ", 1)[0]
        mpos = line.find(' msg="')
        if mpos >= 0:
            try:
                return level, _json.scanstring(line, mpos + 6)[0]
            except ValueError:
                pass
        return level, line[line.find(" msg=") + 5 :]
    return "error", line


def runtime_error(text: str) -> tuple[int, str]:
    """Classify an OCI runtime's error output: ``(exit code, message)``.

    127 when the container's command does not exist, 126 when it cannot be executed, 125 for
    everything else. The message is the runtime's last error line; for the command errors
    it is shortened to what Docker shows, e.g. ``exec: "nonexist": executable file not found
    in $PATH``.
    """
    messages = [m for m in map(_log_message, text.splitlines()) if m is not None]
    errors = [msg for level, msg in messages if level in ("error", "fatal", "panic")]
    msg = errors[-1] if errors else (messages[-1][1] if messages else "")
    msg = msg.strip() or "OCI runtime failed"
    low = msg.lower()
    pos = msg.find('exec: "')  # runc: ... unable to start container process: exec: "x": ...
    if pos >= 0:
        tail = msg[pos:]
        ltail = tail.lower()
        if "executable file not found" in ltail or "no such file or directory" in ltail:
            return 127, tail
        if "permission denied" in ltail or "exec format error" in ltail:
            return 126, tail
        return 125, msg
    if "executable file `" in low and "not found" in low:  # crun
        return 127, msg
    if ("open executable" in low or "exec container process" in low) and (
        "permission denied" in low
    ):  # crun
        return 126, msg
    return 125, msg


def frame(kind: int, payload: bytes) -> bytes:
    """One attach frame: ``[kind, 0, 0, 0, len (big-endian u32)] + payload``."""
    return bytes((kind, 0, 0, 0)) + len(payload).to_bytes(4, "big") + payload


def rfc3339_nano(ns: int | None = None) -> str:
    """UTC time with nanoseconds, as Docker writes it: ``2026-11-23T08:00:00.123456789Z``."""
    if ns is None:
        ns = time.time_ns()
    sec, frac = divmod(ns, 1_000_000_000)
    t = time.gmtime(sec)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{frac:09d}Z"
    )


def socket_path(directory: str, name: str) -> tuple[str, int | None]:
    """A path for a unix socket in ``directory`` that fits sun_path (108 bytes).

    Long paths go through ``/proc/<pid>/fd/<dirfd>/name`` (the returned fd must stay open
    while the path is used; the caller closes it)."""
    full = os.path.join(directory, name)
    if len(os.fsencode(full)) < 100:
        return full, None
    dfd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/{os.getpid()}/fd/{dfd}/{name}", dfd


def listen_unix(sock: _socket.socket, path: str) -> None:
    """Make the unix stream socket ``sock`` listen at ``path`` (a stale socket file there is
    replaced), reachable by its owner only (mode 0600 from the bind)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    sock.listen(64)


# --------------------------------------------------------------------------- the monitor


class Options:
    """The command line."""

    VALUES = {
        "--id": "cid",
        "--bundle": "bundle",
        "--runtime": "runtime",
        "--runtime-root": "runtime_root",
        "--run-dir": "run_dir",
        "--log-path": "log_path",
        "--log-driver": "log_driver",
        "--log-max-size": "log_max_size",
        "--log-max-file": "log_max_file",
        "--log-attrs": "log_attrs",
        "--ready-fd": "ready_fd",
        "--go-fd": "go_fd",
        "--exit-command": "exit_command",
    }
    FLAGS = {
        "--tty": "tty",
        "--stdin": "stdin",
        "--start": "start",
        "--log-compress": "log_compress",
    }

    def __init__(self, argv: Sequence[str]) -> None:
        self.cid = self.bundle = self.runtime_root = self.run_dir = self.log_path = ""
        self.runtime = "runc"
        self.log_driver = "json-file"
        self.log_max_size = 0
        self.log_max_file = 1
        self.log_compress = False
        self.log_attrs = ""
        self.ready_fd = -1
        self.go_fd = -1  # wait for one byte here before `runc create` (the bundle is ready)
        self.exit_command: list[str] = []
        self.tty = self.stdin = self.start = False
        raw: dict[str, str] = {}
        i = 0
        while i < len(argv):
            arg = argv[i]
            name, eq, value = arg.partition("=")
            if name in self.VALUES:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise ValueError(f"{name} needs a value")
                    value = argv[i]
                raw[self.VALUES[name]] = value
            elif arg in self.FLAGS:
                setattr(self, self.FLAGS[arg], True)
            else:
                raise ValueError(f"unknown argument {arg!r}")
            i += 1
        for key in (
            *("cid", "bundle", "runtime", "runtime_root", "run_dir", "log_path"),
            *("log_driver", "log_attrs"),
        ):
            if key in raw:
                setattr(self, key, raw[key])
        for key in ("log_max_size", "log_max_file"):
            if key in raw:
                setattr(self, key, int(raw[key]))
        if self.log_driver not in ("json-file", "local", "none"):
            raise ValueError(f"unknown log driver {self.log_driver!r}")
        if "ready_fd" in raw:
            self.ready_fd = int(raw["ready_fd"])
        if "go_fd" in raw:
            self.go_fd = int(raw["go_fd"])
        if raw.get("exit_command"):
            cmd = json_loads(raw["exit_command"])
            if not (isinstance(cmd, list) and all(isinstance(a, str) for a in cmd)):
                raise ValueError("--exit-command must be a JSON list of strings")
            self.exit_command = cmd
        for key in ("cid", "bundle", "runtime_root", "run_dir"):
            if not getattr(self, key):
                raise ValueError(f"--{key.replace('_', '-')} is required".replace("cid", "id"))


class Client:
    """One attach connection."""

    __slots__ = (
        "sock",
        "fd",
        "inbuf",
        "outbuf",
        "ready",
        "stdin",
        "stdout",
        "stderr",
        "handles_exit",
    )

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.ready = False  # the JSON header line has been read
        self.stdin = self.stdout = self.stderr = False
        self.handles_exit = False  # it records the exit itself (an attached `run`)


class Monitor:
    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        self.init_pid = 0
        self.started = False
        self.status: int | None = None  # wait status of the init process
        self.finished_ns = 0
        self.progress_at = 0.0  # when output last moved (read from the container or sent)
        self.error = ""  # why the container ended without running, for exit.json
        self.starter_fd = -1  # the go pipe, kept until the start: EOF means the starter died
        self.outputs: dict[int, str] = {}  # fd -> "stdout" / "stderr"
        self.partial: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self.stdin_fd: int | None = None  # our end of the container's stdin (or the pty)
        self.stdin_buf = bytearray()
        self.stdin_eof = False
        self.master: int | None = None
        self.clients: dict[int, Client] = {}
        self.listener: _socket.socket | None = None
        self.sock_dirfd: int | None = None
        self.writer: LogWriter | None = None
        self.wake_r = self.wake_w = -1
        self.port_holders: list[_socket.socket] = []
        self.health: Prober | None = None  # the container's health check, if it has one

    # ----------------------------------------------------------------- process helpers

    def spawn(self, argv: Sequence[str], stdio: tuple[int, int, int] | None = None) -> int:
        """Start ``argv`` (PATH lookup) with ``stdio`` as fds 0-2 (default /dev/null) and the
        signal dispositions and mask we changed put back."""
        fds = stdio or (self.devnull, self.devnull, self.devnull)
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds)]
        return os.posix_spawnp(
            argv[0],
            list(argv),
            os.environ,
            file_actions=actions,
            setsigdef=_RESET_SIGNALS,
            setsigmask=(),
        )

    def wait_child(self, pid: int, timeout: float | None = None) -> int | None:
        """The wait status of our child ``pid``, or None after ``timeout`` seconds. Other
        children are reaped meanwhile: a zombie of the container keeps its cgroup busy."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            while True:
                try:
                    done, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return 0
                if done == 0:
                    break
                if done == pid:
                    return status
                self.reaped(done, status)
            if deadline is None:
                wait_ms = 1000
            else:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait_ms = max(1, min(1000, int(left * 1000)))
            poller = select.poll()
            poller.register(self.wake_r, select.POLLIN)
            poller.poll(wait_ms)
            self.drain_wakeup()

    def runtime(
        self, *args: str, stdio: tuple[int, int, int] | None = None, log_errors: bool = True
    ) -> tuple[int, str]:
        """Run the OCI runtime; ``(exit code, error text from its log)``. Without
        ``log_errors`` it logs nowhere: at the end the run dir may be going already (an
        attached ``run --rm`` removes it once it has the exit code), and a runtime that
        cannot open its ``--log`` does nothing at all."""
        log = os.path.join(self.o.run_dir, f".runtime-{args[0]}.log")
        argv = [self.o.runtime, "--root", self.o.runtime_root]
        if log_errors:
            argv += ["--log", log, "--log-format", "json"]
        pid = self.spawn([*argv, *args], stdio)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        text = ""
        if not log_errors:
            return code, text
        try:
            with open(log, encoding="utf-8", errors="replace") as f:
                text = f.read()
            os.unlink(log)
        except OSError:
            pass
        return code, text

    def drain_wakeup(self) -> None:
        try:
            while os.read(self.wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def reap(self) -> None:
        """Collect every exited child (the init and anything else reparented to us)."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.reaped(pid, status)

    def reaped(self, pid: int, status: int) -> None:
        if pid == self.init_pid and self.status is None:
            self.status = status
            self.finished_ns = time.time_ns()
            self.progress_at = time.monotonic()
            if self.health is not None:
                self.health.stop()
        elif self.health is not None:
            self.health.reaped(pid, status)

    # ----------------------------------------------------------------- setup

    def report(self, line: str) -> None:
        if self.o.ready_fd >= 0:
            try:
                os.write(self.o.ready_fd, (line.replace("\n", " ") + "\n").encode())
            except OSError:
                pass
            try:
                os.close(self.o.ready_fd)
            except OSError:
                pass
            self.o.ready_fd = -1

    def fail(self, code: int, message: str) -> int:
        """Tidy the run dir, then report (so the launcher sees the final state)."""
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for name in ("attach.sock", "console.sock", "init.pid", "monitor.pid"):
            try:
                os.unlink(os.path.join(self.o.run_dir, name))
            except OSError:
                pass
        self.report(f"err {code} {message}")
        return 1

    def forget(self) -> None:
        """A cancelled early start (the container was never created): take back the run dir
        we made, if nothing else is in it, whenever we got here relative to the engine's own
        clean-up."""
        try:
            os.rmdir(self.o.run_dir)
        except OSError:
            pass

    def hold_ports(self) -> str:
        """Bind the host ports the container publishes (``ports.json``: [[proto, ip, port]])
        and keep them for the container's life, as Docker's proxy does: a port in use fails
        the start with a clear error, and nothing else can take it while we run. The kernel
        DNAT rules carry the traffic; these sockets never listen. They close with us, so a
        killed monitor frees its ports."""
        try:
            with open(os.path.join(self.o.run_dir, "ports.json")) as f:
                wanted = json_loads(f.read())
        except FileNotFoundError:
            return ""
        except (OSError, ValueError) as exc:
            return f"bad ports.json: {exc}"
        for proto, ip, port in wanted if isinstance(wanted, list) else []:
            kind = _socket.SOCK_DGRAM if proto == "udp" else _socket.SOCK_STREAM
            sock = _socket.socket(_socket.AF_INET, kind)
            tcp = kind == _socket.SOCK_STREAM
            try:
                # TCP binds with SO_REUSEADDR, as Docker's proxy does: connections that closed
                # a moment ago (TIME_WAIT) do not keep the port. The flag is cleared once
                # bound, so the port stays ours alone: Linux lets bound, non-listening
                # sockets share a port only while all of them have it set.
                if tcp:
                    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                sock.bind((ip, int(port)))
                if tcp:
                    sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 0)
            except OSError as exc:
                sock.close()
                reason = (exc.strerror or str(exc)).lower()
                return (
                    f"driver failed programming external connectivity: cannot publish "
                    f"{ip}:{port}/{proto}: listen {proto}4 {ip}:{port}: bind: {reason}"
                )
            self.port_holders.append(sock)
        return ""

    def setup_signals(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        _signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        _signal.signal(_signal.SIGCHLD, _on_sigchld)
        for sig in (_signal.SIGINT, _signal.SIGHUP, _signal.SIGPIPE):
            _signal.signal(sig, _signal.SIG_IGN)

    def listen(self) -> None:
        path, self.sock_dirfd = socket_path(self.o.run_dir, "attach.sock")
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        listen_unix(sock, path)
        sock.setblocking(False)
        self.listener = sock

    def create(self) -> int:
        """``runc create``; returns 0 or the error exit code (already reported)."""
        o = self.o
        pid_file = os.path.join(o.run_dir, "init.pid")
        try:
            os.unlink(pid_file)
        except FileNotFoundError:
            pass
        args = ["create", "--bundle", o.bundle, "--pid-file", pid_file]
        console: _socket.socket | None = None
        console_dirfd: int | None = None
        child_ends: list[int] = []
        if o.tty:
            cpath, console_dirfd = socket_path(o.run_dir, "console.sock")
            try:
                os.unlink(os.path.join(o.run_dir, "console.sock"))
            except FileNotFoundError:
                pass
            console = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            old = os.umask(0o177)
            try:
                console.bind(cpath)
            finally:
                os.umask(old)
            console.listen(1)
            args += ["--console-socket", cpath]
            stdio = (self.devnull, self.devnull, self.devnull)
        else:
            if o.stdin:
                in_r, in_w = os.pipe()
                self.stdin_fd = in_w
                child_ends.append(in_r)
            else:
                in_r = self.devnull
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            child_ends += [out_w, err_w]
            self.outputs = {out_r: "stdout", err_r: "stderr"}
            stdio = (in_r, out_w, err_w)
        args.append(o.cid)
        code, text = self.runtime(*args, stdio=stdio)
        for fd in child_ends:
            os.close(fd)
        if code != 0:
            if console is not None:
                console.close()
            return self.fail(*runtime_error(text))
        if console is not None:
            try:
                self.master = self.receive_master(console)
            finally:
                console.close()
                if console_dirfd is not None:
                    os.close(console_dirfd)
                try:
                    os.unlink(os.path.join(o.run_dir, "console.sock"))
                except OSError:
                    pass
            os.set_blocking(self.master, False)
            self.outputs = {self.master: "stdout"}
            if o.stdin:
                self.stdin_fd = self.master
        for fd in self.outputs:
            os.set_blocking(fd, False)
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)
        with open(pid_file) as f:
            self.init_pid = int(f.read().strip())
        return 0

    def receive_master(self, console: _socket.socket) -> int:
        """Accept the runtime's connection on the console socket and take the pty master it
        sends with SCM_RIGHTS."""
        console.settimeout(10.0)
        fd, _ = console._accept()  # type: ignore[attr-defined]
        conn = _socket.socket(fileno=fd)
        try:
            conn.settimeout(10.0)
            size = _socket.CMSG_SPACE(4 * 4)
            _, ancdata, _, _ = conn.recvmsg(4096, size, getattr(_socket, "MSG_CMSG_CLOEXEC", 0))
        finally:
            conn.close()
        fds: list[int] = []
        for level, kind, data in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                usable = len(data) - len(data) % 4
                fds += [int.from_bytes(data[i : i + 4], sys.byteorder) for i in range(0, usable, 4)]
        if not fds:
            raise OSError("the runtime sent no terminal on the console socket")
        for extra in fds[1:]:
            os.close(extra)
        return fds[0]

    def start(self) -> str | None:
        """``runc start``; None or the error message."""
        if self.started:
            return None
        code, text = self.runtime("start", self.o.cid)
        if code != 0:
            return runtime_error(text)[1]
        self.started = True
        self.close_starter()
        if self.health is not None and self.status is None:
            self.health.started()
        return None

    def setup_health(self) -> None:
        """The engine wrote ``healthcheck.json``: the checks run from the start (see
        runtime/healthcheck.py; imported only then, from the package this file is in)."""
        if not os.path.exists(os.path.join(self.o.run_dir, "healthcheck.json")):
            return
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        if package_root not in sys.path:
            sys.path.append(package_root)
        from dockyard.runtime.healthcheck import Prober

        def runtime_failure(text: str) -> str:
            messages = [m for m in map(_log_message, text.splitlines()) if m is not None]
            errors = [msg for level, msg in messages if level in ("error", "fatal", "panic")]
            return errors[-1] if errors else ""

        try:
            self.health = Prober(
                self.o.run_dir,
                self.o.cid,
                [self.o.runtime, "--root", self.o.runtime_root],
                lambda argv, stdio: self.spawn(argv, stdio),
                self.devnull,
                runtime_failure,
            )
        except (OSError, ValueError):
            self.health = None  # an unreadable check is not run (Docker: unknown test kind)

    # ----------------------------------------------------------------- output

    def log(self, stream: str, data: bytes, eof: bool = False) -> None:
        if self.writer is None:
            return  # --log-driver none
        buf = self.partial[stream]
        buf += data
        if not buf:
            return
        # One entry per line; a line longer than LOG_PARTIAL_LIMIT becomes several entries
        # (all but the last without "\n", as Docker's partial messages); a last line without
        # "\n" waits for more data or EOF.
        lines: list[bytes] = []
        start, size, limit = 0, len(buf), LOG_PARTIAL_LIMIT
        while start < size:
            nl = buf.find(b"\n", start, start + limit)
            if nl >= 0:
                end = nl + 1
            elif size - start >= limit:
                end = start + limit
            elif eof:
                end = size
            else:
                break
            lines.append(bytes(buf[start:end]))
            start = end
        del buf[:start]
        if lines:
            self.writer.write(stream, lines)

    def broadcast(self, kind: int, data: bytes) -> None:
        if not self.clients:
            return
        payload = frame(kind, data)
        for client in list(self.clients.values()):
            if client.ready and (client.stdout if kind == FRAME_STDOUT else client.stderr):
                self.queue(client, payload)

    def read_output(self, fd: int) -> None:
        stream = self.outputs[fd]
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # EIO: the pty has no slave left
            data = b""
        if not data:
            self.close_output(fd)
            return
        self.progress_at = time.monotonic()
        self.log(stream, data)
        self.broadcast(FRAME_STDOUT if stream == "stdout" else FRAME_STDERR, data)

    def close_output(self, fd: int) -> None:
        stream = self.outputs.pop(fd)
        if stream not in self.outputs.values():
            self.log(stream, b"", eof=True)
        if fd == self.stdin_fd:
            self.stdin_fd = None
            self.stdin_buf.clear()
        if fd == self.master:
            self.master = None
        os.close(fd)

    # ----------------------------------------------------------------- stdin

    def write_stdin(self) -> None:
        fd = self.stdin_fd
        if fd is None:
            self.stdin_buf.clear()
            return
        while self.stdin_buf:
            try:
                n = os.write(fd, self.stdin_buf)
            except BlockingIOError:
                return
            except OSError:  # EPIPE (nobody reads stdin any more) or EIO (pty gone)
                self.stdin_buf.clear()
                if fd != self.master:
                    self.close_stdin()
                return
            del self.stdin_buf[:n]
        if self.stdin_eof and fd != self.master:
            self.close_stdin()

    def close_stdin(self) -> None:
        if self.stdin_fd is not None and self.stdin_fd != self.master:
            os.close(self.stdin_fd)
        self.stdin_fd = None
        self.stdin_buf.clear()

    # ----------------------------------------------------------------- clients

    def accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                fd, _ = self.listener._accept()  # type: ignore[attr-defined]
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock = _socket.socket(fileno=fd)
            sock.setblocking(False)
            client = Client(sock)
            self.clients[client.fd] = client

    def drop(self, client: Client) -> None:
        self.clients.pop(client.fd, None)
        try:
            client.sock.close()
        except OSError:
            pass

    def queue(self, client: Client, data: bytes) -> None:
        """Send ``data`` to ``client``, or keep what it cannot take yet. Nothing is dropped:
        while a client is far behind, the loop stops reading the container's output."""
        if client.fd not in self.clients:
            return
        if not client.outbuf:
            try:
                n = client.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:  # EPIPE, ECONNRESET
                self.drop(client)
                return
            data = data[n:]
            if not data:
                return
        client.outbuf += data

    def flush(self, client: Client) -> None:
        while client.outbuf:
            try:
                n = client.sock.send(client.outbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.drop(client)
                return
            del client.outbuf[:n]
            self.progress_at = time.monotonic()

    def behind(self) -> list[Client]:
        """Clients so far behind that the container's output waits for them."""
        return [c for c in self.clients.values() if len(c.outbuf) > CLIENT_BUFFER_LIMIT]

    def read_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        client.inbuf += data
        if not client.ready:
            nl = client.inbuf.find(b"\n")
            if nl < 0:
                if len(client.inbuf) > MAX_HEADER:
                    self.drop(client)
                return
            try:
                header = json_loads(client.inbuf[:nl].decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                header = None
            if not isinstance(header, dict):
                self.drop(client)
                return
            del client.inbuf[: nl + 1]
            client.ready = True
            client.stdin = bool(header.get("stdin"))
            client.stdout = bool(header.get("stdout"))
            client.stderr = bool(header.get("stderr"))
            client.handles_exit = bool(header.get("handles_exit"))
            if header.get("start") and not self.handle_start(client):
                return
        self.handle_frames(client)

    def handle_frames(self, client: Client) -> None:
        buf = client.inbuf
        while len(buf) >= 8 and client.fd in self.clients:
            kind = buf[0]
            size = int.from_bytes(buf[4:8], "big")
            if size > MAX_FRAME:
                self.drop(client)
                return
            if len(buf) < 8 + size:
                return
            payload = bytes(buf[8 : 8 + size])
            del buf[: 8 + size]
            if kind == FRAME_STDIN:
                if client.stdin and self.stdin_fd is not None and not self.stdin_eof:
                    self.stdin_buf += payload
                    self.write_stdin()
            elif kind == FRAME_STDIN_EOF:
                if client.stdin and self.master is None and self.stdin_fd is not None:
                    self.stdin_eof = True
                    self.write_stdin()
            elif kind == FRAME_RESIZE:
                self.resize(payload)
            elif kind == FRAME_SIGNAL:
                try:
                    sig = int(payload)
                    if self.status is None and self.init_pid > 0:
                        os.kill(self.init_pid, sig)
                except (ValueError, OSError):
                    pass
            elif kind == FRAME_START and not self.handle_start(client):
                return

    def handle_start(self, client: Client) -> bool:
        """Start the container for ``client``; False if that failed (client told, dropped)."""
        if self.started or self.status is not None:
            return True
        err = self.start()
        if err is None:
            return True
        self.queue(client, frame(FRAME_ERROR, err.encode("utf-8", "replace")))
        if client.fd in self.clients:
            client.sock.setblocking(True)
            client.sock.settimeout(1.0)
            self.flush(client)
            self.drop(client)
        return False

    def resize(self, payload: bytes) -> None:
        if self.master is None:
            return
        try:
            rows, cols = (int(x) for x in payload.split())
            ws = b"".join(v.to_bytes(2, sys.byteorder) for v in (rows, cols, 0, 0))
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, ws)
        except (ValueError, OSError, OverflowError):
            pass

    # ----------------------------------------------------------------- the starter

    def read_starter(self) -> None:
        """The go pipe after the go: its writer keeps it open until it has asked for the
        start. EOF before a start means it died in between (a SIGKILLed ``run`` or daemon):
        the created container would wait for a start forever, so it is taken down."""
        try:
            data = os.read(self.starter_fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return
        self.close_starter()
        # A start request already sent is still honoured: the starter sends it before it
        # lets go of the pipe, so it is waiting on the attach socket now.
        self.accept()
        for client in list(self.clients.values()):
            self.read_client(client)
        if self.started or self.status is not None or self.init_pid <= 0:
            return
        self.error = "the container was never started: the process starting it went away"
        try:
            os.kill(self.init_pid, _signal.SIGKILL)
        except OSError:
            pass

    def close_starter(self) -> None:
        if self.starter_fd >= 0:
            os.close(self.starter_fd)
            self.starter_fd = -1

    # ----------------------------------------------------------------- main loop

    def loop(self) -> None:
        POLLIN, POLLOUT = select.POLLIN, select.POLLOUT
        health = self.health
        while True:
            self.reap()
            timeout_ms = -1
            if health is not None and self.status is None:
                health.tick()
                wait = health.wait_ms()
                if wait is not None:
                    timeout_ms = wait
            behind = self.behind()
            if self.status is not None:
                # The init is gone: read the rest of the output until every writer has
                # closed it, as long as it keeps coming (or a slow client keeps taking it).
                if not self.outputs:
                    return
                idle = time.monotonic() - self.progress_at
                limit = FLUSH_SECONDS if behind else DRAIN_SECONDS
                if idle >= limit:
                    if not behind:
                        return  # a process outside the container holds the pipe open
                    for client in behind:
                        self.drop(client)  # stuck: the rest goes to the log only
                    continue
                timeout_ms = max(1, int((limit - idle) * 1000))
            events: dict[int, int] = {self.wake_r: POLLIN}
            if not behind:
                for fd in self.outputs:
                    events[fd] = POLLIN
            if self.starter_fd >= 0:
                events[self.starter_fd] = POLLIN
            if self.stdin_buf and self.stdin_fd is not None:
                events[self.stdin_fd] = events.get(self.stdin_fd, 0) | POLLOUT
            if self.listener is not None:
                events[self.listener.fileno()] = POLLIN
            if health is not None:
                for fd in health.fds():
                    events[fd] = POLLIN
            paused = len(self.stdin_buf) > STDIN_BUFFER_LIMIT
            for client in self.clients.values():
                ev = (0 if paused else POLLIN) | (POLLOUT if client.outbuf else 0)
                if ev:
                    events[client.fd] = ev
            poller = select.poll()
            for fd, ev in events.items():
                poller.register(fd, ev)
            for fd, ev in poller.poll(timeout_ms):
                if fd == self.wake_r:
                    self.drain_wakeup()
                    continue
                if fd == self.starter_fd:
                    self.read_starter()
                    continue
                if self.listener is not None and fd == self.listener.fileno():
                    self.accept()
                    continue
                if health is not None and fd in health.fds():
                    health.readable(fd)
                    continue
                if fd in self.outputs or fd == self.stdin_fd:
                    if fd == self.stdin_fd and ev & (POLLOUT | select.POLLERR):
                        self.write_stdin()
                    if fd in self.outputs and ev & (POLLIN | select.POLLHUP | select.POLLERR):
                        self.read_output(fd)
                    continue
                peer = self.clients.get(fd)
                if peer is None:
                    continue
                if ev & POLLOUT:
                    self.flush(peer)
                if ev & (POLLIN | select.POLLHUP | select.POLLERR) and fd in self.clients:
                    self.read_client(peer)

    def finish(self) -> None:
        o = self.o
        for sock in self.port_holders:  # free the ports before anyone learns of the exit
            sock.close()
        self.port_holders = []
        for fd in list(self.outputs):
            self.close_output(fd)
        self.close_stdin()
        status = self.status or 0
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            code = 128 + sig
        else:
            sig = 0
            code = os.waitstatus_to_exitcode(status)
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        finished = rfc3339_nano(self.finished_ns or None)
        error = f', "Error": {_json.encode_basestring(self.error)}' if self.error else ""
        tmp = os.path.join(o.run_dir, f".exit.json.{os.getpid()}")
        try:
            with open(tmp, "w") as f:
                f.write(
                    f'{{"ExitCode": {code}, "FinishedAt": "{finished}", "Signal": {sig}{error}}}\n'
                )
            os.rename(tmp, os.path.join(o.run_dir, "exit.json"))
        except OSError:
            pass
        # No new clients from here on; the ones already queued get the exit code too.
        if self.listener is not None:
            try:
                os.unlink(os.path.join(o.run_dir, "attach.sock"))
            except OSError:
                pass
            self.accept()
            self.listener.close()
            self.listener = None
        exit_frame = frame(FRAME_EXIT, str(code).encode())
        handled = False
        for client in list(self.clients.values()):
            self.queue(client, exit_frame)
        # Every byte and the exit code reach every client that keeps reading, however slowly
        # (a loaded machine); one that takes nothing for FLUSH_SECONDS is given up.
        self.progress_at = time.monotonic()
        while any(c.outbuf for c in self.clients.values()):
            if time.monotonic() - self.progress_at > FLUSH_SECONDS:
                break
            poller = select.poll()
            for c in self.clients.values():
                if c.outbuf:
                    poller.register(c.fd, select.POLLOUT)
            for fd, _ in poller.poll(100):
                c2 = self.clients.get(fd)
                if c2 is not None:
                    self.flush(c2)
        for client in list(self.clients.values()):
            handled = handled or (client.handles_exit and not client.outbuf)
            try:
                client.sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
            self.drop(client)
        # Clients hear the exit code first: exit.json is written, and an attached CLI records
        # the exit itself (the engine's exit handling is idempotent) instead of waiting for a
        # second process to start. Then the runtime's state goes, off the CLI's path; if that
        # falls short, the exit command (dockyard's full release) takes over.
        if handled and not self.release_runtime():
            handled = False
        if o.exit_command and not handled:
            try:
                # + our pid: the engine tells this run's exit from a later run's (a restart).
                pid = self.spawn([*o.exit_command, str(os.getpid())])
                self.wait_child(pid, EXIT_COMMAND_SECONDS)
            except OSError:
                pass
        self.reap()
        try:
            os.unlink(os.path.join(o.run_dir, "monitor.pid"))
        except OSError:
            pass

    def release_runtime(self) -> bool:
        """Take the container's cgroups away, then the runtime's state: the order of
        dockyard.runtime.cleanup (runc's delete drops its state dir even when it could not
        remove the cgroups, and that dir is the record of what is left). False when
        something stayed."""
        o = self.o
        paths: list[str] = []
        try:
            with open(os.path.join(o.runtime_root, o.cid, "state.json")) as f:
                state = json_loads(f.read())
            if isinstance(state, dict) and isinstance(state.get("cgroup_paths"), dict):
                paths = [p for p in state["cgroup_paths"].values() if isinstance(p, str)]
        except (OSError, ValueError):
            pass
        left = paths
        deadline = time.monotonic() + CGROUP_REMOVE_SECONDS
        delay = 0.002
        while True:
            left = [p for p in left if not _rmdir(p)]
            if not left or time.monotonic() >= deadline:
                break
            # The kernel keeps a cgroup while a task is in it, zombies included: reap the
            # container's last processes (reparented to us) and kill any that linger.
            self.reap()
            for p in left:
                _kill_cgroup(p)
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        if left:
            return False
        code, _ = self.runtime("delete", "--force", o.cid, log_errors=False)
        return code == 0 and not os.path.lexists(os.path.join(o.runtime_root, o.cid))

    def run(self) -> int:
        o = self.o
        if o.ready_fd >= 0:
            os.set_inheritable(o.ready_fd, False)  # not for runc, let alone the container
        os.makedirs(o.run_dir, mode=0o700, exist_ok=True)
        for name in ("exit.json", "monitor.log"):
            try:
                os.unlink(os.path.join(o.run_dir, name))
            except FileNotFoundError:
                pass
        _write_atomic(os.path.join(o.run_dir, "monitor.pid"), f"{os.getpid()}\n")
        set_subreaper()
        self.setup_signals()
        if o.go_fd >= 0:
            # Started early so our interpreter start overlaps the engine writing the bundle
            # (``run`` starts us even before the container exists). Nothing in the container
            # dir is touched before the go: a cancelled create's clean-up may be running.
            go = os.read(o.go_fd, 1)
            if not go:
                os.close(o.go_fd)
                rc = self.fail(125, "container start cancelled")
                self.forget()
                return rc
            os.set_blocking(o.go_fd, False)
            self.starter_fd = o.go_fd
        if o.log_driver != "none" and o.log_path:
            from dockyard.runtime.logfile import LogWriter

            self.writer = LogWriter(
                o.log_path,
                driver=o.log_driver,
                max_size=o.log_max_size,
                max_file=o.log_max_file,
                compress=o.log_compress,
                attrs=o.log_attrs,
            )
        self.listen()
        busy = self.hold_ports()
        if busy:
            return self.fail(125, busy)
        self.setup_health()
        rc = self.create()
        if rc:
            return rc
        if o.start:
            err = self.start()
            if err is not None:
                try:
                    os.kill(self.init_pid, _signal.SIGKILL)
                except OSError:
                    pass
                self.wait_child(self.init_pid, 5.0)
                return self.fail(125, err)
        self.report(f"ok {self.init_pid}")
        self.loop()
        self.finish()
        return 0


def _rmdir(path: str) -> bool:
    """rmdir; True when the dir is gone."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def _kill_cgroup(path: str) -> None:
    """SIGKILL the tasks left in a cgroup of the ended container (thawed first: a frozen
    task cannot die)."""
    for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
        try:
            with open(os.path.join(path, name), "w") as f:
                f.write(value)
        except OSError:
            pass
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        try:
            os.kill(pid, _signal.SIGKILL)
        except OSError:
            pass


def _on_sigchld(signum: int, frame: object) -> None:
    """Nothing to do here: the wakeup fd gets the byte, the loop reaps."""


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def set_subreaper() -> None:
    """prctl(PR_SET_CHILD_SUBREAPER, 1): orphans below us (the container's init once
    ``runc create`` exits) are reparented to us, so we can wait for them."""
    from dockyard.libc import function

    if function("prctl")(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError("prctl(PR_SET_CHILD_SUBREAPER) failed")


def _close_others(*keep: int) -> None:
    """Close every descriptor above stderr but ``keep``: our launcher spawns us with
    posix_spawn, which passes on whatever it held without close-on-exec (a daemon's client
    connection must not live as long as the container)."""
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _detach() -> None:
    """Fork (the parent exits at once so our launcher can reap it), start a new session,
    leave the caller's cwd and stdio."""
    if os.fork():
        os._exit(0)
    os.setsid()
    os.chdir("/")
    fd = os.open("/dev/null", os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(fd, target)
    if fd > 2:
        os.close(fd)


def main(argv: Sequence[str] | None = None) -> int:
    if not __package__:  # run as a program with -I: the package is not on sys.path
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, os.path.dirname(os.path.dirname(here)))
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        opts = Options(args)
    except ValueError as exc:
        # Best effort: tell the launcher on the ready fd if we found one.
        for i, a in enumerate(args):
            if a == "--ready-fd" and i + 1 < len(args) and args[i + 1].isdigit():
                os.write(int(args[i + 1]), f"err 125 monitor: {exc}\n".encode())
        return 2
    _close_others(opts.ready_fd, opts.go_fd)
    _detach()
    monitor = Monitor(opts)
    try:
        return monitor.run()
    except BaseException as exc:  # noqa: BLE001 - last resort: record it, tell the launcher
        try:
            import traceback

            with open(os.path.join(opts.run_dir, "monitor.log"), "a") as f:
                traceback.print_exc(file=f)
        except OSError:
            pass
        monitor.report(f"err 125 monitor failed: {exc!r}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
