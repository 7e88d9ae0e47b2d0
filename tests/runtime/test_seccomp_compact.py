"""The default seccomp profile is emitted with fewer rules (EPERM by default, ENOSYS by one
rule) and must answer every syscall libseccomp knows exactly as the profile as written does."""

from __future__ import annotations

import json
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


def written_and_emitted(caps: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:  # type: ignore[type-arg]
    seccomp._cache.clear()
    emitted = seccomp.load_profile(seccomp.DEFAULT_PROFILE, caps)
    seccomp._cache.clear()
    with monkeypatch.context() as m:
        m.setattr(seccomp, "_compact_errno_rules", lambda out, cache_dir=None: None)
        written = seccomp.load_profile(seccomp.DEFAULT_PROFILE, caps)
    return written, emitted


@pytest.mark.parametrize("caps", [DEFAULT_CAPS, [], [*DEFAULT_CAPS, "CAP_SYS_ADMIN"]])
def test_every_known_syscall_gets_the_same_answer(
    caps: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    written, emitted = written_and_emitted(caps, monkeypatch)
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


def test_other_profiles_are_left_as_written(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # Default EPERM already (moby's style): nothing to flip.
    p = tmp_path / "p.json"
    p.write_text(
        '{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": ['
        '{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},'
        '{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}'
    )
    out = seccomp.load_profile(str(p), DEFAULT_CAPS)
    assert out["defaultErrnoRet"] == 1 and len(out["syscalls"]) == 2


def test_denied_syscalls_still_fail_with_eperm_in_a_container(ctr: CLI) -> None:
    # sethostname is in the profile's EPERM list (no CAP_SYS_ADMIN): Operation not permitted.
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
