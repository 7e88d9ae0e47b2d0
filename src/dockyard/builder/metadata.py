"""The instructions that change the image config: ENV, LABEL, WORKDIR, USER, EXPOSE,
VOLUME, STOPSIGNAL, MAINTAINER, ONBUILD, CMD, ENTRYPOINT, SHELL, HEALTHCHECK. WORKDIR also
makes its directory (a layer when it was missing), as Docker's builders do.

Each ``_plan_*`` expands its words, checks them like Docker does and returns a Plan whose
``change`` edits the config; the step becomes an image with an ``empty_layer`` history entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from dockyard.builder.parser import Instruction
from dockyard.builder.state import DEFAULT_SHELL, Plan, State

if TYPE_CHECKING:
    from dockyard.store import Store
    from dockyard.store.images import LayerBlob

_SIGNALS = {
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN",
    "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS", "IOT",
    "POLL",
}  # fmt: skip


def _add_keys(field: str, keys: list[str]) -> Callable[[State], None]:
    """The config change of EXPOSE and VOLUME: ``keys`` join the set-like object ``field``
    (``{"80/tcp": {}}``), keeping what earlier instructions put there."""

    def change(st: State) -> None:
        st.config[field] = {**(st.config.get(field) or {}), **{k: {} for k in keys}}

    return change


class MetadataSteps:
    """Mixed into Builder: the metadata instructions' plans."""

    _labels: dict[str, str]
    new_blobs: list[str]

    @property
    def store(self) -> Store:
        raise NotImplementedError

    def _expand(self, ins: Instruction, word: str, env: Mapping[str, str]) -> str:
        raise NotImplementedError

    def _meta(
        self,
        state: State,
        text: str,
        change: Callable[[State], None],
        material: object = None,
        shell: list[str] | None = None,
    ) -> Plan:
        """A config-only step, recorded as Docker's classic builder records it: the shell,
        ``#(nop)``, two spaces, the instruction as Docker prints it."""
        prefix = " ".join(shell or state.config.get("Shell") or DEFAULT_SHELL)
        return Plan(
            f"{prefix} #(nop)  {text}",
            material if material is not None else ["meta", text],
            None,
            change,
        )

    def _plan_env(self, state: State, ins: Instruction) -> Plan:
        env = state.expansion_env()
        args = list(ins.args)
        if len(args) % 2:
            raise ins.error("ENV requires a name and a value")
        pairs = []
        for i in range(0, len(args), 2):
            k = self._expand(ins, args[i], env)
            v = self._expand(ins, args[i + 1], env)
            if not k:
                raise ins.error("ENV names can not be blank")
            pairs.append((k, v))

        def change(st: State) -> None:
            cur = st.env()
            order = [str(e).partition("=")[0] for e in st.config.get("Env") or []]
            for k, v in pairs:
                if k not in cur:
                    order.append(k)
                cur[k] = v
            st.config["Env"] = [f"{k}={cur[k]}" for k in order]

        text = " ".join(f"{k}={v}" for k, v in pairs)
        return self._meta(state, f"ENV {text}", change, ["meta", "ENV", pairs])

    def _plan_label(self, state: State, ins: Instruction) -> Plan:
        if not ins.args and ins.original.startswith("LABEL ") and getattr(self, "_labels", None):
            pairs = list(self._labels.items())
        else:
            env = state.expansion_env()
            args = list(ins.args)
            if len(args) % 2:
                raise ins.error("LABEL requires a name and a value")
            pairs = [
                (self._expand(ins, args[i], env), self._expand(ins, args[i + 1], env))
                for i in range(0, len(args), 2)
            ]
        for k, _ in pairs:
            if not k:
                raise ins.error("LABEL names can not be blank")

        def change(st: State) -> None:
            labels = dict(st.config.get("Labels") or {})
            labels.update(pairs)
            st.config["Labels"] = labels

        text = " ".join(f"{k}={v}" for k, v in pairs)
        return self._meta(state, f"LABEL {text}", change, ["meta", "LABEL", pairs])

    def _plan_workdir(self, state: State, ins: Instruction) -> Plan:
        from dockyard.builder.paths import normalize_workdir

        path = self._expand(ins, ins.args[0], state.expansion_env())
        if not path:
            raise ins.error("WORKDIR requires a non-empty path")
        new = normalize_workdir(state.config.get("WorkingDir") or "/", path)
        user = state.config.get("User") or ""

        def change(st: State) -> None:
            st.config["WorkingDir"] = new

        def apply(st: State) -> tuple[LayerBlob, str] | None:
            # Docker creates the directory in the image (a layer when it was missing), so a
            # COPY to it or a container started in it finds a directory; BuildKit makes it
            # as the image's USER.
            from dockyard.builder.layerfs import StepFS
            from dockyard.builder.paths import make_workdir
            from dockyard.errors import InvalidArgument

            if new == "/":
                return None
            with StepFS(self.store, st.lower_ids(self.store)) as fs:
                try:
                    ids = self._user_ids(fs.rootfs, user) if user else None
                    make_workdir(fs.rootfs, new, ids)
                except InvalidArgument as e:
                    raise ins.error(str(e)) from None
                return fs.commit(st.diff_ids, self.new_blobs)

        shell = " ".join(state.config.get("Shell") or DEFAULT_SHELL)
        return Plan(f"{shell} #(nop) WORKDIR {new}", ["meta", f"WORKDIR {new}", user],
                    apply, change)  # fmt: skip

    @staticmethod
    def _user_ids(rootfs: str, user: str) -> tuple[int, int]:
        from dockyard.runtime.user import resolve_user

        r = resolve_user(rootfs, user)
        return r.uid, r.gid

    def _plan_user(self, state: State, ins: Instruction) -> Plan:
        user = self._expand(ins, ins.args[0], state.expansion_env())

        def change(st: State) -> None:
            st.config["User"] = user

        return self._meta(state, f"USER {user}", change)

    def _plan_expose(self, state: State, ins: Instruction) -> Plan:
        env = state.expansion_env()
        ports: list[str] = []
        words: list[str] = []
        for word in ins.args:
            for spec in self._expand(ins, word, env).split():
                ports.extend(_expand_ports(ins, spec))
                words.append(spec)
        return self._meta(
            state,
            f"EXPOSE {' '.join(sorted(words))}",
            _add_keys("ExposedPorts", ports),
            ["meta", "EXPOSE", ports],
        )

    def _plan_volume(self, state: State, ins: Instruction) -> Plan:
        env = state.expansion_env()
        paths = [self._expand(ins, w, env) for w in ins.args]
        paths = [p for p in paths if p.strip()]
        if not paths:
            raise ins.error("VOLUME specified can not be an empty string")
        return self._meta(
            state,
            f"VOLUME [{' '.join(paths)}]",
            _add_keys("Volumes", paths),
            ["meta", "VOLUME", paths],
        )

    def _plan_stopsignal(self, state: State, ins: Instruction) -> Plan:
        sig = self._expand(ins, ins.args[0], state.expansion_env())
        name = sig.upper().removeprefix("SIG")
        if not (sig.isdigit() or name in _SIGNALS or re.match(r"^RTMIN\+\d+$|^RTMAX-\d+$", name)):
            raise ins.error(f"Invalid signal: {sig}")

        def change(st: State) -> None:
            st.config["StopSignal"] = sig

        return self._meta(state, f"STOPSIGNAL {sig}", change)

    def _plan_maintainer(self, state: State, ins: Instruction) -> Plan:
        who = " ".join(ins.args)

        def change(st: State) -> None:
            st.data["author"] = who

        return self._meta(state, f"MAINTAINER {who}", change)

    def _plan_onbuild(self, state: State, ins: Instruction) -> Plan:
        trigger = ins.args[0]

        def change(st: State) -> None:
            st.config["OnBuild"] = [*(st.config.get("OnBuild") or []), trigger]

        return self._meta(state, f"ONBUILD {trigger}", change)

    def _command(self, state: State, ins: Instruction) -> list[str]:
        if ins.json:
            return list(ins.args)
        shell = list(state.config.get("Shell") or DEFAULT_SHELL)
        return [*shell, ins.args[0] if ins.args else ""]

    def _plan_cmd(self, state: State, ins: Instruction) -> Plan:
        cmd = self._command(state, ins)

        def change(st: State) -> None:
            st.config["Cmd"] = cmd
            st.cmd_set = True

        state.cmd_set = True
        return self._meta(state, f"CMD {go_quoted(cmd)}", change, ["meta", "CMD", cmd])

    def _plan_entrypoint(self, state: State, ins: Instruction) -> Plan:
        ep = self._command(state, ins)
        keep_cmd = state.cmd_set

        def change(st: State) -> None:
            st.config["Entrypoint"] = ep
            # Docker: an ENTRYPOINT resets a CMD inherited from the base image.
            if not keep_cmd:
                st.config["Cmd"] = None

        return self._meta(
            state, f"ENTRYPOINT {go_quoted(ep)}", change, ["meta", "ENTRYPOINT", ep, keep_cmd]
        )

    def _plan_shell(self, state: State, ins: Instruction) -> Plan:
        if not ins.json:
            raise ins.error("SHELL requires the arguments to be in JSON form")
        shell = list(ins.args)

        def change(st: State) -> None:
            st.config["Shell"] = shell

        return self._meta(
            state, f"SHELL [{' '.join(shell)}]", change, ["meta", "SHELL", shell], shell=shell
        )

    def _plan_healthcheck(self, state: State, ins: Instruction) -> Plan:
        args = list(ins.args)
        kind = args[0].upper()
        if kind == "NONE":
            if len(args) > 1 or ins.flags:
                raise ins.error("HEALTHCHECK NONE takes no arguments")
            check: dict[str, Any] = {"Test": ["NONE"]}
        elif kind == "CMD":
            rest = args[1:]
            if not rest:
                raise ins.error("Missing command after HEALTHCHECK CMD")
            test = ["CMD", *rest] if ins.json else ["CMD-SHELL", " ".join(rest)]
            check = {"Test": test}
            for flag, key in (
                ("interval", "Interval"),
                ("timeout", "Timeout"),
                ("start-period", "StartPeriod"),
                ("start-interval", "StartInterval"),
            ):
                v = ins.flag(flag)
                if v is not None:
                    check[key] = _duration(ins, flag, v)
            retries = ins.flag("retries")
            if retries is not None:
                if not retries.isdigit() or int(retries) < 1:
                    raise ins.error(f"--retries must be at least 1 (not {retries})")
                check["Retries"] = int(retries)
        else:
            raise ins.error(f'Unknown type "{args[0]}" in HEALTHCHECK (try CMD)')

        def change(st: State) -> None:
            st.config["Healthcheck"] = check

        text = f"HEALTHCHECK {json.dumps(check, sort_keys=True)}"
        return self._meta(state, text, change)


