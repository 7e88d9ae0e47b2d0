"""Build checks (BuildKit's Dockerfile linter): rules, the ``# check=`` directive and the
``BUILDKIT_DOCKERFILE_CHECK`` build arg.

Rule names and messages are BuildKit's (frontend/dockerfile/linter/ruleset.go). The checks
that need nothing but the Dockerfile run before the build; ``# check=skip=A,B`` (or
``skip=all``) turns rules off, ``error=true`` makes any warning fail the build with
BuildKit's "lint violation found for rules: ..." before anything is built. Warnings are
shown in BuildKit's progress forms, or in every form when the file has a ``# check=``
directive (the classic builder had no checks to show).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dockyard.builder.parser import BuildError, Dockerfile, Instruction
from dockyard.builder.progress import ClassicProgress, Progress
from dockyard.builder.state import BuildOptions

RULES = (
    "StageNameCasing", "FromAsCasing", "NoEmptyContinuation", "ConsistentInstructionCasing",
    "DuplicateStageName", "ReservedStageName", "JSONArgsRecommended", "MaintainerDeprecated",
    "UndefinedArgInFrom", "WorkdirRelativePath", "UndefinedVar",
    "MultipleInstructionsDisallowed", "LegacyKeyValueFormat", "InvalidBaseImagePlatform",
    "RedundantTargetPlatform", "SecretsUsedInArgOrEnv", "InvalidDefaultArgInFrom",
    "FromPlatformFlagConstDisallowed", "CopyIgnoredFile", "InvalidDefinitionDescription",
    "ExposeProtoCasing", "ExposeInvalidFormat",
)  # fmt: skip
_SECRET_WORDS = ("apikey", "auth", "credential", "credentials", "key", "password", "pword",
                 "passwd", "secret", "token")  # fmt: skip
_NOT_SECRET = ("public",)


class Warning(NamedTuple):  # noqa: A001 - BuildKit's word
    rule: str
    message: str
    line: int


class CheckConfig(NamedTuple):
    skip: frozenset[str] = frozenset()
    skip_all: bool = False
    error: bool = False


def parse_check(text: str, where: str) -> CheckConfig:
    """``skip=A,B;error=true`` (the directive's and the build arg's grammar)."""
    skip: set[str] = set()
    skip_all = error = False
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        value = value.strip()
        if not eq:
            raise BuildError(f"{where}: invalid check directive {part!r}: want key=value")
        if key == "skip":
            names = [v.strip() for v in value.split(",") if v.strip()]
            if any(n.lower() == "all" for n in names):
                skip_all = True
            skip.update(names)
        elif key == "error":
            if value.lower() not in ("true", "false"):
                raise BuildError(f"{where}: invalid check directive: error={value}")
            error = value.lower() == "true"
        elif key == "experimental":
            pass  # experimental rules: none of them run here
        else:
            raise BuildError(f"{where}: invalid check directive key {key!r}")
    return CheckConfig(frozenset(skip), skip_all, error)


class Linter:
    def __init__(
        self,
        df: Dockerfile,
        opts: BuildOptions,
        meta: dict[str, str | None],
        progress: Progress,
    ) -> None:
        self.df = df
        self.progress = progress
        found = df.directives
        self.shown = bool(found.check) or not isinstance(progress, ClassicProgress)
        config = CheckConfig()
        if found.check:
            config = parse_check(found.check, f"Dockerfile:{found.check_line}")
        arg = opts.build_args.get("BUILDKIT_DOCKERFILE_CHECK")
        if arg:
            config = parse_check(arg, "BUILDKIT_DOCKERFILE_CHECK")
            self.shown = True
        self.config = config
        self.meta = meta
        self.warnings: list[Warning] = []

    def warn(self, rule: str, message: str, line: int) -> None:
        if self.config.skip_all or rule in self.config.skip:
            return
        self.warnings.append(Warning(rule, message, line))

    def report(self) -> None:
        """Run the checks; show the warnings; fail when the file asks for errors."""
        self.run()
        if not self.warnings:
            return
        if self.shown:
            n = len(self.warnings)
            self.progress.message(f"{n} warning{'s' if n > 1 else ''} found:")
            for w in self.warnings:
                self.progress.message(f" - {w.rule}: {w.message} (line {w.line})")
        if self.config.error:
            rules = sorted({w.rule for w in self.warnings})
            raise BuildError(f"lint violation found for rules: {', '.join(rules)}")

    # ------------------------------------------------------------------ the rules

    def run(self) -> None:
        instructions = [
            ins for s in self.df.stages for ins in (s.from_line, *s.instructions)
        ] + list(self.df.meta_args)
        self._casing(instructions)
        declared_meta = {w.partition("=")[0] for ins in self.df.meta_args for w in ins.args}
        for ins in self.df.meta_args:
            self._secrets(ins)
        for stage in self.df.stages:
            self._from(stage.from_line, stage.name, declared_meta)
            seen: dict[str, int] = {}
            for ins in stage.instructions:
                self._instruction(ins)
                if ins.cmd in ("CMD", "ENTRYPOINT", "HEALTHCHECK"):
                    seen[ins.cmd] = seen.get(ins.cmd, 0) + 1
                    if seen[ins.cmd] > 1:
                        self.warn(
                            "MultipleInstructionsDisallowed",
                            f"Multiple {ins.cmd} instructions should not be used in the same"
                            " stage because only the last one will be used",
                            ins.line,
                        )
            self._workdirs(stage.instructions)

    def _casing(self, instructions: list[Instruction]) -> None:
        words = [ins.original.split(None, 1)[0] for ins in instructions if ins.original]
        upper = sum(1 for w in words if w.isupper())
        lower = sum(1 for w in words if w.islower())
        majority = "uppercase" if upper >= lower else "lowercase"
        for ins in instructions:
            w = ins.original.split(None, 1)[0] if ins.original else ""
            if (majority == "uppercase" and not w.isupper()) or (
                majority == "lowercase" and not w.islower()
            ):
                self.warn(
                    "ConsistentInstructionCasing",
                    f"Command '{w}' should match the case of the command majority ({majority})",
                    ins.line,
                )

    def _from(self, ins: Instruction, name: str, declared: set[str]) -> None:
        words = ins.original.split()
        keyword = words[0] if words else "FROM"
        raw = [w for w in ins.args]
        if len(raw) == 3:
            as_word = _as_keyword(ins.original)
            if as_word and (keyword.isupper() != as_word.isupper()):
                self.warn(
                    "FromAsCasing",
                    f"'{as_word}' and '{keyword}' keywords' casing do not match",
                    ins.line,
                )
            stage_name = raw[2]
            if stage_name != stage_name.lower():
                self.warn(
                    "StageNameCasing", f"Stage name '{stage_name}' should be lowercase", ins.line
                )
            if stage_name.lower() in ("scratch", "context"):
                self.warn(
                    "ReservedStageName",
                    f'Stage name should not use the same name as reserved stage "{stage_name}"',
                    ins.line,
                )
        for var in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", raw[0] if raw else ""):
            if var not in declared and var not in self.meta:
                self.warn("UndefinedArgInFrom", f"FROM argument '{var}' is not declared", ins.line)
        platform = ins.flag("platform")
        if platform is not None:
            if platform in ("$TARGETPLATFORM", "${TARGETPLATFORM}"):
                self.warn(
                    "RedundantTargetPlatform",
                    f"Setting platform to predefined {platform} in FROM is redundant as this "
                    "is the default behavior",
                    ins.line,
                )
            elif "$" not in platform:
                self.warn(
                    "FromPlatformFlagConstDisallowed",
                    f'FROM --platform flag should not use constant value "{platform}"',
                    ins.line,
                )

    def _instruction(self, ins: Instruction) -> None:
        if ins.cmd in ("CMD", "ENTRYPOINT") and not ins.json:
            self.warn(
                "JSONArgsRecommended",
                f"JSON arguments recommended for {ins.cmd} to prevent unintended behavior "
                "related to OS signals",
                ins.line,
            )
        elif ins.cmd == "MAINTAINER":
            self.warn(
                "MaintainerDeprecated",
                "Maintainer instruction is deprecated in favor of using label",
                ins.line,
            )
        elif ins.cmd in ("ENV", "LABEL") and _legacy_key_value(ins):
            self.warn(
                "LegacyKeyValueFormat",
                f'"{ins.cmd} key=value" should be used instead of legacy "{ins.cmd} key value"'
                " format",
                ins.line,
            )
        elif ins.cmd == "EXPOSE":
            for word in ins.args:
                proto = word.partition("/")[2]
                if proto and proto != proto.lower():
                    self.warn(
                        "ExposeProtoCasing",
                        f"Defined protocol '{word}' in EXPOSE instruction should be lowercase",
                        ins.line,
                    )
        if ins.cmd in ("ENV", "ARG"):
            self._secrets(ins)

    def _secrets(self, ins: Instruction) -> None:
        names = (
            [w.partition("=")[0] for w in ins.args] if ins.cmd == "ARG" else list(ins.args[0::2])
        )
        for name in names:
            tokens = re.split(r"[^a-z0-9]+", name.lower())
            if any(t in _NOT_SECRET for t in tokens):
                continue
            if any(t in _SECRET_WORDS for t in tokens):
                self.warn(
                    "SecretsUsedInArgOrEnv",
                    f'Do not use ARG or ENV instructions for sensitive data ({ins.cmd} "{name}")',
                    ins.line,
                )

    def _workdirs(self, instructions: list[Instruction]) -> None:
        absolute = False
        for ins in instructions:
            if ins.cmd != "WORKDIR" or not ins.args:
                continue
            path = ins.args[0]
            if path.startswith("/") or path.startswith("$"):
                absolute = True
            elif not absolute:
                self.warn(
                    "WorkdirRelativePath",
                    f'Relative workdir "{path}" can have unexpected results if the base image'
                    " changes",
                    ins.line,
                )


def _as_keyword(original: str) -> str:
    m = re.search(r"\s(as)\s+\S+\s*$", original, re.IGNORECASE)
    return m.group(1) if m else ""


def _legacy_key_value(ins: Instruction) -> bool:
    """``ENV key value`` (one pair, whitespace-separated) rather than ``ENV key=value``."""
    rest = ins.original.split(None, 1)[1] if len(ins.original.split(None, 1)) > 1 else ""
    first = rest.split(None, 1)[0] if rest.split() else ""
    return bool(first) and "=" not in first
