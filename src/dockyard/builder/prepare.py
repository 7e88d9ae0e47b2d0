"""A build's context and Dockerfile, from wherever ``build`` was pointed (Docker CLI's order):
``-`` (stdin: a tar context, or a Dockerfile and no context), a local directory, a git
repository, a URL to a tar or to a Dockerfile.

Whatever is not a local directory becomes a directory under ``<root>/build/tmp`` that
``prepare`` owns: it is removed when the build ends, succeeded or failed. A tar context is
untrusted input: it is unpacked as ADD unpacks archives (``image.unpack``), which refuses
entries that would land outside the directory (``..``, absolute names, paths through
symlinks, hard links to outside) and device nodes.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, NamedTuple

from dockyard.builder.parser import BuildError
from dockyard.errors import InvalidArgument
from dockyard.store.content import ContentStore

CHUNK = 1 << 20
_GIT_PREFIXES = ("git://", "github.com/", "git@")
_GIT_PATH = re.compile(r"\.git(?:#.+)?$")
# Only network transports: a context URL (or a submodule in it) must not reach file:// or
# run a command through ext::.
_GIT_PROTOCOLS = "http:https:git:ssh"


class Prepared(NamedTuple):
    context: str | None  # a directory; None for a Dockerfile alone (``build - < Dockerfile``)
    dockerfile: str  # its text
    dockerignore: str | None  # the context's .dockerignore, when it has one


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def is_git_url(text: str) -> bool:
    """Docker's rule: an http(s) URL ending in ``.git`` (then maybe ``#ref:dir``), or
    ``git://``, ``git@``, ``github.com/``."""
    return bool(is_url(text) and _GIT_PATH.search(text)) or text.startswith(_GIT_PREFIXES)


@contextmanager
def prepare(
    root: str,
    path: str,
    dockerfile: str | None,
    stdin: BinaryIO,
    say: Callable[[str], None] | None = None,
) -> Iterator[Prepared]:
    """The context ``path`` names, with its Dockerfile (``-f``; ``-`` reads it from stdin).
    Temporary directories are gone when the ``with`` block is left, also on errors."""
    tmp = _Temp(os.path.join(root, "build", "tmp"))
    try:
        yield _prepare(tmp, path, dockerfile, stdin, say)
    finally:
        tmp.remove()


@contextmanager
def prepare_upload(root: str, body: BinaryIO, dockerfile: str | None) -> Iterator[Prepared]:
    """The context ``POST /build`` receives: a tar (plain or compressed) unpacked as it
    arrives, never held whole (a context can be larger than memory), with its Dockerfile
    (``dockerfile``: a path inside the context); or, when the body is no archive, the body
    as the Dockerfile and no context. The directory goes when the block is left."""
    tmp = _Temp(os.path.join(root, "build", "tmp"))
    try:
        head = _read_head(body, 512)
        if not head.strip():
            raise BuildError("Cannot locate specified Dockerfile: Dockerfile")
        from dockyard.image.compression import compression_of
        from dockyard.image.tarstream import is_tar_header

        empty_tar = head == bytes(len(head))  # an archive's end blocks and nothing else
        if compression_of(head) is None and not is_tar_header(head) and not empty_tar:
            text = head + body.read(MAX_DOCKERFILE + 1 - len(head))
            if len(text) > MAX_DOCKERFILE:
                raise BuildError("the build context is neither an archive nor a Dockerfile")
            yield Prepared(None, text.decode("utf-8", "replace"), None)
            return
        context = tmp.unpack_stream(_Prefixed(head, body), "the request")
        yield _with_ignore(context, _dockerfile_in(context, dockerfile))
    finally:
        tmp.remove()


MAX_DOCKERFILE = 16 << 20


def _read_head(f: BinaryIO, n: int) -> bytes:
    out = b""
    while len(out) < n:
        data = f.read(n - len(out))
        if not data:
            break
        out += data
    return out


