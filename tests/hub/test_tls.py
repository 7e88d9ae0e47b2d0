"""TLS: the hub serving HTTPS (``--tls-cert/--tls-key``) with a CA made by the openssl CLI;
the client verifying it through certs.d ($DOCKYARD_CERTS_DIR), refusing an untrusted one,
presenting client certificates; skopeo checking the same hub with --cert-dir."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BIN, CLI, tree_snapshot
from tests.hub.conftest import Hub, layer_tar, make_oci_layout, start_hub, stop_hub
from tests.registry_client.conftest import start_distribution, stop


def trust(certs_d: Path, addr: str, *files: Path) -> Path:
    d = certs_d / addr
    d.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, d / f.name)
    return d


def test_login_push_pull_over_verified_tls(
    tls_hub: Hub, tls_dir: Path, certs_d: Path, bb: CLI, dy: CLI, docker_config: Path
) -> None:
    trust(certs_d, tls_hub.addr, tls_dir / "ca.crt")
    r = bb("login", tls_hub.addr, "-u", "alice", "--password-stdin", input=b"alice-pw\n")
    assert "Login Succeeded" in r.stdout
    ref = f"{tls_hub.addr}/alice/tlsbb:1"
    bb("tag", "busybox", ref)
    assert "Pushed" in bb("push", ref).stdout
    r = tls_hub.request("HEAD", "/v2/alice/tlsbb/manifests/1")  # verifies with ca.crt too
    digest = r.headers["docker-content-digest"]
    assert digest in dy("pull", ref).stdout
    assert "hello over tls" in dy("run", "--rm", ref, "echo", "hello over tls").stdout
    # The token realm the hub announces is its own HTTPS URL.
    challenge = tls_hub.request("GET", "/v2/").headers["www-authenticate"]
    assert f'realm="https://{tls_hub.addr}/token"' in challenge


def test_loopback_tls_without_a_ca_is_used_unverified(
    tls_hub: Hub, certs_d: Path, bb: CLI, dy: CLI, docker_config: Path
) -> None:
    """Docker's rule for loopback registries: HTTPS first, not verified (no certs.d here)."""
    bb("login", tls_hub.addr, "-u", "alice", "--password-stdin", input=b"alice-pw\n")
    ref = f"{tls_hub.addr}/alice/unverified:1"
    bb("tag", "busybox", ref)
    bb("push", ref)
    assert tls_hub.request("HEAD", "/v2/alice/unverified/manifests/1").status == 200
    dy("pull", ref)


