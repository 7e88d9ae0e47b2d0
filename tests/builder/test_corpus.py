"""The tutorial Dockerfiles, built by dockyard and by Docker's classic builder from the same
context and the same busybox image: the same layers (paths, types, modes, owners, contents,
link targets), the same history, the same config.

The forms are the ones every Docker tutorial starts from, with busybox standing in for node
and python (``server.js`` is a shell script, ``npm install`` a RUN that writes files).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.builder.conftest import leftovers
from tests.conftest import CLI, remove_networks
from tests.helpers import entry, needs_docker, reference_docker, tar

INSTALL = "RUN mkdir -p node_modules/dep && cp package.json node_modules/.installed"

FORMS = {
    # The one from the issue, verbatim but for node and npm.
    "copy-into-workdir": (
        "FROM busybox\n"
        "WORKDIR /app\n"
        "COPY package.json /app\n"
        f"{INSTALL}\n"
        "COPY . /app\n"
        "EXPOSE 80\n"
        'CMD ["sh","server.js"]\n'
    ),
    "copy-dot-dot": (
        "FROM busybox\n"
        "WORKDIR /usr/src/app\n"
        "COPY package*.json ./\n"
        f"{INSTALL}\n"
        "COPY . .\n"
        "EXPOSE 8080\n"
        'CMD [ "sh", "server.js" ]\n'
    ),
    "add-and-entrypoint": ('FROM busybox\nADD ./app.js /app.js\nENTRYPOINT ["sh", "/app.js"]\n'),
    "requirements-then-workdir": (
        "FROM busybox\n"
        "COPY ./requirements.txt ./requirements.txt\n"
        "WORKDIR /app\n"
        "COPY ./requirements.txt ./requirements.txt\n"
        "RUN mkdir -p site-packages && cat requirements.txt > site-packages/installed.txt\n"
        "COPY . .\n"
        'ENTRYPOINT [ "sh" ]\n'
        'CMD [ "app.py" ]\n'
    ),
}


@pytest.fixture(scope="session")
def docker_busybox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Docker's own busybox:latest as a docker-archive: both builders start from it."""
    path = tmp_path_factory.mktemp("docker-busybox") / "busybox.tar"
    subprocess.run(["docker", "save", "busybox:latest", "-o", str(path)], check=True)
    return path


@pytest.fixture
def same_base(tmp_path: Path, docker_busybox: Path) -> Iterator[CLI]:
    cli = CLI(tmp_path / "root", tmp_path / "run")
    cli("load", "-i", str(docker_busybox))
    yield cli
    remove_networks(cli.root, cli.run_root)


def make_context(path: Path) -> None:
    """A tutorial's project: sources, a script, a subdirectory, a symlink, an empty dir,
    modes other than 0644, a file not owned by root, and a .dockerignore."""
    files = {
        "package.json": '{"name": "app", "dependencies": {"dep": "1.0"}}\n',
        "server.js": "echo hello from server\n",
        "app.js": "echo hello from app\n",
        "app.py": "echo hello from python\n",
        "requirements.txt": "flask==2.0\n",
        "src/lib/util.js": "export const x = 1\n",
        "config/private.ini": "[secret]\n",
        "notes/todo.md": "ignored\n",
    }
    for name, body in files.items():
        p = path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    (path / "server.js").chmod(0o755)
    (path / "config" / "private.ini").chmod(0o600)
    (path / "config").chmod(0o750)
    os.chown(path / "src" / "lib" / "util.js", 1000, 1000)
    (path / "data").mkdir()
    (path / "index.js").symlink_to("server.js")
    (path / ".dockerignore").write_text("notes\n*.log\n")
    (path / "debug.log").write_text("ignored too\n")


def layers_of(archive: bytes) -> tuple[dict[str, Any], list[dict[str, tuple[object, ...]]]]:
    """An image's config and, per layer, path -> (type, mode, uid, gid, link, content)."""
    with tarfile.open(fileobj=io.BytesIO(archive)) as t:
        manifest = json.load(t.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(t.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        out = []
        for name in manifest["Layers"]:
            data = t.extractfile(name).read()  # type: ignore[union-attr]
            entries: dict[str, tuple[object, ...]] = {}
            with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                for m in layer:
                    body = layer.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
                    entries[m.name.removeprefix("./").rstrip("/")] = (
                        m.type,
                        m.mode & 0o7777,  # Docker's tar headers carry the type bits too
                        m.uid,
                        m.gid,
                        m.linkname,
                        hashlib.sha256(body).hexdigest() if m.isreg() else "",
                    )
            out.append(entries)
    return config, out


def history_of(config: dict[str, Any]) -> list[tuple[str, bool]]:
    """created_by and empty_layer of each entry; COPY/ADD content digests are each
    builder's own (Docker's is a tarsum), so they are left out."""
    return [
        (
            re.sub(r"(file|dir):[0-9a-f]{64}", r"\1:<digest>", h.get("created_by", "")),
            bool(h.get("empty_layer")),
        )
        for h in config.get("history", [])
    ]


CONFIG_KEYS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "ExposedPorts", "User", "Volumes")


def docker_build(context: Path, tag: str) -> bytes:
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, env=env,
                   capture_output=True, timeout=300)  # fmt: skip
    return subprocess.run(["docker", "save", tag], check=True, capture_output=True).stdout