def go_quoted(words: list[str]) -> str:
    """A []string as Go's %q prints it: ``["a" "b c"]``."""
    return "[" + " ".join(json.dumps(w, ensure_ascii=False) for w in words) + "]"


def _expand_ports(ins: Instruction, spec: str) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise ins.error(f"invalid proto: {proto}")
    if ":" in port:
        port = port.rsplit(":", 1)[1]  # ip:hostPort:containerPort forms: keep the container port
    lo, dash, hi = port.partition("-")
    if not lo.isdigit() or (dash and not hi.isdigit()):
        raise ins.error(f"invalid containerPort: {port}")
    a, b = int(lo), int(hi) if dash else int(lo)
    if not (0 < a <= 65535 and 0 < b <= 65535 and a <= b):
        raise ins.error(f"invalid range: {port}")
    return [f"{p}/{proto}" for p in range(a, b + 1)]


_UNITS = {
    "ns": 1,
    "us": 1000,
    "µs": 1000,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


def go_duration(text: str) -> int | None:
    """A Go duration ("30s", "1m30s", "500ms") in nanoseconds; None if it is not one."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


def _duration(ins: Instruction, flag: str, text: str) -> int:
    ns = go_duration(text)
    if ns is None:
        raise ins.error(f"invalid --{flag}={text}: a duration like 30s or 1m30s")
    if ns and ns < 10**6:
        raise ins.error(f"--{flag} cannot be less than 1ms")
    return ns
