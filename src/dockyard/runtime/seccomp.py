"""Docker/moby-format seccomp profiles -> the OCI ``linux.seccomp`` object.

A profile in Docker's format carries conditional rules: ``includes`` / ``excludes`` on the
container's capabilities, the CPU architecture and a minimum kernel version. The OCI format has
none of that, so the conditions are evaluated here for one container (its bounding set, the
host architecture, the running kernel) and only the rules that apply are emitted.

Condition semantics (as Docker documents them for its default profile):

* ``includes.caps``: the rule applies only if *every* listed capability is granted;
  ``excludes.caps``: it is dropped if *any* listed capability is granted.
* ``includes.arches``: the rule applies only on one of those architectures;
  ``excludes.arches``: dropped on any of them. Names may be Go's (``amd64``) or the kernel's
  (``x86_64``).
* ``includes.minKernel``: the rule applies only on a kernel at least that version;
  ``excludes.minKernel``: dropped on such a kernel.
"""

from __future__ import annotations

import copy
import json
import os
import re
import threading
from collections.abc import Sequence
from typing import Any

from dockyard.errors import InvalidArgument, Unavailable

__all__ = ["DEFAULT_PROFILE", "load_profile"]

DEFAULT_PROFILE = "/usr/share/containers/seccomp.json"

# Kernel ("uname -m") architecture name -> its names as a rule may spell it, and its libseccomp
# architecture. Sub-architectures (x86 and x32 on x86_64) come from the profile's archMap.
_ARCHES: dict[str, tuple[frozenset[str], str]] = {
    "x86_64": (frozenset({"x86_64", "amd64"}), "SCMP_ARCH_X86_64"),
    "i686": (frozenset({"x86", "386", "i386", "i686"}), "SCMP_ARCH_X86"),
    "aarch64": (frozenset({"aarch64", "arm64"}), "SCMP_ARCH_AARCH64"),
    "armv7l": (frozenset({"arm", "armv7l"}), "SCMP_ARCH_ARM"),
    "ppc64le": (frozenset({"ppc64le"}), "SCMP_ARCH_PPC64LE"),
    "s390x": (frozenset({"s390x"}), "SCMP_ARCH_S390X"),
    "riscv64": (frozenset({"riscv64"}), "SCMP_ARCH_RISCV64"),
    "mips64": (frozenset({"mips64"}), "SCMP_ARCH_MIPS64"),
    "mips64el": (frozenset({"mips64le", "mips64el"}), "SCMP_ARCH_MIPSEL64"),
}
_ARCH_ALIASES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "386": "i686",
    "i386": "i686",
    "x86": "i686",
    "arm": "armv7l",
    "mips64le": "mips64el",
}

_cache_lock = threading.Lock()
# path -> ((st_mtime_ns, st_size, st_ino), parsed profile): a changed file is parsed again.
_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _missing(path: str) -> Exception:
    if os.path.abspath(path) == DEFAULT_PROFILE:
        return Unavailable(
            f"seccomp profile {DEFAULT_PROFILE} not found: install golang-github-containers-common,"
            " or run with --security-opt seccomp=unconfined"
        )
    return InvalidArgument(f"seccomp profile {path} not found")