@needs_docker
@pytest.mark.slow
@pytest.mark.parametrize("form", sorted(FORMS))
def test_tutorial_form_as_docker(same_base: CLI, tmp_path: Path, form: str) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    make_context(context)
    (context / "Dockerfile").write_text(FORMS[form])
    tag = f"dockyard-corpus-{uuid.uuid4().hex[:8]}"
    try:
        theirs = docker_build(context, tag)
        same_base("build", "-q", "-t", tag, str(context), timeout=300)
        ours = same_base.raw("save", tag).stdout
        their_config, their_layers = layers_of(theirs)
        our_config, our_layers = layers_of(ours)
        assert len(our_layers) == len(their_layers), (
            history_of(our_config),
            history_of(their_config),
        )
        for i, (a, b) in enumerate(zip(our_layers, their_layers, strict=True)):
            assert a == b, f"layer {i} differs"
        assert history_of(our_config) == history_of(their_config)
        for key in CONFIG_KEYS:
            assert (our_config["config"].get(key) or None) == (
                their_config["config"].get(key) or None
            ), key
        # and the container runs as a tutorial says it does
        out = same_base("run", "--rm", tag).stdout
        assert out.startswith("hello from")
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
    assert leftovers(same_base) == []


# ------------------------------------------------------------------ path rules, no Docker needed


def _tree(cli: CLI, image: str, *paths: str) -> str:
    script = f"for p in {' '.join(paths)}; do stat -c '%n %F %a %u:%g' $p; done"
    return cli("run", "--rm", image, "sh", "-c", script).stdout


def test_workdir_is_made_in_the_image(ctx: Any) -> None:
    """WORKDIR makes its directory (a layer), so COPY to it and a container in it work."""
    ctx.write({"package.json": "{}\n"})
    ctx.build("FROM busybox\nWORKDIR /app\nCOPY package.json /app\nWORKDIR /app/sub/deeper\n",
              "-t", "wd")  # fmt: skip
    assert _tree(ctx.cli, "wd", "/app", "/app/package.json", "/app/sub/deeper") == (
        "/app directory 755 0:0\n/app/package.json regular file 644 0:0\n"
        "/app/sub/deeper directory 755 0:0\n"
    )
    info = ctx.inspect("wd")
    assert len(info["RootFS"]["Layers"]) == 4  # busybox, WORKDIR /app, COPY, WORKDIR deeper
    # a WORKDIR that exists already changes no file: an empty layer, as in Docker
    ctx.build("FROM busybox\nWORKDIR /bin\n", "-t", "wd2")
    assert len(ctx.inspect("wd2")["RootFS"]["Layers"]) == 1
    hist = ctx.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "wd2").stdout
    assert hist.splitlines()[0] == "/bin/sh -c #(nop) WORKDIR /bin|0B"


def test_workdir_belongs_to_the_user(ctx: Any) -> None:
    """BuildKit makes WORKDIR as the image's USER (the classic builder made it root's):
    the directories it makes, not those that were there."""
    ctx.build("FROM busybox\nUSER 1234:5678\nWORKDIR /tmp/work/app\n", "-t", "wdu")
    assert _tree(ctx.cli, "wdu", "/tmp", "/tmp/work", "/tmp/work/app") == (
        "/tmp directory 1777 0:0\n/tmp/work directory 755 1234:5678\n"
        "/tmp/work/app directory 755 1234:5678\n"
    )


