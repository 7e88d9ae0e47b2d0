"""Streams as clients see them through ``dockyard daemon``: the docker CLIs (Debian's 20.10
and the newest installed) and docker-py, each compared with the same command against the
reference Docker where it runs: exit codes and start failures, exec framing, detach keys,
logs since/until/tail/timestamps/follow, wait conditions, resize."""

from __future__ import annotations

import concurrent.futures
import fcntl
import os
import select
import struct
import subprocess
import termios
import threading
import time

import docker
import pytest

from tests.api.conftest import DOCKER_CLIS, Daemon, Reference
from tests.helpers import reference_docker, wait_until

CLIS = pytest.mark.parametrize("cli_bin", list(DOCKER_CLIS.values()), ids=list(DOCKER_CLIS))
MISSING = (
    "failed to create shim task: OCI runtime create failed: runc create failed: unable to "
    'start container process: exec: "nosuchcmd": executable file not found in $PATH: unknown'
)


class Terminal:
    """A program with a pty as its controlling terminal, as in a user's shell."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 30, cols: int = 100):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.buf = b""

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, needle: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not seen; got {self.buf[-500:]!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {needle!r}; got {self.buf[-500:]!r}")
                self.buf += chunk
        out, _, self.buf = self.buf.partition(needle)
        return out + needle

    def rest(self) -> bytes:
        """What the program writes until it closes the terminal."""
        while True:
            r, _, _ = select.select([self.master], [], [], 20)
            if not r:
                return self.buf
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return self.buf
            if not chunk:
                return self.buf
            self.buf += chunk

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the client hung; it wrote {self.buf[-300:]!r}") from None
        finally:
            os.close(self.master)


def _docker_env(host: str, config: str = "") -> dict[str, str]:
    env = {**os.environ, "DOCKER_HOST": host, "TERM": "xterm"}
    env.pop("DOCKER_CONTEXT", None)
    if config:
        env["DOCKER_CONFIG"] = config
    return env


# ---------------------------------------------------------------- exit codes


@CLIS
def test_run_rm_exit_code(api: Daemon, cli_bin: str) -> None:
    for _ in range(10):
        r = api.docker("run", "--rm", "busybox", "sh", "-c", "echo out; exit 3", binary=cli_bin)
        assert (r.returncode, r.stdout) == (3, "out\n"), r.stderr
    assert api.container_rows() == []


@pytest.mark.slow
def test_run_rm_exit_code_200_sequential(api: Daemon) -> None:
    wrong = []
    for i in range(200):
        r = api.docker("run", "--rm", "busybox", "sh", "-c", "exit 3")
        if r.returncode != 3 or r.stderr:
            wrong.append((i, r.returncode, r.stderr))
    assert wrong == []
    assert api.container_rows() == []


@pytest.mark.slow
def test_run_rm_exit_code_4x50_parallel(api: Daemon) -> None:
    def loop(_: int) -> list[tuple[int, str]]:
        bad = []
        for _ in range(50):
            r = api.docker("run", "--rm", "busybox", "sh", "-c", "exit 3")
            if r.returncode != 3 or r.stderr:  # e.g. "invalid byte in chunk length": 125
                bad.append((r.returncode, r.stderr))
        return bad

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        wrong = [b for bad in pool.map(loop, range(4)) for b in bad]
    assert wrong == []
    assert api.container_rows() == []


@CLIS
def test_run_missing_command(api: Daemon, cli_bin: str) -> None:
    """``docker run busybox nosuchcmd``: 127, Docker's message, the container left created
    with ExitCode 127 and the error; with --rm nothing is left, and no client hangs."""
    ref = Reference(cli_bin) if reference_docker() else None
    for name in ("dy-missing", None):
        flags = ["--name", name] if name else ["--rm"]
        ours = api.docker("run", *flags, "busybox", "nosuchcmd", binary=cli_bin)
        try:
            assert ours.returncode == 127
            assert MISSING in ours.stderr
            fmt = "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}"
            state = api.docker("inspect", "-f", fmt, name).stdout if name else ""
            if name:
                assert state == f"created 127 {MISSING}\n"
            if ref is not None:
                theirs = ref("run", *flags, "busybox", "nosuchcmd")
                assert ours.returncode == theirs.returncode
                # The same lines; Docker 20.10's CLI logs its cancelled wait in either order.
                assert _lines(ours.stderr) == _lines(theirs.stderr)
                if name:
                    assert state == ref("inspect", "-f", fmt, name).stdout
        finally:
            if name:
                if ref is not None:
                    ref("rm", "-f", name)
                api.docker("rm", "-f", name)
    assert api.container_rows() == []


def _lines(text: str) -> list[str]:
    """The CLI's error lines, less the log line of its own cancelled wait, which Docker
    20.10's CLI prints or not depending on which of its goroutines ends first."""
    return sorted(ln for ln in text.splitlines() if "error waiting for container" not in ln)


