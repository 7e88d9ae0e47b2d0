"""A real hub process per test session on a free 127.0.0.1 port, with three accounts
(alice, bob, and the admin root), and raw HTTP helpers that send paths exactly as given."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import BIN, terminate

PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "root": "root-pw"}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        """The first error code of the spec's error envelope."""
        return str(self.json()["errors"][0]["code"])


def basic(user: str, password: str | None = None) -> str:
    pw = PASSWORDS[user] if password is None else password
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


@dataclass
class Hub:
    host: str
    port: int
    data: Path
    proc: subprocess.Popen[bytes]
    _tokens: dict[tuple[str | None, str], str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None  # set for a hub serving HTTPS: verifies its certificate

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        auth: str | None = None,
        timeout: float = 60,
    ) -> Response:
        """One request on a fresh connection; ``path`` goes on the wire unchanged."""
        conn = (
            http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
            if self.tls
            else http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        )
        try:
            h = dict(headers or {})
            if auth:
                h["Authorization"] = auth
            conn.putrequest(method, path, skip_accept_encoding=True)
            if body is not None and "Content-Length" not in h and "Transfer-Encoding" not in h:
                h["Content-Length"] = str(len(body))
            for k, v in h.items():
                conn.putheader(k, v)
            conn.endheaders()
            if body:
                conn.send(body)
            r = conn.getresponse()
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def token(self, user: str | None, *scopes: str, password: str | None = None) -> Response:
        q = urlencode([("service", "dockyard-hub"), *(("scope", s) for s in scopes)])
        return self.request("GET", f"/token?{q}", auth=basic(user, password) if user else None)

    def bearer(self, user: str | None, repo: str, actions: str = "pull,push") -> str:
        key = (user, f"{repo}:{actions}")
        if key not in self._tokens:
            r = self.token(user, f"repository:{repo}:{actions}")
            assert r.status == 200, r.body
            self._tokens[key] = "Bearer " + r.json()["token"]
        return self._tokens[key]

    # ---- pushing by raw HTTP ------------------------------------------------------------

    def push_blob(self, repo: str, data: bytes, auth: str) -> Response:
        """Session + one PUT with the whole body (what a monolithic client does)."""
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", auth=auth)
        assert r.status == 202, (r.status, r.body)
        loc = r.headers["location"]
        sep = "&" if "?" in loc else "?"
        return self.request(
            "PUT",
            f"{loc}{sep}digest={sha(data)}",
            data,
            {"Content-Type": "application/octet-stream"},
            auth=auth,
        )

    def push_image(
        self, repo: str, tag: str, layers: list[bytes], auth: str, config: bytes | None = None
    ) -> tuple[str, bytes]:
        """Push layers, a config and a manifest; returns (manifest digest, manifest)."""
        config = (
            config
            or json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
                    "config": {},
                }
            ).encode()
        )
        for blob in [*layers, config]:
            if self.request("HEAD", f"/v2/{repo}/blobs/{sha(blob)}", auth=auth).status == 200:
                continue
            r = self.push_blob(repo, blob, auth)
            assert r.status == 201, (r.status, r.body)
        manifest = make_manifest(config, layers)
        r = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            manifest,
            {"Content-Type": OCI_MANIFEST},
            auth=auth,
        )
        assert r.status == 201, (r.status, r.body)
        return r.headers["docker-content-digest"], manifest

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), "hub", *args, "--data", str(self.data)],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )


def make_manifest(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha(x), "size": len(x)} for x in layers],
        }
    ).encode()


def start_hub(data: Path, log: Path, *extra: str) -> tuple[subprocess.Popen[bytes], int]:
    out = open(log, "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen(
        [str(BIN), "hub", "serve", "--addr", "127.0.0.1:0", "--data", str(data), *extra],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        m = re.search(rb"listening on https?://127\.0\.0\.1:(\d+)", log.read_bytes())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop_hub(proc)
    raise AssertionError(f"hub did not start: {log.read_text(errors='replace')}")


def stop_hub(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc, group=True)


def add_users(data: Path) -> None:
    for name, pw in PASSWORDS.items():
        args = ["hub", "user", "add", name, "--password-stdin", "--data", str(data)]
        if name == "root":
            args.append("--admin")
        subprocess.run([str(BIN), *args], input=pw + "\n", text=True, check=True, timeout=60)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    base = tmp_path_factory.mktemp("hub")
    data = base / "data"
    add_users(data)
    proc, port = start_hub(data, base / "hub.log")
    try:
        yield Hub("127.0.0.1", port, data, proc)
    finally:
        stop_hub(proc)


@pytest.fixture
def layers() -> list[bytes]:
    """Two small random layers, different for every test."""
    return [os.urandom(3000) + b"layer-a", os.urandom(5000) + b"layer-b"]


def make_oci_layout(path: Path, layers: list[bytes], tag: str = "latest") -> str:
    """An OCI image layout skopeo can copy from (``oci:PATH:TAG``); returns the manifest
    digest."""
    blobs = path / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]},
            "config": {"Cmd": ["sh"]},
        }
    ).encode()
    manifest = make_manifest(config, layers)
    for blob in [*layers, config, manifest]:
        (blobs / sha(blob)[7:]).write_bytes(blob)
    (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (path / "index.json").write_text(json.dumps(index))
    return sha(manifest)


def layer_tar(name: str, payload: bytes) -> bytes:
    """A real (uncompressed) layer tar with one file, so skopeo can read diff IDs."""
    from tests.helpers import tar

    return tar((name, payload))


# ---------------------------------------------------------------------- TLS


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: Path, name: str) -> None:
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=dockyard test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )  # fmt: skip


def make_leaf(d: Path, name: str, ca: str, ext: str) -> None:
    (d / f"{name}.ext").write_text(ext)
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
        "-subj", f"/CN={name}",
        cwd=d,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext",
        cwd=d,
    )  # fmt: skip


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made with the openssl CLI: ca.crt and the hub's certificate it signed (hub.crt for
    IP 127.0.0.1), an unrelated other-ca.crt, and client.crt signed by client-ca.crt."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed (apt-get install openssl)")
    d = tmp_path_factory.mktemp("tls")
    make_ca(d, "ca")
    make_leaf(d, "hub", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    make_ca(d, "other-ca")
    make_ca(d, "client-ca")
    make_leaf(d, "client", "client-ca", "extendedKeyUsage=clientAuth\n")
    return d


@pytest.fixture(scope="session")
def tls_hub(tmp_path_factory: pytest.TempPathFactory, tls_dir: Path) -> Iterator[Hub]:
    """The hub serving HTTPS with a certificate from ``tls_dir/ca.crt``."""
    base = tmp_path_factory.mktemp("tls-hub")
    data = base / "data"
    add_users(data)
    cert, key = str(tls_dir / "hub.crt"), str(tls_dir / "hub.key")
    proc, port = start_hub(data, base / "hub.log", "--tls-cert", cert, "--tls-key", key)
    ctx = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
    try:
        yield Hub("127.0.0.1", port, data, proc, tls=ctx)
    finally:
        stop_hub(proc)


@pytest.fixture
def certs_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Docker's /etc/docker/certs.d for this test (the CLI runs as a child: it inherits)."""
    d = tmp_path / "certs.d"
    d.mkdir()
    monkeypatch.setenv("DOCKYARD_CERTS_DIR", str(d))
    return d


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Logins of this test go to a temp dir (the CLI runs as a child: it inherits this)."""
    cfg = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(cfg))
    monkeypatch.delenv("DOCKYARD_INSECURE_REGISTRIES", raising=False)
    return cfg
