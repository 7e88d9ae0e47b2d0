"""Docker's default seccomp profile, rule by rule, seen from inside a container.

``seccomp_prober.c`` (built here with ``gcc -static``) calls each syscall of interest with
harmless arguments in ``dockyard run`` and prints what it got. Every result is compared with
what Docker's profile says for the capability set the container really has: the expectation
is computed here from the profile's data (the shipped ``seccomp_default.json``, or the
custom profile), by this file's own reading of Docker's rules, not by the code under test.
Where the reference Docker runs, the same prober runs in ``docker run`` with the same flags
and the two tables must agree line by line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from dockyard.runtime import seccomp
from dockyard.runtime.spec import ALL_CAPS
from tests.conftest import CLI, _cleanup_containers, db_snapshot, tree_snapshot
from tests.helpers import reference_docker

PROBER_SOURCE = Path(__file__).with_name("seccomp_prober.c")
DEFAULT_PROFILE = Path(seccomp.DEFAULT_PROFILE)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


# --- the reference Docker ------------------------------------------------------------------


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def docker_message(stderr: str) -> str:
    """Docker's error without the CLI's decoration ("docker: ", "Error response from
    daemon: ", the help hint)."""
    line = stderr.strip().splitlines()[0]
    line = line.removeprefix("docker: ").removeprefix("Error response from daemon: ")
    return line.rstrip(".")


# --- the prober ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prober_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the static prober, for ``-v DIR:/probe:ro``."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc is needed to build the syscall prober: run ./dev.sh setup")
    out = tmp_path_factory.mktemp("prober")
    subprocess.run(
        [gcc, "-static", "-O1", "-Wall", "-Werror", "-o", str(out / "prober"), str(PROBER_SOURCE)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, busybox_template: Path) -> Iterator[CLI]:
    """One busybox store for this module's many short containers."""
    base = tmp_path_factory.mktemp("seccomp")
    subprocess.run(["cp", "-a", str(busybox_template), str(base / "root")], check=True)
    cli = CLI(base / "root", base / "run")
    try:
        yield cli
    finally:
        _cleanup_containers(cli)
        shutil.rmtree(base / "root", ignore_errors=True)


class Probe(NamedTuple):
    name: str
    syscalls: tuple[str, ...]  # in the order the probe makes them
    args: tuple[int, ...] | None  # what the filter sees (None: no rule looks at them)
    needs: frozenset[str]  # the kernel answers EPERM without one of these, whatever seccomp says
    result: str  # "ok" or an errno name


class Table(NamedTuple):
    capabilities: frozenset[str]
    probes: dict[str, Probe]


def parse(output: str) -> Table:
    lines = output.splitlines()
    head, _, mask = lines[0].partition(" ")
    assert head == "capbnd", output
    bits = int(mask, 16)
    caps = frozenset(c for i, c in enumerate(ALL_CAPS) if bits >> i & 1)
    probes = {}
    for line in lines[1:]:
        name, syscalls, args, needs, result = line.split()
        probes[name] = Probe(
            name,
            tuple(syscalls.split("+")),
            None if args == "-" else tuple(int(a) for a in args.split(",")),
            frozenset() if needs == "-" else frozenset(needs.split(",")),
            result,
        )
    return Table(caps, probes)


def run_prober(cli: CLI, prober_dir: Path, flags: list[str]) -> str:
    r = cli(
        "run", "--rm", "--network", "none", "-v", f"{prober_dir}:/probe:ro", *flags,
        "busybox", "/probe/prober",
    )  # fmt: skip
    return r.stdout


def docker_prober(prober_dir: Path, flags: list[str]) -> subprocess.CompletedProcess[str]:
    return docker(
        "run", "--rm", "--network", "none", "-v", f"{prober_dir}:/probe:ro", *flags,
        "busybox", "/probe/prober",
    )  # fmt: skip


# --- what Docker's profile says ------------------------------------------------------------

ERRNO_NAMES = {1: "EPERM", 13: "EACCES", 22: "EINVAL", 38: "ENOSYS"}
HOST_ARCH = "amd64"  # the name Docker's rules use for x86_64


def kernel_version() -> tuple[int, int]:
    major, minor = os.uname().release.split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def _kernel(value: str) -> tuple[int, int]:
    major, minor = value.split(".")
    return int(major), int(minor)


def rule_applies(rule: dict[str, Any], caps: frozenset[str]) -> bool:
    """Docker's conditions: includes need every listed capability, the host's architecture and
    at least the kernel; excludes drop the rule on any listed capability, the architecture,
    or a kernel at least that recent."""
    inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
    if inc.get("caps") and not set(inc["caps"]) <= caps:
        return False
    if inc.get("arches") and HOST_ARCH not in inc["arches"]:
        return False
    if inc.get("minKernel") and kernel_version() < _kernel(inc["minKernel"]):
        return False
    if set(exc.get("caps") or ()) & caps or HOST_ARCH in (exc.get("arches") or ()):
        return False
    return not (exc.get("minKernel") and kernel_version() >= _kernel(exc["minKernel"]))


def arg_matches(cond: dict[str, Any], args: tuple[int, ...] | None, probe: str) -> bool:
    assert args is not None, f"{probe}: a rule looks at the arguments, the probe must show them"
    value = args[cond["index"]]
    op = cond["op"]
    if op == "SCMP_CMP_EQ":
        return value == cond["value"]
    if op == "SCMP_CMP_NE":
        return value != cond["value"]
    if op == "SCMP_CMP_MASKED_EQ":
        return value & cond["value"] == cond.get("valueTwo", 0)
    raise AssertionError(f"{probe}: no model for {op}")


def verdict(profile: dict[str, Any], caps: frozenset[str], name: str, probe: Probe) -> str:
    """ "allow", or the errno name the filter answers for this call."""
    matched = {
        (r["action"], r.get("errnoRet"))
        for r in profile["syscalls"]
        if name in (r.get("names") or [r.get("name")])
        and rule_applies(r, caps)
        and all(arg_matches(a, probe.args, probe.name) for a in r.get("args") or ())
    }
    assert len(matched) <= 1, f"{probe.name}: rules disagree: {matched}"
    if matched:
        action, errno = matched.pop()
        errno = 1 if errno is None else errno  # a rule's ERRNO without errnoRet: EPERM
    else:
        action, errno = profile["defaultAction"], profile.get("defaultErrnoRet", 1)
    if action == "SCMP_ACT_ALLOW":
        return "allow"
    assert action == "SCMP_ACT_ERRNO", action
    return ERRNO_NAMES[errno]


def expected(profile: dict[str, Any] | None, caps: frozenset[str], probe: Probe) -> str:
    """An errno name the probe must get, "not EPERM", or "kernel's" (filter allows, and the
    kernel may refuse for lack of a capability before it looks at the arguments)."""
    if profile is not None:
        for name in probe.syscalls:
            answer = verdict(profile, caps, name, probe)
            if answer != "allow":
                return answer
    if probe.needs and not probe.needs & caps:
        return "kernel's"
    return "not EPERM"


def agrees(expectation: str, result: str) -> bool:
    if expectation == "kernel's":
        return True
    if expectation == "not EPERM":
        return result != "EPERM"
    return result == expectation


# --- the table -----------------------------------------------------------------------------

CUSTOM_PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {
            "names": ["unshare"],
            "action": "SCMP_ACT_ERRNO",
            "args": [
                {
                    "index": 0,
                    "value": 0x10000000,
                    "valueTwo": 0x10000000,
                    "op": "SCMP_CMP_MASKED_EQ",
                }
            ],
        },
        {"names": ["keyctl", "add_key"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["mount", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_SYS_PTRACE"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ],
}

MODES: dict[str, list[str]] = {
    "default": [],
    "cap-add SYS_ADMIN": ["--cap-add", "SYS_ADMIN"],
    "cap-add SYS_PTRACE": ["--cap-add", "SYS_PTRACE"],
    "privileged": ["--privileged"],
    "seccomp=unconfined": ["--security-opt", "seccomp=unconfined"],
    "seccomp=custom.json": ["--security-opt", "seccomp=CUSTOM"],
}


def profile_for(mode: str) -> dict[str, Any] | None:
    if mode in ("privileged", "seccomp=unconfined"):
        return None  # Docker: no filter at all
    if mode == "seccomp=custom.json":
        return CUSTOM_PROFILE
    return json.loads(DEFAULT_PROFILE.read_text())  # type: ignore[no-any-return]


def format_table(mode: str, rows: list[tuple[str, str, str, str, str]]) -> str:
    header = ("probe", "syscall", "Docker's profile", "dockyard", "docker")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    lines = [f"seccomp prober, {mode}:"]
    for r in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


@pytest.mark.parametrize("mode", list(MODES))
def test_prober_agrees_with_dockers_profile(
    mode: str, store: CLI, prober_dir: Path, tmp_path: Path
) -> None:
    custom = tmp_path / "custom.json"
    custom.write_text(json.dumps(CUSTOM_PROFILE, indent=2))
    flags = [f.replace("CUSTOM", str(custom)) for f in MODES[mode]]
    ours = parse(run_prober(store, prober_dir, flags))
    profile = profile_for(mode)

    theirs: Table | None = None
    docker_note = "Docker not running"
    if reference_docker():
        r = docker_prober(prober_dir, flags)
        if r.returncode == 0:
            theirs = parse(r.stdout)
        elif mode == "privileged" and "unable to apply caps" in r.stderr:
            # Docker grants every capability the kernel knows; this host's bounding set lacks
            # one (CAP_SYS_RESOURCE), so Docker cannot start a privileged container here.
            docker_note = "Docker cannot run --privileged on this host"
        else:
            raise AssertionError(f"docker run {flags} failed: {r.stderr}")

    rows = []
    wrong = []
    for name, probe in ours.probes.items():
        want = expected(profile, ours.capabilities, probe)
        other = theirs.probes[name].result if theirs else "-"
        rows.append((name, "+".join(probe.syscalls), want, probe.result, other))
        if not agrees(want, probe.result):
            wrong.append(f"{name}: profile says {want}, dockyard got {probe.result}")
        if theirs is not None and other != probe.result:
            wrong.append(f"{name}: docker got {other}, dockyard {probe.result}")
    print(format_table(f"{mode} ({docker_note if theirs is None else 'docker compared'})", rows))
    if theirs is not None:
        assert theirs.probes.keys() == ours.probes.keys()
        assert theirs.capabilities == ours.capabilities
    assert not wrong, "\n".join(wrong)
    assert len(ours.probes) >= 70


def test_the_shipped_file_is_dockers_built_in_profile(prober_dir: Path) -> None:
    """Docker itself, given our data file as a custom profile, answers every probe as with its
    compiled-in default: the file holds Docker 20.10's profile, rule for rule."""
    if not reference_docker():
        pytest.skip("the reference Docker is not running")
    builtin = docker_prober(prober_dir, [])
    from_file = docker_prober(prober_dir, ["--security-opt", f"seccomp={DEFAULT_PROFILE}"])
    assert builtin.returncode == 0 and from_file.returncode == 0, builtin.stderr + from_file.stderr
    assert from_file.stdout == builtin.stdout


# --- the findings: each failed with the containers-common profile ------------------------


@pytest.fixture(scope="module")
def default_table(store: CLI, prober_dir: Path) -> Table:
    return parse(run_prober(store, prober_dir, []))


def results(table: Table, *names: str) -> dict[str, str]:
    return {n: table.probes[n].result for n in names}


def test_user_namespaces_are_closed(default_table: Table) -> None:
    # containers-common allowed unshare and clone(CLONE_NEWUSER) without CAP_SYS_ADMIN: a
    # user namespace where the process is root with every capability, mounting a tmpfs.
    assert results(
        default_table, "unshare-user", "clone-user", "userns-mount-tmpfs", "setns"
    ) == dict.fromkeys(["unshare-user", "clone-user", "userns-mount-tmpfs", "setns"], "EPERM")
    # clone3's flags are out of the filter's sight: ENOSYS, so libc falls back to clone.
    assert default_table.probes["clone3-user"].result == "ENOSYS"
    assert default_table.probes["clone-plain"].result == "ok"


def test_unshare_user_root_fails_like_docker(store: CLI) -> None:
    r = store(
        "run", "--rm", "--network", "none", "busybox", "unshare", "-U", "-r", "id", check=False
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "unshare(0x10000000): Operation not permitted" in r.stderr
    assert "uid=0" not in r.stdout
    # Docker: CAP_SYS_ADMIN opens namespaces (its profile's rule for unshare/clone/setns...).
    r = store(
        "run", "--rm", "--network", "none", "--cap-add", "SYS_ADMIN", "busybox",
        "unshare", "-U", "-r", "id",
    )  # fmt: skip
    assert r.stdout.startswith("uid=0(root)")
    if reference_docker():
        d = docker("run", "--rm", "--network", "none", "busybox", "unshare", "-U", "-r", "id")
        assert d.returncode == 1 and "unshare(0x10000000): Operation not permitted" in d.stderr


def test_keyrings_are_denied(default_table: Table) -> None:
    # Keyrings are not namespaced: containers-common let keyctl through (and answered ENOSYS
    # for add_key/request_key); Docker denies all three.
    assert results(default_table, "keyctl", "add_key", "request_key") == {
        "keyctl": "EPERM",
        "add_key": "EPERM",
        "request_key": "EPERM",
    }


def test_process_memory_numa_and_file_handles_follow_docker(
    default_table: Table, store: CLI, prober_dir: Path
) -> None:
    names = ("process_vm_readv", "process_vm_writev", "mbind", "name_to_handle_at")
    assert results(default_table, *names) == dict.fromkeys(names, "EPERM")
    # Each opens with the capability Docker's profile names for it.
    ptrace = parse(run_prober(store, prober_dir, ["--cap-add", "SYS_PTRACE"]))
    assert results(ptrace, "process_vm_readv", "process_vm_writev") == {
        "process_vm_readv": "EINVAL",
        "process_vm_writev": "EINVAL",
    }
    assert ptrace.probes["name_to_handle_at"].result == "EPERM"
    admin = parse(run_prober(store, prober_dir, ["--cap-add", "SYS_ADMIN"]))
    assert admin.probes["name_to_handle_at"].result == "EINVAL"
    assert admin.probes["mbind"].result == "EPERM"  # CAP_SYS_NICE's


def test_build_run_step_cannot_open_a_user_namespace(store: CLI, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN unshare -U -r id\n")
    r = store("build", "--no-cache", "-t", "userns-step", str(ctx), check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "unshare(0x10000000): Operation not permitted" in out
    assert "returned a non-zero code: 1" in out
    assert "uid=0(root)" not in out
    assert store("images", "-q", "userns-step").stdout == ""
    if reference_docker():
        d = docker("build", "--no-cache", "--force-rm", "-t", "dockyard-test-userns", str(ctx))
        assert d.returncode == 1
        assert "unshare(0x10000000): Operation not permitted" in d.stdout + d.stderr
        assert "returned a non-zero code: 1" in d.stdout + d.stderr


# --- --security-opt seccomp=FILE: bad input -----------------------------------------------

SYNTAX_CASES = {
    "brace": ("{bad", "invalid character 'b' looking for beginning of object key string"),
    "empty": ("", "unexpected end of JSON input"),
    "trailing-comma": (
        '{"a":1,}',
        "invalid character '}' looking for beginning of object key string",
    ),
    "cut-literal": ('{"a":nul', "invalid character ' ' in literal null (expecting 'l')"),
    "after-value": ("{} x", "invalid character 'x' after top-level value"),
}


@pytest.mark.parametrize("case", list(SYNTAX_CASES))
def test_profile_that_does_not_parse(case: str, store: CLI, tmp_path: Path) -> None:
    text, go_message = SYNTAX_CASES[case]
    path = tmp_path / "profile.json"
    path.write_text(text)
    before = tree_snapshot(store.root), db_snapshot(store.root)
    r = store("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "true", check=False)
    message = f"compacting json for seccomp profile ({path}) failed: {go_message}"
    assert r.returncode == 125 and r.stderr == f"Error: {message}\n", r.stderr
    assert (tree_snapshot(store.root), db_snapshot(store.root)) == before  # nothing created
    if reference_docker():
        d = docker("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "true")
        assert d.returncode == 125 and docker_message(d.stderr) == message


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_profile_that_cannot_be_read(what: str, store: CLI, tmp_path: Path) -> None:
    path = tmp_path / "nothing.json" if what == "missing" else tmp_path
    before = tree_snapshot(store.root), db_snapshot(store.root)
    r = store("create", "--security-opt", f"seccomp={path}", "busybox", "true", check=False)
    reason = (
        f"open {path}: no such file or directory"
        if what == "missing"
        else f"read {path}: is a directory"
    )
    message = f"opening seccomp profile ({path}) failed: {reason}"
    assert r.returncode == 125 and r.stderr == f"Error: {message}\n", r.stderr
    assert (tree_snapshot(store.root), db_snapshot(store.root)) == before
    if reference_docker():
        d = docker("create", "--security-opt", f"seccomp={path}", "busybox", "true")
        assert d.returncode == 125 and docker_message(d.stderr) == message


def test_unknown_syscall_names_are_ignored_as_docker_does(store: CLI, tmp_path: Path) -> None:
    # runc skips names libseccomp does not know (they may be newer than it); Docker runs.
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["no_such_syscall", "mkdir"], "action": "SCMP_ACT_ERRNO"}],
            }
        )
    )
    script = "mkdir /x || echo refused"
    args = ["--rm", "--security-opt", f"seccomp={path}", "busybox", "sh", "-c", script]
    r = store("run", *args)
    assert r.stdout == "refused\n"
    assert "Operation not permitted" in r.stderr
    if reference_docker():
        d = docker("run", *args)
        assert d.returncode == 0 and d.stdout == "refused\n"


# Valid JSON that is no profile: Docker's daemon refuses it when it starts the container
# (which it has created), with Go's decoding message. No null entries here: Docker 20.10's
# daemon dereferences them and the request never returns.
DECODE_CASES = {
    "syscalls-string": (
        {"syscalls": "x"},
        "Decoding seccomp profile failed: json: cannot unmarshal string into Go struct field"
        " Seccomp.syscalls of type []*seccomp.Syscall",
    ),
    "names-element": (
        {"syscalls": [{"names": ["read", 2], "action": "SCMP_ACT_ALLOW"}]},
        "Decoding seccomp profile failed: json: cannot unmarshal number into Go struct field"
        " Syscall.syscalls.names of type string",
    ),
    "negative-errno": (
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": -1}],
        },
        "Decoding seccomp profile failed: json: cannot unmarshal number -1 into Go struct field"
        " Syscall.syscalls.errnoRet of type uint",
    ),
    "bad-kernel": (
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "4.x"}}
            ],
        },
        'Decoding seccomp profile failed: invalid kernel version: "4.x", expected'
        ' "<kernel>.<major>": strconv.ParseUint: parsing "x": invalid syntax',
    ),
    "array": (
        [1, 2],
        "Decoding seccomp profile failed: json: cannot unmarshal array into Go value of type"
        " seccomp.Seccomp",
    ),
    "both-arch-lists": (
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "archMap": [{"architecture": "SCMP_ARCH_X86_64"}],
        },
        "'architectures' and 'archMap' were specified in the seccomp profile, use either"
        " 'architectures' or 'archMap'",
    ),
}


