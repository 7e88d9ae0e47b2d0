"""BuildKit's Dockerfile syntax, each feature from a Dockerfile written as BuildKit's docs
write it, built with dockyard: RUN --mount (cache, bind, tmpfs, secret), --secret, RUN
--network, COPY --link/--parents/--exclude, the syntax and check directives, platform ARGs
and FROM --platform, stages in parallel, --output, --cache-from; and the errors for what
this builder does not have."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder.conftest import Ctx, leftovers
from tests.conftest import CLI


def steps_run(output: str) -> list[str]:
    out = []
    for b in re.split(r"^Step \d+/\d+ : ", output, flags=re.M)[1:]:
        head = b.split("\n", 1)[0]
        if " ---> Using cache" not in b and not head.startswith(("FROM", "ARG")):
            out.append(head)
    return out


def saved(cli: CLI, ref: str) -> bytes:
    """``docker save`` of ``ref``: every layer, the config and the history, as bytes."""
    r = cli.raw("save", ref)
    assert r.returncode == 0, r.stderr
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        for m in t:
            if m.isreg():
                out.write(t.extractfile(m).read())  # type: ignore[union-attr]
    return out.getvalue()


# ------------------------------------------------------------------ RUN --mount=type=cache


def test_cache_mount_is_reused_across_builds(ctx: Ctx) -> None:
    """The npm example of BuildKit's docs, with busybox: a dependency change reruns the
    install, which finds what the first install put in the cache."""
    ctx.write({"package.json": '{"dependencies": {"a": "1"}}\n'})
    df = (
        "# syntax=docker/dockerfile:1\n"
        "FROM busybox\n"
        "WORKDIR /app\n"
        "COPY package.json .\n"
        "RUN --mount=type=cache,target=/root/.npm \\\n"
        "    ls /root/.npm > /app/seen && md5sum package.json | cut -c1-8 | "
        "xargs -I{} cp package.json /root/.npm/{}\n"
    )
    ctx.build(df, "-t", "npm")
    assert ctx.run("npm", "cat", "/app/seen") == ""
    (ctx.path / "package.json").write_text('{"dependencies": {"a": "2"}}\n')
    r = ctx.build(None, "-t", "npm")
    assert any(s.startswith("RUN --mount") for s in steps_run(r.stdout))
    seen = ctx.run("npm", "cat", "/app/seen").split()
    assert len(seen) == 1  # the first install's file
    # the cache is not in the image, nor is its mount point
    assert ctx.cli("run", "--rm", "npm", "ls", "/root/.npm", check=False).returncode != 0
    assert leftovers(ctx.cli) == []


def test_cache_mount_id_sharing_and_owner(ctx: Ctx) -> None:
    ctx.build(
        "FROM busybox\n"
        "RUN --mount=type=cache,id=shared,target=/one,uid=1234,gid=99,mode=0700 "
        "stat -c '%u:%g %a' /one > /owner && echo from-one > /one/f\n"
        "RUN --mount=type=cache,id=shared,target=/two,sharing=locked cat /two/f > /two-saw\n"
        "RUN --mount=type=cache,id=shared,target=/three,sharing=private,ro cat /three/f > /ro\n",
        "-t",
        "ids",
    )
    assert ctx.run("ids", "cat", "/owner", "/two-saw", "/ro") == "1234:99 700\nfrom-one\nfrom-one\n"
    r = ctx.build("FROM busybox\nRUN --mount=type=cache,target=/c,sharing=odd true\n", check=False)
    assert r.returncode == 1
    assert "Dockerfile:2: unrecognized sharing for mount: odd" in r.stderr


def test_builder_prune_all_removes_cache_mounts(ctx: Ctx) -> None:
    ctx.build("FROM busybox\nRUN --mount=type=cache,target=/c echo x > /c/f\n")
    mounts = ctx.cli.root / "build" / "mounts"
    assert len(os.listdir(mounts)) == 1
    ctx.cli("builder", "prune", "-f")
    assert len(os.listdir(mounts)) == 1  # not dangling: kept
    ctx.cli("builder", "prune", "-af")
    assert os.listdir(mounts) == []


# ------------------------------------------------------------------ bind, tmpfs


def test_bind_mounts_from_the_context_and_a_stage(ctx: Ctx) -> None:
    ctx.write(
        {"src/main.c": "int main;\n", "src/skip.log": "ignored\n", ".dockerignore": "**/*.log\n"}
    )
    df = (
        "FROM busybox AS tools\n"
        "RUN mkdir /out && echo tool > /out/tool\n"
        "FROM busybox\n"
        "RUN --mount=type=bind,source=src,target=/src ls /src > /listed && cat /src/main.c > /c\n"
        "RUN --mount=type=bind,target=/ctx,rw touch /ctx/written && ls /ctx > /rw\n"
        "RUN --mount=type=bind,from=tools,source=/out,target=/in cp /in/tool /tool\n"
        "RUN --mount=type=bind,source=src,target=/ro (touch /ro/x 2>/dev/null && echo w || "
        "echo ro) > /ro-mode\n"
    )
    ctx.build(df, "-t", "bind")
    assert ctx.run("bind", "cat", "/listed", "/c", "/tool", "/ro-mode") == (
        "main.c\nint main;\ntool\nro\n"
    )
    assert "written" in ctx.run("bind", "cat", "/rw")
    assert not (ctx.path / "written").exists()  # rw writes never reach the context
    assert ctx.cli("run", "--rm", "bind", "ls", "/src", check=False).returncode != 0
    # what the mount shows is in the cache key: a change reruns the step
    (ctx.path / "src" / "main.c").write_text("int main2;\n")
    r = ctx.build(None, "-t", "bind")
    assert [s for s in steps_run(r.stdout) if "source=src,target=/src" in s] != []
    assert ctx.run("bind", "cat", "/c") == "int main2;\n"


def test_tmpfs_mount(ctx: Ctx) -> None:
    ctx.build(
        "FROM busybox\n"
        "RUN --mount=type=tmpfs,target=/scratch,size=1m "
        "grep ' /scratch ' /proc/mounts | cut -d' ' -f3 > /fs && echo x > /scratch/f\n",
        "-t",
        "tmp",
    )
    assert ctx.run("tmp", "cat", "/fs") == "tmpfs\n"
    assert ctx.cli("run", "--rm", "tmp", "ls", "/scratch", check=False).returncode != 0


# ------------------------------------------------------------------ secrets


def test_secret_is_readable_and_never_in_the_image(ctx: Ctx, tmp_path: Path) -> None:
    """docker build --secret id=mysecret,src=mysecret.txt .
    RUN --mount=type=secret,id=mysecret ..."""
    secret = b"s3cr3t-" + os.urandom(8).hex().encode()
    src = tmp_path / "mysecret.txt"
    src.write_bytes(secret)
    os.environ["DOCKYARD_TEST_TOKEN"] = "tok-" + os.urandom(8).hex()
    try:
        df = (
            "# syntax=docker/dockerfile:1\n"
            "FROM busybox\n"
            "RUN --mount=type=secret,id=mysecret "
            'test "$(sha256sum < /run/secrets/mysecret | cut -c1-64)" = '
            + hashlib.sha256(secret).hexdigest()
            + " && echo ok > /ok\n"
            "RUN --mount=type=secret,id=mysecret,target=/etc/app.key,mode=0440,uid=7 "
            "stat -c '%a %u' /etc/app.key > /mode\n"
            "RUN --mount=type=secret,id=token,env=TOKEN "
            'test "$TOKEN" = "$(cat /expect)" 2>/dev/null; echo ${#TOKEN} > /len\n'
        )
        ctx.build(df, "-t", "sec", "--secret", f"id=mysecret,src={src}",
                  "--secret", "id=token,env=DOCKYARD_TEST_TOKEN")  # fmt: skip
        token = os.environ["DOCKYARD_TEST_TOKEN"].encode()
    finally:
        del os.environ["DOCKYARD_TEST_TOKEN"]
    assert ctx.run("sec", "cat", "/ok", "/mode", "/len") == f"ok\n440 7\n{len(token)}\n"
    blob = saved(ctx.cli, "sec")
    assert secret not in blob and token not in blob
    history = ctx.cli("history", "--no-trunc", "sec").stdout
    assert secret.decode() not in history and token.decode() not in history
    # the mount point was never in a layer
    assert ctx.cli("run", "--rm", "sec", "ls", "/run/secrets", check=False).returncode != 0
    assert ctx.cli("run", "--rm", "sec", "ls", "/etc/app.key", check=False).returncode != 0
    # a changed secret does not miss the cache (BuildKit keeps secrets out of the key)
    src.write_bytes(b"other")
    r = ctx.build(None, "-t", "sec", "--secret", f"id=mysecret,src={src}",
                  "--secret", "id=token,env=PATH")  # fmt: skip
    assert steps_run(r.stdout) == []


def test_missing_secret_file_is_dockers_error(ctx: Ctx, tmp_path: Path) -> None:
    before = ctx.cli("images", "-aq").stdout
    missing = tmp_path / "nope.txt"
    r = ctx.build(
        "FROM busybox\nRUN --mount=type=secret,id=x cat /run/secrets/x\n",
        "--secret",
        f"id=x,src={missing}",
        check=False,
    )
    assert r.returncode == 1
    assert r.stderr == (
        f"Error: could not parse secrets: [id=x,src={missing}]: failed to stat {missing}: "
        f"stat {missing}: no such file or directory\n"
    )
    assert "Step 1" not in r.stdout
    assert ctx.cli("images", "-aq").stdout == before
    # required=true without the secret: the line and the secret named
    r = ctx.build("FROM busybox\nRUN --mount=type=secret,id=x,required=true true\n", check=False)
    assert r.returncode == 1 and "Dockerfile:2: secret x not found" in r.stderr
    # required=false (the default): the step runs without it
    ctx.build("FROM busybox\nRUN --mount=type=secret,id=x test ! -e /run/secrets/x\n")
    assert leftovers(ctx.cli) == []


# ------------------------------------------------------------------ RUN --network


def test_run_network_flag(ctx: Ctx) -> None:
    df = (
        "FROM busybox\n"
        "RUN --network=none cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /none\n"
        "RUN --network=host cat /proc/net/dev | tail -n +3 | wc -l > /host\n"
    )
    ctx.build(df, "-t", "netflag")
    assert ctx.run("netflag", "cat", "/none") == "lo\n"
    assert int(ctx.run("netflag", "cat", "/host")) > 1


# ------------------------------------------------------------------ COPY flags


def test_copy_link_layer_is_reused_on_another_base(ctx: Ctx) -> None:
    ctx.write({"app/a.txt": "A\n", "app/sub/b.txt": "B\n"})
    df = "ARG BASE=busybox\nFROM ${BASE}\nCOPY --link app /app\n"
    ctx.build(df, "-t", "link1")
    ctx.cli("tag", "link1", "other-base")
    r = ctx.build(df, "--build-arg", "BASE=other-base", "-t", "link2")
    assert "Step 2/2 : COPY --link app /app" in r.stdout
    first = ctx.inspect("link1")["RootFS"]["Layers"]
    second = ctx.inspect("link2")["RootFS"]["Layers"]
    assert second[-1] == first[-1] and second[:-1] == first  # the same layer, rebased
    assert ctx.run("link2", "cat", "/app/a.txt", "/app/sub/b.txt") == "A\nB\n"


def test_copy_link_does_not_follow_the_base_symlinks(ctx: Ctx) -> None:
    ctx.write({"a.txt": "A\n"})
    ctx.build("FROM busybox\nRUN mkdir /real && ln -s /real /link\nCOPY --link a.txt /link/\n",
              "-t", "nolink")  # fmt: skip
    # the layer holds /link/a.txt; over the base's symlink, the directory wins (BuildKit)
    assert ctx.run("nolink", "cat", "/link/a.txt") == "A\n"
    assert ctx.run("nolink", "ls", "/real") == ""


def test_copy_parents_and_exclude(ctx: Ctx) -> None:
    ctx.write({"x/a.txt": "xa", "y/a.txt": "ya", "x/deep/b.txt": "xb", "x/deep/c.md": "xc",
               "x/deep/skip.log": "log"})  # fmt: skip
    ctx.build(
        "# syntax=docker/dockerfile:1.7-labs\n"
        "FROM busybox\n"
        "COPY --parents ./x/a.txt ./y/a.txt /parents/\n"
        "COPY --parents ./x/./deep/*.txt /pivot/\n"
        "COPY --exclude=**/*.log --exclude=*.md --exclude=deep/*.md x /excluded/\n"
        "COPY --parents --exclude=**/*.log x /both/\n",
        "-t",
        "par",
    )
    out = ctx.run("par", "sh", "-c", "cd / && find /parents /pivot /excluded /both -type f | sort")
    assert out.split() == [
        "/both/x/a.txt", "/both/x/deep/b.txt", "/both/x/deep/c.md",
        "/excluded/a.txt", "/excluded/deep/b.txt",
        "/parents/x/a.txt", "/parents/y/a.txt",
        "/pivot/deep/b.txt",
    ]  # fmt: skip


def test_add_checksum_from_a_dockerfile(ctx: Ctx, http_server: tuple[str, Path]) -> None:
    url, www = http_server
    (www / "tool.sh").write_bytes(b"echo tool\n")
    digest = "sha256:" + hashlib.sha256(b"echo tool\n").hexdigest()
    ctx.build(f"# syntax=docker/dockerfile:1\nFROM busybox\nADD --checksum={digest} "
              f"{url}/tool.sh /usr/local/bin/\n", "-t", "chk")  # fmt: skip
    assert ctx.run("chk", "sh", "/usr/local/bin/tool.sh") == "tool\n"


# ------------------------------------------------------------------ directives


@pytest.mark.parametrize(
    "syntax",
    ["docker/dockerfile:1", "docker/dockerfile:1.4", "docker.io/docker/dockerfile:1.7-labs",
     "docker/dockerfile:1@sha256:" + "a" * 64],
)  # fmt: skip
def test_syntax_directive_of_our_frontend_builds(ctx: Ctx, syntax: str) -> None:
    ctx.build(f"# syntax={syntax}\nFROM busybox\nRUN <<EOF\necho heredoc > /h\nEOF\n", "-t", "sx")
    assert ctx.run("sx", "cat", "/h") == "heredoc\n"


def test_unknown_frontend_fails_naming_line_and_feature(ctx: Ctx) -> None:
    r = ctx.build("# syntax=example.com/my/frontend:2\nFROM busybox\n", check=False)
    assert r.returncode == 1
    assert r.stderr == (
        "Error: Dockerfile:1: unsupported frontend 'example.com/my/frontend:2': this builder "
        "runs the docker/dockerfile:1 syntax only (feature: # syntax= with another frontend "
        "image)\n"
    )
    r = ctx.build("# syntax=docker/dockerfile:2\nFROM busybox\n", check=False)
    assert r.returncode == 1 and "Dockerfile:1: unsupported frontend" in r.stderr


def test_check_directive(ctx: Ctx) -> None:
    """docs.docker.com/build/checks: error=true fails on a violation; skip= turns it off."""
    df = "# syntax=docker/dockerfile:1\n# check=error=true\nFROM busybox\nCMD echo hi\n"
    before = ctx.cli("images", "-aq").stdout
    r = ctx.build(df, check=False)
    assert r.returncode == 1
    assert (
        " - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended "
        "behavior related to OS signals (line 4)" in r.stdout
    )
    assert r.stderr == "Error: lint violation found for rules: JSONArgsRecommended\n"
    assert ctx.cli("images", "-aq").stdout == before
    ok = ctx.build(df.replace("error=true", "skip=JSONArgsRecommended;error=true"))
    assert "warning" not in ok.stdout
    warned = ctx.build("# check=skip=none\nFROM busybox AS Build\nMAINTAINER me\n")
    assert "StageNameCasing: Stage name 'Build' should be lowercase (line 2)" in warned.stdout
    assert "MaintainerDeprecated" in warned.stdout
    r = ctx.build("# check=bogus\nFROM busybox\n", check=False)
    assert r.returncode == 1 and "Dockerfile:1: invalid check directive" in r.stderr


# ------------------------------------------------------------------ platforms


def test_platform_args(ctx: Ctx) -> None:
    df = (
        "FROM --platform=$BUILDPLATFORM busybox AS build\n"
        "ARG TARGETPLATFORM\n"
        "ARG TARGETOS TARGETARCH BUILDPLATFORM\n"
        'RUN echo "$BUILDPLATFORM -> $TARGETPLATFORM ($TARGETOS/$TARGETARCH)" > /p\n'
        "FROM busybox\n"
        "COPY --from=build /p /p\n"
        'RUN echo "undeclared=[$TARGETPLATFORM]" >> /p\n'
    )
    ctx.build(df, "-t", "plat")
    assert ctx.run("plat", "cat", "/p") == (
        "linux/amd64 -> linux/amd64 (linux/amd64)\nundeclared=[]\n"
    )


def test_cross_platform_stage_without_run(ctx: Ctx, tmp_path: Path) -> None:
    """The cross-compile pattern: work on the build platform, a final stage for the target
    that only copies. RUN for another platform fails, naming the line and the feature."""
    df = (
        "FROM --platform=$BUILDPLATFORM busybox AS build\n"
        "ARG TARGETARCH\n"
        "RUN echo $TARGETARCH > /arch\n"
        "FROM scratch\n"
        "COPY --from=build /arch /arch\n"
    )
    out = tmp_path / "out"
    ctx.build(df, "--platform", "linux/arm64", "-t", "arm", "-o", f"type=local,dest={out}")
    assert (out / "arch").read_text() == "arm64\n"
    info = ctx.inspect("arm")
    assert (info["Os"], info["Architecture"]) == ("linux", "arm64")
    # the same scratch Dockerfile for two platforms: two images, never one from the cache
    ctx.write({"hello.txt": "hi\n"})
    ctx.build("FROM scratch\nCOPY hello.txt /\n", "--platform", "linux/arm64", "-t", "s-arm")
    ctx.build(None, "-t", "s-amd")
    assert ctx.inspect("s-arm")["Architecture"] == "arm64"
    assert ctx.inspect("s-amd")["Architecture"] == "amd64"
    r = ctx.build("FROM scratch\nCOPY --from=busybox /bin/busybox /bin/sh\nRUN true\n",
                  "--platform", "linux/arm64", check=False)  # fmt: skip
    assert r.returncode == 1
    assert "Dockerfile:3: RUN for linux/arm64 needs emulation" in r.stderr
    assert "feature: RUN for another platform" in r.stderr
    r = ctx.build("FROM busybox\n", "--platform", "linux/nonsense", check=False)
    assert r.returncode == 1 and "linux/nonsense" in r.stderr


# ------------------------------------------------------------------ stages


def test_independent_stages_run_at_the_same_time(ctx: Ctx) -> None:
    """Each stage waits (at most 60 s) for the other's marker in a shared cache mount: only
    stages that run at the same time both finish. Output stays in Dockerfile order."""
    wait = "i=0; while [ ! -e /sync/{other} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
    df = (
        "FROM busybox AS one\n"
        "RUN --mount=type=cache,id=sync-{tag},target=/sync touch /sync/one && "
        + wait.format(other="two")
        + "test -e /sync/two && echo one > /one\n"
        "FROM busybox AS two\n"
        "RUN --mount=type=cache,id=sync-{tag},target=/sync touch /sync/two && "
        + wait.format(other="one")
        + "test -e /sync/one && echo two > /two\n"
        "FROM busybox\n"
        "COPY --from=one /one /one\n"
        "COPY --from=two /two /two\n"
    ).replace("{tag}", os.urandom(4).hex())
    r = ctx.build(df, "-t", "par", "--progress", "plain", check=False)
    assert r.returncode == 0, r.stderr
    assert ctx.run("par", "cat", "/one", "/two") == "one\ntwo\n"
    steps = [int(m) for m in re.findall(r"^#\d+ \[\S+ (\d+)/", r.stderr, flags=re.M)]
    assert steps  # BuildKit's plain lines
    labels = re.findall(r"^#\d+ \[(\S+) \d+/\d+\]", r.stderr, flags=re.M)
    assert labels == sorted(labels, key=["one", "two", "stage-2"].index)
    assert leftovers(ctx.cli) == []


def test_failing_stage_stops_the_others(ctx: Ctx) -> None:
    before = ctx.cli("images", "-aq").stdout
    df = (
        "FROM busybox AS slow\n"
        "RUN sleep 60\n"
        "FROM busybox AS bad\n"
        "RUN exit 3\n"
        "FROM busybox\n"
        "COPY --from=slow /etc/hostname /a\n"
        "COPY --from=bad /etc/hostname /b\n"
    )
    r = ctx.build(df, check=False)
    assert r.returncode == 3
    assert "Dockerfile:4" in r.stderr and "returned a non-zero code: 3" in r.stderr
    # the slow stage was stopped: its RUN never became an image
    assert ctx.cli("images", "-aq").stdout == before
    assert leftovers(ctx.cli) == []


# ------------------------------------------------------------------ --output


def test_output_local_and_tar(ctx: Ctx, tmp_path: Path) -> None:
    """docker build --output type=local,dest=out .   and   -o - > out.tar"""
    ctx.write({"hello.txt": "hi\n"})
    df = (
        "FROM busybox AS build\n"
        "RUN mkdir /out && echo built > /out/artifact && chmod 4755 /out/artifact\n"
        "FROM scratch\n"
        "COPY --from=build /out /\n"
        "COPY hello.txt /\n"
    )
    out = tmp_path / "out"
    ctx.build(df, "--output", f"type=local,dest={out}")
    assert sorted(os.listdir(out)) == ["artifact", "hello.txt"]
    assert (out / "artifact").read_text() == "built\n"
    assert (out / "artifact").stat().st_mode & 0o7777 == 0o755  # set-id bits dropped
    r = ctx.cli.raw("build", "-o", "-", str(ctx.path))
    assert r.returncode == 0, r.stderr
    with tarfile.open(fileobj=io.BytesIO(r.stdout)) as t:
        assert sorted(t.getnames()) == ["artifact", "hello.txt"]
        assert t.getmember("artifact").mode == 0o4755
    assert b"Step 1/" in r.stderr  # progress moved off stdout
    bad = ctx.build(df, "--output", "type=registry", check=False)
    assert bad.returncode == 125 and "output type 'registry' is not supported" in bad.stderr


# ------------------------------------------------------------------ --cache-from


@pytest.fixture(scope="module")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.registry_client.conftest import REGISTRY_BIN, start_distribution, stop

    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    reg = start_distribution(tmp_path_factory.mktemp("cache-from-registry"))
    try:
        yield f"127.0.0.1:{reg.port}"
    finally:
        stop(reg.proc)


def test_cache_from_an_image_in_a_registry(ctx: Ctx, tmp_path: Path, private_registry: str,
                                          busybox_template: Path) -> None:  # fmt: skip
    """CI's pattern: build, push; elsewhere, build --cache-from the pushed image."""
    ctx.write({"app.sh": "echo app\n", "lib/x.sh": "echo x\n"})
    df = (
        "FROM busybox\n"
        "WORKDIR /app\n"
        "COPY lib lib\n"
        "RUN echo expensive-step > /built\n"
        "COPY app.sh .\n"
        'CMD ["sh", "app.sh"]\n'
    )
    ref = f"{private_registry}/ci/app:main"
    ctx.build(df, "-t", ref)
    ctx.cli("push", ref)
    fresh = CLI(tmp_path / "fresh-root", tmp_path / "fresh-run")
    import subprocess

    subprocess.run(["cp", "-a", str(busybox_template), str(fresh.root)], check=True)
    r = fresh("build", "--cache-from", ref, "-t", "again", str(ctx.path), timeout=300)
    assert steps_run(r.stdout) == [], r.stdout  # the RUN did not run: its layer was pulled
    ours = fresh("image", "inspect", "again", "--format", "{{json .RootFS.Layers}}").stdout
    theirs = ctx.cli("image", "inspect", ref, "--format", "{{json .RootFS.Layers}}").stdout
    assert json.loads(ours) == json.loads(theirs)
    assert fresh("run", "--rm", "again").stdout == "app\n"
    # a changed source takes the cache up to the step that reads it
    (ctx.path / "app.sh").write_text("echo app2\n")
    r = fresh("build", "--cache-from", ref, "-t", "again", str(ctx.path), timeout=300)
    assert steps_run(r.stdout) == ["COPY app.sh .", 'CMD ["sh", "app.sh"]']
    # an image that cannot be had is skipped with a warning, as Docker skips it
    r = fresh("build", "--cache-from", f"{private_registry}/ci/none:1", str(ctx.path))
    assert "is not usable" in r.stdout + r.stderr


