"""Package indexes on the project's bridge: what `npm install` and `pip install` inside a build
reach instead of the Internet.

One HTTP server, bound to the gateway address of the store's bridge network (so containers
reach it and nothing else can), serves
- an npm registry under ``/npm/``: a packument per package and its tarballs, for packages
  the test makes (``publish``); anything else, npm's audit and update checks included,
  gets 404;
- a PEP 503 "simple" index under ``/simple/`` for the wheels in a directory (fetched on the
  host by ``pip download``).
Every request path is recorded, so a test can tell whether a build step ran.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def npm_tarball(name: str, version: str, index_js: str) -> bytes:
    """A package tarball as ``npm pack`` lays it out (everything under ``package/``)."""
    files = {
        "package/package.json": json.dumps(
            {"name": name, "version": version, "main": "index.js"}
        ).encode(),
        "package/index.js": index_js.encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path, data in files.items():
            ti = tarfile.TarInfo(path)
            ti.size, ti.mode, ti.mtime = len(data), 0o644, 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _normalise(project: str) -> str:
    return re.sub(r"[-_.]+", "-", project).lower()  # PEP 503


class PackageServer:
    def __init__(self, host: str, wheels: Path | None = None) -> None:
        self.packages: dict[str, dict[str, bytes]] = {}  # npm name -> version -> tarball
        self.wheels = wheels
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append(self.path)
                status, ctype, body = server.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                server.requests.append(f"POST {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.host, self.port = host, self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def publish(self, name: str, version: str, index_js: str) -> None:
        self.packages.setdefault(name, {})[version] = npm_tarball(name, version, index_js)

    def npm_requests(self) -> list[str]:
        return [p for p in self.requests if p.startswith("/npm/")]

    def answer(self, path: str) -> tuple[int, str, bytes]:
        path = path.split("?", 1)[0]
        if path.startswith("/npm/"):
            return self._npm(path[len("/npm/") :])
        if path.startswith("/simple/") and self.wheels is not None:
            return self._simple(path[len("/simple/") :].strip("/"))
        if path.startswith("/files/") and self.wheels is not None:
            f = self.wheels / path[len("/files/") :]
            if "/" not in path[len("/files/") :] and f.is_file():
                return 200, "application/octet-stream", f.read_bytes()
        return 404, "text/plain", b"not found\n"

    def _npm(self, rest: str) -> tuple[int, str, bytes]:
        name, sep, file = rest.partition("/-/")
        name = name.replace("%2f", "/").replace("%2F", "/")
        versions = self.packages.get(name)
        if versions is None:
            return 404, "application/json", b'{"error":"not found"}'
        if sep:
            for version, tgz in versions.items():
                if file == f"{name}-{version}.tgz":
                    return 200, "application/octet-stream", tgz
            return 404, "application/json", b'{"error":"not found"}'
        doc = {
            "name": name,
            "dist-tags": {"latest": max(versions, key=lambda v: [int(x) for x in v.split(".")])},
            "versions": {
                v: {
                    "name": name,
                    "version": v,
                    "main": "index.js",
                    "dist": {
                        "tarball": f"{self.url}/npm/{name}/-/{name}-{v}.tgz",
                        "shasum": hashlib.sha1(tgz).hexdigest(),
                        "integrity": "sha512-"
                        + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
                    },
                }
                for v, tgz in versions.items()
            },
        }
        return 200, "application/json", json.dumps(doc).encode()

    def _simple(self, project: str) -> tuple[int, str, bytes]:
        assert self.wheels is not None
        files = sorted(p.name for p in self.wheels.iterdir() if p.suffix == ".whl")
        by_project: dict[str, list[str]] = {}
        for f in files:
            by_project.setdefault(_normalise(f.split("-", 1)[0]), []).append(f)
        if not project:
            links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(by_project))
        elif _normalise(project) in by_project:
            links = "".join(
                f'<a href="/files/{html.escape(f)}#sha256={_sha256(self.wheels / f)}">'
                f"{html.escape(f)}</a>\n"
                for f in by_project[_normalise(project)]
            )
        else:
            return 404, "text/plain", b"not found\n"
        return 200, "text/html", f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)
