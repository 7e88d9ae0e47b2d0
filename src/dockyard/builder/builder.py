"""Dockerfile -> image, one step at a time, every step cached (Docker's classic builder model).

Each step makes an image whose parent is the previous step's: metadata instructions only
change the config (a history entry with ``empty_layer``), RUN, COPY, ADD and WORKDIR add a
layer when they change files. A step is reused when the cache has an image for (parent
image, the instruction as expanded, and for COPY/ADD a checksum of the files read); after
the first miss in a stage every later step of it runs. Intermediate images are untagged
images with children, as Docker's are: hidden from ``images``, removed with the last image
built on them.

Stages are built as BuildKit builds them: only those the target needs, independent ones at
the same time (``stages.py``); each thread has its own engine connections, reached through
the ``engine``/``store``/``cache``/``progress`` properties.
"""

from __future__ import annotations

import _thread
import errno
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dockyard.builder.cache import BuildCache, cache_key
from dockyard.builder.copystep import CopySteps
from dockyard.builder.expand import expand, used_names
from dockyard.builder.metadata import MetadataSteps
from dockyard.builder.parser import BuildError, Dockerfile, Instruction, Stage, parse
from dockyard.builder.platforms import (
    AUTOMATIC_ARGS,
    Platform,
    automatic_args,
    host_platform,
    image_platform,
    parse_platform,
    same,
)
from dockyard.builder.progress import Progress
from dockyard.builder.runstep import RunSteps
from dockyard.builder.state import BuildOptions as BuildOptions  # re-exported for callers
from dockyard.builder.state import Cancelled, Flag, Plan, State
from dockyard.errors import DockyardError, InvalidArgument, NotFound

if TYPE_CHECKING:
    from dockyard.builder.context import HashCache, SourceRoot
    from dockyard.builder.host import BuildHost
    from dockyard.store import Store
    from dockyard.store.images import LayerBlob

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's predefined ARGs: usable without an ARG line, and never reported as unused.
PREDEFINED_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
     "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "BUILDKIT_DOCKERFILE_CHECK",
     "BUILDKIT_INLINE_CACHE", "BUILDKIT_SYNTAX", "SOURCE_DATE_EPOCH"}
) | AUTOMATIC_ARGS  # fmt: skip


