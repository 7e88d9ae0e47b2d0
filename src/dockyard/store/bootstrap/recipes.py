"""What ``image bootstrap debian|node|python`` builds: packages, files, config and tags.

Each recipe reproduces what Docker Hub's official image of that name gives its users, from
Debian's own packages: ``debian`` is a minbase system with apt, ``node`` adds Debian's nodejs
and npm, ``python`` adds python3 with pip and venv (with ``python`` and ``pip`` on PATH and
without ``EXTERNALLY-MANAGED``: the official images let ``pip install`` write to the system,
which is what ``RUN pip install -r requirements.txt`` in a Dockerfile expects). The config
is the official one's where it matters to a Dockerfile or ``docker run``: ``Cmd``,
``Entrypoint``, ``Env`` (PATH, LANG, NODE_VERSION / PYTHON_VERSION).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.image.config import DEFAULT_PATH_ENV

DEFAULT_SUITE = "bookworm"

# Bump when what a recipe writes into the root filesystem changes: cached layers built by the
# older recipe are then not reused.
RECIPE_VERSION = 1

# Docker's debian images (debuerreotype) ship apt and dpkg settings that suit image builds;
# ours say the same in our words.
APT_CONF = {
    "docker-clean": (
        "// Packages apt downloads in a RUN step would stay in that step's layer: remove them\n"
        "// after every dpkg run and apt-get update, and keep no binary package caches.\n"
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
        ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
        ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\n'
        'Dir::Cache::srcpkgcache "";\n'
    ),
    "docker-gzip-indexes": (
        "// apt-get update in an image: keep the package lists compressed (smaller layers).\n"
        'Acquire::GzipIndexes "true";\n'
    ),
    "docker-no-languages": (
        "// No translated package descriptions: nobody reads them in a build.\n"
        'Acquire::Languages "none";\n'
    ),
    "docker-autoremove-suggests": (
        "// Let autoremove take packages that are only suggested by others.\n"
        'Apt::AutoRemove::SuggestsImportant "false";\n'
    ),
}
# A container has no init system: package scripts must not try to start services.
POLICY_RC_D = "#!/bin/sh\n# No services are started in a container image (invoke-rc.d).\nexit 101\n"

NODE_ENTRYPOINT = """#!/bin/sh
# The node image's entrypoint: `docker run node --version` or `docker run node app.js`
# (arguments that are not a command) are run by node; commands are run as they are.
set -e
if [ "${1#-}" != "$1" ] || ! command -v -- "$1" >/dev/null 2>&1; then
    set -- node "$@"
