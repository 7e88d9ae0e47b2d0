"""The distribution API (``/v2/...``), one method per call the pull and push flows make.

Every request goes through ``_send``: it adds the auth header for the request's scopes,
answers a 401 challenge once, follows redirects (without our credentials when they leave
the registry's host), and retries with backoff on 5xx, 429 and network errors (timeouts
included) when the request can be repeated. The client takes a transport and a clock
(STYLE 17): tests of the retry logic run on a clock whose sleep returns at once.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

from dockyard.errors import CorruptData, InvalidArgument, NotFound, Unavailable
from dockyard.image.digest import digest_bytes, validate_digest
from dockyard.image.manifest import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
)
from dockyard.registry.auth import Auth, Creds, scope
from dockyard.registry.clock import SYSTEM_CLOCK, Clock
from dockyard.registry.endpoint import Endpoint
from dockyard.registry.errors import NetworkError, Unauthorized
from dockyard.registry.transport import (
    NETWORK_ERRORS,
    HTTPTransport,
    Response,
    Transport,
    go_op,
)

MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def attempts() -> int:
    try:
        return max(1, int(os.environ.get("DOCKYARD_REGISTRY_ATTEMPTS", "5")))
    except ValueError:
        return 5


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt`` + 1: 0.2, 0.4, 0.8, ... at most 5."""
    return min(0.2 * 2.0**attempt, 5.0)


def short_id(digest: str) -> str:
    """The 12-hex form Docker's progress lines name a layer by."""
    return digest.split(":", 1)[-1][:12]


def progress_message(
    status: str, ident: str = "", current: int = -1, total: int = -1
) -> dict[str, Any]:
    """One progress message in the Docker Engine API's JSON shape (pull and push share it)."""
    msg: dict[str, Any] = {"status": status}
    if ident:
        msg["id"] = ident
    if current >= 0:
        msg["progressDetail"] = {"current": current, "total": total}
    return msg


def error_text(resp: Response, body: bytes) -> str:
    """A registry's error body as Docker prints it: ``manifest unknown: manifest unknown``."""
    try:
        errors = json.loads(body).get("errors") or []
        parts = []
        for e in errors[:3]:
            code = str(e.get("code", "")).lower().replace("_", " ")
            msg = str(e.get("message", "")).strip()
            parts.append(f"{code}: {msg}" if code and msg else code or msg)
        if parts:
            return "; ".join(p[:300] for p in parts)
    except (ValueError, AttributeError, TypeError):
        pass
    return f"HTTP {resp.status} {resp.headers.get('Status', '')}".strip()


