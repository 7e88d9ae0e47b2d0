"""Docker-format seccomp profiles -> the OCI ``linux.seccomp`` object.

The default profile is Docker's own (``seccomp_default.json`` beside this module: moby's
``profiles/seccomp/default.json`` of Docker 20.10.24, rule for rule). A profile in Docker's
format carries conditional rules: ``includes`` / ``excludes`` on the container's
capabilities, the CPU architecture and a minimum kernel version. The OCI format has none of
that, so the conditions are evaluated here for one container (its bounding set, the host
architecture, the running kernel) and only the rules that apply are emitted, as moby's
``setupSeccomp`` does:

* ``includes.caps``: the rule applies only if *every* listed capability is in the bounding
  set; ``excludes.caps``: it is dropped if *any* listed capability is;
* ``includes.arches`` / ``excludes.arches``: compared with the host's architecture as Go and
  libseccomp name it (``amd64``, ``arm64``, ``x86``...), exactly, as Docker does;
* ``includes.minKernel`` / ``excludes.minKernel``: ``<kernel>.<major>``, compared with the
  running kernel's first two numbers.

A profile given with ``--security-opt seccomp=`` arrives as its JSON text (Docker's CLI reads
the file and sends the content) and is decoded as Docker's daemon decodes it, with its
messages ("Decoding seccomp profile failed: json: cannot unmarshal ...").
"""

from __future__ import annotations

import _thread
import os

from dockyard import fastjson
from dockyard.errors import InvalidArgument, Unavailable

TYPE_CHECKING = False  # not typing's: `run` loads this module
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["DEFAULT_PROFILE", "load_profile"]

DEFAULT_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seccomp_default.json")