class _Prefixed(io.RawIOBase):
    """``head`` (already read to sniff the format) followed by the rest of ``rest``."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _prepare(
    tmp: _Temp,
    path: str,
    name: str | None,
    stdin: BinaryIO,
    say: Callable[[str], None] | None,
) -> Prepared:
    if path == "-":
        if name == "-":
            raise InvalidArgument(
                "invalid argument: can't use stdin for both build context and dockerfile"
            )
        spool = tmp.spool(stdin)
        if not _is_archive(spool):
            return Prepared(None, _read_text(spool), None)
        context = tmp.unpack(spool, "stdin")
    elif os.path.isdir(path):
        context = os.path.abspath(path)
        if name != "-":
            return _with_ignore(context, _local_dockerfile(context, name))
    elif is_git_url(path):
        context = _git_checkout(tmp, path)
    elif is_url(path):
        spool = tmp.download(path, say)
        if not _is_archive(spool):
            if name == "-":
                raise BuildError("unable to prepare context: build context is not an archive")
            return Prepared(None, _read_text(spool), None)
        context = tmp.unpack(spool, path)
    else:
        raise BuildError(f'unable to prepare context: path "{path}" not found')
    if name == "-":
        return _with_ignore(context, stdin.read().decode("utf-8", "replace"))
    return _with_ignore(context, _dockerfile_in(context, name))


def _with_ignore(context: str, dockerfile: str) -> Prepared:
    from dockyard.builder.ignore import BadPattern, IgnoreRules

    try:
        with open(os.path.join(context, ".dockerignore"), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return Prepared(context, dockerfile, None)
    except OSError as e:
        raise InvalidArgument(f"unable to read .dockerignore: {e.strerror}") from None
    try:
        IgnoreRules.parse(text)
    except BadPattern as e:
        raise BuildError(f"error checking context: {e}") from None  # Docker's CLI words
    return Prepared(context, dockerfile, text)


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def _is_archive(path: str) -> bool:
    """Docker's IsArchive: compressed (by magic), or starting with a valid tar header."""
    from dockyard.image.compression import compression_of
    from dockyard.image.tarstream import is_tar_header

    with open(path, "rb") as f:
        head = f.read(512)
    return compression_of(head) is not None or is_tar_header(head)


def _local_dockerfile(context: str, name: str | None) -> str:
    """A local context's Dockerfile: ``-f`` is relative to the current directory (Docker's
    CLI), else ``Dockerfile`` (or ``dockerfile``) in the context."""
    if name:
        path = name if os.path.isabs(name) or os.path.exists(name) else os.path.join(context, name)
    else:
        path = os.path.join(context, "Dockerfile")
        if not os.path.exists(path) and os.path.exists(os.path.join(context, "dockerfile")):
            path = os.path.join(context, "dockerfile")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise BuildError(
            f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
            f"lstat {path}: no such file or directory"
        ) from None
    except IsADirectoryError:
        raise BuildError(f"unable to prepare context: {path} is a directory") from None


def _dockerfile_in(context: str, name: str | None) -> str:
    """The Dockerfile inside an unpacked or cloned context: ``-f`` is relative to it, and
    symlinks resolve inside it (the context is not ours to trust)."""
    from dockyard.runtime.paths import resolve_in_root

    rel = posixpath.normpath(name) if name else "Dockerfile"
    if rel == ".." or rel.startswith("../"):
        raise BuildError(f"the Dockerfile ({name}) must be within the build context")
    candidates = [rel] if name else ["Dockerfile", "dockerfile"]
    for cand in candidates:
        host = resolve_in_root(context, cand.lstrip("/"))
        if os.path.isfile(host):
            with open(host, "rb") as f:
                return f.read().decode("utf-8", "replace")
    raise BuildError(f"Cannot locate specified Dockerfile: {name or 'Dockerfile'}")


