"""``--log-driver`` / ``--log-opt`` (``HostConfig.LogConfig``): the drivers dockyard writes and
their options, checked as Docker's daemon checks them, with its messages.

Docker 20.10 checks the option *names* at create ("unknown log opt ...") and their *values*
when the driver starts ("failed to initialize logging driver: ..."), so a bad ``max-size``
leaves a created container that cannot start. Here both are checked at create: the message
is Docker's, and nothing is created (the same choice as for static addresses).

Sizes are go-units' ``FromHumanSize`` (decimal: ``1k`` is 1000 bytes), as both drivers parse
``max-size``; counts are Go's ``strconv.Atoi``; booleans ``strconv.ParseBool``.
"""

from __future__ import annotations

from dockyard.errors import InvalidArgument

TYPE_CHECKING = False  # not typing's: importing typing costs ~2 ms of every command
if TYPE_CHECKING:
    from collections.abc import Callable
    from dataclasses import dataclass
    from typing import Any

    from dockyard.model.container import LogConfig
else:
    from dockyard.model.values import dataclass

__all__ = ["DRIVERS", "LogSettings", "from_human_size", "log_attrs", "log_settings"]

DRIVERS = ("json-file", "local", "none")
# Docker's built-in drivers that dockyard does not write: refused by name, not as plugins.
_DOCKER_ONLY = (
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
)
# Options every driver takes (moby logger.ValidateLogOpts); dockyard writes to local files,
# which never block for long, so both modes behave as "blocking".
_COMMON = ("mode", "max-buffer-size")
_JSON_FILE_OPTS = (
    "max-file",
    "max-size",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
)
_LOCAL_OPTS = ("max-file", "max-size", "compress")

# The local driver's defaults (moby daemon/logger/local): 20 MB files, 5 of them, compressed.
LOCAL_MAX_SIZE = 20 * 1000 * 1000
LOCAL_MAX_FILE = 5


@dataclass(frozen=True, slots=True)
class LogSettings:
    """What the container's monitor writes: the driver, rotation (``max_size`` 0: never),
    and for json-file the label and env keys whose values go into each line's ``attrs``."""

    driver: str = "json-file"
    max_size: int = 0
    max_file: int = 1
    compress: bool = False
    labels: tuple[str, ...] = ()
    labels_regex: str = ""
    env: tuple[str, ...] = ()
    env_regex: str = ""


def log_settings(cfg: LogConfig) -> LogSettings:
    """The settings of ``cfg``, or InvalidArgument with Docker's message."""
    driver = cfg.type or "json-file"
    opts = dict(cfg.config)
    if driver not in DRIVERS:
        if driver in _DOCKER_ONLY:
            raise InvalidArgument(
                f'logging driver "{driver}" is not supported: use json-file, local or none'
            )
        raise InvalidArgument(
            f'error looking up logging plugin {driver}: plugin "{driver}" not found'
        )
    if driver == "none":
        # Docker's CLI refuses options for "none"; its daemon ignores them.
        return LogSettings(driver="none")
    _check_common(opts)
    if driver == "local":
        for key in opts:
            if key not in _LOCAL_OPTS + _COMMON:
                raise InvalidArgument(f"unknown log opt '{key}' for log driver local")
        return _local(opts)
    for key in opts:
        if key not in _JSON_FILE_OPTS + _COMMON:
            raise InvalidArgument(f"unknown log opt '{key}' for json-file log driver")
    return _json_file(opts)


def _failed(why: str) -> InvalidArgument:
    return InvalidArgument(f"failed to initialize logging driver: {why}")


def _option(
    opts: dict[str, str], key: str, parse: Callable[[str], Any], default: Any, words: str = "{err}"
) -> Any:
    """``opts[key]`` read by ``parse`` (``default`` when absent); a value it refuses is the
    driver's error, worded as ``words`` (``{value}``: the option, ``{err}``: the parser's)."""
    if key not in opts:
        return default
    try:
        return parse(opts[key])
    except ValueError as e:
        raise _failed(words.format(value=opts[key], err=e)) from None


def _check_common(opts: dict[str, str]) -> None:
    mode = opts.get("mode", "")
    if mode not in ("", "blocking", "non-blocking"):
        raise InvalidArgument(f"logger: logging mode not supported: {mode}")
    if "max-buffer-size" in opts:
        if mode != "non-blocking":
            raise InvalidArgument(
                "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
            )
        try:
            from_human_size(opts["max-buffer-size"], binary=True)
        except ValueError as e:
            raise InvalidArgument(f"error parsing option max-buffer-size: {e}") from None