@pytest.mark.parametrize("case", list(DECODE_CASES))
def test_profile_that_is_not_a_profile(case: str, store: CLI, tmp_path: Path) -> None:
    doc, message = DECODE_CASES[case]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    name = f"notaprofile-{case}"
    r = store(
        "run", "--name", name, "--security-opt", f"seccomp={path}", "busybox", "true", check=False
    )
    assert r.returncode == 125 and r.stderr == f"Error: {message}\n", r.stderr
    # As Docker: created, never started.
    assert store("inspect", "-f", "{{.State.Status}}", name).stdout.strip() == "created"
    store("rm", name)
    if reference_docker():
        d = docker(
            "run",
            "--name",
            f"dockyard-test-{name}",
            "--security-opt",
            f"seccomp={path}",
            "busybox",
            "true",
        )
        try:
            assert d.returncode == 125 and docker_message(d.stderr) == message, d.stderr
        finally:
            docker("rm", "-f", f"dockyard-test-{name}")


def test_profile_content_is_what_travels(store: CLI, tmp_path: Path) -> None:
    """The CLI sends the file's content (compacted, as Docker's CLI does), so the container
    keeps its profile when the file changes or goes; inspect shows Docker's SecurityOpt."""
    path = tmp_path / "p.json"
    doc = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "comment": "no  mkdir"}],
    }
    path.write_text(json.dumps(doc, indent=4))
    store(
        "create",
        "--name",
        "travels",
        "--security-opt",
        f"seccomp={path}",
        "busybox",
        "sh",
        "-c",
        "mkdir /x || echo refused",
    )
    opts = json.loads(store("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", "travels").stdout)
    assert opts == ["seccomp=" + json.dumps(doc, separators=(",", ":"))]
    path.unlink()
    assert store("start", "-a", "travels").stdout == "refused\n"
    if reference_docker():
        path.write_text(json.dumps(doc, indent=4))
        d = docker("create", "--security-opt", f"seccomp={path}", "busybox", "true")
        try:
            theirs = docker("inspect", "-f", "{{json .HostConfig.SecurityOpt}}", d.stdout.strip())
            assert json.loads(theirs.stdout) == opts
        finally:
            docker("rm", "-f", d.stdout.strip())