def test_start_failure_for_clients_that_wait(api: Daemon) -> None:
    """The API's side of it: start answers 400 with Docker's text; a waiter gets 127; an
    --rm container is gone once the start has answered."""
    low = api.client.api
    cid = low.create_container("busybox", ["nosuchcmd"], host_config={"AutoRemove": True})["Id"]
    got: dict[str, object] = {}
    waiter = threading.Thread(target=lambda: got.update(low.wait(cid, condition="removed")))
    waiter.start()
    time.sleep(0.3)  # the wait is registered (as docker run's is, before its start)
    with pytest.raises(docker.errors.APIError) as err:
        low.start(cid)
    assert err.value.status_code == 400 and err.value.explanation == MISSING
    waiter.join(30)
    assert got == {"StatusCode": 127, "Error": None}
    assert api.container_rows() == []


# ---------------------------------------------------------------- exec framing


def _sorted_lines(result: tuple[int, bytes]) -> tuple[int, list[bytes]]:
    code, output = result
    return code, sorted(output.splitlines(keepends=True))


def _exec_outputs(client: docker.DockerClient) -> list[object]:
    ctr = client.containers.run("busybox", ["sleep", "60"], detach=True)
    try:
        script = ["sh", "-c", "echo out; echo err >&2"]
        low = client.api
        tty_exec = low.exec_create(ctr.id, ["echo", "framed"], tty=True)["Id"]
        pipe_exec = low.exec_create(ctr.id, ["echo", "raw"], tty=False)["Id"]
        return [
            tuple(ctr.exec_run(script, tty=True)),
            # stdout and stderr are two pipes: no order between them (Docker's neither).
            _sorted_lines(ctr.exec_run(script, tty=False)),
            tuple(ctr.exec_run(script, demux=True)),
            # The framing follows exec/start's Tty: a TTY exec started with Tty=false comes
            # as stdcopy frames (docker-py read raw output as frames: "104 is not a valid
            # stream"), and the other way round raw.
            low.exec_start(tty_exec),
            low.exec_start(pipe_exec, tty=True),
        ]
    finally:
        ctr.remove(force=True)


def test_exec_framing_follows_start_tty(api: Daemon) -> None:
    ours = _exec_outputs(api.client)
    assert ours == [
        (0, b"out\r\nerr\r\n"),
        (0, [b"err\n", b"out\n"]),
        (0, (b"out\n", b"err\n")),
        b"framed\r\n",
        b"raw\n",
    ]
    if reference_docker():
        assert ours == _exec_outputs(Reference("").client)


# ---------------------------------------------------------------- detach keys


@CLIS
def test_run_it_detach_keys(api: Daemon, cli_bin: str) -> None:
    """``docker run -it``, ctrl-p ctrl-q: the CLI exits 0, the container goes on; then
    ``docker attach --detach-keys ctrl-x`` and ``docker exec -it`` detach the same way."""
    env = _docker_env(api.url, str(api.cli.root.parent))
    term = Terminal([cli_bin, "run", "-it", "--name", "dk", "busybox", "sh"], env)
    term.expect(b"# ")
    term.send(b"echo one-$((1+1))\r")
    term.expect(b"one-2")
    term.send(b"\x10\x11")
    assert term.close() == 0
    assert api.client.containers.get("dk").status == "running"

    term = Terminal([cli_bin, "attach", "--detach-keys", "ctrl-x", "dk"], env)
    term.send(b"echo two-$((1+2))\r")
    term.expect(b"two-3")
    term.send(b"\x18")
    assert b"read escape sequence" in term.rest()
    assert term.close() == 1  # as Docker's CLI exits after a detach from attach
    assert api.client.containers.get("dk").status == "running"

    term = Terminal([cli_bin, "exec", "-it", "dk", "sh"], env)
    term.expect(b"# ")
    term.send(b"\x10\x11")
    assert b"read escape sequence" in term.rest()
    assert term.close() == 1
    assert api.client.containers.get("dk").status == "running"