# Kernel ("uname -m") architecture name -> its name in a rule's arches (Go's GOARCH as moby's
# profile code maps it) and its libseccomp architecture. Sub-architectures (x86 and x32 on
# x86_64) come from the profile's archMap.
_ARCHES: dict[str, tuple[str, str]] = {
    "x86_64": ("amd64", "SCMP_ARCH_X86_64"),
    "i686": ("x86", "SCMP_ARCH_X86"),
    "aarch64": ("arm64", "SCMP_ARCH_AARCH64"),
    "armv7l": ("arm", "SCMP_ARCH_ARM"),
    "ppc64le": ("ppc64le", "SCMP_ARCH_PPC64LE"),
    "s390x": ("s390x", "SCMP_ARCH_S390X"),
    "riscv64": ("riscv64", "SCMP_ARCH_RISCV64"),
    "mips64": ("mips64", "SCMP_ARCH_MIPS64"),
    "mips64el": ("mipsel64", "SCMP_ARCH_MIPSEL64"),
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

# --- decoding, as Go's encoding/json fills moby's profile types ---------------------------

# Struct name (as Go's errors name it) -> JSON key -> (Go type in errors, what it holds):
# "str", "uint", "uint64", "[str]", "kernel", a struct name, or "[Struct]" / "[*Struct]" (a
# list of structs; with "*" a null element is a nil pointer, which Docker's daemon would
# dereference).
_TYPES: dict[str, dict[str, tuple[str, str]]] = {
    "Seccomp": {
        "defaultAction": ("specs.LinuxSeccompAction", "str"),
        "defaultErrnoRet": ("uint", "uint"),
        "architectures": ("[]specs.Arch", "[str]"),
        "archMap": ("[]seccomp.Architecture", "[Architecture]"),
        "syscalls": ("[]*seccomp.Syscall", "[*Syscall]"),
        "flags": ("[]specs.LinuxSeccompFlag", "[str]"),
    },
    "Architecture": {
        "architecture": ("specs.Arch", "str"),
        "subArchitectures": ("[]specs.Arch", "[str]"),
    },
    "Syscall": {
        "name": ("string", "str"),
        "names": ("[]string", "[str]"),
        "action": ("specs.LinuxSeccompAction", "str"),
        "errnoRet": ("uint", "uint"),
        "args": ("[]*specs.LinuxSeccompArg", "[*LinuxSeccompArg]"),
        "comment": ("string", "str"),
        "includes": ("seccomp.Filter", "Filter"),
        "excludes": ("seccomp.Filter", "Filter"),
    },
    "Filter": {
        "caps": ("[]string", "[str]"),
        "arches": ("[]string", "[str]"),
        "minKernel": ("*seccomp.KernelVersion", "kernel"),
    },
    "LinuxSeccompArg": {
        "index": ("uint", "uint"),
        "value": ("uint64", "uint64"),
        "valueTwo": ("uint64", "uint64"),
        "op": ("specs.LinuxSeccompOperator", "str"),
    },
}
_ELEMENT_TYPES = {
    "[]specs.Arch": "specs.Arch",
    "[]string": "string",
    "[]specs.LinuxSeccompFlag": "specs.LinuxSeccompFlag",
    "[]seccomp.Architecture": "seccomp.Architecture",
    "[]*seccomp.Syscall": "seccomp.Syscall",
    "[]*specs.LinuxSeccompArg": "specs.LinuxSeccompArg",
}


class _Float(str):
    """A JSON number with a fraction or exponent, kept as written (Go quotes it in errors)."""


class _Decoder:
    """Walks a parsed profile as Go's decoder would fill moby's types: unknown keys ignored,
    keys matched case-insensitively, null leaves a field unset. The first type error is
    reported once the walk is done (Go saves it and goes on); a bad kernel version at once."""

    def __init__(self) -> None:
        self.type_error: str | None = None

    def mismatch(self, value: Any, struct: str, path: str, go_type: str, numeric: bool) -> None:
        if self.type_error is not None:
            return
        kind = _json_kind(value)
        if numeric and kind == "number":
            kind = f"number {value}"  # Go quotes a number it cannot store as written
        where = f"Go struct field {struct}.{path}" if path else "Go value"
        self.type_error = f"json: cannot unmarshal {kind} into {where} of type {go_type}"

    def struct(self, name: str, value: dict[str, Any], path: str) -> dict[str, Any]:
        fields = _TYPES[name]
        folded = {k.lower(): k for k in fields}
        out: dict[str, Any] = {}
        for key, item in value.items():
            field = key if key in fields else folded.get(key.lower())
            if field is None or item is None:
                continue
            go_type, kind = fields[field]
            decoded = self.field(item, kind, name, f"{path}.{field}" if path else field, go_type)
            if decoded is not None:
                out[field] = decoded
        return out

    def field(self, value: Any, kind: str, struct: str, path: str, go_type: str) -> Any:
        if kind.startswith("["):
            if not isinstance(value, list):
                self.mismatch(value, struct, path, go_type, False)
                return None
            element = _ELEMENT_TYPES.get(go_type, go_type[2:])
            items = []
            for item in value:
                if item is None:
                    if kind.startswith("[*"):
                        raise InvalidArgument(
                            f"Decoding seccomp profile failed: {path} has a null entry"
                        )
                    items.append("" if kind == "[str]" else {})
                    continue
                decoded = self.field(item, kind.strip("[]*"), struct, path, element)
                if decoded is not None:
                    items.append(decoded)
            return items
        if kind in _TYPES:
            if not isinstance(value, dict):
                self.mismatch(value, struct, path, go_type, False)
                return None
            return self.struct(kind, value, path)
        if kind == "str":
            if _json_kind(value) != "string":
                self.mismatch(value, struct, path, go_type, False)
                return None
            return value
        if kind == "kernel":
            return _kernel_version(value)
        # uint, uint64: 64 bits on the platforms Docker runs on
        if _json_kind(value) != "number" or isinstance(value, _Float) or not 0 <= value < 1 << 64:
            self.mismatch(value, struct, path, go_type, True)
            return None
        return value


def _json_kind(value: Any) -> str:
    """A decoded JSON value's kind as Go's errors name it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _Float | int):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _kernel_version(value: Any) -> tuple[int, int]:
    """moby's KernelVersion.UnmarshalJSON: "<kernel>.<major>", each 0-255, not 0.0; "" is 0.0."""
    raw = value if isinstance(value, _Float) else fastjson.dumps(value)
    prefix = (
        "Decoding seccomp profile failed:"
        f' invalid kernel version: {raw}, expected "<kernel>.<major>"'
    )
    kind = _json_kind(value)
    if kind != "string":
        raise InvalidArgument(
            f"{prefix}: json: cannot unmarshal {kind} into Go value of type string"
        )
    if value == "":
        return (0, 0)
    parts = value.split(".", 2)
    if len(parts) != 2:
        raise InvalidArgument(prefix)
    numbers = []
    for part in parts:
        if not part.isascii() or not part.isdigit():
            raise InvalidArgument(f'{prefix}: strconv.ParseUint: parsing "{part}": invalid syntax')
        if int(part) > 255:
            raise InvalidArgument(
                f'{prefix}: strconv.ParseUint: parsing "{part}": value out of range'
            )
        numbers.append(int(part))
    if numbers == [0, 0]:
        raise InvalidArgument(f"{prefix}: version cannot be 0.0")
    return (numbers[0], numbers[1])


def decode(text: str | bytes) -> dict[str, Any]:
    """A profile's JSON text as Docker's daemon decodes it: only the fields Docker knows,
    under their canonical names, with Docker's errors."""
    import json  # for parse_float; decoding runs once per profile (see load_profile's cache)

    try:
        data = json.loads(text, parse_float=_Float)
    except (ValueError, RecursionError):
        from dockyard.gojson import syntax_error

        raise InvalidArgument(
            f"Decoding seccomp profile failed: {syntax_error(text) or 'exceeded max depth'}"
        )
    if data is None:
        return {}
    decoder = _Decoder()
    if not isinstance(data, dict):
        decoder.mismatch(data, "", "", "seccomp.Seccomp", False)
        profile: dict[str, Any] = {}
    else:
        profile = decoder.struct("Seccomp", data, "")
    if decoder.type_error is not None:
        raise InvalidArgument(f"Decoding seccomp profile failed: {decoder.type_error}")
    return profile


_cache_lock = _thread.allocate_lock()
# path -> ((st_mtime_ns, st_size, st_ino), decoded profile): a changed file is read again.
_cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def _default_profile() -> dict[str, Any]:
    """The shipped default profile, decoded once per process for as long as it is unchanged."""
    path = DEFAULT_PROFILE
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            with _cache_lock:
                hit = _cache.get(path)
            if hit is not None and hit[0] == key:
                return hit[1]
            data = f.read()
    except OSError as e:
        raise Unavailable(f"cannot read the default seccomp profile {path}: {e.strerror}")
    profile = decode(data)
    with _cache_lock:
        _cache[path] = (key, profile)
    return profile


# --- conversion, as moby's setupSeccomp --------------------------------------------------


def _running_kernel() -> tuple[int, int]:
    release = os.uname().release
    numbers: list[int] = []
    for part in release.split(".")[:2]:
        digits = ""
        for c in part:
            if not c.isdigit():
                break
            digits += c
        numbers.append(int(digits or 0))
    while len(numbers) < 2:
        numbers.append(0)
    return (numbers[0], numbers[1])


def _applies(
    rule: dict[str, Any], arch: str, caps: frozenset[str], kernel: tuple[int, int]
) -> bool:
    """Whether a rule's ``excludes`` and ``includes`` let it apply to this container."""
    excludes = rule.get("excludes") or {}
    if arch in (excludes.get("arches") or ()):
        return False
    if any(c in caps for c in excludes.get("caps") or ()):
        return False
    if "minKernel" in excludes and kernel >= excludes["minKernel"]:
        return False
    includes = rule.get("includes") or {}
    if includes.get("arches") and arch not in includes["arches"]:
        return False
    if any(c not in caps for c in includes.get("caps") or ()):
        return False
    return not ("minKernel" in includes and kernel < includes["minKernel"])


def load_profile(
    profile: str,
    capabilities: Sequence[str],
    arch: str = "x86_64",
    *,
    cache_dir: str | None = None,
) -> dict[str, Any] | None:
    """The OCI ``linux.seccomp`` object for a container with ``capabilities`` (its bounding
    set, ``CAP_*`` names) on ``arch`` (``uname -m`` or Go name), from ``profile``: a Docker
    profile's JSON text, or "" for Docker's default profile. None when the profile asks for
    no filter (Docker: neither a default action nor any rule). ``cache_dir`` keeps
    libseccomp's syscall table between processes, and the default profile's result."""
    if profile:
        return _convert(decode(profile), capabilities, arch, cache_dir)
    # Decoding Docker's profile as its daemon does and converting it costs ~3 ms of every
    # `run`; the result depends only on what the stamp holds, so it is kept in cache_dir.
    stamp = _default_stamp(capabilities, arch) if cache_dir else None
    file = os.path.join(cache_dir, "seccomp-default.json") if cache_dir and stamp else ""
    saved = _read_cache(file, stamp) if file and stamp else None
    if saved is not None and "profile" in saved:
        result: dict[str, Any] | None = saved["profile"]
        return result
    out = _convert(_default_profile(), capabilities, arch, cache_dir)
    if file:
        _write_cache(file, {"stamp": stamp, "profile": out})
    return out


def _default_stamp(capabilities: Sequence[str], arch: str) -> list[Any] | None:
    """What the default profile's conversion depends on: the profile file, libseccomp's
    syscall table (/etc/ld.so.cache changes with the library), the kernel, the architecture
    and the capabilities. None when a file cannot be read."""
    try:
        files = [os.stat(p) for p in (DEFAULT_PROFILE, "/etc/ld.so.cache")]
    except OSError:
        return None
    stamp: list[Any] = [1, os.uname().release, arch, sorted(capabilities)]
    stamp += [[st.st_ino, st.st_size, st.st_mtime_ns] for st in files]
    return stamp


def _convert(
    config: dict[str, Any], capabilities: Sequence[str], arch: str, cache_dir: str | None
) -> dict[str, Any] | None:
    """A decoded profile -> the OCI object (see :func:`load_profile`)."""
    native = _ARCH_ALIASES.get(arch, arch)
    if native not in _ARCHES:
        raise InvalidArgument(f"seccomp: unsupported architecture {arch!r}")
    arch_name, scmp_arch = _ARCHES[native]
    caps = frozenset(capabilities)
    kernel = _running_kernel()

    default_action = config.get("defaultAction", "")
    rules = config.get("syscalls") or []
    if not default_action and not rules:
        return None
    if config.get("architectures") and config.get("archMap"):
        raise InvalidArgument(
            "'architectures' and 'archMap' were specified in the seccomp profile,"
            " use either 'architectures' or 'archMap'"
        )
    if not default_action:
        raise InvalidArgument("invalid seccomp profile: defaultAction is missing")

    out: dict[str, Any] = {"defaultAction": default_action}
    if "defaultErrnoRet" in config:
        out["defaultErrnoRet"] = config["defaultErrnoRet"]
    architectures = list(config.get("architectures") or ())
    for entry in config.get("archMap") or ():
        if entry.get("architecture") == scmp_arch:
            architectures = [scmp_arch, *(entry.get("subArchitectures") or ())]
            break
    if architectures:  # none: libseccomp takes the native architecture only
        out["architectures"] = architectures
    if config.get("flags"):
        out["flags"] = list(config["flags"])

    syscalls: list[dict[str, Any]] = []
    for rule in rules:
        names = rule.get("names") or []
        if rule.get("name"):
            if names:
                raise InvalidArgument(
                    "'name' and 'names' were specified in the seccomp profile,"
                    " use either 'name' or 'names'"
                )
            names = [rule["name"]]  # the old single-name form
        if not _applies(rule, arch_name, caps, kernel) or not names:
            continue
        action = rule.get("action", "")
        if not action:
            raise InvalidArgument(f"invalid seccomp profile: the rule for {names[0]} has no action")
        call: dict[str, Any] = {"names": list(names), "action": action}
        if "errnoRet" in rule:
            call["errnoRet"] = rule["errnoRet"]
        if rule.get("args"):
            call["args"] = [dict(a) for a in rule["args"]]
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
    saved = _read_cache(file, stamp) if file and stamp else None
    if saved is not None:
        try:
            known = frozenset(saved["names"])
        except (KeyError, TypeError):
            pass
    if known is None:
        known = _scan_libseccomp(architectures)
        if file and known:
            _write_cache(file, {"stamp": stamp, "names": sorted(known)})
    _known_cache[key] = known
    return known


def _read_cache(path: str, stamp: list[Any]) -> dict[str, Any] | None:
    """What :func:`_write_cache` kept in ``path``, if it was written under ``stamp``; None for
    a missing, torn or stale file (the caller computes it again)."""
    try:
        with open(path) as f:
            saved = fastjson.load(f)
        if isinstance(saved, dict) and saved.get("stamp") == stamp:
            return saved
    except (OSError, ValueError):
        pass
    return None


def _write_cache(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w") as f:
            f.write(fastjson.dumps(data))
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
