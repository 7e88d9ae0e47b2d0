"""``dockyard exec``'s lean path (cli/exec_fast.py) against the normal argparse path.

Each case runs the real CLI twice in a fresh interpreter: once as shipped and once with the
lean path switched off, and the two must agree on exit code, stdout and stderr. A small
bootstrap records, at the moment the CLI becomes ``runc exec``, which modules were imported:
that shows which path ran (the lean one never imports argparse or subprocess) without
timing anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.cli.exec_fast import parse
from tests.conftest import CLI

# argv: report-file, mode ("lean" | "normal"), then dockyard's own arguments.
BOOT = """
import json, os, sys
report, mode = sys.argv[1], sys.argv[2]
sys.argv[1:3] = []
if mode == "normal":
    import dockyard.cli.exec_fast
    dockyard.cli.exec_fast.lean_exec = lambda *args: None
real_execv = os.execv
def execv(path, argv):
    with open(report, "w") as f:
        json.dump({"modules": sorted(sys.modules), "argv": list(argv)}, f)
    real_execv(path, argv)
os.execv = execv
from dockyard.main import main
sys.exit(main())
"""

# What only the normal path imports (typing too, except that -u needs runtime/user.py's).
HEAVY = ("argparse", "subprocess", "dockyard.cli.containers", "dockyard.runtime.oci")


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], report: dict[str, list[str]]):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.report = report

    @property
    def became_runtime(self) -> bool:
        return bool(self.report)

    @property
    def lean(self) -> bool:
        """Became the runtime without the normal path's imports."""
        return self.became_runtime and not any(m in self.report["modules"] for m in HEAVY)


def run(
    cli: CLI,
    tmp_path: Path,
    mode: str,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    report = tmp_path / f"report-{mode}.json"
    report.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", BOOT, str(report), mode]
        + ["--root", str(cli.root), "--run-root", str(cli.run_root), "exec", *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return Run(proc, data)


def both(
    cli: CLI,
    tmp_path: Path,
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> tuple[Run, Run]:
    """(as shipped, normal path only); asserts they agree."""
    fast = run(cli, tmp_path, "lean", *args, input=input, env=env)
    slow = run(cli, tmp_path, "normal", *args, input=input, env=env)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    ), args
    assert not slow.lean
    return fast, slow


@pytest.fixture
def box(ctr: CLI) -> CLI:
    ctr("run", "-d", "--name", "box", "busybox", "sleep", "1000")
    return ctr


# ------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["c", "true"], ("c", ["true"], False, False, [], "", "")),
        (["-it", "c", "sh"], ("c", ["sh"], True, True, [], "", "")),
        (["-ti", "c", "sh"], ("c", ["sh"], True, True, [], "", "")),
        (["-i", "--tty", "c", "sh"], ("c", ["sh"], True, True, [], "", "")),
        (
            ["-e", "A=1", "--env", "B=2", "--env=C=3", "-ie", "D", "c", "env"],
            ("c", ["env"], True, False, ["A=1", "B=2", "C=3", "D"], "", ""),
        ),
        (
            ["-u", "1000", "--user=nobody", "-w", "/a", "--workdir", "/b", "c", "id"],
            ("c", ["id"], False, False, [], "nobody", "/b"),
        ),
        (["-tu", "1000", "c", "id"], ("c", ["id"], False, True, [], "1000", "")),
        (["--", "c", "ls", "-la"], ("c", ["ls", "-la"], False, False, [], "", "")),
        (["-i", "--", "c", "--", "-x"], ("c", ["--", "-x"], True, False, [], "", "")),
        (["-w", "", "c", "pwd"], ("c", ["pwd"], False, False, [], "", "")),
        (["c", "sh", "-c", "echo -e"], ("c", ["sh", "-c", "echo -e"], False, False, [], "", "")),
    ],
)
def test_parse_lean_forms(argv: list[str], expected: tuple[object, ...]) -> None:
    a = parse(argv)
    assert a is not None
    assert (a.container, a.command, a.interactive, a.tty, a.env, a.user, a.workdir) == expected
    assert not a.detach


@pytest.mark.parametrize(
    "argv", [["-d", "c", "true"], ["--detach", "c", "true"], ["-di", "c", "sh"], ["-id", "c", "sh"]]
)
def test_parse_detached_forms(argv: list[str]) -> None:
    a = parse(argv)
    assert a is not None and a.detach and not a.tty