fi
exec "$@"
"""

Files = dict[str, tuple[str, int]]  # path in the image -> (text, mode)


def upstream_version(debian_version: str) -> str:
    """``1:18.19.0+dfsg-6~deb12u2`` -> ``18.19.0``: the release the Debian package is of."""
    v = debian_version.split(":", 1)[-1]
    v = v.rsplit("-", 1)[0] if "-" in v else v
    return re.split(r"[+~]", v, maxsplit=1)[0]


def _version_tags(version: str) -> list[str]:
    """``18.19.0`` -> ``18``, ``18.19``, ``18.19.0`` (Docker Hub tags each release so)."""
    parts = version.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True, slots=True)
class Recipe:
    repo: str  # "node"
    packages: tuple[str, ...]
    # The image config and its tags, from the installed versions (name -> Debian version).
    config: Callable[[Mapping[str, str]], dict[str, Any]]
    tags: Callable[[Mapping[str, str], str], list[str]]  # (versions, suite) -> tags
    files: Callable[[Mapping[str, str]], Files] = field(default=lambda _v: {})
    remove: tuple[str, ...] = ()  # globs in the image, removed after installing

    def identity(self, suite: str, mirrors: tuple[str, ...]) -> str:
        """What the cache says built a layer: the same identity with other package versions
        is the same image, newer."""
        return " ".join([self.repo, suite, *mirrors, ",".join(self.packages), f"v{RECIPE_VERSION}"])


def _base_files(_versions: Mapping[str, str]) -> Files:
    files: Files = {f"etc/apt/apt.conf.d/{n}": (t, 0o644) for n, t in APT_CONF.items()}
    files["usr/sbin/policy-rc.d"] = (POLICY_RC_D, 0o755)
    return files


def _debian_config(_versions: Mapping[str, str]) -> dict[str, Any]:
    return {"Env": [DEFAULT_PATH_ENV], "Cmd": ["bash"]}


def _debian_tags(_versions: Mapping[str, str], suite: str) -> list[str]:
    return [suite, "latest"]


def _node_version(versions: Mapping[str, str]) -> str:
    return upstream_version(versions["nodejs"])


def _node_config(versions: Mapping[str, str]) -> dict[str, Any]:
    return {
        "Env": [DEFAULT_PATH_ENV, f"NODE_VERSION={_node_version(versions)}"],
        "Entrypoint": ["docker-entrypoint.sh"],
        "Cmd": ["node"],
    }


def _node_files(versions: Mapping[str, str]) -> Files:
    files = _base_files(versions)
    files["usr/local/bin/docker-entrypoint.sh"] = (NODE_ENTRYPOINT, 0o755)
    return files


def _node_tags(versions: Mapping[str, str], _suite: str) -> list[str]:
    return ["latest", *_version_tags(_node_version(versions))]


def _python_package(versions: Mapping[str, str]) -> str:
    """The interpreter's package: ``python3.11`` (``python3`` is only its default-version
    pointer)."""
    names = [n for n in versions if re.fullmatch(r"python3\.\d+", n)]
    if not names:
        raise InvalidArgument("no python3.X package was resolved")
    return max(names, key=lambda n: int(n.split(".")[1]))


def _python_version(versions: Mapping[str, str]) -> str:
    return upstream_version(versions[_python_package(versions)])


def _python_config(versions: Mapping[str, str]) -> dict[str, Any]:
    return {
        "Env": [DEFAULT_PATH_ENV, "LANG=C.UTF-8", f"PYTHON_VERSION={_python_version(versions)}"],
        "Cmd": ["python3"],
    }


def _python_tags(versions: Mapping[str, str], _suite: str) -> list[str]:
    return ["latest", *_version_tags(_python_version(versions))]


RECIPES: dict[str, Recipe] = {
    "debian": Recipe("debian", (), _debian_config, _debian_tags, _base_files),
    "node": Recipe(
        "node", ("nodejs", "npm", "ca-certificates"), _node_config, _node_tags, _node_files
    ),
    "python": Recipe(
        "python",
        ("python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates"),
        _python_config,
        _python_tags,
        _base_files,
        # PEP 668's marker: Debian's pip refuses to install outside a venv while it exists.
        remove=("usr/lib/python3*/EXTERNALLY-MANAGED",),
    ),
}


def parse_name(name: str, suite: str | None) -> tuple[Recipe, str, str | None]:
    """``node``, ``node:18``, ``debian:trixie`` -> (recipe, suite, the tag asked for)."""
    repo, _, tag = name.partition(":")
    if repo.startswith("docker.io/"):
        repo = repo.removeprefix("docker.io/")
    repo = repo.removeprefix("library/")
    recipe = RECIPES.get(repo)
    if recipe is None:
        known = ", ".join(["busybox", *RECIPES])
        raise InvalidArgument(f"cannot bootstrap {name!r}: known images are {known}")
    if repo == "debian" and tag and tag != "latest":
        if suite and suite != tag:
            raise InvalidArgument(f"debian:{tag} is suite {tag!r}, not {suite!r}")
        return recipe, tag, tag
    if tag and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        raise InvalidArgument(f"invalid tag {tag!r}")
    return recipe, suite or DEFAULT_SUITE, tag or None


def check_tag(recipe: Recipe, versions: Mapping[str, str], suite: str, tag: str | None) -> None:
    """A tag the packages cannot honour (``python:3.8`` when the suite has 3.11) is refused
    before anything is built."""
    if tag is None or tag in recipe.tags(versions, suite):
        return
    offered = ", ".join(f"{recipe.repo}:{t}" for t in recipe.tags(versions, suite))
    raise InvalidArgument(
        f"Debian {suite} cannot make {recipe.repo}:{tag}: its packages give {offered}"
    )


def write_files(rootfs: str, files: Files) -> None:
    for rel, (text, mode) in sorted(files.items()):
        path = os.path.join(rootfs, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            os.unlink(path)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
