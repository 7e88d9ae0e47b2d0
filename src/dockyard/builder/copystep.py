"""COPY and ADD steps: what they read (context, another stage, an image, a URL, a heredoc),
the checksum their cache key covers, and writing it into the step's root.

BuildKit's flags: ``--link`` copies into an empty tree whose diff becomes the layer (no
symlink of the base image is followed, and the layer can be reused on another base:
``link_cache``), ``--parents`` keeps the sources' directories below the destination (from a
``/./`` pivot when there is one), ``--exclude`` drops paths matching its patterns,
``ADD --checksum`` verifies a download.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from typing import TYPE_CHECKING, NamedTuple

from dockyard.builder.cache import cache_key
from dockyard.builder.parser import Instruction, Stage
from dockyard.builder.state import DEFAULT_SHELL, BuildOptions, Plan, State
from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    import _thread
    from collections.abc import Mapping

    from dockyard.builder.cache import BuildCache
    from dockyard.builder.context import HashCache, Match, SourceRoot
    from dockyard.builder.copy import Copier
    from dockyard.builder.host import BuildHost
    from dockyard.builder.ignore import IgnoreRules
    from dockyard.store import Store
    from dockyard.store.images import LayerBlob


class Source(NamedTuple):
    """One source word of a COPY/ADD, in Dockerfile order."""

    kind: str  # "local", "url", "heredoc"
    word: str  # as expanded (the heredoc's name)
    body: bytes = b""  # a heredoc's content
    pivot: str = ""  # --parents: the part of ``word`` before "/./"


class CopySteps:
    """Mixed into Builder: COPY and ADD."""

    opts: BuildOptions
    stages: list[tuple[Stage, State]]
    from_images: dict[str, str]
    new_blobs: list[str]
    _context: SourceRoot | None
    _context_lock: _thread.LockType
    _hashes: HashCache | None
    _downloads: list[str]

    @property
    def engine(self) -> BuildHost:
        raise NotImplementedError

    @property
    def store(self) -> Store:
        raise NotImplementedError

    @property
    def cache(self) -> BuildCache:
        raise NotImplementedError

    def _expand(self, ins: Instruction, word: str, env: Mapping[str, str]) -> str:
        raise NotImplementedError

    def _image(self, ins: Instruction, ref: str, *, pull: bool) -> str:
        raise NotImplementedError

    def stage_state(self, ins: Instruction, name: str) -> State | None:
        raise NotImplementedError

    def context_root(self, ins: Instruction) -> SourceRoot:
        with self._context_lock:
            return self._context_root()

    def _context_root(self) -> SourceRoot:
        from dockyard.builder.context import HashCache, SourceRoot
        from dockyard.builder.ignore import IgnoreRules

        if self._context is None:
            ctx = self.opts.context
            if ctx is None:
                # `build - < Dockerfile`: an empty context; every COPY source is missing
                empty = os.path.join(self.engine.root, "build", "empty-context")
                os.makedirs(empty, exist_ok=True)
                ctx = empty
            build_dir = os.path.join(self.engine.root, "build")
            os.makedirs(build_dir, exist_ok=True)
            # A context unpacked from stdin is new every time: nothing to remember about it.
            if not os.path.abspath(ctx).startswith(build_dir + os.sep):
                import hashlib

                # One digest cache per context dir: a rebuild loads only its own entries.
                name = hashlib.sha256(os.path.abspath(ctx).encode()).hexdigest()[:32]
                os.makedirs(os.path.join(build_dir, "hashes"), exist_ok=True)
                self._hashes = HashCache(os.path.join(build_dir, "hashes", name))
            self._context = SourceRoot(
                ctx, IgnoreRules.parse(self.opts.dockerignore or ""), self._hashes
            )
        return self._context

    def _from_source(self, state: State, ins: Instruction, name: str) -> tuple[State, str]:
        """The stage or image ``COPY --from=name`` (or ``RUN --mount from=``) reads."""
        st = self.stage_state(ins, name)
        if st is not None:
            return st, st.image_id or "scratch"
        if name.isdigit():
            raise ins.error(f"invalid from flag value {name}: stage {name} does not exist yet")
        image_id = self.from_images.get(name) or self._image(
            ins, self._expand(ins, name, state.expansion_env()), pull=False
        )
        data = json.loads(self.store.content.read(image_id))
        return State(image_id, data), image_id

    def _owner(self, ins: Instruction, spec: str, rootfs: str) -> tuple[int, int]:
        from dockyard.runtime.user import resolve_user

        user, sep, _ = spec.partition(":")
        try:
            r = resolve_user(rootfs, spec)
        except InvalidArgument as e:
            raise ins.error(f"{ins.cmd} failed: --chown={spec}: {e}") from None
        uid = r.uid
        gid = r.gid
        if not sep and user.isdigit():
            gid = uid  # Docker: a bare UID is also the GID
        return uid, gid

    def _plan_copy(self, state: State, ins: Instruction) -> Plan:
        return self._plan_copy_add(state, ins, add=False)

    def _plan_add(self, state: State, ins: Instruction) -> Plan:
        return self._plan_copy_add(state, ins, add=True)

    def _sources(self, ins: Instruction, env: Mapping[str, str], add: bool) -> list[Source]:
        heredoc_names = {h.name for h in ins.heredocs}
        parents = ins.flag("parents") is not None
        out = []
        for raw in ins.args[:-1]:
            m = re.fullmatch(r"<<-?['\"]?([A-Za-z0-9_.-]+)['\"]?", raw)
            if m and m.group(1) in heredoc_names:
                h = next(x for x in ins.heredocs if x.name == m.group(1))
                body = self._expand(ins, h.content, env) if h.expand else h.content
                out.append(Source("heredoc", h.name, body.encode()))
                continue
            w = self._expand(ins, raw, env)
            if add and re.match(r"^https?://", w) and not _is_git(w):
                out.append(Source("url", w))
            elif add and _is_git(w):
                raise ins.error(
                    "ADD of a git repository is not supported by this builder "
                    "(feature: ADD <git URL>)"
                )
            else:
                pivot = ""
                if parents:
                    head = w[2:] if w.startswith("./") else w
                    if "/./" in head:
                        pivot = head.split("/./", 1)[0]
                out.append(Source("local", w, pivot=pivot))
        return out

    def _plan_copy_add(self, state: State, ins: Instruction, *, add: bool) -> Plan:
        from dockyard.builder.context import SourceRoot
        from dockyard.builder.ignore import BadPattern, IgnoreRules

        env = state.expansion_env()
        dest = self._expand(ins, ins.args[-1], env)
        if not dest:
            raise ins.error(f"{ins.cmd} requires a destination")
        sources = self._sources(ins, env, add)
        chown = self._expand(ins, ins.flag("chown") or "", env)
        chmod_s = ins.flag("chmod")
        chmod = None
        if chmod_s is not None:
            chmod_s = self._expand(ins, chmod_s, env)
            if not re.fullmatch(r"[0-7]{1,4}", chmod_s):
                raise ins.error(f"invalid --chmod={chmod_s}: only octal modes are supported")
            chmod = int(chmod_s, 8)
        checksum = ins.flag("checksum")
        if checksum is not None:
            checksum = self._expand(ins, checksum, env)
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", checksum):
                raise ins.error(f"invalid --checksum={checksum}: want sha256:<64 hex digits>")
            if len(sources) != 1 or sources[0].kind != "url":
                raise ins.error(
                    "--checksum works only with a single HTTP(S) source "
                    "(feature: ADD --checksum of a local or git source)"
                )
        link = _bool_flag(ins, "link")
        parents = _bool_flag(ins, "parents")
        exclude_patterns = [self._expand(ins, p, env) for p in ins.flags.get("exclude", [])]
        try:
            exclude = IgnoreRules(exclude_patterns) if exclude_patterns else None
        except BadPattern as e:
            raise ins.error(f"invalid --exclude pattern: {e}") from None
        if ins.flag("keep-git-dir") is not None:
            raise ins.error("ADD --keep-git-dir is not supported by this builder (no git sources)")
        from_name = self._expand(ins, ins.flag("from") or "", env) if not add else ""
        workdir = state.config.get("WorkingDir") or "/"
        local = [s for s in sources if s.kind == "local"]

        if from_name:
            src_state, src_id = self._from_source(state, ins, from_name)
            source_root: SourceRoot | None = None  # mounted when the step runs
            material_src: object = ["from", src_id, [s.word for s in local]]
            matches: list[list[Match]] = []
        else:
            src_state, src_id = state, ""
            source_root = self.context_root(ins) if local else None
            matches = []
            for s in local:
                assert source_root is not None
                found = source_root.resolve(s.word, ins)
                if exclude is not None:
                    found = [m for m in found if not exclude.excluded(posixpath.basename(m.rel))]
                if not found:
                    raise ins.error(
                        f"{ins.cmd} failed: no source files were specified "
                        f"(pattern {s.word!r} matched nothing)"
                    )
                matches.append(found)
            flat = [m for ms in matches for m in ms]
            material_src = [
                "context",
                [m.rel for m in flat],
                source_root.digest(flat, exclude) if source_root is not None else "",
            ]
        count = sum(len(ms) for ms in matches) + len(sources) - len(local)
        if from_name:
            count = len(sources)  # checked again once the stage's wildcards are expanded
        _check_several(ins, count, dest, parents)

        url_material = []
        downloads: dict[str, str] = {}
        for s in sources:
            if s.kind != "url":
                continue
            if checksum is not None:
                url_material.append([s.word, checksum])
            else:
                path, digest = self._download(ins, s.word, None)
                downloads[s.word] = path
                url_material.append([s.word, digest])
        material = [
            ins.cmd,
            material_src,
            url_material,
            [[s.word, s.body.decode("utf-8", "surrogateescape")] for s in sources
             if s.kind == "heredoc"],
            [s.kind for s in sources],
            dest,
            workdir,
            chown,
            chmod_s,
            count > 1,
            ["link"] if link else [],
            ["parents", [s.pivot for s in local]] if parents else [],
            exclude_patterns,
        ]  # fmt: skip
        single_file = (
            len(sources) == 1 and len(local) == 1 and len(matches) == 1 and len(matches[0]) == 1
            and not os.path.isdir(matches[0][0].host)
        )  # fmt: skip
        what = "file" if single_file else "dir"
        digest_text = cache_key("", material)[:64]
        shell = " ".join(state.config.get("Shell") or DEFAULT_SHELL)
        created_by = f"{shell} #(nop) {ins.cmd} {what}:{digest_text} in {dest} "

        def write(fs_root: str, st: State) -> None:
            from dockyard.builder.copy import Copier
            from dockyard.builder.layerfs import StepFS
            from dockyard.builder.paths import destination

            if chown:
                owner = self._chown_ids(st, ins, chown, fs_root, link)
            else:
                owner = None
            copier = Copier(fs_root, ins, owner=owner, chmod=chmod, keep_owner=bool(from_name))
            try:
                target = destination(fs_root, workdir, dest)
            except InvalidArgument as e:
                raise ins.error(f"{ins.cmd} failed: {e}") from None
            if from_name:
                with StepFS(self.store, src_state.lower_ids(self.store)) as src:
                    root = SourceRoot(src.rootfs, keep_owner=True, what=f"stage {from_name}")
                    found: list[list[Match]] = []
                    for s in local:
                        got = root.resolve(s.word, ins)
                        if exclude is not None:
                            got = [
                                m for m in got if not exclude.excluded(posixpath.basename(m.rel))
                            ]
                        if not got:
                            raise ins.error(f"{ins.cmd} failed: no source files were specified")
                        found.append(got)
                    n = sum(len(x) for x in found) + len(sources) - len(local)
                    _check_several(ins, n, dest, parents)
                    self._write_sources(
                        copier, root, sources, found, target, dest, workdir, fs_root,
                        parents, exclude, downloads, checksum, add=False,
                    )  # fmt: skip
            else:
                self._write_sources(
                    copier, source_root, sources, matches, target, dest, workdir, fs_root,
                    parents, exclude, downloads, checksum, add=add,
                )  # fmt: skip

        def apply(st: State) -> tuple[LayerBlob, str] | None:
            from dockyard.builder.layerfs import StepFS

            if link:
                return self._apply_link(st, material, write)
            with StepFS(self.store, st.lower_ids(self.store)) as fs:
                write(fs.rootfs, st)
                return fs.commit(st.diff_ids, self.new_blobs)

        return Plan(created_by, material, apply, None)

    def _chown_ids(
        self, st: State, ins: Instruction, chown: str, fs_root: str, link: bool
    ) -> tuple[int, int]:
        """--chown's ids, names looked up in the image (for --link: in the base image, which
        the copy itself does not see)."""
        if not link or all(p.isdigit() for p in chown.split(":") if p):
            return self._owner(ins, chown, fs_root)
        from dockyard.builder.layerfs import StepFS

        with StepFS(self.store, st.lower_ids(self.store)) as base:
            return self._owner(ins, chown, base.rootfs)

    def _write_sources(
        self,
        copier: Copier,
        root: SourceRoot | None,
        sources: list[Source],
        matches: list[list[Match]],
        target: object,
        dest: str,
        workdir: str,
        fs_root: str,
        parents: bool,
        exclude: IgnoreRules | None,
        downloads: dict[str, str],
        checksum: str | None,
        *,
        add: bool,
    ) -> None:
        """Every source, in Dockerfile order (a later one overwrites an earlier one)."""
        from dockyard.builder.copy import basename, is_archive
        from dockyard.builder.paths import Destination, destination

        assert isinstance(target, Destination)
        local_matches = iter(matches)
        for s in sources:
            if s.kind == "heredoc":
                copier.write_file(s.word, s.body, 0o644, target)
                continue
            if s.kind == "url":
                path = downloads.get(s.word) or self._download(copier.ins, s.word, checksum)[0]
                with open(path, "rb") as f:
                    fetched = f.read()
                name = posixpath.basename(s.word.split("?", 1)[0].rstrip("/")) or "download"
                copier.write_file(name, fetched, 0o600, target)
                continue
            assert root is not None
            for m in next(local_matches):
                where = target
                if parents:
                    kept = _kept_path(m.rel, s.pivot)
                    sub = kept if os.path.isdir(m.host) else posixpath.dirname(kept)
                    if sub:
                        where = destination(fs_root, workdir, posixpath.join(dest, sub) + "/")
                    elif not target.is_dir:
                        where = destination(fs_root, workdir, dest.rstrip("/") + "/")
                if os.path.isdir(m.host):
                    copier.copy_dir(root, m, where, exclude)
                elif add and is_archive(m.host):
                    copier.unpack(m.host, where)
                else:
                    copier.copy_file(m.host, os.stat(m.host), basename(m.rel), where)

    def _apply_link(
        self, st: State, material: object, write: object
    ) -> tuple[LayerBlob, str] | None:
        """COPY --link: the copy into an empty tree; its layer, made once, is reused on any
        base (BuildKit's point of --link: a changed base does not redo the copy)."""
        from collections.abc import Callable

        from dockyard.builder.layerfs import StepFS
        from dockyard.image.digest import chain_ids

        assert callable(write)
        writer: Callable[[str, State], None] = write
        key = cache_key("link", material)
        hit = self.cache.get_layer(key)
        if hit is not None and self.store.content.has(hit.digest):
            chains = chain_ids([*st.diff_ids, hit.diff_id])
            if self.store.snapshots.get(chains[-1]) is None:
                self.store.snapshots.ensure(
                    chains[-1],
                    chains[-2] if len(chains) > 1 else None,
                    hit.diff_id,
                    lambda: self.store.content.open(hit.digest),
                )
            return hit.blob(), hit.diff_id
        with StepFS(self.store, [], overlay=False) as fs:
            writer(fs.rootfs, st)
            done = fs.commit(st.diff_ids, self.new_blobs)
        if done is not None:
            self.cache.put_layer(key, done[0], done[1])
        return done

    def _download(self, ins: Instruction, url: str, checksum: str | None) -> tuple[str, str]:
        from dockyard.builder.prepare import DownloadError, download

        tmp_dir = os.path.join(self.engine.root, "build", "tmp")
        os.makedirs(tmp_dir, exist_ok=True)
        path = os.path.join(tmp_dir, f"{os.getpid()}-{os.urandom(6).hex()}")
        self._downloads = getattr(self, "_downloads", [])
        self._downloads.append(path)
        try:
            digest = "sha256:" + download(url, path)[0]
        except DownloadError as e:
            raise ins.error(f"ADD failed: cannot fetch {url}: {e}") from None
        if checksum is not None and digest != checksum:
            raise ins.error(f"ADD failed: checksum of {url} is {digest}, expected {checksum}")
        return path, digest

    def cleanup(self) -> None:
        for p in getattr(self, "_downloads", []):
            try:
                os.unlink(p)
            except OSError:
                pass


def _is_git(word: str) -> bool:
    return word.startswith("git@") or (word.endswith(".git") and "://" in word)


def _bool_flag(ins: Instruction, name: str) -> bool:
    """``--link`` / ``--link=true|false`` (BuildKit's boolean flags)."""
    v = ins.flag(name)
    if v is None:
        return False
    if v.lower() in ("true", "1", ""):
        return True
    if v.lower() in ("false", "0"):
        return False
    raise ins.error(f"invalid value {v!r} for --{name}: want true or false")


def _check_several(ins: Instruction, count: int, dest: str, parents: bool) -> None:
    """Docker: several sources (after wildcards) need a directory destination ending in /.
    BuildKit also takes "." (and --parents always writes below a directory)."""
    if count > 1 and not parents and not (dest.endswith("/") or dest == "." or dest.endswith("/.")):
        raise ins.error(
            f"When using {ins.cmd} with more than one source file, the destination must be a "
            "directory and end with a /"
        )


def _kept_path(rel: str, pivot: str) -> str:
    """--parents: the part of a source's path kept below the destination (all of it, or what
    follows the ``/./`` pivot)."""
    if not pivot:
        return rel
    base = posixpath.normpath(pivot).lstrip("/")
    if base in ("", "."):
        return rel
    return posixpath.relpath(rel, base) if rel.startswith(base + "/") or rel == base else rel
