"""skopeo (containers/image, an independent client) pushes into the hub and pulls back."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.hub.conftest import Hub, layer_tar, make_oci_layout, sha


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=180)


def test_skopeo_push_pull_roundtrip(hub: Hub, tmp_path: Path) -> None:
    payload = os.urandom(300_000)
    layers = [layer_tar("data.bin", payload), layer_tar("etc/motd", b"hello\n")]
    make_oci_layout(tmp_path / "src", layers)
    dest = f"docker://{hub.addr}/alice/skopeo:1"
    r = skopeo(
        "copy", "--dest-creds", "alice:alice-pw", "--dest-tls-verify=false",
        f"oci:{tmp_path}/src:latest", dest,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr

    # Anonymous pull back into a dir: and every blob checks out against the manifest.
    out = tmp_path / "out"
    r = skopeo("copy", "--src-tls-verify=false", dest, f"dir:{out}")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    for d in [manifest["config"], *manifest["layers"]]:
        data = (out / d["digest"][7:]).read_bytes()
        assert sha(data) == d["digest"] and len(data) == d["size"]
    import gzip

    blobs = [gzip.decompress((out / d["digest"][7:]).read_bytes()) for d in manifest["layers"]]
    assert blobs == layers  # skopeo compressed them on the way up; the bytes are ours

    r = skopeo("inspect", "--tls-verify=false", dest)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Digest"] == manifest_digest(hub, "alice/skopeo", "1")
    r = skopeo("list-tags", "--tls-verify=false", f"docker://{hub.addr}/alice/skopeo")
    assert json.loads(r.stdout)["Tags"] == ["1"]

    # Pushing the same image again uploads nothing (every blob is found by HEAD).
    log_before = _uploads(hub)
    r = skopeo(
        "copy", "--dest-creds", "alice:alice-pw", "--dest-tls-verify=false",
        f"oci:{tmp_path}/src:latest", f"docker://{hub.addr}/alice/skopeo:2",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert _uploads(hub) == log_before

    # skopeo delete with a delete-capable login.
    r = skopeo(
        "delete", "--creds", "alice:alice-pw", "--tls-verify=false",
        f"docker://{hub.addr}/alice/skopeo:2",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert hub.request("GET", "/v2/alice/skopeo/tags/list").json()["tags"] == []


def manifest_digest(hub: Hub, repo: str, tag: str) -> str:
    return hub.request("HEAD", f"/v2/{repo}/manifests/{tag}").headers["docker-content-digest"]


def _uploads(hub: Hub) -> int:
    log = (hub.data.parent / "hub.log").read_text(errors="replace")
    return log.count("POST /v2/") + log.count("PATCH /v2/")


def test_skopeo_with_wrong_credentials_or_namespace_fails(hub: Hub, tmp_path: Path) -> None:
    make_oci_layout(tmp_path / "src", [layer_tar("x", os.urandom(1000))])
    src = f"oci:{tmp_path}/src:latest"
    r = skopeo(
        "copy", "--dest-creds", "alice:wrong", "--dest-tls-verify=false", src,
        f"docker://{hub.addr}/alice/wrongpw:1",
    )  # fmt: skip
    assert r.returncode != 0
    assert "unauthorized" in r.stderr.lower() or "authentication" in r.stderr.lower()
    r = skopeo(
        "copy", "--dest-creds", "alice:alice-pw", "--dest-tls-verify=false", src,
        f"docker://{hub.addr}/bob/stolen:1",
    )  # fmt: skip
    assert r.returncode != 0
    assert "denied" in r.stderr.lower()
    for repo in ("alice/wrongpw", "bob/stolen"):
        assert hub.request("GET", f"/v2/{repo}/tags/list").status == 404
