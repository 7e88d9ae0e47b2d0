"""Platforms in a build: ``--platform``, ``FROM --platform`` and BuildKit's automatic ARGs.

BuildKit defines ``TARGETPLATFORM``/``TARGETOS``/``TARGETARCH``/``TARGETVARIANT`` (what the
build is for) and ``BUILDPLATFORM``/``BUILDOS``/``BUILDARCH``/``BUILDVARIANT`` (the machine
building) in the global scope; a stage sees one after ``ARG NAME`` without a value. RUN
executes only on the build machine's platform: this builder has no emulation.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from dockyard.errors import InvalidArgument

# Go's GOARCH names for what Python's machine() says.
_ARCHES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_KNOWN_OS = frozenset({"linux", "windows", "darwin", "freebsd"})
_KNOWN_ARCH = frozenset(
    {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"}
)


class Platform(NamedTuple):
    os: str
    arch: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.arch, self.variant) if p)


def host_platform() -> Platform:
    machine = os.uname().machine.lower()
    arch = _ARCHES.get(machine, machine)
    variant = "v7" if machine == "armv7l" else "v6" if machine == "armv6l" else ""
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """``os[/arch[/variant]]`` or ``arch`` alone, normalised as containerd's platforms
    package does (x86_64 -> amd64, aarch64 -> arm64, arm64/v8 -> arm64)."""
    raw = text.strip().lower()
    parts = raw.split("/")
    if not raw or len(parts) > 3 or any(not p for p in parts):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture')
    if len(parts) == 1:
        if parts[0] in _KNOWN_OS:
            parts = [parts[0], host_platform().arch]
        else:
            parts = ["linux", parts[0]]
    os_name = parts[0]
    arch = _ARCHES.get(parts[1], parts[1])
    variant = parts[2] if len(parts) > 2 else ""
    if arch == "arm64" and variant == "v8":
        variant = ""
    if arch == "arm" and not variant:
        variant = "v7"
    if os_name not in _KNOWN_OS or arch not in _KNOWN_ARCH:
        raise InvalidArgument(f'"{text}": unknown operating system or architecture')
    return Platform(os_name, arch, variant)


def automatic_args(target: Platform, build: Platform) -> dict[str, str]:
    return {
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.arch,
        "TARGETVARIANT": target.variant,
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.arch,
        "BUILDVARIANT": build.variant,
    }


AUTOMATIC_ARGS = frozenset(automatic_args(Platform("", ""), Platform("", "")))


def image_platform(data: dict[str, object]) -> Platform:
    """The platform an image config says it is for."""
    return Platform(
        str(data.get("os") or "linux"),
        str(data.get("architecture") or "amd64"),
        str(data.get("variant") or ""),
    )


def same(a: Platform, b: Platform) -> bool:
    """Whether an image for ``a`` runs as ``b`` (a missing variant matches any)."""
    return a.os == b.os and a.arch == b.arch and (not a.variant or not b.variant or a == b)
