"""``RUN --mount``: BuildKit's mounts for one RUN step.

* ``type=cache``: a directory kept between builds under ``<root>/build/mounts``, keyed by
  ``id`` (default: the target). ``sharing=shared`` lets concurrent builds use it together,
  ``locked`` makes them wait their turn, ``private`` gives a busy one's user another
  instance. ``from``/``source`` seed a new cache; ``mode``/``uid``/``gid`` set its root.
* ``type=bind``: a path of the context (``.dockerignore`` applies) or of a stage or image
  (``from``), read-only unless ``rw``: writes then go to a scratch layer, thrown away.
* ``type=tmpfs``: a tmpfs (``size``).
* ``type=secret``: a ``--secret`` of the build as a file (default
  ``/run/secrets/<id>``, mode 0400) or, with ``env``, an environment variable. It is never
  in a layer, the history or the cache key.

Mount points never reach the step's layer: they are made in a lower layer of their own
(copying the metadata of the directories they sit in, so a copy-up is exact) that the
step's root is remounted with.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import os
import posixpath
import shutil
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, NamedTuple

from dockyard.builder.parser import BuildError, Instruction
from dockyard.runtime.options import Mount
from dockyard.runtime.paths import resolve_in_root

if TYPE_CHECKING:
    from dockyard.builder.context import SourceRoot
    from dockyard.builder.layerfs import StepFS
    from dockyard.builder.state import State
    from dockyard.store import Store

_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_KEYS = {
    "bind": {"target", "source", "from", "readonly", "readwrite"},
    "cache": {"target", "source", "from", "readonly", "id", "sharing", "mode", "uid", "gid"},
    "tmpfs": {"target", "size"},
    "secret": {"target", "id", "required", "mode", "uid", "gid", "env"},
    "ssh": {"target", "id", "required", "mode", "uid", "gid"},
}
_ALIASES = {
    "dst": "target",
    "destination": "target",
    "src": "source",
    "ro": "readonly",
    "rw": "readwrite",
}
_BOOL_KEYS = ("readonly", "readwrite", "required")


class MountSpec(NamedTuple):
    type: str
    target: str = ""
    source: str = ""
    from_: str = ""
    read_only: bool = False
    id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    size: str = ""
    required: bool = False
    env: str = ""


def _parse_bool(ins: Instruction, key: str, value: str | None) -> bool:
    if value is None:
        return True
    v = value.lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise ins.error(f'invalid value for {key}: "{value}"')


def _parse_int(ins: Instruction, key: str, value: str, base: int = 10) -> int:
    try:
        n = int(value, base)
    except ValueError:
        raise ins.error(f'invalid value for {key}: "{value}"') from None
    if n < 0:
        raise ins.error(f'invalid value for {key}: "{value}"')
    return n


def parse_mount(ins: Instruction, text: str) -> MountSpec:
    """One ``--mount`` value (comma-separated, CSV quoting), checked as BuildKit checks it."""
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise ins.error(f"invalid mount: {text}") from None
    values: dict[str, str | None] = {}
    for field in fields:
        key, eq, value = field.strip().partition("=")
        key = key.lower()
        key = _ALIASES.get(key, key)
        if not eq and key not in _BOOL_KEYS:
            raise ins.error(f"invalid field '{field}' must be a key=value pair")
        values[key] = value if eq else None
    kind = (values.pop("type", None) or "bind").lower()
    if kind not in _TYPES:
        raise ins.error(f"unsupported mount type {kind!r} (feature: RUN --mount=type={kind})")
    if kind == "ssh":
        raise ins.error(
            "RUN --mount=type=ssh is not supported by this builder (feature: SSH agent forwarding)"
        )
    for key in values:
        if key not in _KEYS[kind]:
            raise ins.error(f"unexpected key '{key}' for mount type {kind}")
    target = values.get("target") or ""
    if target and not target.startswith("/"):
        target = posixpath.join("/", target)  # BuildKit: relative to the root (not WORKDIR)
    spec = MountSpec(kind, target)
    ro = "readonly" in values and _parse_bool(ins, "readonly", values["readonly"])
    if kind == "bind":
        rw = "readwrite" in values and _parse_bool(ins, "readwrite", values["readwrite"])
        ro = not rw  # BuildKit's bind mounts are read-only unless asked
    mode = values.get("mode")
    uid = values.get("uid")
    gid = values.get("gid")
    spec = spec._replace(
        source=values.get("source") or "",
        from_=values.get("from") or "",
        read_only=ro,
        id=values.get("id") or "",
        mode=_parse_int(ins, "mode", mode, 8) if mode else None,
        uid=_parse_int(ins, "uid", uid) if uid else None,
        gid=_parse_int(ins, "gid", gid) if gid else None,
        size=values.get("size") or "",
        required="required" in values and _parse_bool(ins, "required", values["required"]),
        env=values.get("env") or "",
    )
    if kind == "cache":
        sharing = (values.get("sharing") or "shared").lower()
        if sharing not in ("shared", "private", "locked"):
            raise ins.error(f"unrecognized sharing for mount: {values.get('sharing')}")
        spec = spec._replace(sharing=sharing, id=spec.id or target)
    if kind == "secret":
        if not spec.id and target:
            spec = spec._replace(id=posixpath.basename(target))
        if not spec.id:
            raise ins.error("secret ID missing from mount options")
        if not target and not spec.env:
            spec = spec._replace(target=f"/run/secrets/{spec.id}")
    elif not target:
        raise ins.error(f"mount destination is required for type={kind}")
    if target == "/":
        raise ins.error("invalid mount target: cannot mount over /")
    return spec


# ------------------------------------------------------------------ cache mounts


def cache_root(root: str) -> str:
    return os.path.join(root, "build", "mounts")


class _CacheDir(NamedTuple):
    data: str
    created: bool


@contextmanager
def _cache_dir(root: str, spec: MountSpec) -> Iterator[_CacheDir]:
    """The cache directory for ``spec.id``, held with its sharing mode until the step ends."""
    base = os.path.join(cache_root(root), hashlib.sha256(spec.id.encode()).hexdigest()[:32])
    os.makedirs(cache_root(root), exist_ok=True)
    candidates = (
        [base] if spec.sharing != "private" else [base] + [f"{base}-{n}" for n in range(1, 64)]
    )
    for path in candidates:
        os.makedirs(path, exist_ok=True)
        fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if spec.sharing == "shared":
                fcntl.flock(fd, fcntl.LOCK_SH)  # builder prune skips caches in use
            elif spec.sharing == "locked":
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
            data = os.path.join(path, "data")
            created = not os.path.isdir(data) and _make_cache_data(path, data, spec)
            yield _CacheDir(data, created)
            return
        finally:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
    raise BuildError(f"too many private instances of cache mount {spec.id!r} in use")


def _make_cache_data(path: str, data: str, spec: MountSpec) -> bool:
    """Make the cache's directory unless another build (or stage) just did; whether this
    call made it. Creation is serialised on a lock of its own."""
    fd = os.open(os.path.join(path, "create.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.path.isdir(data):
            return False
        tmp = f"{data}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
        os.mkdir(tmp)
        os.chmod(tmp, spec.mode if spec.mode is not None else 0o755)
        os.chown(tmp, spec.uid or 0, spec.gid or 0)
        with open(os.path.join(path, "id"), "w") as f:
            f.write(spec.id)
        os.rename(tmp, data)
        return True
    finally:
        os.close(fd)


def cache_mounts(root: str) -> list[tuple[str, str, int]]:
    """(dir, id, bytes) of every cache mount under ``root``: for ``builder prune``."""
    out = []
    base = cache_root(root)
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    for name in names:
        path = os.path.join(base, name)
        try:
            with open(os.path.join(path, "id")) as f:
                ident = f.read()
        except OSError:
            ident = ""
        out.append((path, ident, _du(os.path.join(path, "data"))))
    return out


def remove_cache_mount(path: str) -> bool:
    """Delete one cache mount unless a build is using it. Whether it went."""
    try:
        fd = os.open(os.path.join(path, "lock"), os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        shutil.rmtree(path, ignore_errors=True)
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        trash = f"{path}.rm-{os.getpid()}"
        os.rename(path, trash)
    finally:
        os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def _du(path: str) -> int:
    total = 0
    for dirpath, _dirs, filenames in os.walk(path):
        for n in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


# ------------------------------------------------------------------ a step's mounts


class Prepared(NamedTuple):
    mounts: tuple[Mount, ...]
    env: tuple[str, ...]  # secrets asked for as environment variables


class MountSources:
    """What RUN --mount reads from, as the builder provides it."""

    def __init__(
        self,
        store: Store,
        root: str,
        context: Callable[[], SourceRoot],
        stage: Callable[[str], State],
        secrets: dict[str, bytes],
    ) -> None:
        self.store = store
        self.root = root
        self.context = context
        self.stage = stage  # a stage name/number or image reference -> its state
        self.secrets = secrets


def _mount_point_kinds(specs: Sequence[MountSpec], sources: dict[int, str]) -> dict[str, bool]:
    """Target -> whether it must be a directory (else a file)."""
    out: dict[str, bool] = {}
    for i, s in enumerate(specs):
        if not s.target:
            continue
        if s.type == "secret":
            out[s.target] = False
        elif s.type == "bind":
            out[s.target] = os.path.isdir(sources[i])
        else:
            out[s.target] = True
    return out


def make_mount_points(fs: StepFS, points: dict[str, bool], layer: str) -> None:
    """A lower layer at ``layer`` holding the mount points that ``fs.rootfs`` lacks; each
    directory on the way a copy of the image's (mode, owner, mtime), so a copy-up from
    this layer writes what the image had."""
    for target, is_dir in points.items():
        resolved = resolve_in_root(fs.rootfs, target)
        rel = os.path.relpath(resolved, fs.rootfs)
        parts = rel.split("/")
        merged = fs.rootfs
        here = layer
        for k, part in enumerate(parts):
            merged = os.path.join(merged, part)
            here = os.path.join(here, part)
            last = k == len(parts) - 1
            try:
                st = os.lstat(merged)
            except FileNotFoundError:
                st = None
            if st is not None and stat.S_ISDIR(st.st_mode):
                if not os.path.isdir(here):
                    os.mkdir(here)
                    os.chown(here, st.st_uid, st.st_gid)
                    os.chmod(here, stat.S_IMODE(st.st_mode))
                    os.utime(here, ns=(st.st_atime_ns, st.st_mtime_ns))
                continue
            if st is not None and last and not is_dir and stat.S_ISREG(st.st_mode):
                break  # a file to mount over: it is there
            if st is not None:
                raise BuildError(
                    f"cannot mount at {target}: {'/' + '/'.join(parts[: k + 1])} is not a directory"
                )
            if last and not is_dir:
                if not os.path.exists(here):
                    open(here, "w").close()
                break
            if not os.path.isdir(here):
                os.mkdir(here, 0o755)
                os.chmod(here, 0o755)


@contextmanager
def prepared_mounts(
    fs: StepFS, ins: Instruction, specs: Sequence[MountSpec], src: MountSources
) -> Iterator[Prepared]:
    """Everything ``specs`` needs for the step on ``fs``: host dirs, overlays, secret files,
    held (and the mount points layered under the step's root) until the ``with`` ends."""
    from dockyard.builder.layerfs import StepFS

    for s in specs:
        if s.type == "secret" and s.id not in src.secrets and s.required:
            raise ins.error(f"secret {s.id} not found")
    # An optional secret the build was not given is not mounted at all (no mount point).
    specs = [s for s in specs if s.type != "secret" or s.id in src.secrets]
    with ExitStack() as stack:
        mounts: list[Mount] = []
        env: list[str] = []
        sources: dict[int, str] = {}
        for i, s in enumerate(specs):
            if s.type == "bind":
                sources[i] = _bind_source(stack, fs, ins, s, src, i)
        points = _mount_point_kinds(specs, sources)
        if points:
            layer = os.path.join(fs.aux, "mountpoints")
            os.mkdir(layer, 0o755)
            make_mount_points(fs, points, layer)
            fs.remount_with(layer)
        for i, s in enumerate(specs):
            if s.type == "bind":
                mounts.append(Mount("bind", sources[i], s.target, read_only=s.read_only))
            elif s.type == "tmpfs":
                opts = ("exec",) + ((f"size={s.size}",) if s.size else ())
                mounts.append(Mount("tmpfs", "", s.target, options=opts))
            elif s.type == "cache":
                cache = stack.enter_context(_cache_dir(src.root, s))
                if cache.created and s.from_:
                    seed = stack.enter_context(
                        StepFS(src.store, src.stage(s.from_).lower_ids(src.store))
                    )
                    _seed(ins, seed.rootfs, s.source or "/", cache.data)
                mounts.append(Mount("bind", cache.data, s.target, read_only=s.read_only))
            elif s.type == "secret":
                value = src.secrets[s.id]
                if s.env:
                    env.append(f"{s.env}={value.decode('utf-8', 'surrogateescape')}")
                if s.target:
                    path = os.path.join(fs.aux, f"secret-{i}")
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with open(fd, "wb") as f:
                        f.write(value)
                    os.chown(path, s.uid or 0, s.gid or 0)
                    os.chmod(path, s.mode if s.mode is not None else 0o400)
                    mounts.append(Mount("bind", path, s.target, read_only=True))
        yield Prepared(tuple(mounts), tuple(env))


def _seed(ins: Instruction, rootfs: str, source: str, data: str) -> None:
    path = resolve_in_root(rootfs, source)
    if not os.path.isdir(path):
        raise ins.error(f"cache mount source {source} is not a directory")
    shutil.copytree(path, data, symlinks=True, dirs_exist_ok=True)


def _bind_source(
    stack: ExitStack, fs: StepFS, ins: Instruction, s: MountSpec, src: MountSources, index: int
) -> str:
    """The host path a bind mount shows: in the context (ignored files left out) or in a
    stage/image; with ``rw``, an overlay whose writes are thrown away."""
    from dockyard.builder.layerfs import StepFS

    if s.from_:
        view = stack.enter_context(StepFS(src.store, src.stage(s.from_).lower_ids(src.store)))
        path = resolve_in_root(view.rootfs, s.source or "/")
        if not os.path.lexists(path):
            raise ins.error(
                f"failed to compute cache key: {s.source or '/'}: not found in {s.from_}"
            )
        return path  # the view has its own upper: rw writes are dropped with it
    ctx = src.context()
    rel = ctx.clean(s.source or ".", ins)
    path = resolve_in_root(ctx.root, rel) if rel else ctx.root
    if ctx.excluded(rel) or not os.path.lexists(path):
        raise ins.error(
            f"failed to compute cache key: {s.source or '.'}: not found in the build context"
        )
    if ctx.ignore or not s.read_only:
        # Only what the context sends (no ignored file); a writable mount gets copies, so
        # its writes never reach the context.
        view_dir = os.path.join(fs.aux, f"bind-{index}")
        _link_tree(ctx, rel, path, view_dir, links=s.read_only)
        return view_dir
    return path


def _link_tree(ctx: SourceRoot, rel: str, path: str, dest: str, *, links: bool) -> None:
    """A copy of context path ``rel`` without what .dockerignore excludes, its files hard
    links when ``links`` and the filesystem allows (copies otherwise)."""
    from dockyard.builder.context import Match

    m = Match(rel, path)
    for sub, host, st in ctx.walk(m):
        out = os.path.join(dest, sub) if sub else dest
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.makedirs(out, exist_ok=True)
            os.chmod(out, stat.S_IMODE(mode))
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(host), out)
        elif stat.S_ISREG(mode):
            try:
                if not links:
                    raise OSError
                os.link(host, out, follow_symlinks=False)
            except OSError:
                shutil.copy2(host, out, follow_symlinks=False)