@pytest.mark.parametrize(
    "argv",
    [
        ["-it", "-d", "c", "true"],  # a detached terminal needs a console socket
        ["-dit", "c", "sh"],
        ["-dt", "c", "sh"],
        ["--privileged", "c", "true"],
        ["--env-file", "f", "c", "true"],
        ["--detach-keys", "ctrl-a", "c", "true"],
        ["-h"],
        ["--help"],
        ["-eA=1", "c", "true"],  # attached short value
        ["-ei", "c", "true"],  # -e with the value "i"
        ["--us", "1000", "c", "id"],  # an abbreviation argparse would expand
        ["--interactive=1", "c", "true"],
        ["-e", "-X", "c", "true"],  # argparse rejects a value that looks like a flag
        ["-u"],
        ["-w", "/tmp"],
        ["c"],  # no command
        [],
        ["-", "true"],
        ["--", "-c", "true"],
    ],
)
def test_parse_leaves_the_rest_to_argparse(argv: list[str]) -> None:
    assert parse(argv) is None


# ------------------------------------------------------------------ both paths, for real


def test_plain_exec_takes_the_lean_path(box: CLI, tmp_path: Path) -> None:
    fast, slow = both(box, tmp_path, "box", "sh", "-c", "echo hi; exit 7")
    assert (fast.returncode, fast.stdout, fast.stderr) == (7, "hi\n", "")
    assert fast.lean, fast.report.get("modules")
    # Start-up cost the lean path keeps out (~2 ms each): typing, and the sqlite3 package
    # (its datetime adapters) where the store uses the C module.
    heavy = [m for m in ("typing", "sqlite3", "datetime") if m in fast.report["modules"]]
    assert not heavy, f"imported on the way to runc exec: {heavy}"
    # Both paths hand runc the same command line (the process spec comes through a pipe).
    assert fast.report["argv"][:-1] == slow.report["argv"][:-1]
    assert fast.report["argv"][-1] == slow.report["argv"][-1]  # the full container ID
    cid = box("inspect", "--format", "{{.Id}}", "box").stdout.strip()
    assert fast.report["argv"][-1] == cid
    # By ID prefix and with --, too.
    fast, _ = both(box, tmp_path, "--", cid[:10], "echo", "-n", "x")
    assert (fast.returncode, fast.stdout, fast.lean) == (0, "x", True)


def test_env_user_workdir_agree(box: CLI, tmp_path: Path) -> None:
    script = 'echo "$A|$B|$C|$FROM_HOST|$PATH"; id; pwd'
    fast, _ = both(
        box,
        tmp_path,
        "-e",
        "A=1",
        "--env",
        "B=two words",
        "--env=C=x=y",
        "-e",
        "FROM_HOST",
        "-u",
        "1000:1000",
        "-w",
        "/etc",
        "box",
        "sh",
        "-c",
        script,
        env={"FROM_HOST": "host-value"},
    )
    assert fast.lean
    lines = fast.stdout.splitlines()
    assert lines[0].startswith("1|two words|x=y|host-value|/usr/local/sbin:")
    assert lines[1].startswith("uid=1000 gid=1000")
    assert lines[2] == "/etc"
    # A named user from the container's /etc/passwd, the last -w wins, a missing workdir.
    fast, _ = both(
        box,
        tmp_path,
        "--user=nobody",
        "-w",
        "/tmp",
        "--workdir=/",
        "box",
        "sh",
        "-c",
        "id -u; pwd",
    )
    assert (fast.stdout, fast.lean) == ("65534\n/\n", True)  # nobody in its /etc/passwd
    # The default user is the container's (root), the default cwd its WORKDIR (/).
    fast, _ = both(box, tmp_path, "box", "sh", "-c", "id -u; pwd")
    assert (fast.stdout, fast.lean) == ("0\n/\n", True)


def test_stdin_and_tty_off(box: CLI, tmp_path: Path) -> None:
    # -i passes stdin through; without it the process reads /dev/null. No -t: no terminal.
    fast, _ = both(box, tmp_path, "-i", "box", "cat", input="through stdin\n")
    assert (fast.stdout, fast.lean) == ("through stdin\n", True)
    fast, _ = both(box, tmp_path, "box", "cat", input="must not arrive\n")
    assert (fast.stdout, fast.returncode, fast.lean) == ("", 0, True)
    probe = "[ -t 0 ] && echo in-tty; [ -t 1 ] && echo out-tty; echo done"
    fast, _ = both(box, tmp_path, "-i", "box", "sh", "-c", probe, input="")
    assert (fast.stdout, fast.lean) == ("done\n", True)
    # Flags after the container belong to the command.
    fast, _ = both(box, tmp_path, "box", "sh", "-c", 'printf "%s %s\\n" "$0" "$1"', "-e", "-it")
    assert (fast.stdout, fast.lean) == ("-e -it\n", True)


