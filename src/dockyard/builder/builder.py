"""Dockerfile -> image, one step at a time, every step cached (Docker's classic builder model).

Each step makes an image whose parent is the previous step's: metadata instructions only
change the config (a history entry with ``empty_layer``), RUN, COPY and ADD add a layer. A
step is reused when the cache has an image for (parent image, the instruction as expanded,
and for COPY/ADD a checksum of the files read); after the first miss every later step runs.
Intermediate images are untagged images with children, as Docker's are: hidden from
``images``, removed with the last image built on them.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dockyard.builder.cache import BuildCache, cache_key
from dockyard.builder.copystep import CopySteps
from dockyard.builder.expand import expand, used_names
from dockyard.builder.metadata import MetadataSteps
from dockyard.builder.parser import BuildError, Dockerfile, Instruction, Stage, parse
from dockyard.builder.progress import Progress
from dockyard.builder.state import DEFAULT_SHELL, Plan, State, StepFailed
from dockyard.builder.state import BuildOptions as BuildOptions  # re-exported for callers
from dockyard.errors import DockyardError, InvalidArgument, NotFound

if TYPE_CHECKING:
    from dockyard.builder.context import HashCache, SourceRoot
    from dockyard.builder.host import BuildHost
    from dockyard.builder.layerfs import StepFS
    from dockyard.runtime.options import Mount
    from dockyard.store.images import LayerBlob

# Docker's predefined ARGs: usable without an ARG line, and never reported as unused.
PREDEFINED_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
     "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
)  # fmt: skip


class Builder(MetadataSteps, CopySteps):
    def __init__(self, engine: BuildHost, progress: Progress) -> None:
        self.engine = engine
        self.store = engine.store
        self.progress = progress
        self.cache = BuildCache(engine.root, self.store.db)
        self._hashes: HashCache | None = None
        self._context: SourceRoot | None = None

    # ------------------------------------------------------------------ entry

    def build(self, opts: BuildOptions) -> str:
        self.opts = opts
        checked_tags = self._check_tags(opts.tags)
        df = parse(opts.dockerfile)
        self.escape = df.escape
        stages = self._select(df, opts.target)
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
        self.n = 0
        self.missed = opts.no_cache
        self.used_args: set[str] = set()
        self.meta = self._meta_args(df)
        self.stages: list[tuple[Stage, State]] = []
        self.bases: dict[int, str] = {}
        self.from_images: dict[str, str] = {}
        self._resolve_images(stages)
        try:
            with self._adding() as new_blobs:
                self.new_blobs = new_blobs
                state: State | None = None
                for stage in stages:
                    state = self._stage(stage)
                    self.stages.append((stage, state))
                assert state is not None
                if not state.image_id:
                    raise BuildError("No image was generated. Is your Dockerfile empty?")
                image_id = state.image_id
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

    def _select(self, df: Dockerfile, target: str) -> list[Stage]:
        if not target:
            return list(df.stages)
        for s in df.stages:
            if s.name == target.lower():
                return list(df.stages[: s.number + 1])
        raise BuildError(f"failed to reach build target {target} in Dockerfile")

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
        meta: dict[str, str | None] = {}
        for ins in df.meta_args:
            for word in ins.args:
                name, eq, default = word.partition("=")
                env = {k: v for k, v in meta.items() if v is not None}
                value = expand(default, env, self.escape) if eq else None
                self.used_args.add(name)
                meta[name] = self._arg_value(name, value)
        return meta

    # ------------------------------------------------------------------ stages

    def _stage(self, stage: Stage) -> State:
        ins = stage.from_line
        self.n += 1
        self.progress.step(self.n, self.total, ins.text, self._label(stage, 0))
        state = self._base_state(ins, self._base_name(stage), stage)
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
                self._step(stage, state, t_ins, trigger=True)
        for i, step in enumerate(stage.instructions, start=1):
            self.n += 1
            self.progress.step(self.n, self.total, step.text, self._label(stage, i))
            self._step(stage, state, step)
        return state

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

    def _resolve_images(self, stages: list[Stage]) -> None:
        """Find (or pull) every image the build names, before the build holds the store
        lock: a pull that fails cleans up under the exclusive lock."""
        names: set[str] = set()
        for stage in stages:
            base = self._base_name(stage)
            if base.lower() != "scratch" and base.lower() not in names:
                self.bases[stage.number] = self._image(stage.from_line, base, pull=self.opts.pull)
            for ins in stage.instructions:
                ref = ins.flag("from") if ins.cmd == "COPY" else None
                if ref and "$" not in ref and not ref.isdigit() and ref.lower() not in names:
                    self.from_images[ref] = self._image(ins, ref, pull=False)
            if stage.name:
                names.add(stage.name)

    def _label(self, stage: Stage, i: int) -> str:
        name = stage.name or f"stage-{stage.number}"
        return f"{name} {i + 1}/{len(stage.instructions) + 1}"

    def _base_state(self, ins: Instruction, base: str, stage: Stage) -> State:
        if base.lower() == "scratch":
            return State(
                self.engine,
                "",
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "config": {},
                    "rootfs": {"type": "layers", "diff_ids": []},
                    "history": [],
                },
            )
        for prev, st in self.stages:
            if prev.name and prev.name == base.lower():
                new = State(self.engine, st.image_id, json.loads(json.dumps(st.data)))
                new._blobs = st._blobs
                return new
        image_id = self.bases.get(stage.number) or self._image(ins, base, pull=False)
        data = json.loads(self.store.content.read(image_id))
        return State(self.engine, image_id, data)

    def _image(self, ins: Instruction, ref: str, *, pull: bool) -> str:
        if not pull:
            try:
                return self.store.images.resolve(ref)
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
        self.progress.message(f"Pulling {ref}")
        try:
            return str(registry.pull(ref))
        except DockyardError as e:
            raise ins.error(f"pulling {ref} failed: {e}") from None

    # ------------------------------------------------------------------ steps

    def _expand(self, ins: Instruction, word: str, env: Mapping[str, str]) -> str:
        self.used_args.update(
            n for n in used_names(word, env, self.escape) if n in self.opts.build_args
        )
        try:
            return expand(word, env, self.escape)
        except InvalidArgument as e:
            raise ins.error(str(e)) from None

    def _step(self, stage: Stage, state: State, ins: Instruction, trigger: bool = False) -> None:
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
        key = cache_key(parent, plan.material)
        if not self.missed:
            hit = self.cache.get(key, parent)
            if hit is not None:
                data = json.loads(self.store.content.read(hit))
                blobs = state._blobs if plan.apply is None else None
                state.set_image(hit, data, blobs)
                self.progress.cached(hit)
                return
            self.missed = True
        from dockyard.image.config import now_rfc3339

        created = now_rfc3339()
        blobs = state.blobs()
        diff_ids = state.diff_ids
        container = ""
        if plan.change is not None:
            plan.change(state)
        entry: dict[str, Any] = {"created": created, "created_by": plan.created_by}
        if plan.apply is not None:
            if plan.run_label:
                container = os.urandom(32).hex()
                self.progress.running(container)
            new_blob, diff_id = plan.apply(state)
            blobs = [*blobs, new_blob]
            diff_ids = [*diff_ids, diff_id]
        else:
            entry["empty_layer"] = True
        image_id = self._commit(state, diff_ids, blobs, entry, created)
        self.cache.put(key, image_id)
        self.progress.done(image_id, container)

    def _commit(
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
            state.args[name] = self._arg_value(name, value)
        return None

    # ------------------------------------------------------------------ RUN

    def _plan_run(self, state: State, ins: Instruction) -> Plan:
        if "mount" in ins.flags or "security" in ins.flags:
            raise ins.error("RUN --mount and --security are not supported by this builder")
        network = ins.flag("network") or self.opts.network
        network = _resolve_network(ins, network)
        script: str | None = None
        if ins.json:
            argv = list(ins.args)
        else:
            cmdline = ins.args[0] if ins.args else ""
            shell = list(state.config.get("Shell") or DEFAULT_SHELL)
            if (
                ins.heredocs
                and re.fullmatch(r"\s*<<-?['\"]?[A-Za-z0-9_.-]+['\"]?\s*", cmdline)
                and len(ins.heredocs) == 1
            ):
                body = ins.heredocs[0].content
                if body.startswith("#!"):
                    script = body  # run as an executable file with its own interpreter
                    argv = ["/dev/pipes/" + ins.heredocs[0].name]
                else:
                    argv = [*shell, body]
            elif ins.heredocs:
                text = cmdline + "\n" + "".join(h.content + h.name + "\n" for h in ins.heredocs)
                argv = [*shell, text]
            else:
                argv = [*shell, cmdline]
        # Declared ARGs with values reach the command's environment (not the image's), and
        # the cache key, as Docker's "|N a=b" prefix does.
        env_now = state.env()
        build_env = sorted(
            (k, v) for k, v in state.args.items() if v is not None and k not in env_now
        )
        self.used_args.update(k for k, _ in build_env)
        prefix = (
            f"|{len(build_env)} " + " ".join(f"{k}={v}" for k, v in build_env) + " "
            if build_env
            else ""
        )
        created_by = prefix + " ".join(argv)
        declared = {k for k, _ in build_env}
        proxies = [
            (k, v)
            for k, v in self.opts.build_args.items()
            if k in PREDEFINED_ARGS and v is not None and k not in declared and k not in env_now
        ]
        material = ["run", argv, build_env, script, network if network == "host" else ""]
        if network not in ("default", "bridge", "none", "host"):
            self._check_network(ins, network)

        def apply(st: State) -> tuple[LayerBlob, str]:
            from dockyard.builder.layerfs import StepFS
            from dockyard.builder.run import run_in
            from dockyard.runtime.options import Mount

            env = [f"{k}={v}" for k, v in st.env().items()] + [f"{k}={v}" for k, v in build_env]
            # Docker's predefined proxy ARGs reach RUN undeclared, but stay out of the
            # history and the cache key (they are the host's business, not the image's).
            env += [f"{k}={v}" for k, v in proxies]
            with StepFS(self.store, st.lower_ids(), init=True) as fs:
                mounts: tuple[Mount, ...] = ()
                if script is not None:
                    spath = os.path.join(fs.aux, "script")
                    with open(spath, "w") as f:
                        f.write(script)
                    os.chmod(spath, 0o755)
                    mounts = (Mount("bind", spath, argv[0], True),)
                mounts += _volume_mounts(fs, st.config.get("Volumes") or {})
                result = run_in(
                    fs,
                    self.engine,
                    args=argv,
                    env=env,
                    workdir=st.config.get("WorkingDir") or "/",
                    user=st.config.get("User") or "",
                    network=network,
                    run_root=self.engine.run_root,
                    runtime="runc",
                    output=self.progress.output,
                    mounts=mounts,
                )
                if result.exit_code != 0:
                    shown = json.dumps(argv) if ins.json else " ".join(argv)
                    msg = (
                        f"Dockerfile:{ins.line}: step {self.n}/{self.total} ({ins.text}): "
                        f"the command '{shown}' returned a non-zero code: {result.exit_code}"
                    )
                    if result.tail:
                        msg += "\nlast output lines:\n" + "\n".join(
                            "  " + x for x in result.tail[-10:]
                        )
                    self.progress.failed(f"exit code: {result.exit_code}")
                    # moby's dispatchers: the command joined by spaces, whatever its form.
                    classic = (
                        f"The command '{' '.join(argv)}' returned a non-zero code: "
                        f"{result.exit_code}"
                    )
                    raise StepFailed(msg, result.exit_code, classic)
                return fs.commit(st.diff_ids, self.new_blobs)

        return Plan(created_by, material, apply, None, run_label=True)

    def _check_network(self, ins: Instruction, network: str) -> None:
        try:
            self.engine.networks.resolve(network)
        except NotFound:
            raise ins.error(f"network {network} not found") from None


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


def _volume_mounts(fs: StepFS, volumes: Mapping[str, object]) -> tuple[Mount, ...]:
    """Docker's classic builder runs RUN with the image's VOLUMEs as volumes: a step sees
    what the image has there, and what it changes there is discarded (a copy, mounted over)."""
    import shutil

    from dockyard.runtime.options import Mount
    from dockyard.runtime.paths import resolve_in_root

    out = []
    for i, path in enumerate(sorted(volumes)):
        if not path.startswith("/") or path == "/":
            continue
        copy = os.path.join(fs.aux, f"volume-{i}")
        src = resolve_in_root(fs.rootfs, path)
        if os.path.isdir(src):
            shutil.copytree(src, copy, symlinks=True)
        else:
            os.makedirs(copy)
        out.append(Mount("bind", copy, path))
    return tuple(out)


def _resolve_network(ins: Instruction, network: str) -> str:
    """RUN's network: Docker's default (the ``bridge`` network, as for ``dockyard run``),
    ``none``, ``host`` or a network's name."""
    if network in ("", "default"):
        return "default"
    if network.startswith("container:"):
        raise ins.error("network mode container:<name> is not supported for builds")
    return network