class RegistryClient:
    def __init__(
        self,
        endpoint: Endpoint,
        creds: Creds | Callable[[], Creds] = None,
        *,
        transport: Transport | None = None,
        clock: Clock | None = None,
    ):
        self._endpoint = endpoint
        self._lock = threading.Lock()
        self.transport: Transport = transport or HTTPTransport()
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.auth = Auth(endpoint, creds, self.transport)

    @property
    def endpoint(self) -> Endpoint:
        """Where requests go. A loopback or insecure registry is tried over HTTPS first and
        reached over plain HTTP when it does not speak TLS (Docker's order), decided once,
        on first use."""
        if self._endpoint.fallback_http:
            with self._lock:
                ep = self._endpoint
                if ep.fallback_http:
                    if not self.transport.speaks_tls(ep.netloc):
                        ep = replace(ep, scheme="http")
                    self._endpoint = self.auth.endpoint = replace(ep, fallback_http=False)
        return self._endpoint

    # ------------------------------------------------------------ plumbing

    def url(self, path: str) -> str:
        return self.endpoint.base + path

    def _send(
        self,
        method: str,
        url: str,
        scopes: tuple[str, ...],
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        *,
        repeatable: bool = True,
        follow: bool = False,
        tries: int | None = None,
        wait: float | None = None,
        limit: int = 1 << 16,
        what: str = "response",
        stream: bool = False,
    ) -> Response:
        """The response, its body read (at most ``limit`` bytes: CorruptData naming ``what``
        beyond) unless ``stream`` and the status is 200 or 206: a connection that drops or
        stalls mid-body is then retried like one that fails before the headers.

        ``tries``: attempts at most (``attempts()`` when the request can be repeated; 1 for a
        caller whose own loop retries); ``wait``: see ``Transport.request``."""
        challenged = False
        attempt = 0
        redirects = 0
        tries = tries or (attempts() if repeatable else 1)
        own_host = urlsplit(self.endpoint.base).netloc
        while True:
            hdrs = dict(headers or {})
            same_host = urlsplit(url).netloc == own_host
            if same_host:
                hdrs.update(self.auth.headers(scopes))
            try:
                resp = self.transport.request(
                    method, url, hdrs, body, verify_tls=self.endpoint.verify_tls, wait=wait
                )
                if not (stream and resp.status in (200, 206)):
                    resp.read(limit, what)
            except NETWORK_ERRORS as e:
                attempt += 1
                if attempt >= tries:
                    reason = network_reason(e, urlsplit(url).netloc)
                    raise NetworkError(
                        f'{go_op(method)} "{url}": {reason}{after(attempt)}', reason
                    ) from None
                self.clock.sleep(backoff(attempt - 1))
                continue
            if resp.status == 401 and same_host and not challenged and repeatable:
                value = resp.header("WWW-Authenticate")
                resp.read(1 << 16)
                if not value:
                    raise Unauthorized(f"{self.endpoint.name}: 401 without a challenge")
                self.auth.challenge(value, scopes)
                challenged = True
                continue
            if resp.status in RETRY_STATUS and attempt + 1 < tries:
                resp.read(1 << 16)
                attempt += 1
                self.clock.sleep(backoff(attempt - 1))
                continue
            if follow and resp.status in (301, 302, 303, 307, 308):
                location = resp.header("Location")
                resp.read(1 << 16)
                if not location:
                    raise CorruptData(f"{url}: redirect without a Location")
                target = urljoin(url, location)
                if urlsplit(target).scheme == "http" and self.endpoint.scheme == "https":
                    raise CorruptData(f"{url}: refusing redirect from HTTPS to {target}")
                url = target
                redirects += 1
                if redirects > 10:
                    raise CorruptData(f"{url}: too many redirects")
                continue
            return resp

    def _fail(self, resp: Response, what: str, repo: str = "") -> None:
        body = resp.read(1 << 16)
        text = error_text(resp, body)
        if resp.status in (401, 403):
            raise Unauthorized(f"{what}: {text}")
        if resp.status == 404:
            raise NotFound(f"{what}: {text}")
        if resp.status in (400, 405, 413, 414, 416):
            raise InvalidArgument(f"{what}: {text}")
        raise Unavailable(f"{what}: {text}")

    # ------------------------------------------------------------ base

    def ping(self) -> None:
        """``GET /v2/`` with our credentials (``login`` checks them this way)."""
        resp = self._send("GET", self.url("/v2/"), ())
        if resp.status == 200:
            resp.read(1 << 16)
            return
        if resp.status == 404:
            resp.read(1 << 16)
            raise NotFound(f"{self.endpoint.base} is not a registry (no /v2/ endpoint)")
        if resp.status == 401:
            resp.read(1 << 16)
            raise Unauthorized("unauthorized: incorrect username or password")
        self._fail(resp, f"{self.endpoint.name}")

    # ------------------------------------------------------------ manifests

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index by tag or digest. The digest is
        computed from the bytes; a digest reference or a ``Docker-Content-Digest`` header
        that disagrees is refused."""
        url = self.url(f"/v2/{repo}/manifests/{quote(ref, safe=':')}")
        resp = self._send(
            "GET",
            url,
            (scope(repo),),
            {"Accept": MANIFEST_ACCEPT},
            limit=MAX_MANIFEST_SIZE,
            what="manifest",
        )
        if resp.status != 200:
            if resp.status == 404:
                resp.read(1 << 16)
                raise NotFound(
                    f"manifest for {self.endpoint.name}/{repo}:{ref} not found: "
                    "manifest unknown: manifest unknown"
                )
            if resp.status in (401, 403):
                resp.read(1 << 16)
                raise Unauthorized(
                    f"pull access denied for {self.endpoint.name}/{repo}, repository does not "
                    "exist or may require 'dockyard login': denied: requested access to the "
                    "resource is denied"
                )
            self._fail(resp, f"manifest {repo}:{ref}")
        data = resp.read(MAX_MANIFEST_SIZE, "manifest")
        digest = digest_bytes(data)
        if ref.startswith("sha256:") and digest != ref:
            raise CorruptData(f"manifest digest mismatch: expected {ref}, got {digest}")
        claimed = resp.header("Docker-Content-Digest")
        if claimed and claimed.startswith("sha256:") and claimed != digest:
            raise CorruptData(
                f"manifest digest mismatch: the registry says {claimed}, the bytes are {digest}"
            )
        media_type = resp.header("Content-Type").split(";", 1)[0].strip()
        return data, media_type, digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        url = self.url(f"/v2/{repo}/manifests/{quote(ref, safe=':')}")
        resp = self._send(
            "PUT",
            url,
            (scope(repo, "pull,push"),),
            {"Content-Type": media_type, "Content-Length": str(len(data))},
            data,
            wait=self.transport.timeouts.commit,
        )
        if resp.status not in (200, 201, 202):
            self._fail(resp, f"manifest {repo}:{ref}")
        resp.read(1 << 16)
        digest = digest_bytes(data)
        claimed = resp.header("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise CorruptData(f"the registry stored manifest {claimed}, we sent {digest}")
        return digest

    def tags(self, repo: str) -> list[str]:
        """Every tag of ``repo``, following ``Link`` pagination."""
        out: list[str] = []
        url = self.url(f"/v2/{repo}/tags/list")
        for _ in range(1000):
            resp = self._send("GET", url, (scope(repo),), limit=8 << 20, what="tag list")
            if resp.status != 200:
                self._fail(resp, f"tags of {repo}")
            body = resp.read(8 << 20, "tag list")
            link = resp.header("Link")
            try:
                tags = json.loads(body).get("tags") or []
            except (ValueError, AttributeError):
                raise CorruptData(f"tags of {repo}: not a JSON object") from None
            out += [str(t) for t in tags]
            if not link.startswith("<"):
                break
            url = urljoin(url, link[1 : link.index(">")])
        return out

    # ------------------------------------------------------------ blobs

    def head_blob(self, repo: str, digest: str, scopes: tuple[str, ...] = ()) -> int | None:
        """Size of a blob the registry has in ``repo``, or None."""
        url = self.url(f"/v2/{repo}/blobs/{validate_digest(digest)}")
        resp = self._send("HEAD", url, scopes or (scope(repo),), follow=True)
        resp.close()
        if resp.status == 200:
            length = resp.header("Content-Length")
            return int(length) if length.isdigit() else 0
        if resp.status == 404:
            return None
        if resp.status in (401, 403):
            raise Unauthorized(f"{repo}: denied: requested access to the resource is denied")
        raise Unavailable(f"HEAD blob {digest} in {repo}: HTTP {resp.status}")

    def open_blob(
        self, repo: str, digest: str, offset: int = 0, *, tries: int | None = None
    ) -> Response:
        """The blob's body from ``offset`` (206 when the registry honoured the range)."""
        url = self.url(f"/v2/{repo}/blobs/{validate_digest(digest)}")
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self._send(
            "GET", url, (scope(repo),), headers, follow=True, tries=tries, stream=True
        )
        if resp.status not in (200, 206):
            self._fail(resp, f"blob {digest} of {repo}")
        return resp

    def read_blob(self, repo: str, digest: str, limit: int) -> bytes:
        """A small blob (a config) in memory, verified."""
        url = self.url(f"/v2/{repo}/blobs/{validate_digest(digest)}")
        what = f"blob {digest}"
        resp = self._send("GET", url, (scope(repo),), follow=True, limit=limit, what=what)
        if resp.status != 200:
            self._fail(resp, f"blob {digest} of {repo}")
        data = resp.read(limit, what)
        got = digest_bytes(data)
        if got != digest:
            raise CorruptData(f"digest mismatch for blob: expected {digest}, got {got}")
        return data

    # ------------------------------------------------------------ uploads

    def start_upload(
        self,
        repo: str,
        mount: str | None = None,
        source: str | None = None,
        *,
        tries: int | None = None,
    ) -> str | None:
        """POST a new upload. With ``mount``/``source``, ask for a cross-repository mount:
        returns None when the registry mounted the blob, else the upload URL."""
        scopes: tuple[str, ...] = (scope(repo, "pull,push"),)
        query = ""
        if mount and source:
            scopes += (scope(source),)
            query = "?" + urlencode({"mount": validate_digest(mount), "from": source})
        url = self.url(f"/v2/{repo}/blobs/uploads/{query}")
        resp = self._send("POST", url, scopes, {"Content-Length": "0"}, b"", tries=tries)
        if resp.status == 201 and mount:
            resp.read(1 << 16)
            return None
        if resp.status != 202:
            if resp.status in (401, 403):
                resp.read(1 << 16)
                raise Unauthorized("denied: requested access to the resource is denied")
            self._fail(resp, f"upload to {repo}")
        resp.read(1 << 16)
        return self._location(resp, url)

    def new_upload(self, repo: str, *, tries: int | None = None) -> str:
        location = self.start_upload(repo, tries=tries)
        assert location is not None  # only a mount request can end without an upload
        return location

    def _location(self, resp: Response, base: str) -> str:
        location = resp.header("Location")
        if not location:
            raise CorruptData(f"{base}: the registry sent no upload Location")
        return urljoin(base, location)

    def patch(
        self,
        repo: str,
        location: str,
        data: bytes | Iterable[bytes],
        start: int | None = None,
        length: int | None = None,
        *,
        tries: int | None = None,
    ) -> str:
        """Send (part of) a blob. With ``start``/``length`` this is one chunk of a chunked
        upload (``Content-Range``); without, the rest of the blob streamed in one request."""
        headers = {"Content-Type": "application/octet-stream"}
        if length is not None:
            headers["Content-Length"] = str(length)
            if start is not None:
                headers["Content-Range"] = f"{start}-{start + length - 1}"
        resp = self._send(
            "PATCH",
            location,
            (scope(repo, "pull,push"),),
            headers,
            data,
            repeatable=isinstance(data, bytes),
            tries=tries,
        )
        if resp.status != 202:
            self._fail(resp, f"upload to {repo}")
        resp.read(1 << 16)
        return self._location(resp, location)

    def finish_upload(
        self,
        repo: str,
        location: str,
        digest: str,
        data: bytes = b"",
        *,
        tries: int | None = None,
    ) -> None:
        sep = "&" if "?" in location else "?"
        url = location + sep + urlencode({"digest": validate_digest(digest)})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        resp = self._send(
            "PUT",
            url,
            (scope(repo, "pull,push"),),
            headers,
            data,
            tries=tries,
            wait=self.transport.timeouts.commit,  # the registry may verify the whole blob first
        )
        if resp.status not in (201, 204):
            body = resp.read(1 << 16)
            text = error_text(resp, body)
            if "digest" in text.lower() and resp.status == 400:
                raise CorruptData(f"the registry refused blob {digest}: {text}")
            if resp.status in (401, 403):
                raise Unauthorized(f"denied: {text}")
            raise Unavailable(f"upload of {digest} to {repo}: {text}")
        resp.read(1 << 16)

    def cancel_upload(self, repo: str, location: str) -> None:
        try:
            resp = self._send("DELETE", location, (scope(repo, "pull,push"),), repeatable=False)
            resp.read(1 << 16)
        except (Unavailable, Unauthorized):
            pass

    # ------------------------------------------------------------ search

    def search(self, term: str, limit: int) -> dict[str, Any]:
        url = self.url("/v1/search?" + urlencode({"q": term, "n": str(limit)}))
        resp = self._send("GET", url, (), limit=16 << 20, what="search response")
        if resp.status != 200:
            if resp.status == 404:
                resp.read(1 << 16)
                raise NotFound(f"{self.endpoint.name} does not offer search")
            self._fail(resp, f"search on {self.endpoint.name}")
        body = resp.read(16 << 20, "search response")
        try:
            data = json.loads(body)
        except ValueError:
            raise CorruptData(f"search on {self.endpoint.name}: not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("results", []), list):
            raise CorruptData(f"search on {self.endpoint.name}: unexpected answer")
        return data


def network_reason(e: BaseException, netloc: str) -> str:
    """What went wrong on the connection, in Go's words where Docker users know them."""
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {netloc}: connect: connection refused"
    if isinstance(e, http.client.RemoteDisconnected):  # a ConnectionResetError too
        return f"{netloc} closed the connection without an answer (EOF)"
    if isinstance(e, ConnectionResetError) and e.errno == errno.ECONNRESET:
        return f"read tcp {netloc}: connection reset by peer"
    return str(e) or type(e).__name__


def after(tries: int) -> str:
    return f" (after {tries} attempts)" if tries > 1 else ""
