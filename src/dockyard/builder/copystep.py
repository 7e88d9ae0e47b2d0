"""COPY and ADD steps: what they read (context, another stage, an image, a URL, a heredoc),
the checksum their cache key covers, and writing it into the step's root."""

from __future__ import annotations

import json
import os
import posixpath
import re
from typing import TYPE_CHECKING

from dockyard.builder.cache import cache_key
from dockyard.builder.parser import Instruction, Stage
from dockyard.builder.state import BuildOptions, Plan, State
from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dockyard.builder.context import HashCache, SourceRoot
    from dockyard.builder.host import BuildHost
    from dockyard.builder.layerfs import StepFS
    from dockyard.store import Store
    from dockyard.store.images import LayerBlob


class CopySteps:
    """Mixed into Builder: COPY and ADD."""

    engine: BuildHost
    store: Store
    opts: BuildOptions
    stages: list[tuple[Stage, State]]
    from_images: dict[str, str]
    new_blobs: list[str]
    _context: SourceRoot | None
    _hashes: HashCache | None
    _downloads: list[str]

    def _expand(self, ins: Instruction, word: str, env: Mapping[str, str]) -> str:
        raise NotImplementedError

    def _image(self, ins: Instruction, ref: str, *, pull: bool) -> str:
        raise NotImplementedError

    def context_root(self, ins: Instruction) -> SourceRoot:
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
        """The stage or image ``COPY --from=name`` reads."""
        key = name.lower()
        for stage, st in self.stages:
            if stage.name == key or (name.isdigit() and stage.number == int(name)):
                return st, st.image_id or "scratch"
        if name.isdigit():
            raise ins.error(f"invalid from flag value {name}: stage {name} does not exist yet")
        image_id = self.from_images.get(name) or self._image(
            ins, self._expand(ins, name, state.expansion_env()), pull=False
        )
        data = json.loads(self.store.content.read(image_id))
        return State(self.engine, image_id, data), image_id

    def _owner(self, state: State, ins: Instruction, spec: str, rootfs: str) -> tuple[int, int]:
        from dockyard.runtime.user import resolve_user

        user, sep, group = spec.partition(":")
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

    def _plan_copy_add(self, state: State, ins: Instruction, *, add: bool) -> Plan:
        from dockyard.builder.context import SourceRoot

        env = state.expansion_env()
        words = [self._expand(ins, w, env) for w in ins.args]
        heredoc_names = {h.name for h in ins.heredocs}
        srcs, dest = words[:-1], words[-1]
        if not dest:
            raise ins.error(f"{ins.cmd} requires a destination")
        chown = self._expand(ins, ins.flag("chown") or "", env)
        chmod_s = ins.flag("chmod")
        chmod = None
        if chmod_s is not None:
            if not re.fullmatch(r"[0-7]{1,4}", chmod_s):
                raise ins.error(f"invalid --chmod={chmod_s}: only octal modes are supported")
            chmod = int(chmod_s, 8)
        checksum = ins.flag("checksum")
        if checksum is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", checksum):
            raise ins.error(f"invalid --checksum={checksum}: want sha256:<64 hex digits>")
        from_name = ins.flag("from") if not add else None
        workdir = state.config.get("WorkingDir") or "/"

        heredocs: list[tuple[str, str]] = []
        urls: list[str] = []
        local: list[str] = []
        for w, raw in zip(srcs, ins.args[:-1], strict=True):
            m = re.fullmatch(r"<<-?['\"]?([A-Za-z0-9_.-]+)['\"]?", raw)
            if m and m.group(1) in heredoc_names:
                h = next(x for x in ins.heredocs if x.name == m.group(1))
                body = self._expand(ins, h.content, env) if h.expand else h.content
                heredocs.append((h.name, body))
            elif add and re.match(r"^https?://", w):
                urls.append(w)
            elif add and (w.startswith("git@") or w.endswith(".git") and "://" in w):
                raise ins.error("ADD of a git repository is not supported by this builder")
            else:
                local.append(w)
        if checksum is not None and (len(urls) != 1 or local or heredocs):
            raise ins.error("--checksum works only with a single HTTP(S) source")

        if from_name:
            src_state, src_id = self._from_source(state, ins, from_name)
            source_root: SourceRoot | None = None  # mounted when the step runs
            material_src: object = ["from", src_id, local]
        else:
            src_state, src_id = state, ""
            source_root = self.context_root(ins) if local else None
            material_src = None

        # Docker counts what the sources resolve to: a wildcard matching one file is one file.
        several = len(local) + len(urls) + len(heredocs) > 1
        downloads: list[tuple[str, str, str]] = []  # url, temp path, digest
        if not from_name and source_root is not None:
            matches = []
            for s in local:
                found = source_root.resolve(s, ins)
                if not found:
                    raise ins.error(
                        f"{ins.cmd} failed: no source files were specified "
                        f"(pattern {s!r} matched nothing)"
                    )
                matches.append(found)
            flat = [m for ms in matches for m in ms]
            several = several or len(flat) > 1
            material_src = ["context", [m.rel for m in flat], source_root.digest(flat)]
        else:
            flat = []
        url_material = []
        for u in urls:
            if checksum is not None:
                url_material.append([u, checksum])
            else:
                path, digest = self._download(ins, u, None)
                downloads.append((u, path, digest))
                url_material.append([u, digest])
        material = [
            ins.cmd,
            material_src,
            url_material,
            [[n, b] for n, b in heredocs],
            dest,
            workdir,
            chown,
            chmod_s,
            several,
        ]
        what = "file" if len(flat) == 1 and not os.path.isdir(flat[0].host) else "dir"
        digest_text = cache_key("", material)[:64]
        created_by = f"/bin/sh -c #(nop) {ins.cmd} {what}:{digest_text} in {dest} "

        def apply(st: State) -> tuple[LayerBlob, str]:
            from dockyard.builder.copy import Copier, dest_path, is_dir_dest
            from dockyard.builder.layerfs import StepFS

            with StepFS(self.store, st.lower_ids()) as fs:
                owner = self._owner(st, ins, chown, fs.rootfs) if chown else None
                if from_name:
                    with StepFS(self.store, src_state.lower_ids()) as src_fs:
                        root = SourceRoot(src_fs.rootfs, keep_owner=True, what=f"stage {from_name}")
                        found = []
                        for s in local:
                            got = root.resolve(s, ins)
                            if not got:
                                raise ins.error(f"{ins.cmd} failed: no source files were specified")
                            found.extend(got)
                        several_now = several or len(found) > 1
                        Copier(fs.rootfs, root, ins, owner=owner, chmod=chmod).copy(
                            found, dest, workdir, several_now
                        )
                elif flat:
                    assert source_root is not None
                    Copier(
                        fs.rootfs, source_root, ins, owner=owner, chmod=chmod, unpack_archives=add
                    ).copy(flat, dest, workdir, several)
                if (heredocs or urls) and several and not is_dir_dest(dest_path(dest, workdir)):
                    raise ins.error(
                        f"When using {ins.cmd} with more than one source file, the destination "
                        "must be a directory and end with a /"
                    )
                for name, body in heredocs:
                    self._write_file(
                        fs, ins, name, body.encode(), dest, workdir, owner, chmod, 0o644
                    )
                for u in urls:
                    got_dl = [d for d in downloads if d[0] == u]
                    if got_dl:
                        path = got_dl[0][1]
                    else:
                        path, _ = self._download(ins, u, checksum)
                    with open(path, "rb") as f:
                        fetched = f.read()
                    name = posixpath.basename(u.split("?", 1)[0].rstrip("/")) or "download"
                    self._write_file(fs, ins, name, fetched, dest, workdir, owner, chmod, 0o600)
                return fs.commit(st.diff_ids, self.new_blobs)

        return Plan(created_by, material, apply, None)

    def _write_file(
        self,
        fs: StepFS,
        ins: Instruction,
        name: str,
        body: bytes,
        dest: str,
        workdir: str,
        owner: tuple[int, int] | None,
        chmod: int | None,
        mode: int,
    ) -> None:
        from dockyard.builder.context import SourceRoot
        from dockyard.builder.copy import Copier, dest_path

        c = Copier(fs.rootfs, SourceRoot(fs.aux), ins, owner=owner, chmod=chmod)
        target = c.target_for_file(name, dest_path(dest, workdir))
        if os.path.isdir(target) and not os.path.islink(target):
            raise ins.error(f"{ins.cmd} failed: {dest} is a directory")
        if os.path.lexists(target):
            os.unlink(target)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with open(fd, "wb") as f:
            f.write(body)
        uid, gid = owner or (0, 0)
        os.chown(target, uid, gid)
        os.chmod(target, chmod if chmod is not None else mode)

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
