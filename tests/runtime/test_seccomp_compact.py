"""A profile of containers-common's shape (ENOSYS by default, EPERM by rule) is emitted with
fewer rules (EPERM by default, ENOSYS by one rule) and must answer every syscall libseccomp
knows exactly as the profile as written does. Docker's default profile has moby's shape
already (EPERM by default) and is emitted as written."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dockyard.runtime import seccomp
from tests.conftest import CLI

DEFAULT_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
    "CAP_KILL", "CAP_AUDIT_WRITE",
]  # fmt: skip
ARCHES = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
# The profile dockyard used by default before it shipped Docker's (golang-github-containers-common).
CONTAINERS_COMMON = "/usr/share/containers/seccomp.json"
needs_containers_common = pytest.mark.skipif(
    not os.path.exists(CONTAINERS_COMMON), reason="golang-github-containers-common not installed"
)


def answer(profile: dict[str, Any], name: str) -> tuple[str, ...]:
    """What the filter does for ``name`` when no argument condition is involved: the action
    of its unconditional rule, or ("conditional", <fallback>) for syscalls only ``args``
    rules name, or the default."""
    default = ("SCMP_ACT_ERRNO", str(profile.get("defaultErrnoRet")))
    rules = [r for r in profile["syscalls"] if name in r["names"]]
    plain = [r for r in rules if not r.get("args")]
    if plain:
        r = plain[0]
        return (r["action"], str(r.get("errnoRet", "")))
    if rules:
        return ("conditional", *default)
    return default


def written_and_emitted(
    text: str, caps: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[dict, dict]:  # type: ignore[type-arg]
    emitted = seccomp.load_profile(text, caps)
    with monkeypatch.context() as m:
        m.setattr(seccomp, "_compact_errno_rules", lambda out, cache_dir=None: None)
        written = seccomp.load_profile(text, caps)
    assert written is not None and emitted is not None
    return written, emitted


@needs_containers_common
@pytest.mark.parametrize("caps", [DEFAULT_CAPS, [], [*DEFAULT_CAPS, "CAP_SYS_ADMIN"]])
def test_every_known_syscall_gets_the_same_answer(
    caps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with open(CONTAINERS_COMMON) as f:
        text = f.read()
    written, emitted = written_and_emitted(text, caps, monkeypatch)
    known = seccomp._known_syscalls(ARCHES)
    assert known is not None and len(known) > 400
    assert written["defaultErrnoRet"] == 38 and emitted["defaultErrnoRet"] == 1
    assert len(emitted["syscalls"]) < len(written["syscalls"])
    names_emitted = sum(len(r["names"]) for r in emitted["syscalls"])
    assert names_emitted < sum(len(r["names"]) for r in written["syscalls"])
    changed = {n for n in known if answer(written, n) != answer(emitted, n)}
    # Only syscalls that argument-conditional rules alone allow differ, and only in what a
    # call matching no condition gets: EPERM now, as in Docker's profile.
    for n in changed:
        assert answer(written, n)[0] == "conditional" == answer(emitted, n)[0], n
    assert len(changed) <= 5
    # A syscall neither allowed nor denied (unknown to the profile) still gets ENOSYS, and a
    # denied one still gets EPERM.
    assert answer(emitted, "add_key") == ("SCMP_ACT_ERRNO", "38")
    assert answer(emitted, "kexec_load") == ("SCMP_ACT_ERRNO", "1")


@pytest.mark.parametrize("caps", [DEFAULT_CAPS, [*DEFAULT_CAPS, "CAP_SYS_ADMIN"]])
def test_dockers_default_profile_is_emitted_as_written(
    caps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # EPERM by default and at most one ENOSYS rule (clone3's): nothing to flip, so runc
    # compiles exactly the rules Docker's containers get.
    written, emitted = written_and_emitted("", caps, monkeypatch)
    assert emitted == written
    assert "defaultErrnoRet" not in emitted
    assert sum(r.get("errnoRet") == 38 for r in emitted["syscalls"]) <= 1


def test_other_profiles_are_left_as_written(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # Default EPERM already (moby's style): nothing to flip.
    p = tmp_path / "p.json"
    p.write_text(
        '{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": ['
        '{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},'
        '{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}'
    )
    out = seccomp.load_profile(p.read_text(), DEFAULT_CAPS)
    assert out is not None
    assert out["defaultErrnoRet"] == 1 and len(out["syscalls"]) == 2


def test_denied_syscalls_still_fail_with_eperm_in_a_container(ctr: CLI) -> None:
    # sethostname needs CAP_SYS_ADMIN in Docker's profile: Operation not permitted.
    r = ctr("run", "--rm", "--network", "none", "busybox", "hostname", "other", check=False)
    assert r.returncode != 0 and "not permitted" in r.stderr.lower(), r.stderr
    out = ctr("run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo ok; hostname")
    assert out.stdout.split()[0] == "ok"


def test_libseccomp_table_is_kept_between_processes(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    real = seccomp._scan_libseccomp
    scans: list[tuple[str, ...]] = []

    def counting(arches):  # type: ignore[no-untyped-def]
        scans.append(tuple(arches))
        return real(arches)

    monkeypatch.setattr(seccomp, "_scan_libseccomp", counting)
    monkeypatch.setattr(seccomp, "_known_cache", {})
    first = seccomp._known_syscalls(ARCHES, str(tmp_path))
    assert len(scans) == 1 and (tmp_path / "seccomp-syscalls.json").is_file()
    monkeypatch.setattr(seccomp, "_known_cache", {})  # a new process
    assert seccomp._known_syscalls(ARCHES, str(tmp_path)) == first
    assert len(scans) == 1  # read back, not scanned again
    # A file from another library state (ldconfig rewrote ld.so.cache) is scanned again.
    data = json.loads((tmp_path / "seccomp-syscalls.json").read_text())
    data["stamp"][2] -= 1
    (tmp_path / "seccomp-syscalls.json").write_text(json.dumps(data))
    monkeypatch.setattr(seccomp, "_known_cache", {})
    assert seccomp._known_syscalls(ARCHES, str(tmp_path)) == first
    assert len(scans) == 2


def test_default_profile_is_converted_once_and_again_when_its_inputs_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`run` keeps Docker's default profile, converted, in the run root; what it reads back is
    what the conversion gives, for these capabilities; other capabilities or a changed stamp
    (another profile file, libseccomp, kernel) convert again."""
    fresh = seccomp.load_profile("", DEFAULT_CAPS)
    more = [*DEFAULT_CAPS, "CAP_SYS_ADMIN"]
    fresh_more = seccomp.load_profile("", more)
    assert fresh_more != fresh
    real = seccomp._convert
    calls: list[int] = []

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(seccomp, "_convert", counting)
    cache = tmp_path / "seccomp-default.json"
    assert seccomp.load_profile("", DEFAULT_CAPS, cache_dir=str(tmp_path)) == fresh
    assert len(calls) == 1 and cache.is_file()
    assert seccomp.load_profile("", DEFAULT_CAPS, cache_dir=str(tmp_path)) == fresh
    assert len(calls) == 1  # read back
    assert seccomp.load_profile("", more, cache_dir=str(tmp_path)) == fresh_more
    assert len(calls) == 2
    data = json.loads(cache.read_text())
    data["stamp"][-1][2] -= 1  # /etc/ld.so.cache rewritten since
    cache.write_text(json.dumps(data))
    seccomp.load_profile("", more, cache_dir=str(tmp_path))
    assert len(calls) == 3
    cache.write_text("{not json")  # a torn file is converted again, not an error
    assert seccomp.load_profile("", DEFAULT_CAPS, cache_dir=str(tmp_path)) == fresh
    # A profile of the user's own is never taken from (nor put into) the cache.
    own = '{"defaultAction": "SCMP_ACT_ALLOW"}'
    assert seccomp.load_profile(own, DEFAULT_CAPS, cache_dir=str(tmp_path)) == {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [],
    }
