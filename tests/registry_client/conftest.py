"""Registries for the client tests: Debian's CNCF distribution (with and without htpasswd
Basic auth), and a small scriptable registry peer for the faults a real one never shows.

Every server listens on a free 127.0.0.1 port (never 5000) and is stopped at the end of the
session, also when a test fails. Each test gets its own Docker config dir.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

from tests.conftest import layer_tar, terminate

REGISTRY_BIN = "/usr/bin/docker-registry"
_ACCESS_RE = re.compile(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+" (\d+)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Distribution:
    """A running ``docker-registry serve``; requests are counted from its access log."""

    port: int
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def mark(self) -> int:
        return self.log.stat().st_size

    def requests(self, since: int = 0) -> list[tuple[str, str, int]]:
        with open(self.log, "rb") as f:
            f.seek(since)
            text = f.read().decode(errors="replace")
        return [(m[1], m[2], int(m[3])) for m in _ACCESS_RE.finditer(text)]

    def uploads(self, since: int = 0) -> list[tuple[str, str, int]]:
        """Requests that start or carry a blob upload (POST, PATCH, PUT on /blobs/uploads/)."""
        return [r for r in self.requests(since) if "/blobs/uploads/" in r[1]]


def start_distribution(
    base: Path, htpasswd: Path | None = None, tls: tuple[Path, Path, Path] | None = None
) -> Distribution:
    """``tls``: (certificate, key, client CA): HTTPS that demands a client certificate."""
    base.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if htpasswd:
        auth = f"auth:\n  htpasswd:\n    realm: test-realm\n    path: {htpasswd}\n"
    https = ""
    if tls:
        cert, key, client_ca = tls
        https = (
            f"  tls:\n    certificate: {cert}\n    key: {key}\n"
            f"    clientcas:\n      - {client_ca}\n"
        )
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + https + auth
    )
    log = base / "registry.log"
    out = open(log, "wb")  # noqa: SIM115 - the child owns it; closed below
    proc = subprocess.Popen(
        [REGISTRY_BIN, "serve", str(config)],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if tls:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            else:
                urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1).read()
            break
        except Exception as e:  # noqa: BLE001
            if getattr(e, "code", None) == 401:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}") from e
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("docker-registry did not start")
    return Distribution(port, log, proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc, group=True)


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    reg = start_distribution(tmp_path_factory.mktemp("distribution"))
    try:
        yield reg
    finally:
        stop(reg.proc)


USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    base = tmp_path_factory.mktemp("distribution-auth")
    htpasswd = base / "htpasswd"
    out = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True
    ).stdout
    htpasswd.write_text(out)
    reg = start_distribution(base, htpasswd)
    try:
        yield reg
    finally:
        stop(reg.proc)


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Logins of this test go to a temp dir, never the real ~/.docker."""
    d = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    monkeypatch.delenv("DOCKYARD_INSECURE_REGISTRIES", raising=False)
    monkeypatch.delenv("DOCKYARD_UPLOAD_CHUNK_SIZE", raising=False)
    monkeypatch.setenv("DOCKYARD_REGISTRY_ATTEMPTS", "4")
    return d


# ---------------------------------------------------------------------- a scriptable peer


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class PeerImage:
    config: bytes
    layer: bytes  # gzip
    manifest: bytes

    @property
    def manifest_digest(self) -> str:
        return sha(self.manifest)

    @property
    def image_id(self) -> str:
        return sha(self.config)


def make_image(files: dict[str, bytes], compress: bool = True) -> PeerImage:
    tar = layer_tar(files)
    layer = gzip.compress(tar, mtime=0) if compress else tar
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(tar)]},
            "history": [{"created_by": "test"}],
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": sha(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return PeerImage(config, layer, manifest)


Handler = Callable[[BaseHTTPRequestHandler], bool]


@dataclass
class Peer:
    """An HTTP registry peer serving ``manifests`` and ``blobs`` by path, with hooks
    (``before``) that a test sets to misbehave on purpose. Requests are recorded."""

    port: int = 0
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # "repo:ref"
    blobs: dict[str, bytes] = field(default_factory=dict)
    before: Handler | None = None
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    # Set when the test ends: a hook that stalls waits on it, so no handler outlives the test.
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_image(self, repo: str, tag: str, img: PeerImage) -> None:
        mt = "application/vnd.docker.distribution.manifest.v2+json"
        self.manifests[f"{repo}:{tag}"] = (img.manifest, mt)
        self.manifests[f"{repo}:{img.manifest_digest}"] = (img.manifest, mt)
        self.blobs[sha(img.config)] = img.config
        self.blobs[sha(img.layer)] = img.layer