def test_exit_codes_126_127(box: CLI, tmp_path: Path) -> None:
    fast, _ = both(box, tmp_path, "box", "no-such-command")
    assert fast.returncode == 127
    assert 'exec: "no-such-command": executable file not found in $PATH' in fast.stderr
    fast, _ = both(box, tmp_path, "-u", "1000", "box", "/etc/passwd")
    assert fast.returncode == 126
    assert "permission denied" in fast.stderr
    fast, _ = both(box, tmp_path, "-w", "/tmp", "box", "./missing")
    assert fast.returncode == 127


def test_missing_and_stopped_container(box: CLI, tmp_path: Path) -> None:
    fast, _ = both(box, tmp_path, "nope", "true")
    assert (fast.returncode, fast.stderr) == (125, "Error: No such container: nope\n")
    assert not fast.became_runtime
    box("create", "--name", "idle", "busybox", "sleep", "1000")
    cid = box("inspect", "--format", "{{.Id}}", "idle").stdout.strip()
    fast, _ = both(box, tmp_path, "-it", "idle", "true")
    assert (fast.returncode, fast.stderr) == (125, f"Error: Container {cid} is not running\n")
    assert not fast.became_runtime
    # An unknown user name is the engine's error, in the normal path's words.
    fast, _ = both(box, tmp_path, "-u", "ghost", "box", "true")
    assert fast.returncode == 125 and fast.stderr.startswith("Error: ")
    assert not fast.became_runtime


def test_dead_monitor_is_reconciled_on_either_path(box: CLI, tmp_path: Path) -> None:
    """A container whose monitor was SIGKILLed is "running" in the database; exec must find
    out, record the exit and refuse, as every other command does."""
    cid = box("inspect", "--format", "{{.Id}}", "box").stdout.strip()
    mon = int((box.run_root / "containers" / cid / "monitor.pid").read_text())
    os.kill(mon, 9)
    fast = run(box, tmp_path, "lean", "box", "true")
    assert (fast.returncode, fast.stderr) == (125, f"Error: Container {cid} is not running\n")
    assert not fast.became_runtime
    assert box("inspect", "--format", "{{.State.Running}}", "box").stdout.strip() == "false"
    slow = run(box, tmp_path, "normal", "box", "true")
    assert (slow.returncode, slow.stderr) == (fast.returncode, fast.stderr)


def test_unusual_flags_take_the_normal_path(box: CLI, tmp_path: Path) -> None:
    caps = ("box", "sh", "-c", "grep CapEff /proc/self/status")
    fast, _ = both(box, tmp_path, "--privileged", *caps)
    assert fast.became_runtime and not fast.lean
    default, _ = both(box, tmp_path, *caps)
    assert default.lean
    assert int(fast.stdout.split()[-1], 16) > int(default.stdout.split()[-1], 16)
    env_file = tmp_path / "env"
    env_file.write_text("FROM_FILE=1\n")
    fast, _ = both(box, tmp_path, "--env-file", str(env_file), "box", "sh", "-c", "echo $FROM_FILE")
    assert (fast.stdout, fast.lean) == ("1\n", False)
    fast, _ = both(box, tmp_path, "-eX=attached", "box", "sh", "-c", "echo $X")
    assert (fast.stdout, fast.lean) == ("attached\n", False)
    # -d: the lean path becomes `runc exec --detach`, which exits once the process started.
    fast = run(box, tmp_path, "lean", "-d", "box", "touch", "/detached")
    assert (fast.returncode, fast.lean) == (0, True)
    assert "--detach" in fast.report["argv"]
    box("exec", "box", "ls", "/detached")
    # A command that does not exist: the normal path, with Docker's 127 and runc's reason.
    fast, slow = both(box, tmp_path, "-d", "box", "nonexistent")
    assert (fast.returncode, fast.lean, slow.lean) == (127, False, False)
    assert 'exec: "nonexistent": executable file not found in $PATH' in fast.stderr
    # Usage errors are argparse's.
    fast, _ = both(box, tmp_path, "box")
    assert fast.returncode == 125 and "requires at least 2 arguments" in fast.stderr
    fast, _ = both(box, tmp_path, "--bogus", "box", "true")
    assert fast.returncode == 125 and "--bogus" in fast.stderr
