"""Driving mmdebstrap: which package versions a root filesystem would get, and building it.

mmdebstrap (Debian's package) is the only thing here that reaches the network: it runs apt
against the mirror. With no ``--mirror`` it uses its own default, Debian's mirror with the
updates and security suites of a stable release, which is what Docker Hub's debian images
hold. Its apt and dpkg output is read line by line for the progress display; a mirror it
cannot reach becomes one clear error.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dockyard.errors import InvalidArgument, Unavailable

# The variant Docker's debian images are made from (debuerreotype runs debootstrap's
# minbase): Essential:yes, Priority:required and apt.
VARIANT = "minbase"

# SOURCE_DATE_EPOCH for mmdebstrap: what it writes with a date (shadow's "last change" days,
# its own cleanups) must not depend on when the build ran. The layer's file times are clamped
# separately, to the newest file the packages shipped (debian.py).
BUILD_EPOCH = 1686355200  # 2023-06-10, Debian 12's release

Report = Callable[[str, int, int], None]  # (phase, done, total): "download", "install"

_INST = re.compile(r"^Inst (\S+) \((\S+) ")
_FETCH_ERROR = re.compile(r"^E: Failed to fetch (\S+)\s+(.*)$")
_GET = re.compile(r"^Get:\d+ ")
_SETTING_UP = re.compile(r"^Setting up (\S+) ")


@dataclass(frozen=True, slots=True)
class Request:
    """What to bootstrap: a suite, extra packages, and the mirrors (none: mmdebstrap's)."""

    suite: str
    packages: tuple[str, ...]
    mirrors: tuple[str, ...] = ()

    def args(self, fmt: str = "directory") -> list[str]:
        out = [f"--variant={VARIANT}", "--mode=root", f"--format={fmt}"]
        if self.packages:
            out.append("--include=" + ",".join(self.packages))
        return out


def mmdebstrap_binary() -> str:
    path = shutil.which("mmdebstrap")
    if path is None:
        raise Unavailable(
            "bootstrapping Debian images needs mmdebstrap: apt-get install mmdebstrap"
        )
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APT_", "DEBIAN_"))}
    env.update(
        SOURCE_DATE_EPOCH=str(BUILD_EPOCH),
        DEBIAN_FRONTEND="noninteractive",
        LC_ALL="C.UTF-8",
        TMPDIR=os.environ.get("TMPDIR", "/tmp"),
    )
    return env


def _failure(request: Request, lines: Sequence[str], code: int) -> Exception:
    """One line saying why mmdebstrap failed, from its apt/dpkg messages."""
    for line in lines:
        m = _FETCH_ERROR.match(line)
        if m:
            url, why = m.group(1), m.group(2).strip()
            if "404" in why and "/dists/" in url:
                return InvalidArgument(
                    f"the Debian mirror has no suite {request.suite!r} ({url}: {why})"
                )
            return Unavailable(f"cannot reach the Debian mirror: {why} ({url})")
    for line in lines:
        if line.startswith("E: Unable to locate package ") or "no installation candidate" in line:
            return InvalidArgument(f"{request.suite}: {line[3:].strip()}")
    errors = [ln[3:].strip() for ln in lines if ln.startswith("E: ")]
    detail = errors[0] if errors else (lines[-1].strip() if lines else f"exit status {code}")
    return Unavailable(f"mmdebstrap failed: {detail}")


def _run(
    argv: list[str], request: Request, on_line: Callable[[str], None] | None = None
) -> list[str]:
    """Run mmdebstrap, feeding each output line to ``on_line``; its lines, or the error."""
    lines: list[str] = []
    with subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_env(),
        text=True,
        errors="replace",
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                if on_line is not None:
                    on_line(line)
        except BaseException:
            # Ctrl-C: mmdebstrap got the same SIGINT and unmounts its chroot; wait for it.
            proc.wait()
            raise
        code = proc.wait()
    if code != 0:
        raise _failure(request, lines, code)
    return lines


def resolve(request: Request) -> tuple[str, ...]:
    """The exact packages (``name=version``, sorted) a build of ``request`` would install
    now: mmdebstrap's dry run (apt's indexes and solver, no package downloaded)."""
    argv = [
        mmdebstrap_binary(),
        "--simulate",
        "--verbose",
        *request.args("null"),
        request.suite,
        "/dev/null",
        *request.mirrors,
    ]
    packages = set()
    for line in _run(argv, request):
        m = _INST.match(line)
        if m:
            packages.add(f"{m.group(1)}={m.group(2).lstrip('(')}")
    if not packages:
        raise Unavailable(f"mmdebstrap resolved no packages for {request.suite!r}")
    return tuple(sorted(packages))


def deb_file_name(package: str) -> str:
    """apt's file name for ``name=version`` in /var/cache/apt/archives, without the
    architecture (``:`` in a version is written ``%3a``)."""
    name, version = package.split("=", 1)
    return f"{name}_{version.replace(':', '%3a')}_"


def build(
    request: Request,
    target: str,
    debs: str,
    packages: Sequence[str],
    report: Report,
    customize: Sequence[str] = (),
) -> None:
    """Build the root filesystem into ``target`` (a new directory). ``debs`` is the shared
    package cache: synced into the chroot before apt downloads, back out after; essential
    packages are kept for that (``--skip=essential/unlink``). ``packages`` (from
    ``resolve``) sizes the progress display."""
    if any(c.isspace() for c in debs + target):
        # mmdebstrap splits its special hooks' arguments on white space
        raise InvalidArgument(f"the bootstrap cache path must not contain spaces: {debs!r}")
    cached = {n.rsplit("_", 1)[0] + "_" for n in os.listdir(debs) if n.endswith(".deb")}
    to_fetch = sum(1 for p in packages if deb_file_name(p) not in cached)
    total = len(packages)
    counts = {"download": 0, "install": 0}
    if to_fetch:
        report("download", 0, to_fetch)

    def on_line(line: str) -> None:
        if _GET.match(line) and to_fetch:
            counts["download"] = min(counts["download"] + 1, to_fetch)
            report("download", counts["download"], to_fetch)
        elif _SETTING_UP.match(line):
            counts["install"] = min(counts["install"] + 1, total)
            report("install", counts["install"], total)

    argv = [
        mmdebstrap_binary(),
        "--verbose",
        *request.args(),
        "--skip=essential/unlink",
        '--setup-hook=mkdir -p "$1/var/cache/apt/archives"',
        f"--setup-hook=sync-in {debs} /var/cache/apt/archives/",
        f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
        *(f"--customize-hook={c}" for c in customize),
        request.suite,
        target,
        *request.mirrors,
    ]
    _run(argv, request, on_line)
    report("install", total, total)
