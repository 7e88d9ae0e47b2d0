"""Hub serving speed: a pull of a 100 MB single-layer image served by our hub vs the same pull
served by the CNCF distribution registry on 127.0.0.1:5000 (started by the anchor script),
with the same client (``skopeo copy docker://... dir:``)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from run import interleaved, run  # bench/run.py (sys.path[0])

DOCKYARD = str(Path(sys.executable).parent / "dockyard")
REGISTRY = ("127.0.0.1", 5000)
LAYER_MB = 100


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _request(
    host: tuple[str, int],
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection(*host, timeout=300)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r


def _push(host: tuple[str, int], repo: str, layer: Path, auth: dict[str, str]) -> None:
    """Monolithic uploads of the layer and config, then an OCI manifest tagged 1."""
    h = hashlib.sha256()
    with open(layer, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    layer_digest = "sha256:" + h.hexdigest()
    size = layer.stat().st_size
    config = json.dumps(
        {"architecture": "amd64", "os": "linux",
         "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {}}
    ).encode()  # fmt: skip
    for digest, length, body in (
        (layer_digest, size, layer),
        (_sha(config), len(config), config),
    ):
        r = _request(host, "POST", f"/v2/{repo}/blobs/uploads/", headers=auth)
        loc = r.getheader("Location") or ""
        loc = re.sub(r"^https?://[^/]+", "", loc)
        sep = "&" if "?" in loc else "?"
        hdrs = {**auth, "Content-Length": str(length), "Content-Type": "application/octet-stream"}
        if isinstance(body, Path):
            with open(body, "rb") as f:
                r = _request(host, "PUT", f"{loc}{sep}digest={digest}", f, hdrs)
        else:
            r = _request(host, "PUT", f"{loc}{sep}digest={digest}", body, hdrs)
        assert r.status == 201, (host, r.status)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": _sha(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": size}],
        }
    ).encode()  # fmt: skip
    ct = {**auth, "Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    r = _request(host, "PUT", f"/v2/{repo}/manifests/1", manifest, ct)
    assert r.status == 201, (host, r.status)


def _start_hub(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    data = work / "hubdata"
    subprocess.run(
        [DOCKYARD, "hub", "user", "add", "bench", "--password-stdin", "--data", str(data)],
        input=b"bench-pw\n", check=True, capture_output=True,
    )  # fmt: skip
    log = work / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [DOCKYARD, "hub", "serve", "--addr", "127.0.0.1:0", "--data", str(data), "--quiet"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    for _ in range(200):
        m = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", log.read_bytes())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"hub did not start: {log.read_text()}")


def bench_hub(b: Any, docker: bool) -> None:
    layer = b.work / "layer100.tar"
    payload = b.work / "payload"
    payload.mkdir(exist_ok=True)
    with open(payload / "payload.bin", "wb") as f:
        for _ in range(LAYER_MB):
            f.write(os.urandom(1 << 20))
    run("tar", "-C", str(payload), "-cf", str(layer), ".")
    shutil.rmtree(payload)

    # The pulled copy goes to tmpfs: the disk's write speed is the client's, and its noise
    # would drown what is measured here, the serving.
    shm = Path("/dev/shm")
    out = (shm if shm.is_dir() else b.work) / f"dockyard-bench-hub-{os.getpid()}"
    proc, port = _start_hub(b.work)
    try:
        hub = ("127.0.0.1", port)
        q = urlencode({"service": "dockyard-hub", "scope": "repository:bench/big:pull,push"})
        conn = http.client.HTTPConnection(*hub)
        creds = base64.b64encode(b"bench:bench-pw").decode()
        conn.request("GET", f"/token?{q}", headers={"Authorization": f"Basic {creds}"})
        token = json.loads(conn.getresponse().read())["token"]
        conn.close()
        _push(hub, "bench/big", layer, {"Authorization": f"Bearer {token}"})
        if docker:
            _push(REGISTRY, "bench/big", layer, {})

        def pull(addr: str) -> None:
            shutil.rmtree(out, ignore_errors=True)
            run("skopeo", "copy", "--src-tls-verify=false",
                f"docker://{addr}/bench/big:1", f"dir:{out}")  # fmt: skip

        pull(f"127.0.0.1:{port}")  # warm the page cache for both
        if docker:
            pull("127.0.0.1:5000")
        ours, theirs = interleaved(
            lambda: pull(f"127.0.0.1:{port}"),
            (lambda: pull("127.0.0.1:5000")) if docker else None,
            b.repeat * 4,
        )
        b.report(f"hub serving a {LAYER_MB} MB pull (skopeo) vs distribution", ours, theirs)
        if docker:
            _docker_pulls(b, f"127.0.0.1:{port}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        layer.unlink(missing_ok=True)


def _docker_pulls(b: Any, hub: str) -> None:
    """The same comparison with `docker pull` as the client (it also unpacks the layer)."""
    refs = {addr: f"{addr}/bench/big:1" for addr in (hub, "127.0.0.1:5000")}

    def rmi() -> None:
        run("docker", "rmi", "-f", *refs.values(), check=False)

    def pull(addr: str) -> None:
        rmi()  # untimed: both sides start without the layer
        t = time.perf_counter()
        run("docker", "pull", "-q", refs[addr])
        times[addr].append(time.perf_counter() - t)

    times: dict[str, list[float]] = {addr: [] for addr in refs}
    try:
        for _ in range(b.repeat * 2):
            pull(hub)
            pull("127.0.0.1:5000")
        b.report(
            f"hub serving a {LAYER_MB} MB pull (docker pull) vs distribution",
            times[hub],
            times["127.0.0.1:5000"],
        )
    finally:
        rmi()
