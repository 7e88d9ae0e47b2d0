"""Registry benchmarks: push and pull of a 100 MB single-layer image against the anchor's
distribution registry (127.0.0.1:5000), side by side with ``docker push`` / ``docker pull``,
with random data and with compressible data.

Push: before each timed push the registry forgets the repository's blobs and manifest
(DELETE, untimed), so both engines really upload; each pushes its own image of the same
100 MB of random bytes (each compresses it its own way). Pull: both pull the image Docker
pushed, into an empty store (dockyard: a fresh --root; Docker: the image and the imported
one sharing its layer removed first).

``registry-zstd``: the same with compressible data, 1 GB by default (``DOCKYARD_BENCH_ZSTD_MB``),
dockyard pushing with ``--compression zstd`` and Docker with gzip (20.10 pushes nothing
else); each engine then pulls the image it pushed (the same files, zstd against gzip).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request

from run import Bench, interleaved, make_rootfs_tar, run  # bench/run.py (sys.path[0])

REGISTRY = "127.0.0.1:5000"
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json,"
    "application/vnd.oci.image.manifest.v1+json"
)


def _http(method: str, path: str, accept: str = "") -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(f"http://{REGISTRY}{path}", method=method)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def forget_repository(repo: str, tag: str) -> None:
    """Delete the tag's manifest and the repository's links to its blobs."""
    status, body, headers = _http("GET", f"/v2/{repo}/manifests/{tag}", MANIFEST_TYPES)
    if status != 200:
        return
    manifest = json.loads(body)
    digests = [manifest["config"]["digest"]] + [la["digest"] for la in manifest["layers"]]
    for d in digests:
        _http("DELETE", f"/v2/{repo}/blobs/{d}")
    _http("DELETE", f"/v2/{repo}/manifests/{headers['Docker-Content-Digest']}")


def bench_registry(b: Bench, docker: bool) -> None:
    """Random data (no engine can compress it) and compressible data (each engine's gzip
    then matters: the same bytes for both)."""
    for compressible in (False, True):
        _push_pull(b, docker, compressible)


def bench_registry_zstd(b: Bench, docker: bool) -> None:
    """Compressible layers: dockyard's zstd against Docker's gzip."""
    mb = int(os.environ.get("DOCKYARD_BENCH_ZSTD_MB") or 1024)
    _push_pull(b, docker, True, mb=mb, compression="zstd")


def _push_pull(
    b: Bench, docker: bool, compressible: bool, mb: int = 100, compression: str | None = None
) -> None:
    kind = "compressible" if compressible else "random"
    size = f"{mb // 1024} GB" if mb >= 1024 and mb % 1024 == 0 else f"{mb} MB"
    what = f"{size} {kind} image" + (f" ({compression} vs gzip)" if compression else "")
    push_args = ("--compression", compression) if compression else ()
    tar = make_rootfs_tar(b.work, mb, compressible=compressible)
    ours_ref, theirs_ref = f"{REGISTRY}/bench/dy-big:1", f"{REGISTRY}/bench/docker-big:1"
    b.dy("import", str(tar), ours_ref)
    if docker:
        run("docker", "rmi", "-f", theirs_ref, check=False)
        run("docker", "import", str(tar), theirs_ref)

    # Warm-up (and make sure each engine's image is on the registry for the pull below).
    forget_repository("bench/dy-big", "1")
    b.dy("push", *push_args, ours_ref)
    if docker:
        forget_repository("bench/docker-big", "1")
        run("docker", "push", theirs_ref)
    ours, theirs = _timed_after(
        b,
        lambda: forget_repository("bench/dy-big", "1"),
        lambda: b.dy("push", *push_args, ours_ref),
        (lambda: forget_repository("bench/docker-big", "1")) if docker else None,
        (lambda: run("docker", "push", theirs_ref)) if docker else None,
    )
    b.report(f"push {what} (registry :5000)", ours, theirs)

    # Both pull Docker's image; with a compression of ours, each pulls its own.
    source = theirs_ref if docker else ours_ref
    ours_source = ours_ref if compression else source
    if docker:
        run("docker", "push", theirs_ref)  # the timed runs left it on the registry already
    fresh = b.work / "pull-root"

    def reset_ours() -> None:
        shutil.rmtree(fresh, ignore_errors=True)
        b.dy("images", root=fresh)  # an empty store, created outside the timing

    def reset_theirs() -> None:
        run("docker", "rmi", "-f", theirs_ref, check=False)
        run("docker", "image", "prune", "-f", check=False)

    ours, theirs = _timed_after(
        b,
        reset_ours,
        lambda: b.dy("pull", ours_source, root=fresh),
        reset_theirs if docker else None,
        (lambda: run("docker", "pull", source)) if docker else None,
    )
    b.report(f"pull {what} (registry :5000)", ours, theirs)
    shutil.rmtree(fresh, ignore_errors=True)
    tar.unlink()


def _timed_after(b: Bench, setup_ours, ours, setup_theirs, theirs):  # type: ignore[no-untyped-def]
    """interleaved() with an untimed setup before each run."""
    pairs_ours: list[float] = []
    pairs_theirs: list[float] = []
    for _ in range(b.repeat):
        setup_ours()
        a, _ = interleaved(ours, None, 1)
        pairs_ours += a
        if theirs is not None:
            setup_theirs()
            d, _ = interleaved(theirs, None, 1)
            pairs_theirs += d
    return pairs_ours, (pairs_theirs if theirs is not None else None)