def _json_file(opts: dict[str, str]) -> LogSettings:
    """moby daemon/logger/jsonfilelog.New."""
    max_size = _option(opts, "max-size", from_human_size, 0)
    if "max-size" in opts and max_size <= 0:
        raise _failed("max-size must be a positive number")
    max_file = _option(opts, "max-file", go_atoi, 1)
    if max_file < 1:
        raise _failed("max-file cannot be less than 1")
    compress = _option(opts, "compress", go_parse_bool, False)
    if compress and (max_file == 1 or not max_size):
        raise _failed("compress cannot be true when max-file is less than 2 or max-size is not set")
    for key in ("labels-regex", "env-regex"):
        if opts.get(key):
            import re

            try:
                re.compile(opts[key])
            except re.error as e:
                raise _failed(f"error parsing regexp: {e}") from None
    return LogSettings(
        driver="json-file",
        max_size=max_size,
        max_file=max_file if max_size else 1,
        compress=compress,
        labels=_keys(opts.get("labels", "")),
        labels_regex=opts.get("labels-regex", ""),
        env=_keys(opts.get("env", "")),
        env_regex=opts.get("env-regex", ""),
    )


def _local(opts: dict[str, str]) -> LogSettings:
    """moby daemon/logger/local.New and its validateConfig."""
    max_size = _option(
        opts,
        "max-size",
        from_human_size,
        LOCAL_MAX_SIZE,
        "invalid value for max-size: {value}: {err}",
    )
    max_file = _option(
        opts, "max-file", go_atoi, LOCAL_MAX_FILE, "invalid value for max-file: {value}: {err}"
    )
    compress = _option(
        opts, "compress", go_parse_bool, True, "error reading compress log option: {err}"
    )
    if max_size < 0:
        raise _failed("max size should be a positive number")
    if max_file < 0:
        raise _failed("max file count cannot be less than 0")
    if compress and max_file <= 1:
        raise _failed("compression cannot be enabled when max file count is 1")
    return LogSettings(
        driver="local", max_size=max_size, max_file=max(max_file, 1), compress=compress
    )


def _keys(text: str) -> tuple[str, ...]:
    return tuple(k for k in text.split(",") if k)


# ------------------------------------------------------------------------- Go's parsers

_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_BINARY = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def from_human_size(text: str, *, binary: bool = False) -> int:
    """go-units ``FromHumanSize`` (``RAMInBytes`` with ``binary``): ``10m``, ``1.5k``,
    ``20MB``, ``1kib``... ValueError with go-units' message otherwise."""
    num, unit = _split_size(text)
    if num is None:
        raise ValueError(f"invalid size: '{text}'")
    try:
        value = float(num)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax') from None
    return int(value * (_BINARY if binary else _DECIMAL)[unit])


def _split_size(text: str) -> tuple[str | None, str]:
    """go-units' ``^(\\d+(\\.\\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$``: (number, unit letter)."""
    i = 0
    while i < len(text) and (text[i].isdigit() and text[i].isascii()):
        i += 1
    if i == 0:
        return None, ""
    while i < len(text) and text[i] == ".":
        j = i + 1
        while j < len(text) and text[j].isdigit() and text[j].isascii():
            j += 1
        if j == i + 1:
            return None, ""
        i = j
    num, rest = text[:i], text[i:]
    rest = rest.removeprefix(" ")
    unit = ""
    if rest[:1].lower() in "kmgtp" and rest[:1]:
        unit, rest = rest[0].lower(), rest[1:]
    rest = rest[1:] if rest[:1] in ("i", "I") else rest
    rest = rest[1:] if rest[:1] in ("b", "B") else rest
    return (num, unit) if not rest else (None, "")


def go_atoi(text: str) -> int:
    """Go's ``strconv.Atoi`` (base 10, optional sign, 64-bit), its error text."""
    body = text[1:] if text[:1] in "+-" and text else text
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    value = int(text)
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f'strconv.Atoi: parsing "{text}": value out of range')
    return value


def go_parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def log_attrs(settings: LogSettings, labels: dict[str, str], env: list[str]) -> dict[str, str]:
    """The ``attrs`` json-file puts in each line (moby logger.Info.ExtraAttributes): the
    container's labels named by ``labels`` (or matching ``labels-regex``) and its variables
    named by ``env`` (or matching ``env-regex``)."""
    extra: dict[str, str] = {}
    for key in settings.labels:
        if key in labels:
            extra[key] = labels[key]
    # Docker 20.10 applies labels-regex only when "labels" is set too (it tests the wrong
    # option's length); so does this.
    if settings.labels_regex and settings.labels:
        import re

        pattern = re.compile(settings.labels_regex)
        extra.update({k: v for k, v in labels.items() if pattern.search(k)})
    variables = dict(e.split("=", 1) for e in env if "=" in e)
    for key in settings.env:
        if key in variables:
            extra[key] = variables[key]
    if settings.env_regex:
        import re

        pattern = re.compile(settings.env_regex)
        extra.update({k: v for k, v in variables.items() if pattern.search(k)})
    return extra