def _parse(path: str) -> dict[str, Any]:
    """The profile's JSON, parsed once per process for as long as the file is unchanged."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            with _cache_lock:
                hit = _cache.get(path)
            if hit is not None and hit[0] == key:
                return hit[1]
            data = f.read()
    except FileNotFoundError:
        raise _missing(path)
    except IsADirectoryError:
        raise InvalidArgument(f"seccomp profile {path} is a directory")
    except OSError as e:
        raise Unavailable(f"cannot read seccomp profile {path}: {e.strerror}")
    try:
        profile = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"invalid seccomp profile {path}: {e}")
    if not isinstance(profile, dict):
        raise InvalidArgument(f"invalid seccomp profile {path}: not a JSON object")
    with _cache_lock:
        _cache[path] = (key, profile)
    return profile


def _kernel_version(release: str) -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", release)
    if m is None:
        return (0, 0)
    return (int(m.group(1)), int(m.group(2)))


def _min_kernel(value: Any, path: str) -> tuple[int, int]:
    if not isinstance(value, str) or re.fullmatch(r"\d+\.\d+", value) is None:
        raise InvalidArgument(f"invalid seccomp profile {path}: bad minKernel {value!r}")
    major, minor = value.split(".")
    return (int(major), int(minor))


def _strings(value: Any, what: str, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid seccomp profile {path}: {what} must be a list of strings")
    return value


def _filter(value: Any, what: str, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid seccomp profile {path}: {what} must be an object")
    return value


def _architectures(profile: dict[str, Any], scmp_arch: str, path: str) -> list[str]:
    plain = _strings(profile.get("architectures"), "architectures", path)
    arch_map = profile.get("archMap")
    if plain and arch_map:
        raise InvalidArgument(
            f"invalid seccomp profile {path}: both 'architectures' and 'archMap' are specified"
        )
    if plain:
        return list(plain)
    if not arch_map:
        return []  # libseccomp then uses the native architecture only
    if not isinstance(arch_map, list):
        raise InvalidArgument(f"invalid seccomp profile {path}: archMap must be a list")
    out: list[str] = []
    for entry in arch_map:
        if not isinstance(entry, dict):
            raise InvalidArgument(f"invalid seccomp profile {path}: bad archMap entry")
        if entry.get("architecture") == scmp_arch:
            out.append(scmp_arch)
            out.extend(_strings(entry.get("subArchitectures"), "subArchitectures", path))
    return out


def load_profile(
    path: str,
    capabilities: Sequence[str],
    arch: str = "x86_64",
    *,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a container with ``capabilities`` (its bounding
    set, ``CAP_*`` names) on ``arch`` (``uname -m`` or Go name), from the Docker-format profile
    at ``path``. ``cache_dir`` keeps libseccomp's syscall table between processes."""
    profile = _parse(path)
    native = _ARCH_ALIASES.get(arch, arch)
    if native not in _ARCHES:
        raise InvalidArgument(f"seccomp: unsupported architecture {arch!r}")
    arch_names, scmp_arch = _ARCHES[native]
    caps = {c.upper() for c in capabilities}
    kernel = _kernel_version(os.uname().release)

    default_action = profile.get("defaultAction")
    if not isinstance(default_action, str) or not default_action:
        raise InvalidArgument(f"invalid seccomp profile {path}: defaultAction is missing")

    out: dict[str, Any] = {"defaultAction": default_action}
    if isinstance(profile.get("defaultErrnoRet"), int):
        out["defaultErrnoRet"] = profile["defaultErrnoRet"]
    architectures = _architectures(profile, scmp_arch, path)
    if architectures:
        out["architectures"] = architectures
    flags = _strings(profile.get("flags"), "flags", path)
    if flags:
        out["flags"] = list(flags)

    rules = profile.get("syscalls") or []
    if not isinstance(rules, list):
        raise InvalidArgument(f"invalid seccomp profile {path}: syscalls must be a list")
    syscalls: list[dict[str, Any]] = []
    for rule in rules:
        if not isinstance(rule, dict):
            raise InvalidArgument(f"invalid seccomp profile {path}: bad syscalls entry")
        includes = _filter(rule.get("includes"), "includes", path)
        excludes = _filter(rule.get("excludes"), "excludes", path)

        inc_arches = _strings(includes.get("arches"), "includes.arches", path)
        if inc_arches and arch_names.isdisjoint(inc_arches):
            continue
        exc_arches = _strings(excludes.get("arches"), "excludes.arches", path)
        if not arch_names.isdisjoint(exc_arches):
            continue
        inc_caps = _strings(includes.get("caps"), "includes.caps", path)
        if any(c.upper() not in caps for c in inc_caps):
            continue
        exc_caps = _strings(excludes.get("caps"), "excludes.caps", path)
        if any(c.upper() in caps for c in exc_caps):
            continue
        if includes.get("minKernel") and kernel < _min_kernel(includes["minKernel"], path):
            continue
        if excludes.get("minKernel") and kernel >= _min_kernel(excludes["minKernel"], path):
            continue

        names = _strings(rule.get("names"), "names", path)
        if not names and isinstance(rule.get("name"), str):
            names = [rule["name"]]  # the old single-name form
        if not names:
            continue
        action = rule.get("action")
        if not isinstance(action, str) or not action:
            raise InvalidArgument(
                f"invalid seccomp profile {path}: the rule for {names[0]} has no action"
            )
        call: dict[str, Any] = {"names": list(names), "action": action}
        if isinstance(rule.get("errnoRet"), int):
            call["errnoRet"] = rule["errnoRet"]
        args = rule.get("args")
        if args:
            if not isinstance(args, list):
                raise InvalidArgument(f"invalid seccomp profile {path}: args must be a list")
            call["args"] = copy.deepcopy(args)
        syscalls.append(call)
    out["syscalls"] = syscalls
    _compact_errno_rules(out, cache_dir)
    return out


# Where each architecture's syscall numbers start (x32's carry the X32 bit); a scan ends after
# _SCAN_GAP numbers in a row that libseccomp does not know (x32's table has a gap of ~55).
_SCAN = {"SCMP_ARCH_X86_64": 0, "SCMP_ARCH_X86": 0, "SCMP_ARCH_X32": 0x40000000}
_SCAN_GAP = 128
_known_cache: dict[tuple[str, ...], frozenset[str] | None] = {}