def test_workdir_through_a_symlink(ctx: Any) -> None:
    """WORKDIR /link (-> /real): the directory is made, and a COPY to . lands in /real."""
    ctx.write({"a.txt": "A\n", "b.txt": "B\n"})
    ctx.build(
        "FROM busybox\n"
        "RUN mkdir /real && ln -s /real /link && ln -s /made /dangling\n"
        "WORKDIR /link\n"
        "COPY a.txt .\n"
        "COPY b.txt sub/\n"
        "WORKDIR /dangling/deeper\n"
        "COPY a.txt ./\n",
        "-t",
        "wl",
    )
    assert _tree(ctx.cli, "wl", "/real/a.txt", "/real/sub/b.txt", "/made/deeper/a.txt") == (
        "/real/a.txt regular file 644 0:0\n/real/sub/b.txt regular file 644 0:0\n"
        "/made/deeper/a.txt regular file 644 0:0\n"
    )
    assert ctx.cli("run", "--rm", "wl", "readlink", "/link").stdout == "/real\n"


def test_relative_destinations(ctx: Any) -> None:
    """Relative to WORKDIR; "." and a trailing / are directories; a final symlink is
    followed (Docker resolves the whole destination in the image)."""
    ctx.write({"a.txt": "A\n", "b.txt": "B\n", "dir/c.txt": "C\n"})
    ctx.build(
        "FROM busybox\n"
        "RUN mkdir /target && ln -s /target /tolink && ln -s /nowhere /dangle\n"
        "WORKDIR /w\n"
        "COPY a.txt renamed\n"
        "COPY a.txt b.txt ./both/\n"
        "COPY dir sub\n"
        "COPY a.txt /tolink\n"
        "COPY b.txt /dangle\n"
        "COPY *.txt .\n",
        "-t",
        "rel",
    )
    out = _tree(ctx.cli, "rel", "/w/renamed", "/w/both/a.txt", "/w/both/b.txt", "/w/sub/c.txt",
                "/target/a.txt", "/nowhere", "/w/a.txt", "/w/b.txt")  # fmt: skip
    assert out == (
        "/w/renamed regular file 644 0:0\n/w/both/a.txt regular file 644 0:0\n"
        "/w/both/b.txt regular file 644 0:0\n/w/sub/c.txt regular file 644 0:0\n"
        "/target/a.txt regular file 644 0:0\n/nowhere regular file 644 0:0\n"
        "/w/a.txt regular file 644 0:0\n/w/b.txt regular file 644 0:0\n"
    )


def test_copy_onto_a_non_directory_names_the_container_path(ctx: Any) -> None:
    ctx.write({"a.txt": "A\n"})
    r = ctx.build("FROM busybox\nCOPY a.txt /bin/busybox/x/\n", check=False)
    assert r.returncode == 1
    assert "Dockerfile:2: COPY failed: mkdir: /bin/busybox is not a directory" in r.stderr
    assert "snapshots" not in r.stderr and str(ctx.cli.root) not in r.stderr
    r = ctx.build("FROM busybox\nCOPY a.txt /x\nWORKDIR /x\n", check=False)
    assert r.returncode == 1
    assert "Dockerfile:3: Cannot mkdir: /x is not a directory" in r.stderr
    assert leftovers(ctx.cli) == []


def test_bad_dockerignore_pattern(ctx: Any) -> None:
    """A .dockerignore line Go's filepath.Match refuses: Docker's CLI error, exit 1, nothing
    built (and Docker's own words, when Docker is here to ask)."""
    ctx.write({"a.txt": "A\n", ".dockerignore": "*.log\n[\n"})
    (ctx.path / "Dockerfile").write_text("FROM busybox\nCOPY . /x/\n")
    before = ctx.cli("images", "-aq").stdout
    ours = ctx.build(None, check=False)
    assert ours.returncode == 1
    assert ours.stderr == "Error: error checking context: syntax error in pattern\n"
    assert ours.stdout == "" and ctx.cli("images", "-aq").stdout == before
    assert leftovers(ctx.cli) == []
    if reference_docker():
        theirs = subprocess.run(["docker", "build", "-q", str(ctx.path)], capture_output=True,
                                text=True, env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
        assert theirs.returncode == 1
        assert "error checking context: syntax error in pattern" in theirs.stderr


def test_runs_a_container_whose_workdir_is_a_file(ctx: Any) -> None:
    """An image whose WorkingDir is a file (made by `import --change`): Docker's error."""
    data = tar((entry("app"), b"a file\n"))
    path = ctx.path / "root.tar"
    path.write_bytes(data)
    ctx.cli("import", "--change", "WORKDIR /app", str(path), "wdfile")
    r = ctx.cli("run", "--rm", "wdfile", "true", check=False)
    assert r.returncode == 125
    assert r.stderr.strip().splitlines()[-1] == "Error: Cannot mkdir: /app is not a directory"
    assert "Traceback" not in r.stderr