class _Temp:
    """The temporary files and directories of one build's context, removed together."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.paths: list[str] = []

    def new(self, kind: str) -> str:
        os.makedirs(self.base, exist_ok=True)
        path = os.path.join(self.base, f"{os.getpid()}-{kind}-{os.urandom(6).hex()}")
        self.paths.append(path)
        return path

    def remove(self) -> None:
        for p in reversed(self.paths):
            ContentStore.remove_path(p)

    def spool(self, src: BinaryIO) -> str:
        """``src`` into a file: the kind of context is known only from its first bytes."""
        path = self.new("stdin")
        with open(path, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        return path

    def download(self, url: str, say: Callable[[str], None] | None) -> str:
        path = self.new("url")
        if say is not None:
            say(f"Downloading build context from remote url: {url}")
        try:
            download(url, path)
        except DownloadError as e:
            raise BuildError(
                f"unable to prepare context: unable to download remote context {url}: {e}"
            ) from None
        return path

    def unpack_stream(self, stream: Any, origin: str) -> str:
        """An untrusted tar stream (plain or compressed) into a new directory, as it is
        read."""
        from dockyard.builder.copy import unpack_archive
        from dockyard.errors import CorruptData

        dest = self.new("context")
        os.mkdir(dest, 0o755)
        try:
            unpack_archive(io.BufferedReader(stream, CHUNK), dest)
        except CorruptData as e:
            raise BuildError(
                f"unable to prepare context: the build context from {origin}: {e}"
            ) from None
        return dest

    def unpack(self, tar: str, origin: str) -> str:
        """An untrusted tar (plain, gzip, bzip2, xz or zstd) into a new directory, as ADD
        unpacks archives."""
        from dockyard.builder.copy import unpack_archive
        from dockyard.errors import CorruptData

        dest = self.new("context")
        os.mkdir(dest, 0o755)
        try:
            with open(tar, "rb") as f:
                unpack_archive(f, dest)
        except CorruptData as e:
            raise BuildError(
                f"unable to prepare context: the build context from {origin}: {e}"
            ) from None
        finally:
            os.unlink(tar)
            self.paths.remove(tar)
        return dest

    # ---------------------------------------------------------------- git

    def clone(self, remote: str, ref: str) -> str:
        dest = self.new("git")
        os.mkdir(dest, 0o700)
        _git(dest, "init", "-q", what="failed to init repo")
        _git(dest, "remote", "add", "origin", remote, what="failed to add origin")
        fetch = ["fetch", "-q", "--depth", "1", "origin", "--", ref or "HEAD"]
        code, out = _run_git(dest, *fetch)
        if code != 0 and "does not support shallow" in out:
            del fetch[2:4]  # a dumb HTTP server: a full fetch
            code, out = _run_git(dest, *fetch)
        if code != 0:
            raise _git_error("error fetching", code, out)
        # A branch name first (so HEAD names the branch, as after a clone), else what was
        # fetched (a tag, a commit, the remote's HEAD).
        if not ref or _run_git(dest, "checkout", "-q", ref)[0] != 0:
            _git(dest, "checkout", "-q", "FETCH_HEAD", what=f"error checking out {ref or 'HEAD'}")
        if os.path.exists(os.path.join(dest, ".gitmodules")):
            _git(dest, "submodule", "update", "--init", "--recursive", "--depth=1",
                 what="error initializing submodules")  # fmt: skip
        return dest


def parse_git_url(url: str) -> tuple[str, str, str]:
    """(remote, ref, subdir) of a git context: ``repo.git#ref:subdir``; no ref means the
    remote's HEAD (Docker 20.10 assumed "master", which fails on repositories without one)."""
    if not (is_url(url) or url.startswith(("git://", "git@"))):
        url = "https://" + url  # github.com/owner/repo
    remote, _, fragment = url.partition("#")
    ref, _, subdir = fragment.partition(":")
    if ref.startswith("-"):
        raise BuildError(f"unable to prepare context: invalid refspec: {ref}")
    return remote, ref, subdir


def _git_checkout(tmp: _Temp, url: str) -> str:
    from dockyard.runtime.paths import resolve_in_root

    remote, ref, subdir = parse_git_url(url)
    if shutil.which("git") is None:
        raise BuildError("unable to prepare context: unable to find 'git' in $PATH")
    root = tmp.clone(remote, ref)
    if not subdir:
        return root
    clean = posixpath.normpath("/" + subdir).lstrip("/")
    host = resolve_in_root(root, clean) if clean else root
    where = "unable to prepare context: unable to 'git clone' to temporary context directory"
    if not os.path.lexists(host):
        raise BuildError(f"{where}: {subdir}: no such directory in the repository")
    if not os.path.isdir(host):
        raise BuildError(f"{where}: error setting git context, not a directory: {subdir}")
    return host


def _run_git(cwd: str, *args: str) -> tuple[int, str]:
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_ALLOW_PROTOCOL=_GIT_PROTOCOLS, LC_ALL="C")
    r = subprocess.run(
        ["git", *args], cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True
    )
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace").strip()


def _git(cwd: str, *args: str, what: str) -> None:
    code, out = _run_git(cwd, *args)
    if code != 0:
        raise _git_error(what, code, out)


def _git_error(what: str, code: int, out: str) -> BuildError:
    return BuildError(
        "unable to prepare context: unable to 'git clone' to temporary context directory: "
        f"{what}: {out}: exit status {code}"
    )


# -------------------------------------------------------------------- download


class DownloadError(Exception):
    """Why a URL could not be fetched, in one line."""


def download(url: str, path: str, timeout: float = 60) -> tuple[str, int]:
    """GET ``url`` into the new file ``path``: (sha256 hex, size). No proxies: a build
    fetches from where it is told."""
    import hashlib
    import urllib.error
    import urllib.request

    h = hashlib.sha256()
    size = 0
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=timeout) as resp, open(path, "xb") as out:
            while chunk := resp.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as e:
        raise DownloadError(f"failed to GET {url} with status {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, OSError):
            from urllib.parse import urlsplit

            from dockyard.registry.client import network_reason

            reason = network_reason(reason, urlsplit(url).netloc)  # Go's words, as Docker's
        raise DownloadError(f'Get "{url}": {reason}') from None
    except (OSError, ValueError) as e:
        raise DownloadError(f'Get "{url}": {e}') from None
    return h.hexdigest(), size
