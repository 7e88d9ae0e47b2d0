"""RUN steps: the command line (shell or JSON form, heredocs), its environment (declared ARGs
and Docker's proxy ARGs), BuildKit's ``--mount``, ``--network`` and ``--security`` flags,
and the cache key, which covers what the command sees but never a secret's value."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from dockyard.builder.parser import Instruction
from dockyard.builder.state import DEFAULT_SHELL, BuildOptions, Flag, Plan, State, StepFailed
from dockyard.errors import NotFound

if TYPE_CHECKING:
    from dockyard.builder.context import SourceRoot
    from dockyard.builder.host import BuildHost
    from dockyard.builder.layerfs import StepFS
    from dockyard.builder.mounts import MountSpec
    from dockyard.builder.platforms import Platform
    from dockyard.builder.progress import Progress
    from dockyard.runtime.options import Mount
    from dockyard.store import Store
    from dockyard.store.images import LayerBlob

PROXY_ARGS = frozenset(
    {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
     "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
)  # fmt: skip


class RunSteps:
    """Mixed into Builder: RUN."""

    opts: BuildOptions
    new_blobs: list[str]
    used_args: set[str]
    total: int
    cancel: Flag
    build_platform: Platform

    @property
    def engine(self) -> BuildHost:
        raise NotImplementedError

    @property
    def store(self) -> Store:
        raise NotImplementedError

    @property
    def progress(self) -> Progress:
        raise NotImplementedError

    def context_root(self, ins: Instruction) -> SourceRoot:
        raise NotImplementedError

    def _from_source(self, state: State, ins: Instruction, name: str) -> tuple[State, str]:
        raise NotImplementedError

    def _expand(self, ins: Instruction, word: str, env: Mapping[str, str]) -> str:
        raise NotImplementedError

    def _plan_run(self, state: State, ins: Instruction) -> Plan:
        from dockyard.builder.platforms import same

        specs: list[MountSpec] = []
        if "mount" in ins.flags:
            from dockyard.builder.mounts import parse_mount

            env_now = state.expansion_env()
            specs = [parse_mount(ins, self._expand(ins, m, env_now)) for m in ins.flags["mount"]]
        security = ins.flag("security")
        if security is not None and security not in ("sandbox", "insecure"):
            raise ins.error(f"unsupported security mode {security!r}")
        if security == "insecure":
            raise ins.error(
                "RUN --security=insecure is not supported by this builder (feature: "
                "security.insecure entitlement)"
            )
        if state.platform is not None and not same(state.platform, self.build_platform):
            raise ins.error(
                f"RUN for {state.platform} needs emulation, which this builder does not have "
                f"(it runs {self.build_platform}; feature: RUN for another platform)"
            )
        network = _resolve_network(ins, ins.flag("network") or self.opts.network)
        argv, script = _command(state, ins)
        # Declared ARGs with values reach the command's environment (not the image's), and
        # the cache key, as Docker's "|N a=b" prefix does.
        env_image = state.env()
        build_env = sorted(
            (k, v) for k, v in state.args.items() if v is not None and k not in env_image
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
            if k in PROXY_ARGS and v is not None and k not in declared and k not in env_image
        ]
        material: list[object] = [
            "run",
            argv,
            build_env,
            script,
            network if network == "host" else "",
        ]
        if specs:
            material.append([self._mount_material(state, ins, s) for s in specs])
        if network not in ("default", "bridge", "none", "host"):
            self._check_network(ins, network)

        def apply(st: State) -> tuple[LayerBlob, str] | None:
            from dockyard.builder.layerfs import StepFS
            from dockyard.builder.mounts import MountSources, prepared_mounts
            from dockyard.builder.paths import make_workdir
            from dockyard.builder.run import run_in
            from dockyard.errors import InvalidArgument
            from dockyard.runtime.options import Mount

            env = [f"{k}={v}" for k, v in st.env().items()] + [f"{k}={v}" for k, v in build_env]
            # Docker's predefined proxy ARGs reach RUN undeclared, but stay out of the
            # history and the cache key (they are the host's business, not the image's).
            env += [f"{k}={v}" for k, v in proxies]
            workdir = st.config.get("WorkingDir") or "/"
            with StepFS(self.store, st.lower_ids(self.store), init=True) as fs:
                try:
                    make_workdir(fs.rootfs, workdir, None)
                except InvalidArgument as e:
                    raise ins.error(str(e)) from None
                sources = MountSources(
                    self.store,
                    self.engine.root,
                    lambda: self.context_root(ins),
                    lambda name: self._from_source(st, ins, name)[0],
                    dict(self.opts.secrets),
                )
                with prepared_mounts(fs, ins, specs, sources) as prepared:
                    mounts: tuple[Mount, ...] = prepared.mounts
                    if script is not None:
                        spath = os.path.join(fs.aux, "script")
                        with open(spath, "w") as f:
                            f.write(script)
                        os.chmod(spath, 0o755)
                        mounts = (Mount("bind", spath, argv[0], True), *mounts)
                    mounts = _volume_mounts(fs, st.config.get("Volumes") or {}) + mounts
                    result = run_in(
                        fs,
                        self.engine,
                        args=argv,
                        env=env + list(prepared.env),
                        workdir=workdir,
                        user=st.config.get("User") or "",
                        network=network,
                        run_root=self.engine.run_root,
                        runtime="runc",
                        output=self.progress.output,
                        mounts=mounts,
                        cancel=self.cancel,
                    )
                if result.exit_code != 0:
                    shown = json.dumps(argv) if ins.json else " ".join(argv)
                    msg = (
                        f"Dockerfile:{ins.line}: step {st.n}/{self.total} ({ins.text}): "
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

    def _mount_material(self, state: State, ins: Instruction, s: MountSpec) -> object:
        """What a mount adds to the cache key: its options, and for a bind mount the
        content it shows (BuildKit's key covers a mount's input); never a secret's value
        nor a cache mount's changing contents."""
        fields: list[object] = list(s)
        if s.type == "bind" and not s.from_:
            ctx = self.context_root(ins)
            fields.append(ctx.digest(ctx.resolve(s.source or ".", ins)))
        elif s.from_ and s.type in ("bind", "cache"):
            fields.append(self._from_source(state, ins, s.from_)[1])
        return fields

    def _check_network(self, ins: Instruction, network: str) -> None:
        try:
            self.engine.networks.resolve(network)
        except NotFound:
            raise ins.error(f"network {network} not found") from None


def _command(state: State, ins: Instruction) -> tuple[list[str], str | None]:
    """RUN's argv, and the script a ``#!`` heredoc runs as a file."""
    if ins.json:
        return list(ins.args), None
    cmdline = ins.args[0] if ins.args else ""
    shell = list(state.config.get("Shell") or DEFAULT_SHELL)
    if (
        ins.heredocs
        and re.fullmatch(r"\s*<<-?['\"]?[A-Za-z0-9_.-]+['\"]?\s*", cmdline)
        and len(ins.heredocs) == 1
    ):
        body = ins.heredocs[0].content
        if body.startswith("#!"):
            # run as an executable file with its own interpreter
            return ["/dev/pipes/" + ins.heredocs[0].name], body
        return [*shell, body], None
    if ins.heredocs:
        text = cmdline + "\n" + "".join(h.content + h.name + "\n" for h in ins.heredocs)
        return [*shell, text], None
    return [*shell, cmdline], None


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
