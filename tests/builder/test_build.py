"""dockyard build end to end: the real CLI, real RUN containers, the real store."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import re
from pathlib import Path

import pytest

from tests.builder.conftest import Ctx, leftovers, tar_bytes
from tests.conftest import BIN, CLI, remove_networks


def steps_run(output: str) -> list[str]:
    """The step texts that executed (not cache hits) in classic output."""
    out = []
    blocks = re.split(r"^Step \d+/\d+ : ", output, flags=re.M)[1:]
    for b in blocks:
        head = b.split("\n", 1)[0]
        if " ---> Using cache" not in b and not head.startswith(("FROM", "ARG")):
            out.append(head)
    return out


def test_build_run_and_config(ctx: Ctx) -> None:
    ctx.write({"a.txt": "content\n"})
    r = ctx.build(
        "FROM busybox\n"
        'ENV GREETING=hello NAME="big world"\n'
        "WORKDIR /app\n"
        "WORKDIR sub\n"
        "COPY a.txt ./\n"
        'RUN echo "$GREETING $NAME" > msg && cat a.txt\n'
        'CMD ["cat", "msg", "a.txt"]\n',
        "-t",
        "app:1",
    )
    assert "Step 5/7 : COPY a.txt ./" in r.stdout
    assert re.search(r"Successfully built [0-9a-f]{12}\n", r.stdout)
    assert "Successfully tagged app:1" in r.stdout
    assert "content" in r.stdout  # the RUN's output is shown
    assert ctx.run("app:1") == "hello big world\ncontent\n"
    info = ctx.inspect("app:1")
    cfg = info["Config"]
    assert "GREETING=hello" in cfg["Env"] and "NAME=big world" in cfg["Env"]
    assert cfg["WorkingDir"] == "/app/sub"
    assert cfg["Cmd"] == ["cat", "msg", "a.txt"]
    hist = ctx.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "app:1")
    lines = hist.stdout.splitlines()
    # metadata steps are empty layers; RUN, COPY and WORKDIR (making its dir) add layers
    assert lines[0] == '/bin/sh -c #(nop)  CMD ["cat" "msg" "a.txt"]|0B'  # Docker's words
    assert len(info["RootFS"]["Layers"]) == 5  # busybox + WORKDIR x 2 + COPY + RUN
    assert leftovers(ctx.cli) == []


def test_cache_seed_example_install_before_sources(ctx: Ctx) -> None:
    ctx.write({"package.json": '{"name": "x"}\n', "app.js": "v1\n"})
    df = (
        "FROM busybox\n"
        "WORKDIR /app\n"
        "COPY package.json /app/\n"
        "RUN echo INSTALL''ING && cp package.json installed.json\n"
        "COPY . /app\n"
        'CMD ["cat", "/app/app.js"]\n'
    )
    first = ctx.build(df, "-t", "seed:1")
    assert "INSTALLING" in first.stdout
    (ctx.path / "app.js").write_text("v2\n")
    second = ctx.build(None, "-t", "seed:1")
    assert "INSTALLING" not in second.stdout  # the install step came from the cache
    assert steps_run(second.stdout) == ["COPY . /app", 'CMD ["cat", "/app/app.js"]']
    assert ctx.run("seed:1") == "v2\n"
    # nothing changed: every step is a cache hit and the same image comes out
    third = ctx.build(None, "-t", "seed:1")
    assert steps_run(third.stdout) == []
    assert third.stdout.split("Successfully built ")[1][:12] in second.stdout


def test_cache_seed_example_sources_before_install(ctx: Ctx) -> None:
    ctx.write({"package.json": '{"name": "x"}\n', "app.js": "v1\n"})
    df = "FROM busybox\nCOPY . /app\nRUN echo INSTALL''ING\n"
    assert "INSTALLING" in ctx.build(df).stdout
    (ctx.path / "app.js").write_text("v2\n")
    again = ctx.build(None)
    assert "INSTALLING" in again.stdout  # one COPY of everything: the install runs again
    assert steps_run(again.stdout) == ["COPY . /app", "RUN echo INSTALL''ING"]
    # touching a file (mtime only) does not invalidate the copy
    (ctx.path / "app.js").touch()
    assert steps_run(ctx.build(None).stdout) == []


def test_layer_sizes_one_step_vs_three(ctx: Ctx) -> None:
    one = "FROM busybox\nRUN mkdir /t && dd if=/dev/zero of=/t/big bs=1M count=100 && rm -rf /t\n"
    three = (
        "FROM busybox\nRUN mkdir /t\nRUN dd if=/dev/zero of=/t/big bs=1M count=100\nRUN rm -rf /t\n"
    )
    ctx.build(one, "-t", "small")
    ctx.build(three, "-t", "large")
    small = ctx.inspect("small")["Size"]
    large = ctx.inspect("large")["Size"]
    assert small < 10 * 1024 * 1024
    assert large > 100 * 1024 * 1024
    assert ctx.cli("run", "--rm", "large", "ls", "/t", check=False).returncode != 0


def test_dockerignore(ctx: Ctx) -> None:
    ctx.write(
        {
            ".dockerignore": "# comment\n**/*.log\n/secret\nnode_modules\n!node_modules/keep.js\n"
            "Dockerfile\n",
            "app.js": "app\n",
            "debug.log": "x",
            "sub/deep/trace.log": "x",
            "sub/ok.txt": "ok",
            "secret": "s3cret",
            "node_modules/dep.js": "dep",
            "node_modules/keep.js": "keep",
        }
    )
    ctx.build("FROM busybox\nCOPY . /ctx\n", "-t", "ign")
    listing = ctx.run("ign", "find", "/ctx").split()
    assert sorted(listing) == sorted(
        [
            "/ctx",
            "/ctx/.dockerignore",
            "/ctx/app.js",
            "/ctx/sub",
            "/ctx/sub/deep",
            "/ctx/sub/ok.txt",
            "/ctx/node_modules",
            "/ctx/node_modules/keep.js",
        ]
    )
    # an ignored file is not part of the cache key either
    (ctx.path / "debug.log").write_text("changed")
    (ctx.path / "node_modules" / "dep.js").write_text("changed")
    assert steps_run(ctx.build(None, "-t", "ign").stdout) == []
    # the Dockerfile is still read even though it is ignored; COPY of it fails
    r = ctx.build("FROM busybox\nCOPY Dockerfile /x\n", check=False)
    assert r.returncode != 0 and "Dockerfile:2" in r.stderr


def test_copy_rules(ctx: Ctx) -> None:
    ctx.write(
        {
            "a.txt": "A",
            "b.txt": "B",
            "c.md": "C",
            "dir/one": "1",
            "dir/sub/two": "2",
            "exe.sh": "#!/bin/sh\necho hi\n",
        }
    )
    (ctx.path / "exe.sh").chmod(0o755)
    (ctx.path / "dir" / "link").symlink_to("one")
    r = ctx.build(
        "FROM busybox\n"
        "WORKDIR /w\n"
        "COPY *.txt /multi/\n"
        "COPY dir /contents\n"
        "COPY dir/one /renamed\n"
        "COPY dir/one /intodir/\n"
        "COPY a.txt rel/\n"
        "COPY --chown=1234:5678 --chmod=640 b.txt c.md /owned/\n"
        "COPY --chown=nobody exe.sh /byname\n"
        "COPY exe.sh /exe\n"
        "COPY *.md /single\n",
        "-t",
        "cp",
    )
    assert r.returncode == 0
    out = ctx.run(
        "cp",
        "sh",
        "-c",
        "ls /multi; ls -a /contents /contents/sub; readlink /contents/link; cat /renamed;"
        " cat /intodir/one; cat /w/rel/a.txt; stat -c '%u:%g %a %n' /owned/b.txt /owned/c.md"
        " /byname /exe",
    )
    assert "a.txt\nb.txt\n" in out
    assert "one" in out and "sub" in out and "two" in out and "dir" not in out.split()
    assert "\none\n1" in out  # readlink, then /renamed
    assert "1234:5678 640 /owned/b.txt" in out
    assert "1234:5678 640 /owned/c.md" in out
    assert "65534:65534 755 /byname" in out
    assert "0:0 755 /exe" in out
    assert ctx.run("cp", "cat", "/single") == "C"  # one match: the destination is the file
    bad = ctx.build("FROM busybox\nCOPY a.txt b.txt /notadir\n", check=False)
    assert bad.returncode == 1
    assert "Dockerfile:2" in bad.stderr and "must be a directory and end with a /" in bad.stderr


def test_add_archives(ctx: Ctx) -> None:
    raw = tar_bytes({"inner/file.txt": b"from tar"})
    ctx.write(
        {
            "a.tar": raw,
            "a.tar.gz": gzip.compress(raw),
            "a.tar.bz2": bz2.compress(raw),
            "a.tar.xz": lzma.compress(raw),
            "plain.gz": gzip.compress(b"not a tar"),
        }
    )
    ctx.build(
        "FROM busybox\n"
        "ADD a.tar /t/\nADD a.tar.gz /g/\nADD a.tar.bz2 /b/\nADD a.tar.xz /x/\n"
        "ADD plain.gz /p/\nCOPY a.tar.gz /c/\n",
        "-t",
        "add",
    )
    out = ctx.run("add", "sh", "-c", "cat /t/inner/file.txt /g/inner/file.txt /b/inner/file.txt "
                  "/x/inner/file.txt; ls /p /c")  # fmt: skip
    assert out.count("from tar") == 4
    assert "plain.gz" in out and "a.tar.gz" in out  # not archives / COPY never unpacks


def test_add_url_with_checksum(ctx: Ctx, http_server: tuple[str, Path]) -> None:
    url, www = http_server
    body = b"remote file\n"
    (www / "file.txt").write_bytes(body)
    good = "sha256:" + hashlib.sha256(body).hexdigest()
    ctx.build(f"FROM busybox\nADD --checksum={good} {url}/file.txt /dl/\n", "-t", "url")
    out = ctx.run("url", "sh", "-c", "cat /dl/file.txt; stat -c %a /dl/file.txt")
    assert out == "remote file\n600\n"
    bad = "sha256:" + "0" * 64
    r = ctx.build(f"FROM busybox\nADD --checksum={bad} {url}/file.txt /dl/\n", check=False)
    assert r.returncode == 1 and "Dockerfile:2" in r.stderr and "checksum" in r.stderr
    r = ctx.build(f"FROM busybox\nADD {url}/missing /dl/\n", check=False)
    assert r.returncode == 1 and "cannot fetch" in r.stderr
    assert leftovers(ctx.cli) == []


def test_multistage_and_target(ctx: Ctx) -> None:
    df = (
        "FROM busybox AS builder\n"
        "RUN mkdir /out && echo built > /out/artifact && chown 42:43 /out/artifact\n"
        "FROM busybox AS test\n"
        "RUN echo test-stage > /marker\n"
        "FROM scratch\n"
        "COPY --from=builder /out/artifact /artifact\n"
        "COPY --from=1 /marker /marker\n"
        "COPY --from=busybox /bin/busybox /busybox\n"
        'CMD ["/busybox", "cat", "/artifact", "/marker"]\n'
    )
    ctx.build(df, "-t", "ms")
    assert ctx.run("ms") == "built\ntest-stage\n"
    out = ctx.run("ms", "/busybox", "stat", "-c", "%u:%g", "/artifact")
    assert out == "42:43\n"  # --from keeps owners
    info = ctx.inspect("ms")
    assert len(info["RootFS"]["Layers"]) == 3  # scratch: only the three COPY layers
    t = ctx.build(None, "--target", "test", "-t", "ms-test")
    # BuildKit's rule: only the stages the target needs (not "builder")
    assert "Step 2/2" in t.stdout and "COPY" not in t.stdout and "artifact" not in t.stdout
    assert ctx.run("ms-test", "cat", "/marker") == "test-stage\n"
    bad = ctx.build(None, "--target", "nope", check=False)
    assert bad.returncode == 1 and "failed to reach build target nope" in bad.stderr


def test_args(ctx: Ctx) -> None:
    df = (
        "ARG BASE=busybox\n"
        "ARG TAG=latest\n"
        "FROM ${BASE}:${TAG}\n"
        "ARG TAG\n"
        "ARG GREETING=hi\n"
        "ARG UNSET\n"
        "ENV FROM_ENV=${GREETING:-none}-${UNSET:-fallback}-${GREETING:+set}\n"
        'RUN echo "tag=$TAG greeting=$GREETING unset=[$UNSET]" > /args\n'
        "FROM busybox\n"
        "COPY --from=0 /args /args\n"  # (an unused stage would not be built, as BuildKit)
        'RUN echo "second=[$GREETING]" > /second\n'
    )
    r = ctx.build(df, "--target", "", "--build-arg", "GREETING=hello", "--build-arg", "EXTRA=1",
                  "-t", "args")  # fmt: skip
    assert "[Warning] One or more build-args [EXTRA] were not consumed" in r.stdout
    assert ctx.run("args", "cat", "/second") == "second=[]\n"  # ARG scope ends with the stage
    df_one = df.split("FROM busybox\n")[0]
    ctx.build(df_one, "--build-arg", "GREETING=hello", "-t", "args1")
    assert ctx.run("args1", "cat", "/args") == "tag=latest greeting=hello unset=[]\n"
    env = ctx.inspect("args1")["Config"]["Env"]
    assert "FROM_ENV=hello-fallback-set" in env
    assert not any(e.startswith(("GREETING=", "TAG=")) for e in env)  # ARGs are not ENV
    # a changed build-arg value misses the cache for the RUN that sees it
    r2 = ctx.build(df_one, "--build-arg", "GREETING=other", "-t", "args1")
    assert any(s.startswith("RUN") for s in steps_run(r2.stdout))
    # predefined proxy args reach RUN without an ARG line, and stay out of the history
    proxy = "http://127.0.0.1:9"
    r4 = ctx.build('FROM busybox\nRUN echo "p=$http_proxy" > /p\n', "--build-arg",
                   f"http_proxy={proxy}", "-t", "proxy")  # fmt: skip
    assert "not consumed" not in r4.stdout
    assert ctx.run("proxy", "cat", "/p") == f"p={proxy}\n"
    assert proxy not in ctx.cli("history", "--no-trunc", "proxy").stdout
    # an ARG used without a value in FROM
    r3 = ctx.build("ARG TAG\nFROM busybox:${TAG}\n", check=False)
    assert r3.returncode == 1 and "Dockerfile:2" in r3.stderr and "TAG" in r3.stderr


def test_cmd_entrypoint_shell(ctx: Ctx) -> None:
    ctx.build('FROM busybox\nCMD ["echo", "base"]\n', "-t", "base-cmd")
    ctx.build('FROM base-cmd\nENTRYPOINT ["echo", "ep"]\n', "-t", "ep")
    cfg = ctx.inspect("ep")["Config"]
    assert cfg["Entrypoint"] == ["echo", "ep"] and cfg["Cmd"] is None  # inherited CMD reset
    assert ctx.run("ep") == "ep\n"
    ctx.build('FROM busybox\nCMD ["x"]\nENTRYPOINT ["echo"]\nCMD ["a", "b"]\n', "-t", "ep2")
    assert ctx.run("ep2") == "a b\n"
    ctx.build("FROM busybox\nENTRYPOINT echo shell-form\n", "-t", "ep3")
    assert ctx.inspect("ep3")["Config"]["Entrypoint"] == ["/bin/sh", "-c", "echo shell-form"]
    ctx.build(
        'FROM busybox\nSHELL ["/bin/sh", "-c", "-e"]\nRUN echo $0 > /shell\nCMD echo cmd\n',
        "-t",
        "sh",
    )
    cfg = ctx.inspect("sh")["Config"]
    assert cfg["Shell"] == ["/bin/sh", "-c", "-e"]
    assert cfg["Cmd"] == ["/bin/sh", "-c", "-e", "echo cmd"]
    r = ctx.build('FROM busybox\nRUN ["/bin/echo", "exec-form"]\n')
    assert "exec-form" in r.stdout


def test_metadata_instructions_and_onbuild(ctx: Ctx) -> None:
    ctx.build(
        "FROM busybox\n"
        'LABEL version=1.0 "with space"="a b"\n'
        "MAINTAINER someone\n"
        "EXPOSE 80 443/tcp 53/udp 8000-8001\n"
        'VOLUME ["/data"]\n'
        "VOLUME /logs /cache\n"
        "USER nobody\n"
        "STOPSIGNAL SIGINT\n"
        "HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost || exit 1\n"
        "ONBUILD RUN echo triggered > /tmp/trigger\n",
        "--label",
        "from.flag=yes",
        "-t",
        "meta",
    )
    info = ctx.inspect("meta")
    cfg = info["Config"]
    assert cfg["Labels"] == {"version": "1.0", "with space": "a b", "from.flag": "yes"}
    assert info["Author"] == "someone"
    assert set(cfg["ExposedPorts"]) == {"80/tcp", "443/tcp", "53/udp", "8000/tcp", "8001/tcp"}
    assert set(cfg["Volumes"]) == {"/data", "/logs", "/cache"}
    assert cfg["User"] == "nobody"
    assert cfg["StopSignal"] == "SIGINT"
    assert cfg["Healthcheck"] == {
        "Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
        "Interval": 5_000_000_000,
        "Retries": 2,
    }
    assert cfg["OnBuild"] == ["RUN echo triggered > /tmp/trigger"]
    assert len(info["RootFS"]["Layers"]) == 1  # metadata only: no new layer
    r = ctx.build("FROM meta\nRUN cat /tmp/trigger\n", "-t", "child")
    assert "Executing 1 build trigger" in r.stdout
    assert ctx.inspect("child")["Config"].get("OnBuild") in (None, [])
    assert "\ntriggered\n" in r.stdout  # the child's RUN (as nobody) read the trigger's file


def test_volume_changes_in_run_are_discarded(ctx: Ctx) -> None:
    ctx.write({"seed": "seeded\n"})
    r = ctx.build(
        "FROM busybox\nCOPY seed /data/seed\nVOLUME /data\n"
        "RUN cat /data/seed && echo lost > /data/new && echo kept > /kept\n"
        "COPY seed /data/copied\n",
        "-t",
        "vol",
    )
    assert "seeded" in r.stdout  # the step sees the image's content in the volume
    # what the image holds under /data (a child build's RUN sees the image's content)
    child = ctx.build("FROM vol\nRUN echo listing; ls /data; cat /kept\n", "--no-cache")
    listing = child.stdout.split("listing\n", 1)[1].split("Removing")[0].split()
    assert listing == ["copied", "seed", "kept"]  # RUN's write to /data was discarded


def test_heredocs_and_escape_directive(ctx: Ctx) -> None:
    ctx.build(
        "# escape=`\n"
        "FROM busybox\n"
        "ARG WHO=world\n"
        "RUN echo one `\n"
        "    two > /cont\n"
        "RUN <<EOF\n"
        "echo first > /heredoc\n"
        "echo second >> /heredoc\n"
        "EOF\n"
        "RUN <<EOF\n"
        "#!/bin/sh\n"
        'echo "script $0" > /script\n'
        "EOF\n"
        "COPY <<EOF /hello\n"
        "hello ${WHO}\n"
        "EOF\n"
        "COPY <<'EOF' /literal\n"
        "hello ${WHO}\n"
        "EOF\n",
        "-t",
        "hd",
    )
    out = ctx.run("hd", "cat", "/cont", "/heredoc", "/hello", "/literal", "/script")
    assert out == ("one two\nfirst\nsecond\nhello world\nhello ${WHO}\nscript /dev/pipes/EOF\n")


BAD_INPUTS = [
    ("FROM busybox\nFOO bar\n", "Dockerfile:2", "unknown instruction: FOO"),
    ("RUN echo hi\n", "Dockerfile:1", "no build stage"),
    ("FROM busybox\nCOPY ../outside /x\n", "Dockerfile:2", "outside the build context"),
    ("FROM busybox\nCOPY /etc/passwd /x\n", "Dockerfile:2", "not found in build context"),
    ("FROM busybox\nCOPY escape /x\n", "Dockerfile:2", "not found in build context"),
    ("FROM busybox\nCOPY missing.txt /x\n", "Dockerfile:2", "not found in build context"),
    ("FROM busybox\nCOPY *.nothing /x/\n", "Dockerfile:2", "no source files"),
    # (a missing Docker Hub image would be pulled: only loopback registries in tests)
    ("FROM 127.0.0.1:1/none:1\n", "Dockerfile:1", "127.0.0.1:1/none:1"),
    ("FROM busybox\nENV\n", "Dockerfile:2", "ENV"),
    ("FROM busybox\nRUN <<EOF\necho\n", "Dockerfile:", "heredoc"),
    ("FROM busybox\nCOPY --bogus=1 a /b\n", "Dockerfile:2", "unknown flag"),
    ("FROM busybox\nUSER nosuchuser\nRUN true\n", "Dockerfile:3", "nosuchuser"),
    ("FROM busybox\nCOPY f /bin/sh/x\n", "Dockerfile:2", "COPY failed"),
]


@pytest.mark.parametrize(("dockerfile", "where", "what"), BAD_INPUTS)
def test_bad_input(ctx: Ctx, dockerfile: str, where: str, what: str) -> None:
    (ctx.path.parent / "outside").write_text("host secret")
    (ctx.path / "escape").symlink_to("/etc/passwd")
    (ctx.path / "f").write_text("f")
    before = ctx.cli("images", "-aq").stdout
    r = ctx.build(dockerfile, "-t", "never", check=False)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith("Error: ") and where in r.stderr and what in r.stderr
    assert "Traceback" not in r.stderr
    assert ctx.cli("image", "inspect", "never", check=False).returncode != 0
    if "USER" not in dockerfile:  # else the USER step before the failure stays as cache
        assert ctx.cli("images", "-aq").stdout == before
    assert leftovers(ctx.cli) == []


def test_failing_run_stops_the_build(ctx: Ctx) -> None:
    before = ctx.cli("images", "-aq").stdout
    r = ctx.build(
        "FROM busybox\nRUN echo ok > /ok\nRUN echo line-one; echo line-two; exit 3\n"
        "RUN echo never\n",
        "-t",
        "failed:1",
        check=False,
    )
    assert r.returncode == 3
    assert "Dockerfile:3" in r.stderr and "step 3/4" in r.stderr
    assert "returned a non-zero code: 3" in r.stderr
    assert "line-one" in r.stderr and "line-two" in r.stderr  # the last output lines
    assert "never" not in r.stdout
    assert ctx.cli("image", "inspect", "failed:1", check=False).returncode != 0
    # the successful step stays as cache (like Docker's), nothing else is left behind
    after = ctx.cli("images", "-aq").stdout.split()
    assert len(after) == len(before.split()) + 1
    assert leftovers(ctx.cli) == []
    assert "Using cache" in ctx.build(None, check=False).stdout


def test_stdin_dockerfile_without_context(ctx: Ctx) -> None:
    r = ctx.cli("build", "-t", "stdin:1", "-", input=b"FROM busybox\nRUN echo from-stdin > /f\n")
    assert "Successfully tagged stdin:1" in r.stdout
    assert ctx.run("stdin:1", "cat", "/f") == "from-stdin\n"
    r = ctx.cli("build", "-", input=b"FROM busybox\nCOPY x /x\n", check=False)
    assert r.returncode == 1 and "not found in build context" in r.stderr
    # -f - : the Dockerfile from stdin, the context from the directory
    ctx.write({"x": "in context\n"})
    r = ctx.cli(
        "build", "-t", "stdin:2", "-f", "-", str(ctx.path), input=b"FROM busybox\nCOPY x /x\n"
    )
    assert ctx.run("stdin:2", "cat", "/x") == "in context\n"


def test_progress_forms_and_quiet(ctx: Ctx) -> None:
    df = "FROM busybox\nRUN echo plain-output\nENV A=1\n"
    plain = ctx.build(df, "--progress", "plain", "-t", "p")
    assert re.search(r"^#\d+ \[stage-0 2/3\] RUN echo plain-output$", plain.stderr, re.M)
    assert re.search(r"^#\d+ \d+\.\d+ plain-output$", plain.stderr, re.M)
    assert "naming to p:latest done" in plain.stderr or "naming to p done" in plain.stderr
    again = ctx.build(None, "--progress", "plain")
    assert again.stderr.count("CACHED") == 2
    q = ctx.build(None, "-q")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", q.stdout)
    tty = ctx.build(df, "--progress", "tty", "--no-cache")
    assert "[+] Building" in tty.stderr and "FINISHED" in tty.stderr


def test_rmi_and_prune_remove_intermediate_images(ctx: Ctx) -> None:
    base = set(ctx.cli("images", "-aq", "--no-trunc").stdout.split())
    ctx.write({"f": "x"})
    ctx.build("FROM busybox\nCOPY f /f\nRUN echo x > /y\nENV A=1\n", "-t", "inter")
    all_ids = set(ctx.cli("images", "-aq", "--no-trunc").stdout.split())
    assert len(all_ids - base) == 3
    visible = ctx.cli("images", "-q", "--no-trunc").stdout.split()
    assert len(set(visible) - base) == 1  # intermediates are hidden without -a
    assert ctx.cli("image", "prune", "-f").returncode == 0
    assert set(ctx.cli("images", "-aq", "--no-trunc").stdout.split()) == all_ids  # not dangling
    rmi = ctx.cli("rmi", "inter").stdout
    assert rmi.count("Deleted:") >= 3
    assert set(ctx.cli("images", "-aq", "--no-trunc").stdout.split()) == base
    ctx.cli("system", "check")


def test_run_network_modes(ctx: Ctx) -> None:
    df = (
        "FROM busybox\nRUN cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort > /ifs\n"
    )
    ctx.build(df, "-t", "net-none", "--network", "none")
    assert ctx.run("net-none", "cat", "/ifs") == "lo\n"
    # the default, as for `dockyard run`: the bridge network, with an address on eth0
    ctx.build(
        df + "RUN ip -4 addr show eth0 | grep -q 'inet '\n", "-t", "net-default", "--no-cache"
    )
    assert ctx.run("net-default", "cat", "/ifs") == "eth0\nlo\n"
    leases = ctx.cli("network", "inspect", "bridge", "--format", "{{json .Containers}}")
    assert "build-" not in leases.stdout  # the build container's lease is gone

    def host_ifs() -> set[str]:
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
        return {line.split(":")[0].strip() for line in lines}

    before = host_ifs()
    ctx.build(df, "-t", "net-host", "--network", "host", "--no-cache")
    stable = before & host_ifs()  # other tests on this host add and remove interfaces
    inside = set(ctx.run("net-host", "cat", "/ifs").split())
    assert stable <= inside and len(inside) > 1
    r = ctx.build(df, "--network", "nosuchnet", "--no-cache", check=False)
    assert r.returncode == 1 and "nosuchnet" in r.stderr


def test_context_of_100k_files(ctx: Ctx) -> None:
    many = ctx.path / "many"
    many.mkdir()
    for d in range(100):
        sub = many / f"d{d}"
        sub.mkdir()
        for i in range(1000):
            (sub / f"f{i}").write_bytes(b"x")
    ctx.write({"app.txt": "app", ".dockerignore": "many/d9*\n"})
    r = ctx.build(
        "FROM busybox\nCOPY app.txt /\nCOPY many/d1 /d1\nRUN ls /d1 | wc -l\n", "-t", "big"
    )
    assert "1000" in r.stdout
    again = ctx.build(None, "-t", "big")
    assert steps_run(again.stdout) == []


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_interrupted_build_leaves_nothing(ctx: Ctx, signame: str) -> None:
    import signal
    import subprocess
    import time

    from tests.conftest import BIN

    (ctx.path / "Dockerfile").write_text("FROM busybox\nRUN echo started; sleep 9137\n")
    cli = ctx.cli
    p = subprocess.Popen(
        [
            str(BIN),
            "--root",
            str(cli.root),
            "--run-root",
            str(cli.run_root),
            "build",
            "-t",
            "never",
            str(ctx.path),
        ],  # fmt: skip
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert p.stdout is not None
        deadline = time.monotonic() + 60
        seen = ""
        while "started" not in seen and time.monotonic() < deadline:
            seen += p.stdout.readline()
        assert "started" in seen
        p.send_signal(getattr(signal, signame))
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130
    assert leftovers(cli) == []
    assert cli("image", "inspect", "never", check=False).returncode != 0
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 9137" not in ps


def test_from_pulls_a_missing_base_image(ctx: Ctx, dy: CLI, tmp_path: Path) -> None:
    """FROM an image this store lacks: pulled through Engine.registry (our hub on loopback)."""
    import os
    import subprocess

    from tests.hub.conftest import PASSWORDS, add_users, start_hub, stop_hub

    data = tmp_path / "hub"
    add_users(data)
    proc, port = start_hub(data, tmp_path / "hub.log")
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path / "docker-config")}

    def run(cli: CLI, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN), "--root", str(cli.root), "--run-root", str(cli.run_root), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    try:
        base = f"127.0.0.1:{port}/alice/base:1"
        ctx.build("FROM busybox\nRUN echo from-the-hub > /base\n", "-t", base)
        login = run(ctx.cli, "login", f"127.0.0.1:{port}", "-u", "alice", "--password-stdin",
                    stdin=PASSWORDS["alice"] + "\n")  # fmt: skip
        assert login.returncode == 0, login.stderr
        push = run(ctx.cli, "push", base)
        assert push.returncode == 0, push.stderr
        # a store without the base: the build pulls it (public repositories pull anonymously)
        df = f"FROM {base}\nRUN cat /base\n"
        r = run(dy, "build", "-t", "child", "-", stdin=df)
        assert r.returncode == 0, r.stderr
        assert "from-the-hub" in r.stdout
        assert dy("image", "inspect", base).returncode == 0
        # --pull asks the registry again even when the image is here
        again = run(dy, "build", "--pull", "-q", "-", stdin=df)
        assert again.returncode == 0, again.stderr
        missing = run(dy, "build", "-", stdin=f"FROM 127.0.0.1:{port}/alice/none:1\n")
        assert missing.returncode == 1
        assert "Dockerfile:1" in missing.stderr and "alice/none:1" in missing.stderr
        assert leftovers(dy) == []
    finally:
        stop_hub(proc)
        remove_networks(dy.root, dy.run_root)  # the RUN made dy's default bridge


def test_iidfile(ctx: Ctx, tmp_path: Path) -> None:
    iid = tmp_path / "iid"
    iid.write_text("stale")
    ctx.build("FROM busybox\nENV A=1\n", "-t", "iid", "--iidfile", str(iid))
    # the full ID, no newline, as Docker writes it
    assert iid.read_text() == ctx.inspect("iid")["Id"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", iid.read_text())
    r = ctx.build("FROM busybox\nRUN exit 3\n", "--iidfile", str(iid), check=False)
    assert r.returncode == 3 and not iid.exists()  # a failed build leaves no stale ID
    r = ctx.build("FROM busybox\n", "--iidfile", str(tmp_path / "no" / "dir" / "iid"), check=False)
    assert r.returncode == 125 and "Cannot write image ID file" in r.stderr
    assert leftovers(ctx.cli) == []