def test_untrusted_certificate_is_refused_and_nothing_stored(
    tls_hub: Hub,
    tls_dir: Path,
    certs_d: Path,
    bb: CLI,
    dy: CLI,
    docker_config: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trust(certs_d, tls_hub.addr, tls_dir / "other-ca.crt")
    x509 = f'"https://{tls_hub.addr}/v2/": x509: certificate signed by unknown authority'
    login = ("login", tls_hub.addr, "-u", "alice", "--password-stdin")
    r = bb(*login, input=b"alice-pw\n", check=False)
    assert r.returncode == 125 and x509 in r.stderr, r.stderr
    assert not (docker_config / "config.json").exists()

    ref = f"{tls_hub.addr}/alice/untrusted:1"
    bb("tag", "busybox", ref)
    r = bb("push", ref, check=False)
    assert r.returncode == 125 and "x509: certificate signed by unknown authority" in r.stderr
    assert "Traceback" not in r.stderr
    assert tls_hub.request("GET", "/v2/alice/untrusted/tags/list").status == 404

    before = tree_snapshot(dy.root) if dy.root.exists() else {}
    r = dy("pull", f"{tls_hub.addr}/alice/tlsbb:1", check=False)
    assert r.returncode == 125 and "x509: certificate signed by unknown authority" in r.stderr
    after = tree_snapshot(dy.root) if dy.root.exists() else {}
    assert {k for k in after if "blobs/" in k} == {k for k in before if "blobs/" in k}

    # Listed as insecure, the same registry is used without verification (Docker's flag).
    monkeypatch.setenv("DOCKYARD_INSECURE_REGISTRIES", tls_hub.addr)
    bb(*login, input=b"alice-pw\n")
    bb("push", ref)


def test_bad_client_certificate_pair_in_certs_d(
    tls_hub: Hub, tls_dir: Path, certs_d: Path, dy: CLI, docker_config: Path
) -> None:
    d = trust(certs_d, tls_hub.addr, tls_dir / "ca.crt")
    shutil.copy(tls_dir / "client.crt", d / "client.cert")  # its client.key is missing
    r = dy("login", tls_hub.addr, "-u", "alice", "--password-stdin", input=b"alice-pw", check=False)
    assert r.returncode == 125
    assert "missing key client.key for client certificate client.cert" in r.stderr
    assert not (docker_config / "config.json").exists()


def test_client_certificate_from_certs_d(
    tmp_path: Path, tls_dir: Path, certs_d: Path, bb: CLI, dy: CLI, docker_config: Path
) -> None:
    """Debian's docker-registry demanding a client certificate: certs.d's client.cert and
    client.key are presented; without them the handshake is refused."""
    if not Path("/usr/bin/docker-registry").exists():
        pytest.skip("docker-registry is not installed")
    reg = start_distribution(
        tmp_path / "mtls",
        tls=(tls_dir / "hub.crt", tls_dir / "hub.key", tls_dir / "client-ca.crt"),
    )
    try:
        d = trust(certs_d, reg.addr, tls_dir / "ca.crt")
        ref = f"{reg.addr}/mtls/bb:1"
        bb("tag", "busybox", ref)
        r = bb("push", ref, check=False)
        # No client certificate: refused, in Go's words, and not retried (the handshake
        # would fail the same way; retrying it slept ~20 s of backoff in this test).
        assert r.returncode == 125 and reg.addr in r.stderr, r.stderr
        assert "remote error: tls: bad certificate" in r.stderr, r.stderr
        assert not any(m == "PUT" for m, _, _ in reg.requests())
        shutil.copy(tls_dir / "client.crt", d / "client.cert")
        shutil.copy(tls_dir / "client.key", d / "client.key")
        bb("push", ref)
        dy("pull", ref)
        assert ("PUT", "/v2/mtls/bb/manifests/1", 201) in reg.requests()
    finally:
        stop(reg.proc)


def test_skopeo_with_cert_dir(
    tls_hub: Hub, tls_dir: Path, certs_d: Path, tmp_path: Path, dy: CLI, docker_config: Path
) -> None:
    if not shutil.which("skopeo"):
        pytest.skip("skopeo is not installed")
    layers = [layer_tar("tls.txt", b"copied by skopeo over TLS\n")]
    make_oci_layout(tmp_path / "layout", layers)
    d = trust(certs_d, tls_hub.addr, tls_dir / "ca.crt")
    dest = f"docker://{tls_hub.addr}/alice/skopeo-tls:1"

    def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["skopeo", "--insecure-policy", *args], capture_output=True, text=True, timeout=120
        )

    r = skopeo("copy", "--dest-creds", "alice:alice-pw", f"oci:{tmp_path / 'layout'}:latest", dest)
    assert r.returncode != 0 and "x509" in r.stderr  # skopeo verifies: the CA is needed
    r = skopeo(
        "copy", "--dest-cert-dir", str(d), "--dest-creds", "alice:alice-pw",
        f"oci:{tmp_path / 'layout'}:latest", dest,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = skopeo("inspect", "--cert-dir", str(d), dest)
    assert r.returncode == 0, r.stderr
    pushed = json.loads(r.stdout)["Digest"]
    head = tls_hub.request("HEAD", "/v2/alice/skopeo-tls/manifests/1")
    assert head.headers["docker-content-digest"] == pushed

    # What skopeo pushed, dockyard pulls over the same verified TLS (and the reverse).
    assert pushed in dy("pull", dest.removeprefix("docker://")).stdout
    back = f"{tls_hub.addr}/alice/skopeo-tls:back"
    dy("tag", dest.removeprefix("docker://"), back)
    dy("login", tls_hub.addr, "-u", "alice", "--password-stdin", input=b"alice-pw")
    dy("push", back)
    r = skopeo("inspect", "--cert-dir", str(d), f"docker://{back}")
    assert r.returncode == 0, r.stderr


def test_hub_serve_tls_errors(tmp_path: Path, tls_dir: Path) -> None:
    data = tmp_path / "data"
    for args, message in [
        (["--tls-cert", str(tls_dir / "hub.crt")], "--tls-cert and --tls-key go together"),
        (
            ["--tls-cert", str(tls_dir / "hub.crt"), "--tls-key", str(tls_dir / "ca.key")],
            "cannot load --tls-cert",
        ),
        (
            ["--tls-cert", str(tmp_path / "nope.crt"), "--tls-key", str(tls_dir / "hub.key")],
            "cannot load --tls-cert",
        ),
    ]:
        r = subprocess.run(
            [str(BIN), "hub", "serve", "--addr", "127.0.0.1:0", "--data", str(data), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 125 and message in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert not data.exists()  # refused before the data dir was made


def test_plain_http_to_the_tls_hub_is_dropped_and_the_hub_keeps_serving(
    tmp_path: Path, tls_dir: Path
) -> None:
    data = tmp_path / "data"
    cert, key = str(tls_dir / "hub.crt"), str(tls_dir / "hub.key")
    proc, port = start_hub(data, tmp_path / "hub.log", "--tls-cert", cert, "--tls-key", key)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(100) == b""  # closed without a (clear-text) answer
        import ssl

        ctx = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
        hub = Hub("127.0.0.1", port, data, proc, tls=ctx)
        assert hub.request("GET", "/v2/").status == 401
        assert "Traceback" not in (tmp_path / "hub.log").read_text()
    finally:
        stop_hub(proc)