def _make_handler(peer: Peer) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None):
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def handle_any(self) -> None:
            peer.seen.append((self.command, self.path, dict(self.headers)))
            if peer.before and peer.before(self):
                return
            path = self.path.split("?", 1)[0]
            if path == "/v2/":
                return self.send(200, b"{}")
            m = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/]+)", path)
            if not m:
                return self.send(404, b'{"errors":[{"code":"NOT_FOUND","message":"nope"}]}')
            repo, kind, ref = m.groups()
            if kind == "manifests":
                found = peer.manifests.get(f"{repo}:{ref}")
                if not found:
                    return self.send(
                        404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}'
                    )
                return self.send(
                    200,
                    found[0],
                    {"Content-Type": found[1], "Docker-Content-Digest": sha(found[0])},
                )
            data = peer.blobs.get(ref)
            if data is None:
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}')
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes="):
                start = int(rng[6:].split("-", 1)[0])
                return self.send(
                    206,
                    data[start:],
                    {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"},
                )
            return self.send(200, data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any

    return H


@contextmanager
def serving(
    handler: type[BaseHTTPRequestHandler], rcvbuf: int | None = None
) -> Iterator[ThreadingHTTPServer]:
    """A real HTTP server on a free 127.0.0.1 port, in a thread, for the block. ``rcvbuf``:
    a small receive buffer for every connection (set before listen, so the kernel never
    grows it), for a server that stops reading to stop the sender soon."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler, bind_and_activate=False)
    if rcvbuf:
        server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    server.server_bind()
    server.server_activate()
    server.daemon_threads = True
    # A short poll: shutdown() waits for it, at the end of every test.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    with serving(_make_handler(p)) as server:
        p.server = server
        p.port = server.server_address[1]
        try:
            yield p
        finally:
            p.done.set()


# ---------------------------------------------------------------------- time and stalls


@dataclass
class FakeClock:
    """The registry client's clock for retry tests: ``sleep`` records and returns at once."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A 127.0.0.1 port whose listener never accepts and whose backlog is full: a connect
    to it gets no answer at all (the kernel drops the SYN), like a host behind a black hole."""
    listener = socket.socket()
    filler = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # room for one pending connection ...
        filler.connect(listener.getsockname())  # ... which this takes
        yield int(listener.getsockname()[1])
    finally:
        filler.close()
        listener.close()


# ---------------------------------------------------------------------- a faulty proxy


@dataclass
class Proxy:
    """A real HTTP proxy in front of a registry. ``fault(method, path)`` may answer
    "reset" (the connection drops after the request body was read), "stall" (the body is
    read, no answer ever comes), "stall-reading" (the body is not read) or an HTTP status."""

    target: int
    port: int = 0
    fault: Callable[[str, str], str | int | None] | None = None
    seen: list[tuple[str, str, int]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)  # ends the stalls

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"


def _read_request_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(out)
            out += h.rfile.read(size)
            h.rfile.readline()
    return h.rfile.read(int(h.headers.get("Content-Length") or 0))


def _proxy_handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    import http.client

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def forward(self) -> None:
            verdict = proxy.fault(self.command, self.path) if proxy.fault else None
            if verdict in ("stall", "stall-reading"):
                proxy.seen.append((self.command, self.path, 0))
                if verdict == "stall":
                    _read_request_body(self)
                proxy.done.wait(60)
                self.close_connection = True
                return
            body = _read_request_body(self)
            if verdict == "reset":
                proxy.seen.append((self.command, self.path, 0))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if isinstance(verdict, int):
                proxy.seen.append((self.command, self.path, verdict))
                msg = b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}'
                self.send_response(verdict)
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
            headers = {
                k: v
                for k, v in self.headers.items()
                if k.lower() not in ("transfer-encoding", "content-length", "connection")
            }
            headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection("127.0.0.1", proxy.target, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            proxy.seen.append((self.command, self.path, resp.status))
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

    return H


@pytest.fixture
def proxy(registry: Distribution) -> Iterator[Proxy]:
    p = Proxy(target=registry.port)
    # 64 KiB per connection: a stall while reading holds up the sender after ~4 MiB (its
    # own send buffer), not after the ~32 MiB Linux would let the receive buffer grow to.
    with serving(_proxy_handler(p), rcvbuf=64 << 10) as server:
        p.port = server.server_address[1]
        try:
            yield p
        finally:
            p.done.set()


# ---------------------------------------------------------------------- credential helpers

_HELPER = """#!{python}
import json, os, sys
STORE, LOG = {store!r}, {log!r}
action, data = sys.argv[1], sys.stdin.read()
with open(LOG, "a") as f:
    f.write(json.dumps([action, data]) + "\\n")
creds = json.load(open(STORE)) if os.path.exists(STORE) else {{}}
if action == "store":
    c = json.loads(data)
    creds[c["ServerURL"]] = {{"Username": c["Username"], "Secret": c["Secret"]}}
elif action in ("get", "erase"):
    if data not in creds:
        print("credentials not found in native keychain")
        sys.exit(1)
    if action == "get":
        print(json.dumps({{"ServerURL": data, **creds[data]}}))
    else:
        del creds[data]
else:
    print("unknown action " + action)
    sys.exit(1)
with open(STORE, "w") as f:
    json.dump(creds, f)
"""


@dataclass
class CredHelper:
    """``docker-credential-<name>``: a real helper program on $PATH keeping its secrets in
    a JSON file, logging every call as (action, stdin)."""

    name: str
    store: Path
    log: Path

    def secrets(self) -> dict[str, dict[str, str]]:
        return json.loads(self.store.read_text()) if self.store.exists() else {}

    def calls(self) -> list[tuple[str, str]]:
        if not self.log.exists():
            return []
        return [tuple(json.loads(line)) for line in self.log.read_text().splitlines()]


@pytest.fixture
def helpers_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A dir on $PATH (first) for helper programs; the CLI runs as a child and inherits it."""
    d = tmp_path / "helpers"
    d.mkdir()
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ.get('PATH', '')}")
    return d


def write_helper(directory: Path, name: str, body: str | None = None) -> CredHelper:
    """A working helper (``body`` None) or a shell script with ``body`` as the program."""
    import sys

    helper = CredHelper(name, directory / f"{name}-secrets.json", directory / f"{name}.log")
    path = directory / f"docker-credential-{name}"
    if body is None:
        path.write_text(
            _HELPER.format(python=sys.executable, store=str(helper.store), log=str(helper.log))
        )
    else:
        path.write_text(f'#!/bin/sh\nprintf \'["%s", ""]\\n\' "$1" >> {helper.log}\n{body}\n')
    path.chmod(0o755)
    return helper


@pytest.fixture
def cred_helper(helpers_dir: Path) -> CredHelper:
    return write_helper(helpers_dir, "dytest")


def write_config(docker_config: Path, **fields: Any) -> None:
    docker_config.mkdir(parents=True, exist_ok=True)
    (docker_config / "config.json").write_text(json.dumps(fields))


# ---------------------------------------------------------------------- store checks

# ``system check`` also reports the host's networking (iptables rules and bridges of any
# store), where other tests' networks come and go: these tests look at its store lines only,
# and repair through the store half of ``system check --repair``, never touching the host's
# networking, which other tests own.
_NETWORK_LINES = ("iptables rule", "bridge ", "veth ", "IP lease ")


def store_leftovers(cli: Any) -> list[str]:
    """``system check``'s findings about the store (it must call the store consistent)."""
    lines = cli("system", "check").stdout.splitlines()
    assert lines and lines[-1].startswith("store consistent"), lines
    return [line for line in lines[:-1] if not any(w in line for w in _NETWORK_LINES)]


def repair_store(cli: Any) -> list[str]:
    """What ``system check --repair`` removes from the store."""
    from dockyard.store.check import check_store
    from dockyard.store.store import Store

    store = Store(str(cli.root))
    try:
        return check_store(store, repair=True).repaired
    finally:
        store.close()