def _raw_attach_detach(client: docker.DockerClient) -> list[object]:
    """A client that leaves detection to the daemon: docker-py's attach socket, a TTY
    container, the keys sent as bytes."""
    low = client.api
    ctr = client.containers.run("busybox", ["sh"], detach=True, tty=True, stdin_open=True)
    out: list[object] = []
    try:
        for keys, typed in ((None, b"\x10\x11"), ("ctrl-x", b"\x18")):
            params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            if keys:
                params["detachKeys"] = keys
            sock = low.attach_socket(ctr.id, params=params)
            raw = sock._sock
            raw.sendall(b"echo x$((2*3))\n")
            seen = b""
            raw.settimeout(30)
            while b"x6" not in seen:
                seen += raw.recv(4096)
            raw.sendall(typed)
            ended = True
            raw.settimeout(10)
            try:
                while raw.recv(4096):
                    pass
            except TimeoutError:
                ended = False
            sock.close()
            ctr.reload()
            out.append((keys, ended, ctr.status))
        with pytest.raises(docker.errors.APIError) as err:
            low.attach_socket(ctr.id, params={"stdin": 1, "stream": 1, "detachKeys": "ctrl-"})
        out.append((err.value.status_code, err.value.explanation))
    finally:
        ctr.remove(force=True)
    return out


def test_detach_keys_in_the_daemon(api: Daemon) -> None:
    ours = _raw_attach_detach(api.client)
    assert ours == [
        (None, True, "running"),
        ("ctrl-x", True, "running"),
        (400, "Invalid detach keys (ctrl-) provided"),
    ]
    if reference_docker():
        assert ours == _raw_attach_detach(Reference("").client)


def test_exec_detach_keys_in_the_daemon(api: Daemon) -> None:
    low = api.client.api
    ctr = api.client.containers.run("busybox", ["sleep", "300"], detach=True)
    exec_id = low.exec_create(ctr.id, ["sh"], tty=True, stdin=True, detach_keys="ctrl-y")["Id"]
    sock = low.exec_start(exec_id, tty=True, socket=True)
    raw = sock._sock
    raw.settimeout(30)
    raw.sendall(b"echo y$((3*3))\n")
    seen = b""
    while b"y9" not in seen:
        seen += raw.recv(4096)
    raw.sendall(b"\x19")
    while chunk := raw.recv(4096):
        seen += chunk
    # Docker 20.10's words, at the end of the raw stream
    assert seen.endswith(b"exec attach failed: error on attach stdin: read escape sequence\r\n")
    assert low.exec_inspect(exec_id)["DetachKeys"] == "GQ=="  # the bytes, as Go shows them
    with pytest.raises(docker.errors.APIError, match="Invalid detach keys"):
        low.exec_create(ctr.id, ["sh"], detach_keys="ctrl-")
    ctr.remove(force=True)


# ---------------------------------------------------------------- logs, wait, resize


def test_logs_since_until_tail_timestamps_follow(api: Daemon) -> None:
    script = "echo one; sleep 2; echo two >&2; sleep 2; echo three; exec sleep 300"
    r = api.docker("run", "-d", "--name", "lg", "busybox", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: "three" in api.docker("logs", "lg").stdout, what="three logged")
    r = api.docker("logs", "-t", "lg")
    lines = (r.stdout + r.stderr).split("\n")
    stamps = {ln.split()[1]: ln.split()[0] for ln in lines if ln}
    assert sorted(stamps) == ["one", "three", "two"]
    # --since/--until at a logged line's own time keep that line (Docker's bounds)
    r = api.docker("logs", "--since", stamps["two"], "lg")
    assert (r.stdout, r.stderr) == ("three\n", "two\n")
    r = api.docker("logs", "--until", stamps["two"], "lg")
    assert (r.stdout, r.stderr) == ("one\n", "two\n")
    r = api.docker("logs", "--since", stamps["two"], "--until", stamps["two"], "lg")
    assert (r.stdout, r.stderr) == ("", "two\n")
    r = api.docker("logs", "--tail", "1", "lg")
    assert r.stdout == "three\n"
    r = api.docker("logs", "--since", "1h", "--tail", "2", "lg")
    assert (r.stdout, r.stderr) == ("three\n", "two\n")
    # -f stops at --until, though the container still runs
    r = api.docker("logs", "-f", "--until", stamps["three"], "lg")
    assert r.returncode == 0 and r.stdout == "one\nthree\n"
    r = api.docker("logs", "--since", "yesterday", "lg")
    assert r.returncode != 0 and "yesterday" in r.stderr
    status, message = api.error("GET", "/v1.41/containers/lg/logs?stdout=1&since=soon")
    # Docker's words; its status is 500, ours 400 (the client's input is what is wrong).
    assert (status, message) == (400, 'strconv.ParseInt: parsing "soon": invalid syntax')
    api.docker("rm", "-f", "lg")