def _known_syscalls(
    architectures: Sequence[str], cache_dir: str | None = None
) -> frozenset[str] | None:
    """Every syscall name libseccomp (the library runc compiles filters with) knows on these
    architectures; None when it cannot be asked or an architecture is not one we can scan.

    Scanning costs ~2.5 ms of ctypes calls, on every ``run``: with ``cache_dir`` the result is
    kept in ``seccomp-syscalls.json`` there, stamped with /etc/ld.so.cache (rewritten by
    ldconfig whenever a library such as libseccomp is installed or upgraded)."""
    key = tuple(architectures)
    if key in _known_cache:
        return _known_cache[key]
    try:
        st = os.stat("/etc/ld.so.cache")
        stamp: list[Any] | None = [st.st_ino, st.st_size, st.st_mtime_ns, list(key)]
    except OSError:
        stamp = None
    file = os.path.join(cache_dir, "seccomp-syscalls.json") if cache_dir and stamp else ""
    known: frozenset[str] | None = None
    if file:
        try:
            with open(file) as f:
                saved = json.load(f)
            if saved.get("stamp") == stamp:
                known = frozenset(saved["names"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    if known is None:
        known = _scan_libseccomp(architectures)
        if file and known:
            _write_cache(file, {"stamp": stamp, "names": sorted(known)})
    _known_cache[key] = known
    return known


def _write_cache(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w") as f:
            f.write(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _scan_libseccomp(architectures: Sequence[str]) -> frozenset[str] | None:
    if not architectures or any(a not in _SCAN for a in architectures):
        return None
    try:
        import ctypes

        lib = ctypes.CDLL("libseccomp.so.2")
        libc = ctypes.CDLL(None)
        resolve = lib.seccomp_syscall_resolve_num_arch
        resolve.restype = ctypes.c_void_p
        resolve.argtypes = [ctypes.c_uint32, ctypes.c_int]
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        libc.free.argtypes = [ctypes.c_void_p]
        names: set[str] = set()
        for arch in architectures:
            token = lib.seccomp_arch_resolve_name(arch[len("SCMP_ARCH_") :].lower().encode())
            if not token:
                return None
            n = misses = 0
            while misses < _SCAN_GAP:
                ptr = resolve(token, _SCAN[arch] | n)
                if ptr:
                    names.add(ctypes.string_at(ptr).decode())
                    libc.free(ptr)
                    misses = 0
                else:
                    misses += 1
                n += 1
    except (OSError, AttributeError):
        return None
    return frozenset(names) or None


def _compact_errno_rules(out: dict[str, Any], cache_dir: str | None = None) -> None:
    """The same filter with fewer rules, when that is possible.

    containers-common's profile returns ENOSYS by default (so programs fall back from syscalls
    the profile does not know) and EPERM through explicit rules for ~50 syscalls it denies.
    runc pays for every rule on each ``create`` and ``exec`` (the EPERM rules cost ~6 ms of
    each ``runc exec`` here). Flipped: EPERM by default, and ENOSYS through one rule naming
    the syscalls libseccomp knows that no rule names (~35). Every known syscall gets the same
    answer as before; syscalls newer than libseccomp's table still get ENOSYS from runc's own
    stub. Syscalls that only conditional (``args``) rules allow now get EPERM, not ENOSYS,
    when no condition matches, which is what Docker's profile answers."""
    default = out.get("defaultErrnoRet")
    if out.get("defaultAction") != "SCMP_ACT_ERRNO" or not isinstance(default, int):
        return
    by_errno: dict[int, int] = {}
    for r in out["syscalls"]:
        e = r.get("errnoRet")
        plain = r["action"] == "SCMP_ACT_ERRNO" and not r.get("args")
        if plain and isinstance(e, int) and e != default:
            by_errno[e] = by_errno.get(e, 0) + len(r["names"])
    if not by_errno:
        return
    target = max(by_errno, key=lambda e: by_errno[e])
    known = _known_syscalls(out.get("architectures") or [], cache_dir)
    if known is None:
        return
    named = {n for r in out["syscalls"] for n in r["names"]}
    rest = sorted(known - named)
    if len(rest) >= by_errno[target]:
        return

    def dropped(r: dict[str, Any]) -> bool:
        return r["action"] == "SCMP_ACT_ERRNO" and not r.get("args") and r.get("errnoRet") == target

    out["defaultErrnoRet"] = target
    out["syscalls"] = [r for r in out["syscalls"] if not dropped(r)]
    if rest:
        out["syscalls"].append({"names": rest, "action": "SCMP_ACT_ERRNO", "errnoRet": default})
