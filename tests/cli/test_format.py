"""``--format`` from the user's side: the examples of Docker's reference pages (ps, images,
inspect, network inspect, "Format command and log output") on real containers, compared
with Docker 20.10 on the same kind of objects when it runs here (IDs, addresses and times
masked); and bad templates, which fail with one ``Error: template: ...`` line."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import CLI
from tests.helpers import reference_docker

DOCKER = reference_docker()


def mask(text: str) -> str:
    text = re.sub(r"\b[0-9a-f]{64}\b", "<id>", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<id>", text)
    text = re.sub(r"\b\d+\.\d+\.\d+\.\d+\b", "<ip>", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \w+", "<time>", text)
    text = re.sub(r"\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b", "<mac>", text)
    text = re.sub(r"-> \d+ ", "-> <port> ", text)
    text = re.sub(r"(?m)^\d+$", "<port>", text)
    text = re.sub(r"\b\d+ (seconds|minutes?|hours?|days?|weeks?|months?|years?) ago", "<ago>", text)
    text = re.sub(r"(About an?|Less than a) \w+ ago", "<ago>", text)
    return re.sub(r"\b\d+(\.\d+)?(kB|MB|B)\b", "<size>", text)


@pytest.fixture
def web(ctr: CLI) -> Iterator[tuple[CLI, str]]:
    """A running container as the docs have it: a published port and a label, under the
    same name in dockyard and (when it runs) in Docker."""
    name = f"fmt-{uuid.uuid4().hex[:8]}"
    ctr(
        "run",
        "-d",
        "--name",
        name,
        "-p",
        "127.0.0.1::80",
        "-l",
        "com.example.x=1",
        "busybox",
        "sleep",
        "300",
    )
    if DOCKER:
        subprocess.run(
            [
                "docker",
                "run",
                "-d",
                "--name",
                name,
                "-p",
                "127.0.0.1::80",
                "-l",
                "com.example.x=1",
                "busybox",
                "sleep",
                "300",
            ],
            check=True,
            capture_output=True,
        )
    try:
        yield ctr, name
    finally:
        if DOCKER:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


def compare(cli: CLI, args: list[str], name: str) -> str:
    """dockyard's output; Docker's must match it after masking."""
    ours = cli(*args)
    if DOCKER:
        theirs = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
        assert mask(ours.stdout) == mask(theirs.stdout), (args, ours.stdout, theirs.stdout)
    return ours.stdout


INSPECT_EXAMPLES = [
    # docs/reference/commandline/inspect.md
    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
    "{{range .NetworkSettings.Networks}}{{.MacAddress}}{{end}}",
    "{{.Config.Image}}",
    "{{range $p, $conf := .NetworkSettings.Ports}} {{$p}} -> {{(index $conf 0).HostPort}} {{end}}",
    '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}',
    # Format command and log output
    '{{join .Args " , "}}',
    "{{json .Mounts}}",
    "{{lower .Name}}",
    '{{split .Image ":"}}',
    "{{title .Name}}",
    "{{upper .Name}}",
    "{{range .NetworkSettings.Networks}}{{println .IPAddress}}{{end}}",
    # and a few more of the language
    "{{if .State.Running}}up{{else}}down{{end}} {{len .Config.Cmd}} {{.State.Health}}",
    '{{.Config.Entrypoint}} {{index .Config.Labels "com.example.x"}} {{.Config.Labels.nope}}',
    '{{printf "%-8s|%5d" .State.Status .State.ExitCode}}',
]


@pytest.mark.parametrize("template", INSPECT_EXAMPLES)
def test_inspect_examples(web: tuple[CLI, str], template: str) -> None:
    cli, name = web
    out = compare(cli, ["inspect", "--format", template, name], name)
    assert "<no value>" not in out or "nope" in template
    assert out.endswith("\n")


def test_issue_example_prints_the_address(web: tuple[CLI, str]) -> None:
    cli, name = web
    out = cli("inspect", "--format={{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name)
    assert re.fullmatch(r"\d+\.\d+\.\d+\.\d+\n", out.stdout), out.stdout


def test_inspect_json_is_compact_and_in_field_order(web: tuple[CLI, str]) -> None:
    cli, name = web
    out = cli("inspect", "-f", "{{json .State}}", name).stdout
    assert out.startswith('{"Status":"running","Running":true,') and ": " not in out
    assert cli("inspect", name).stdout.startswith("[\n    {\n")  # no -f: indented


def test_log_path(web: tuple[CLI, str]) -> None:
    cli, name = web
    out = cli("inspect", "--format={{.LogPath}}", name).stdout
    assert out.strip().endswith("-json.log")


@pytest.mark.parametrize(
    "args",
    [
        ["ps", "--format", "{{.ID}}: {{.Command}}"],
        ["ps", "--format", "table {{.ID}}\t{{.Labels}}"],
        ["ps", "--format", "table {{.Names}}\t{{.Mounts}}\t{{.State}}"],
        ["ps", "--format", '{{.Names}} {{.Label "com.example.x"}} {{.Networks}} {{.LocalVolumes}}'],
        ["ps", "--format", "table {{.ID}}\t{{.Image}}\t{{.State}}\t{{.Names}}"],
    ],
)
def test_ps_examples(web: tuple[CLI, str], args: list[str]) -> None:
    cli, name = web
    out = compare(cli, [*args, "--filter", f"name={name}"], name)
    assert name in out or "{{.Names}}" not in args[-1]


def test_ps_default_table_columns(web: tuple[CLI, str]) -> None:
    cli, name = web
    out = cli("ps").stdout.splitlines()
    assert out[0].startswith("CONTAINER ID   IMAGE     COMMAND       CREATED")
    assert "127.0.0.1:" in out[1] and "->80/tcp" in out[1]


@pytest.mark.parametrize(
    "fmt",
    [
        "{{.ID}}: {{.Repository}}",
        "table {{.ID}}\t{{.Repository}}\t{{.Tag}}",
        "table {{.ID}}\t{{.Repository}}\t{{.Tag}}\t{{.Size}}",
        "{{json .}}",
    ],
)
def test_images_examples(bb: CLI, fmt: str) -> None:
    compare(bb, ["images", "--format", fmt, "busybox"], "")


def test_images_default_table_is_dockers(bb: CLI) -> None:
    compare(bb, ["images", "--format", "table {{.Repository}}\t{{.Tag}}", "busybox"], "")
    out = bb("images", "busybox").stdout
    # Docker's tabwriter: every column at least 10 wide, so TAG is wider than "latest" + 3
    assert out.splitlines()[0] == "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE"


def test_network_inspect_id(ctr: CLI) -> None:
    name = f"net{uuid.uuid4().hex[:6]}"
    ctr("network", "create", name)
    try:
        out = ctr("network", "inspect", "--format", "{{.ID}}", name).stdout
        assert re.fullmatch(r"[0-9a-f]{64}\n", out)
        out = ctr("network", "inspect", "-f", "{{.Name}} {{.Driver}} {{json .Labels}}", name)
        assert out.stdout == f"{name} bridge {{}}\n"
    finally:
        ctr("network", "rm", name)


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ps", "--format", "{{.ID"], "Error: template: :1: unclosed action"),
        (
            ["ps", "-a", "--format", "{{nofunc .ID}}"],
            'Error: template: :1: function "nofunc" not defined',
        ),
        (
            ["ps", "-a", "--format", "{{.Foo}}"],
            'Error: template: :1:2: executing "" at <.Foo>: can\'t evaluate field Foo in type '
            "*formatter.ContainerContext",
        ),
        (
            ["images", "--format", "{{truncate .ID}}"],
            'Error: template: :1:2: executing "" at <truncate>: wrong number of args for '
            "truncate: want 2 got 1",
        ),
        (
            ["images", "--format", "{{index .ID 99}}"],
            'Error: template: :1:2: executing "" at <index .ID 99>: error calling index: '
            "index out of range: 99",
        ),
        (["inspect", "-f", "{{if}}", "busybox"], "Error: template: :1: missing value for if"),
    ],
)
def test_bad_templates_fail_cleanly(web: tuple[CLI, str], args: list[str], message: str) -> None:
    cli, _ = web
    r = cli(*args, check=False)
    assert r.returncode == 125, r
    assert r.stdout == ""
    assert r.stderr == message + "\n"


def test_inspect_missing_field_is_an_error_for_that_object(web: tuple[CLI, str]) -> None:
    cli, name = web
    r = cli("inspect", "-f", "{{.Foo}}", name, check=False)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (
        'Error: template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"\n'
    )
    # the container is still there and untouched
    assert cli("inspect", "-f", "{{.State.Status}}", name).stdout == "running\n"