# ------------------------------------------------------------------ what this builder lacks


@pytest.mark.parametrize(
    ("dockerfile", "line", "feature"),
    [
        ("FROM busybox\nRUN --mount=type=ssh ssh-add -l\n", 2, "SSH agent forwarding"),
        ("FROM busybox\nRUN --security=insecure true\n", 2, "security.insecure entitlement"),
        ("FROM busybox\nADD git@github.com:moby/buildkit.git /src\n", 2, "ADD <git URL>"),
        ("FROM busybox\nRUN --mount=type=nfs,target=/x true\n", 2, "RUN --mount=type=nfs"),
    ],
)
def test_unsupported_features_name_line_and_feature(
    ctx: Ctx, dockerfile: str, line: int, feature: str
) -> None:
    before = ctx.cli("images", "-aq").stdout
    r = ctx.build(dockerfile, check=False)
    assert r.returncode == 1
    assert r.stderr.startswith(f"Error: Dockerfile:{line}: ") and f"feature: {feature}" in r.stderr
    assert "Traceback" not in r.stderr
    assert ctx.cli("images", "-aq").stdout == before
    assert leftovers(ctx.cli) == []


def test_interrupted_parallel_build_leaves_nothing(ctx: Ctx) -> None:
    """SIGTERM while two stages run a RUN each: both containers go, mounts and temp dirs
    too, and the build exits 130 as a sequential one does."""
    import signal
    import subprocess

    from tests.conftest import BIN
    from tests.helpers import wait_until

    (ctx.path / "Dockerfile").write_text(
        "FROM busybox AS a\nRUN sleep 9138\nFROM busybox AS b\nRUN sleep 9138\n"
        "FROM busybox\nCOPY --from=a /etc/hostname /a\nCOPY --from=b /etc/hostname /b\n"
    )
    cli = ctx.cli
    state = cli.run_root / "runc"
    p = subprocess.Popen(
        [str(BIN), "--root", str(cli.root), "--run-root", str(cli.run_root), "build", "-t",
         "never", str(ctx.path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def both_running() -> bool:
            return state.is_dir() and sum(n.startswith("build-") for n in os.listdir(state)) == 2

        wait_until(both_running, timeout=60, what="two build containers")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130
    assert leftovers(cli) == []
    assert cli("image", "inspect", "never", check=False).returncode != 0
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 9138" not in ps