class Builder(MetadataSteps, CopySteps, RunSteps):
    def __init__(
        self,
        engine: BuildHost,
        progress: Progress,
        new_host: Callable[[], BuildHost] | None = None,
    ) -> None:
        self._main_host = engine
        self._main_progress = progress
        self._new_host = new_host  # another thread's engine connections (parallel stages)
        # _thread, not threading: the cached-rebuild path never starts a thread.
        self._local = _thread._local()
        self.cancel = Flag()
        self._hashes: HashCache | None = None
        self._context: SourceRoot | None = None
        self._context_lock = _thread.allocate_lock()

    # ------------------------------------------------------------------ per thread

    @property
    def engine(self) -> BuildHost:
        host: BuildHost | None = getattr(self._local, "host", None)
        return host if host is not None else self._main_host

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def cache(self) -> BuildCache:
        cache: BuildCache | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = BuildCache(self.engine.root, self.store.db)
        return cache

    @property
    def progress(self) -> Progress:
        p: Progress | None = getattr(self._local, "progress", None)
        return p if p is not None else self._main_progress

    # ------------------------------------------------------------------ entry

    def build(self, opts: BuildOptions) -> str:
        from dockyard.builder.checks import Linter
        from dockyard.builder.frontend import check_frontend

        self.opts = opts
        checked_tags = self._check_tags(opts.tags)
        df = parse(opts.dockerfile)
        check_frontend(df.directives)
        self.escape = df.escape
        self.build_platform = host_platform()
        try:
            self.target_platform = (
                parse_platform(opts.platform) if opts.platform else self.build_platform
            )
        except InvalidArgument as e:
            raise BuildError(f"failed to parse target platform {opts.platform}: {e}") from None
        self.platform_args = automatic_args(self.target_platform, self.build_platform)
        self.used_args: set[str] = set()
        self.meta = self._meta_args(df)
        self.linter = Linter(df, opts, self.meta, self.progress)
        self.df = df
        order = self._plan_stages(df, opts.target)
        stages = [df.stages[i] for i in order]
        if opts.labels:
            label_line = "LABEL " + " ".join(
                f"{json.dumps(k)}={json.dumps(v)}" for k, v in opts.labels.items()
            )
            last = stages[-1]
            last.instructions.append(
                Instruction("LABEL", (), {}, False, label_line, last.from_line.line, ())
            )
            self._labels = dict(opts.labels)
        self.total = sum(1 + len(s.instructions) for s in stages)
        self.offsets: dict[int, int] = {}
        n = 0
        for s in stages:
            self.offsets[s.number] = n
            n += 1 + len(s.instructions)
        self.results: dict[int, State] = {}
        self.bases: dict[int, str] = {}
        self.from_images: dict[str, str] = {}
        self._resolve_images(stages)
        self.cache_sources: list[str] = []
        if opts.cache_from:
            from dockyard.builder import cachefrom

            self.cache_sources = cachefrom.resolve(self, list(opts.cache_from))
        self.linter.report()
        try:
            with self._adding() as new_blobs:
                self.new_blobs = new_blobs
                self._build_stages(order)
                state = self.results[order[-1]]
                if not state.image_id:
                    raise BuildError("No image was generated. Is your Dockerfile empty?")
                image_id = state.image_id
                if opts.outputs:
                    from dockyard.builder.export import export

                    export(self.store, state, opts.outputs)
                tags = self._tag(image_id, checked_tags)
        finally:
            self.cleanup()
            if self._hashes is not None:
                self._hashes.save()
        unused = sorted(
            k for k in opts.build_args if k not in self.used_args and k not in PREDEFINED_ARGS
        )
        if unused:
            self.progress.warning(f"One or more build-args [{' '.join(unused)}] were not consumed")
        self.progress.finish(image_id, tags)
        return image_id

    @contextmanager
    def _adding(self) -> Iterator[list[str]]:
        """The store's rule for adders (as ``store.archives.adding``, without its imports):
        hold the shared lock; on failure drop the blobs and snapshots nothing references."""
        new_blobs: list[str] = []
        before = {s.chain_id for s in self.store.snapshots.all()}
        ok = False
        try:
            with self.store.lock.shared():
                yield new_blobs
            ok = True
        finally:
            if not ok:
                self.store.images.discard(new_blobs, before)

    # ------------------------------------------------------------------ stages

    def _plan_stages(self, df: Dockerfile, target: str) -> list[int]:
        """The stages to build (BuildKit's rule: those the target needs), and how they
        depend on each other."""
        from dockyard.builder.stages import dependencies, needed

        if target:
            found = [s for s in df.stages if s.name == target.lower()]
            if not found:
                raise BuildError(f"failed to reach build target {target} in Dockerfile")
            last = found[0].number
        else:
            last = df.stages[-1].number
        names = [s.name for s in df.stages]
        meta_env = {k: v for k, v in self.meta.items() if v is not None}
        refs: list[list[str]] = []
        for s in df.stages:
            words = [self._quiet_expand(s.base, meta_env)]
            for ins in s.instructions:
                if ins.cmd == "COPY" and ins.flag("from"):
                    words.append(str(ins.flag("from")))
                if ins.cmd == "RUN":
                    words += [f for m in ins.flags.get("mount", []) for f in _mount_froms(m)]
            refs.append(words)
        self.deps = dependencies(names, refs)
        return needed(self.deps, last)

    def _quiet_expand(self, word: str, env: Mapping[str, str]) -> str:
        try:
            return expand(word, env, self.escape)
        except InvalidArgument:
            return word

    def _build_stages(self, order: list[int]) -> None:
        from dockyard.builder.stages import OrderedProgress, run_stages

        # A chain (each stage needs the one before) runs on this thread as a classic build.
        independent = any(order[k - 1] not in self._closure(order[k]) for k in range(1, len(order)))
        if not independent or self._new_host is None:
            for i in order:
                self._stage(self.df.stages[i])
            return
        ordered = OrderedProgress(self._main_progress, order)
        new_host = self._new_host

        def run(i: int) -> None:
            host = new_host()
            self._local.host = host
            self._local.cache = None
            self._local.progress = ordered.channel(i)
            try:
                self._stage(self.df.stages[i])
            finally:
                ordered.finish(i)
                self._local.host = None
                self._local.progress = None
                host.close()

        try:
            run_stages(order, {i: self.deps[i] for i in order}, run, self.cancel)
        finally:
            ordered.flush()

    def _closure(self, i: int) -> set[int]:
        from dockyard.builder.stages import needed

        return set(needed(self.deps, i))

    def stage_state(self, ins: Instruction, name: str) -> State | None:
        """The built stage ``name`` (a stage name or number) refers to, if it is one."""
        key = name.lower()
        for s in self.df.stages:
            if s.name == key or (key.isdigit() and s.number == int(key)):
                if s.number in self.results:
                    return self.results[s.number]
                if key.isdigit():
                    return None
                raise ins.error(f"stage {name} is not built before this step")
        return None

    def _stage(self, stage: Stage) -> None:
        ins = stage.from_line
        state = self._base_state(ins, self._base_name(stage), stage)
        state.n = self.offsets[stage.number] + 1
        state.missed = self.opts.no_cache
        env = list(state.config.get("Env") or [])
        if not any(str(e).startswith("PATH=") for e in env):
            # Both Docker builders give an image without PATH the default one.
            state.config["Env"] = [*env, DEFAULT_PATH]
        self.progress.step(state.n, self.total, ins.text, self._label(stage, 0))
        self.progress.base(state.image_id)
        triggers = state.config.get("OnBuild") or []
        if triggers:
            self.progress.message(
                f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}"
            )
            from dockyard.builder.parser import parse_instructions

            trig_ins = []
            for t in triggers:
                for parsed in parse_instructions(str(t) + "\n"):
                    trig_ins.append(parsed._replace(line=ins.line))
            state.config["OnBuild"] = None
            for t_ins in trig_ins:
                self._step(state, t_ins)
        for i, step in enumerate(stage.instructions, start=1):
            state.n = self.offsets[stage.number] + 1 + i
            self.progress.step(state.n, self.total, step.text, self._label(stage, i))
            self._step(state, step)
        self.results[stage.number] = state

    def _base_name(self, stage: Stage) -> str:
        ins = stage.from_line
        meta_env = {k: v for k, v in self.meta.items() if v is not None}
        base = self._expand(ins, stage.base, meta_env)
        unset = sorted(n for n in used_names(stage.base, {}, self.escape) if n not in meta_env)
        if unset and (not base.strip() or base.endswith((":", "@", "/"))):
            raise ins.error(
                f"FROM {stage.base}: ARG {', '.join(unset)} is used without a value "
                "(give it a default or pass --build-arg)"
            )
        if not base.strip():
            raise ins.error(f"base name ({stage.base}) should not be blank")
        return base

    def _stage_platform(self, stage: Stage) -> Platform:
        """FROM --platform (ARGs of the global scope expand in it), else the target's."""
        if not stage.platform:
            return self.target_platform
        ins = stage.from_line
        meta_env = {k: v for k, v in self.meta.items() if v is not None}
        text = self._expand(ins, stage.platform, meta_env)
        try:
            return parse_platform(text)
        except InvalidArgument as e:
            raise ins.error(f"FROM --platform={stage.platform}: {e}") from None

    def _resolve_images(self, stages: list[Stage]) -> None:
        """Find (or pull) every image the build names, before the build holds the store
        lock: a pull that fails cleans up under the exclusive lock."""
        names: set[str] = set()
        for stage in stages:
            base = self._base_name(stage)
            if base.lower() != "scratch" and base.lower() not in names:
                self.bases[stage.number] = self._image(
                    stage.from_line, base, pull=self.opts.pull, platform=self._stage_platform(stage)
                )
            for ins in stage.instructions:
                refs = [ins.flag("from") or ""] if ins.cmd == "COPY" else []
                if ins.cmd == "RUN":
                    refs = [f for m in ins.flags.get("mount", []) for f in _mount_froms(m)]
                for ref in refs:
                    if ref and "$" not in ref and not ref.isdigit() and ref.lower() not in names:
                        self.from_images[ref] = self._image(ins, ref, pull=False)
            if stage.name:
                names.add(stage.name)

    def _label(self, stage: Stage, i: int) -> str:
        name = stage.name or f"stage-{stage.number}"
        return f"{name} {i + 1}/{len(stage.instructions) + 1}"

    def _base_state(self, ins: Instruction, base: str, stage: Stage) -> State:
        platform = self._stage_platform(stage)
        if base.lower() == "scratch":
            data: dict[str, Any] = {
                "architecture": platform.arch,
                "os": platform.os,
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }
            if platform.variant:
                data["variant"] = platform.variant
            state = State("", data)
        else:
            for prev in self.df.stages[: stage.number]:
                if prev.name and prev.name == base.lower() and prev.number in self.results:
                    state = self.results[prev.number].copy()
                    break
            else:
                image_id = self.bases.get(stage.number) or self._image(
                    ins, base, pull=False, platform=platform
                )
                state = State(image_id, json.loads(self.store.content.read(image_id)))
        state.platform = platform
        return state

    def _image(
        self, ins: Instruction, ref: str, *, pull: bool, platform: Platform | None = None
    ) -> str:
        if not pull:
            try:
                found = self.store.images.resolve(ref)
                if platform is None or same(self._platform_of(found), platform):
                    return found
            except NotFound:
                pass
            except InvalidArgument as e:
                raise ins.error(f"invalid reference format for {ref!r}: {e}") from None
        from dockyard.image.reference import parse_reference

        try:
            parse_reference(ref)
        except InvalidArgument as e:
            raise ins.error(f"invalid reference format for {ref!r}: {e}") from None
        try:
            registry = getattr(self.engine, "registry", None)
        except ImportError:
            registry = None
        if registry is None or not hasattr(registry, "pull"):
            raise ins.error(
                f"pull access denied for {ref}: image not found locally and this engine has "
                "no registry client to pull it"
            )
        self.progress.message(f"Pulling {ref}" + (f" ({platform})" if platform else ""))
        try:
            if platform is not None and platform != self.build_platform:
                pulled = str(
                    registry.pull(ref, platform=(platform.os, platform.arch, platform.variant))
                )
            else:
                pulled = str(registry.pull(ref))
        except DockyardError as e:
            raise ins.error(f"pulling {ref} failed: {e}") from None
        if platform is not None and not same(self._platform_of(pulled), platform):
            raise ins.error(f"image {ref} is for {self._platform_of(pulled)}, not for {platform}")
        return pulled

    def _platform_of(self, image_id: str) -> Platform:
        return image_platform(json.loads(self.store.content.read(image_id)))

    # ------------------------------------------------------------------ ARGs

    def _arg_value(self, name: str, default: str | None) -> str | None:
        if name in self.opts.build_args:
            v = self.opts.build_args[name]
            if v is None:
                v = os.environ.get(name)
            if v is not None:
                return v
        return default

    def _meta_args(self, df: Dockerfile) -> dict[str, str | None]:
        # BuildKit's platform ARGs exist in the global scope without a declaration.
        meta: dict[str, str | None] = dict(self.platform_args)
        for ins in df.meta_args:
            for word in ins.args:
                name, eq, default = word.partition("=")
                env = {k: v for k, v in meta.items() if v is not None}
                value = expand(default, env, self.escape) if eq else None
                self.used_args.add(name)
                if not eq and name in self.platform_args:
                    value = self.platform_args[name]
                meta[name] = self._arg_value(name, value)
        return meta

    # ------------------------------------------------------------------ steps

    def _expand(self, ins: Instruction, word: str, env: Mapping[str, str]) -> str:
        self.used_args.update(
            n for n in used_names(word, env, self.escape) if n in self.opts.build_args
        )
        try:
            return expand(word, env, self.escape)
        except InvalidArgument as e:
            raise ins.error(str(e)) from None

    def _step(self, state: State, ins: Instruction) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        try:
            self._do_step(state, ins)
        except BuildError:
            raise
        except DockyardError as e:
            raise ins.error(f"{ins.cmd} failed: {e}") from None
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EIO, errno.EDQUOT):
                raise  # the host's problem, not the Dockerfile's
            where = f": {e.filename}" if e.filename else ""
            raise ins.error(f"{ins.cmd} failed: {e.strerror or e}{where}") from None

    def _do_step(self, state: State, ins: Instruction) -> None:
        handler = getattr(self, f"_plan_{ins.cmd.lower()}")
        plan: Plan | None = handler(state, ins)
        if plan is None:
            # ARG: changes only what later steps expand (and the RUN cache keys)
            self.progress.done(state.image_id or "")
            return
        parent = state.image_id
        # A scratch stage has no parent image: its platform stands in for one, so an arm64
        # build never takes an amd64 build's first step.
        key = cache_key(parent or f"scratch:{image_platform(state.data)}", plan.material)
        if not state.missed:
            hit = self.cache.get(key, parent)
            if hit is None and self.opts.cache_from:
                from dockyard.builder.cachefrom import find

                hit = find(self, state, plan)
                if hit is not None:
                    self.cache.put(key, hit)
            if hit is not None:
                data = json.loads(self.store.content.read(hit))
                blobs = state._blobs if plan.apply is None else None
                state.set_image(hit, data, blobs)
                self.progress.cached(hit)
                return
            state.missed = True
        from dockyard.image.config import now_rfc3339

        created = now_rfc3339()
        blobs = state.blobs(self.store)
        diff_ids = state.diff_ids
        container = ""
        if plan.change is not None:
            plan.change(state)
        entry: dict[str, Any] = {"created": created, "created_by": plan.created_by}
        if plan.apply is not None:
            if plan.run_label:
                container = os.urandom(32).hex()
                self.progress.running(container)
            layer = plan.apply(state)
            if layer is None:
                entry["empty_layer"] = True
            else:
                blobs = [*blobs, layer[0]]
                diff_ids = [*diff_ids, layer[1]]
        else:
            entry["empty_layer"] = True
        image_id = self.commit_image(state, diff_ids, blobs, entry, created)
        self.cache.put(key, image_id)
        self.progress.done(image_id, container)

    def commit_image(
        self,
        state: State,
        diff_ids: list[str],
        blobs: list[LayerBlob],
        entry: dict[str, Any],
        created: str,
    ) -> str:
        from dockyard.image.config import ImageConfig, encode_config

        data = dict(state.data)
        data["created"] = created
        data["history"] = [*state.history, entry]
        data["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
        cfg = {k: v for k, v in state.config.items() if v not in (None, "", [], {})}
        data["config"] = cfg
        for k in ("container", "container_config", "docker_version"):
            data.pop(k, None)
        data.setdefault("architecture", "amd64")
        data.setdefault("os", "linux")
        config = ImageConfig.parse(encode_config(data))
        image_id = self.store.images.add(config, blobs, parent=state.image_id or None)
        state.set_image(image_id, config.data, blobs)
        return image_id

    def _plan_arg(self, state: State, ins: Instruction) -> Plan | None:
        for word in ins.args:
            name, eq, default = word.partition("=")
            if not name:
                raise ins.error(f"ARG names can not be blank: {word!r}")
            value = self._expand(ins, default, state.expansion_env()) if eq else None
            self.used_args.add(name)
            if not eq and name in self.meta:
                value = self.meta[name]  # a global ARG brought into the stage
            elif not eq and name in self.platform_args:
                value = self.platform_args[name]  # BuildKit's automatic platform ARGs
            state.args[name] = self._arg_value(name, value)
        return None

    # ------------------------------------------------------------------ tags

    def _check_tags(self, tags: Sequence[str]) -> list[tuple[str, str]]:
        """(stored name, familiar name) of each -t, checked before anything is built."""
        out = []
        for t in tags:
            fast = _hub_tag(t)
            if fast is not None:
                out.append(fast)
                continue
            from dockyard.image.reference import parse_reference

            try:
                ref = parse_reference(t)
            except InvalidArgument as e:
                raise InvalidArgument(f'invalid argument {t!r} for "-t, --tag" flag: {e}') from None
            if ref.digest:
                raise InvalidArgument(f'invalid argument {t!r} for "-t, --tag": a digest')
            out.append((str(ref), ref.familiar()))
        return out

    def _tag(self, image_id: str, tags: list[tuple[str, str]]) -> list[str]:
        if not tags:
            return []
        import time

        # ImageStore.tag's two statements, for every -t in one transaction (and without
        # the reference grammar's import cost on the cached-rebuild path).
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self.store.db.transaction() as c:
            for stored, _ in tags:
                c.execute(
                    "INSERT OR REPLACE INTO tags (name, image_id) VALUES (?, ?)", (stored, image_id)
                )
            c.execute("UPDATE images SET last_tag_time = ? WHERE id = ?", (now, image_id))
        return [familiar for _, familiar in tags]


_MOUNT_FROM = re.compile(r"(?:^|,)\s*from=([^,]+)")


def _mount_froms(spec: str) -> list[str]:
    """The ``from=`` of a RUN --mount (a stage or an image it reads)."""
    return [m.group(1).strip().strip("\"'") for m in _MOUNT_FROM.finditer(spec)]


_HUB_NAME = re.compile(
    r"^([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)?"
    r"(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$"
)


def _hub_tag(text: str) -> tuple[str, str] | None:
    """A plain Docker Hub name ("app", "me/app:1"): its stored and familiar forms; None for
    anything the full reference grammar must decide."""
    m = _HUB_NAME.match(text)
    if not m or "." in m.group(1) or m.group(1) == "localhost" or len(text) > 255:
        return None
    name = m.group(1) + (m.group(2) or "")
    tag = m.group(3) or "latest"
    repo = name if "/" in name else f"library/{name}"
    return f"docker.io/{repo}:{tag}", f"{name}:{tag}"