def test_logs_follow_sees_new_lines(api: Daemon) -> None:
    r = api.docker("run", "-d", "-i", "--name", "lf", "busybox", "sh", "-c", "read x; echo got $x")
    assert r.returncode == 0
    follow = subprocess.Popen(
        [str(DOCKER_CLIS.get("newest") or DOCKER_CLIS["debian-20.10"]), "logs", "-f", "lf"],
        env=_docker_env(api.url, str(api.cli.root.parent)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)
        api.docker("exec", "lf", "true")
        api.client.api.attach_socket("lf", params={"stdin": 1, "stream": 1})._sock.sendall(b"it\n")
        out, _ = follow.communicate(timeout=30)  # ends with the container
        assert out == "got it\n"
    finally:
        follow.kill()
        follow.wait()
        api.docker("rm", "-f", "lf")


def test_wait_conditions(api: Daemon) -> None:
    low = api.client.api
    cid = low.create_container("busybox", ["sh", "-c", "exit 4"])["Id"]
    # not-running: a created container answers at once (its ExitCode, 0)
    assert low.wait(cid, condition="not-running") == {"StatusCode": 0, "Error": None}
    got: dict[str, dict[str, object]] = {}
    threads = [
        threading.Thread(target=lambda c=c: got.update({c: low.wait(cid, condition=c)}))
        for c in ("next-exit", "removed")
    ]
    for t in threads:
        t.start()
    time.sleep(0.3)
    low.start(cid)
    threads[0].join(30)
    assert got["next-exit"] == {"StatusCode": 4, "Error": None}
    assert "removed" not in got  # still there
    low.remove_container(cid)
    threads[1].join(30)
    assert got["removed"] == {"StatusCode": 4, "Error": None}
    status, message = api.error("POST", "/v1.41/containers/nosuch/wait?condition=removed")
    assert status == 404
    cid = low.create_container("busybox", ["true"])["Id"]
    status, message = api.error("POST", f"/v1.41/containers/{cid}/wait?condition=soon")
    assert (status, message) == (400, "invalid condition: 'soon'")
    low.remove_container(cid)


def test_resize_container_and_exec(api: Daemon) -> None:
    def sizes(client: docker.DockerClient) -> list[bytes]:
        low = client.api
        ctr = client.containers.run("busybox", ["sleep", "300"], detach=True, tty=True)
        try:
            low.resize(ctr.id, height=33, width=111)
            time.sleep(0.3)
            out = [ctr.exec_run(["stty", "size", "-F", "/dev/console"], tty=True).output]
            exec_id = low.exec_create(ctr.id, ["sh", "-c", "sleep 1; stty size"], tty=True)["Id"]
            sock = low.exec_start(exec_id, tty=True, socket=True)
            time.sleep(0.3)
            low.exec_resize(exec_id, height=44, width=122)
            raw, data = sock._sock, b""
            raw.settimeout(30)
            while chunk := raw.recv(4096):
                data += chunk
            out.append(data)
            return out
        finally:
            ctr.remove(force=True)

    ours = sizes(api.client)
    assert ours == [b"33 111\r\n", b"44 122\r\n"]
    if reference_docker():
        assert ours == sizes(Reference("").client)
    status, _ = api.error("POST", "/v1.41/exec/nosuch/resize?h=1&w=1")
    assert status == 404


def test_attach_before_start_gets_everything(api: Daemon) -> None:
    low = api.client.api
    cid = low.create_container("busybox", ["sh", "-c", "echo first; echo second >&2"])["Id"]
    sock = low.attach_socket(cid, params={"stdout": 1, "stderr": 1, "stream": 1})
    low.start(cid)
    raw, data = sock._sock, b""
    raw.settimeout(30)
    while chunk := raw.recv(4096):
        data += chunk
    assert (
        data == b"\x01\x00\x00\x00\x00\x00\x00\x06first\n\x02\x00\x00\x00\x00\x00\x00\x07second\n"
    )
    low.remove_container(cid)


def test_stdin_half_close(api: Daemon) -> None:
    r = api.docker("run", "--rm", "-i", "busybox", "sh", "-c", "cat; echo after-eof")
    assert r.returncode == 0
    r = api.docker("run", "--rm", "-i", "busybox", "sh", "-c", "wc -c; echo done", input=b"12345")
    assert r.stdout.split() == ["5", "done"]
    ctr = api.client.containers.run("busybox", ["sleep", "60"], detach=True)
    r = api.docker("exec", "-i", ctr.id, "sh", "-c", "wc -l; echo done", input=b"a\nb\n")
    assert r.stdout.split() == ["2", "done"]
    ctr.remove(force=True)
