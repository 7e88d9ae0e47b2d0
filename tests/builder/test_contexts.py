"""Build contexts that are not a local directory: a tar or a Dockerfile on stdin, a URL to
either, a git repository (served on 127.0.0.1 by a dumb-HTTP server or git daemon)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.builder.conftest import Ctx, leftovers, tar_bytes
from tests.conftest import CLI
from tests.helpers import Entry, entry, tar

CONTEXT = {
    "Dockerfile": b"FROM busybox\nCOPY hello.txt /\nCOPY sub /sub\n",
    "hello.txt": b"from the tar\n",
    "sub/alt.Dockerfile": b"FROM busybox\nCOPY sub/inner.txt /inner.txt\n",
    "sub/inner.txt": b"inner\n",
}


def raw_build(cli: CLI, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    r = cli.raw("build", *args, stdin=stdin)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


@pytest.mark.parametrize(
    "compress",
    [lambda b: b, gzip.compress, bz2.compress, lzma.compress],
    ids=["plain", "gzip", "bzip2", "xz"],
)
def test_tar_context_on_stdin_any_compression(ctx: Ctx, compress: Callable[[bytes], bytes]) -> None:
    tar = compress(tar_bytes(CONTEXT))
    code, out, err = raw_build(ctx.cli, "-t", "tarctx", "-", stdin=tar)
    assert code == 0, err
    assert ctx.run("tarctx", "cat", "/hello.txt", "/sub/inner.txt") == "from the tar\ninner\n"
    # -f names a Dockerfile inside the tar
    code, out, err = raw_build(ctx.cli, "-t", "alt", "-f", "sub/alt.Dockerfile", "-", stdin=tar)
    assert code == 0, err
    assert ctx.run("alt", "cat", "/inner.txt") == "inner\n"
    assert leftovers(ctx.cli) == []


def test_tar_context_dockerfile_must_be_in_it(ctx: Ctx, tmp_path: Path) -> None:
    host_df = tmp_path / "host.Dockerfile"
    host_df.write_text("FROM busybox\nRUN echo LEAKED\n")
    no_df = tar_bytes({"hello.txt": b"x\n"})
    assert raw_build(ctx.cli, "-", stdin=no_df)[0::2] == (
        1,
        "Error: Cannot locate specified Dockerfile: Dockerfile\n",
    )
    code, _, err = raw_build(ctx.cli, "-f", "nope", "-", stdin=no_df)
    assert code == 1 and "Cannot locate specified Dockerfile: nope" in err
    code, _, err = raw_build(ctx.cli, "-f", "../x", "-", stdin=no_df)
    assert code == 1 and "must be within the build context" in err
    # A Dockerfile that is a symlink to a host file resolves inside the context: not found.
    linked = _tar([("Dockerfile", tarfile.SYMTYPE, str(host_df))])
    code, out, err = raw_build(ctx.cli, "-", stdin=linked)
    assert code == 1 and "Cannot locate specified Dockerfile" in err and "LEAKED" not in out
    assert ctx.cli("images", "-aq").stdout.split() == _busybox_only(ctx.cli)
    assert leftovers(ctx.cli) == []


def _tar(entries: list[tuple[str, bytes, str | bytes]]) -> bytes:
    """A tar of (name, type, data or link target) entries, whatever names they have."""
    out: list[Entry] = []
    for name, kind, body in entries:
        if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            assert isinstance(body, str)
            out.append(entry(name, kind, linkname=body))
        elif kind == tarfile.DIRTYPE:
            out.append(entry(name, kind))
        else:
            assert isinstance(body, bytes)
            out.append((entry(name, kind), body))
    return tar(*out)


DF = (b"Dockerfile", tarfile.REGTYPE, b"FROM busybox\nCOPY . /ctx\n")


def _attack(outside: Path, kind: str) -> list[tuple[str, bytes, str | bytes]]:
    up = "../" * 12  # from <root>/build/tmp/<dir> far past /
    reg = tarfile.REGTYPE
    return {
        "dotdot": [("Dockerfile", reg, DF[2]), (f"{up}{outside}/escaped", reg, b"x")],
        "absolute": [("Dockerfile", reg, DF[2]), (f"{outside}/escaped", reg, b"x")],
        "symlink-dir": [
            ("Dockerfile", reg, DF[2]),
            ("link", tarfile.SYMTYPE, str(outside)),
            ("link/escaped", reg, b"x"),
        ],
        "relative-symlink-dir": [
            ("Dockerfile", reg, DF[2]),
            ("link", tarfile.SYMTYPE, f"{up}{outside}"),
            ("link/escaped", reg, b"x"),
        ],
        "hardlink-out": [
            ("Dockerfile", reg, DF[2]),
            ("escaped", tarfile.LNKTYPE, f"{up}{outside}/victim"),
        ],
    }[kind]


@pytest.mark.parametrize(
    "kind", ["dotdot", "absolute", "symlink-dir", "relative-symlink-dir", "hardlink-out"]
)
def test_tar_context_cannot_write_outside(ctx: Ctx, tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("untouched\n")
    code, out, err = raw_build(ctx.cli, "-t", "evil", "-", stdin=_tar(_attack(outside, kind)))
    assert code == 1
    assert err.startswith("Error: unable to prepare context: the build context from stdin: unsafe")
    assert "Step 1" not in out
    assert sorted(os.listdir(outside)) == ["victim"]
    assert (outside / "victim").read_text() == "untouched\n"
    assert os.stat(outside / "victim").st_nlink == 1
    assert ctx.cli("image", "inspect", "evil", check=False).returncode != 0
    assert leftovers(ctx.cli) == []


@pytest.mark.parametrize(
    "data, what",
    [
        (b"\x1f\x8b\x08\x00garbage", "truncated or corrupt"),
        (b"BZh9garbage", "truncated or corrupt: Invalid data stream"),
        (gzip.compress(tar_bytes(CONTEXT))[:-40], "truncated"),
    ],
    ids=["bad-gzip", "bad-bzip2", "cut-gzip"],
)
def test_broken_tar_context(ctx: Ctx, data: bytes, what: str) -> None:
    code, _, err = raw_build(ctx.cli, "-", stdin=data)
    assert code == 1 and err.startswith("Error: unable to prepare context: the build context")
    assert what in err
    assert ctx.cli("images", "-aq").stdout.split() == _busybox_only(ctx.cli)
    assert leftovers(ctx.cli) == []


def _busybox_only(cli: CLI) -> list[str]:
    return [cli("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()[7:19]]


# ------------------------------------------------------------------ URLs


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_url_contexts(ctx: Ctx, http_server: tuple[str, Path]) -> None:
    url, www = http_server
    (www / "ctx.tar.gz").write_bytes(gzip.compress(tar_bytes(CONTEXT)))
    (www / "Dockerfile").write_bytes(b"FROM busybox\nRUN echo from-url > /f\n")
    (www / "copying").write_bytes(b"FROM busybox\nCOPY x /x\n")

    r = ctx.cli("build", "-t", "urltar", f"{url}/ctx.tar.gz")
    assert f"Downloading build context from remote url: {url}/ctx.tar.gz" in r.stdout
    assert ctx.run("urltar", "cat", "/hello.txt") == "from the tar\n"
    again = ctx.cli("build", f"{url}/ctx.tar.gz")
    assert again.stdout.count(" ---> Using cache") == 2  # same content, same cache keys

    ctx.cli("build", "-t", "urldf", f"{url}/Dockerfile")
    assert ctx.run("urldf", "cat", "/f") == "from-url\n"
    # A plain Dockerfile is the whole context: COPY finds nothing, as with Docker.
    r = ctx.cli("build", f"{url}/copying", check=False)
    assert r.returncode == 1 and "COPY failed: file not found in build context" in r.stderr
    # -f - : the Dockerfile from stdin, the context from the URL's tar
    r = ctx.cli(
        "build", "-t", "urlstdin", "-f", "-", f"{url}/ctx.tar.gz", input=b"FROM busybox\n"
        b"COPY sub/inner.txt /\n",
    )  # fmt: skip
    assert ctx.run("urlstdin", "cat", "/inner.txt") == "inner\n"
    r = ctx.cli("build", "-f", "-", f"{url}/Dockerfile", input=b"FROM busybox\n", check=False)
    assert (r.returncode, r.stderr) == (
        1,
        "Error: unable to prepare context: build context is not an archive\n",
    )
    assert leftovers(ctx.cli) == []


def test_url_context_errors(ctx: Ctx, http_server: tuple[str, Path]) -> None:
    url, _ = http_server
    r = ctx.cli("build", f"{url}/missing.tar", check=False)
    assert r.returncode == 1
    assert r.stderr == (
        f"Error: unable to prepare context: unable to download remote context {url}/missing.tar"
        f": failed to GET {url}/missing.tar with status 404 File not found\n"
    )
    port = _closed_port()
    r = ctx.cli("build", f"http://127.0.0.1:{port}/ctx.tar", check=False)
    assert r.returncode == 1
    assert f"unable to download remote context http://127.0.0.1:{port}/ctx.tar" in r.stderr
    assert "connection refused" in r.stderr.lower()
    r = ctx.cli("build", "no/such/dir", check=False)
    assert (r.returncode, r.stderr) == (
        1,
        'Error: unable to prepare context: path "no/such/dir" not found\n',
    )
    assert leftovers(ctx.cli) == []


# ------------------------------------------------------------------ git


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A bare repository (default branch "trunk", no "master"): v1 tag, a sub dir, a file
    where a dir is expected, and a symlink that points out of the repository."""
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "trunk")
    (work / "Dockerfile").write_text("FROM busybox\nCOPY app.txt /app.txt\n")
    (work / "app.txt").write_text("v1\n")
    (work / "sub").mkdir()
    (work / "sub" / "Dockerfile").write_text("FROM busybox\nCOPY . /sub\n")
    (work / "sub" / "s.txt").write_text("in sub\n")
    os.symlink("/etc", work / "escape")
    _git(work, "add", "-A")
    _git(work, "commit", "-qm", "one")
    _git(work, "tag", "v1")
    (work / "app.txt").write_text("v2\n")
    _git(work, "commit", "-qam", "two")
    bare = tmp_path / "www" / "repo.git"
    bare.parent.mkdir(exist_ok=True)
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    _git(bare, "update-server-info")  # dumb HTTP
    return bare


def test_git_context_over_dumb_http(
    ctx: Ctx, git_repo: Path, http_server: tuple[str, Path]
) -> None:
    url = f"{http_server[0]}/repo.git"
    ctx.cli("build", "-t", "g:head", url)  # no ref: the remote's HEAD ("trunk")
    assert ctx.run("g:head", "cat", "/app.txt") == "v2\n"
    ctx.cli("build", "-t", "g:v1", f"{url}#v1")
    assert ctx.run("g:v1", "cat", "/app.txt") == "v1\n"
    ctx.cli("build", "-t", "g:sub", f"{url}#trunk:sub")
    assert ctx.run("g:sub", "ls", "/sub") == "Dockerfile\ns.txt\n"
    again = ctx.cli("build", f"{url}#trunk:sub")
    assert " ---> Using cache" in again.stdout  # a fresh clone, the same cache keys
    # -f is relative to the checkout
    ctx.cli("build", "-t", "g:f", "-f", "sub/Dockerfile", f"{url}#trunk")
    assert ctx.run("g:f", "cat", "/sub/sub/s.txt") == "in sub\n"
    assert leftovers(ctx.cli) == []


@pytest.mark.parametrize(
    "suffix, message",
    [
        ("#nope", "error fetching: fatal: couldn't find remote ref nope: exit status 128"),
        ("#trunk:nodir", "nodir: no such directory in the repository"),
        ("#trunk:Dockerfile", "error setting git context, not a directory: Dockerfile"),
        # a symlink in the repository resolves inside the checkout, never to the host's /etc
        ("#trunk:escape", "escape: no such directory in the repository"),
        ("#--upload-pack=touch", "invalid refspec: --upload-pack=touch"),
    ],
    ids=["bad-ref", "missing-subdir", "file-subdir", "symlink-subdir", "option-ref"],
)
def test_git_context_errors(
    ctx: Ctx, git_repo: Path, http_server: tuple[str, Path], suffix: str, message: str
) -> None:
    r = ctx.cli("build", f"{http_server[0]}/repo.git{suffix}", check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("Error: unable to prepare context: ")
    assert message in r.stderr
    assert leftovers(ctx.cli) == []


def test_git_context_unreachable(ctx: Ctx) -> None:
    port = _closed_port()
    r = ctx.cli("build", f"http://127.0.0.1:{port}/repo.git", check=False)
    assert r.returncode == 1
    assert "unable to 'git clone' to temporary context directory: error fetching" in r.stderr
    assert f"127.0.0.1 port {port}" in r.stderr
    assert leftovers(ctx.cli) == []


@pytest.fixture
def git_daemon(git_repo: Path) -> Iterator[str]:
    port = _closed_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--listen=127.0.0.1", f"--port={port}", "--reuseaddr",
         "--export-all", f"--base-path={git_repo.parent}", str(git_repo.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:  # ready when it accepts (or fail if it died)
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"git daemon did not start: {err!r}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"git://127.0.0.1:{port}/repo.git"
    finally:
        proc.terminate()
        proc.wait(10)


def test_git_context_over_git_protocol(ctx: Ctx, git_daemon: str) -> None:
    ctx.cli("build", "-t", "gd", f"{git_daemon}#v1")
    assert ctx.run("gd", "cat", "/app.txt") == "v1\n"
    r = ctx.cli("build", f"{git_daemon}#nope", check=False)
    assert r.returncode == 1 and "couldn't find remote ref nope" in r.stderr
    assert leftovers(ctx.cli) == []


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """Sends headers and a first chunk of a big tar.gz, then stalls until the test ends."""
    import threading

    done = threading.Event()
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n\x1f\x8b" + b"\0" * 4096
            )
            done.wait()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/ctx.tar.gz"
    finally:
        done.set()
        srv.close()
        t.join(10)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_interrupted_download_leaves_nothing(ctx: Ctx, stalling_server: str, signame: str) -> None:
    import signal

    from tests.conftest import BIN

    cli = ctx.cli
    tmp = cli.root / "build" / "tmp"
    p = subprocess.Popen(
        [str(BIN), "--root", str(cli.root), "--run-root", str(cli.run_root), "build",
         stalling_server],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (tmp.is_dir() and any(n for n in os.listdir(tmp) if "-url-" in n)):
            assert p.poll() is None and time.monotonic() < deadline, "download never started"
            time.sleep(0.02)
        p.send_signal(getattr(signal, signame))
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130
    assert leftovers(cli) == []
