"""Docker's ``--format`` plumbing (docker/cli ``formatter.Context`` and ``inspect``): the
``table`` directive, ``\\t``/``\\n`` escapes, header lines from each command's header map,
the tabwriter, and ``inspect -f`` over the inspect JSON.

Imported only when a listing is rendered or a template is given, so ``ps`` and friends pay
for the template engine only when they use it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from dockyard.cli.gotemplate import Template, TemplateError
from dockyard.cli.gotemplate.values import NIL_MAP, NIL_PTR, NIL_SLICE, GoMap, StructDict
from dockyard.cli.tabwriter import tabwrite
from dockyard.errors import InvalidArgument

# Docker's RawFormatKey is not supported; "table" alone means the command's default table.
TABLE = "table"


def _parse(text: str) -> Template:
    try:
        return Template(text)
    except TemplateError as e:
        raise InvalidArgument(str(e)) from None


def parse_template(text: str) -> Template:
    """A template as Docker's ``templates.Parse`` takes it (no ``table``, no escapes):
    ``events --format``, ``stats --format`` rows. InvalidArgument with Go's error text."""
    return _parse(text)


def render_list(fmt: str, rows: Sequence[Any], header: dict[str, str]) -> str:
    """formatter.Context.Write: each row through the template, ending in a newline; for a
    ``table`` format a header line first (the template run on the header map with the
    header functions, its errors ignored as Docker does) and the whole through the
    tabwriter. A row that fails fails the command before anything is printed."""
    from dockyard.cli.gotemplate.funcs import HEADER_FUNCS
    from dockyard.cli.gotemplate.values import HeaderMap

    is_table = fmt.startswith(TABLE)
    text = fmt[len(TABLE) :] if is_table else fmt
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    tmpl = _parse(text)
    out = []
    for row in rows:
        try:
            out.append(tmpl.execute(row) + "\n")
        except TemplateError as e:
            raise InvalidArgument(str(e)) from None
    if not is_table:
        return "".join(out)
    try:
        head = tmpl.execute(HeaderMap(header), funcs=HEADER_FUNCS)
    except TemplateError as e:
        head = getattr(e, "partial", "")
    return tabwrite(head + "\n" + "".join(out))


def write_list(fmt: str, rows: Sequence[Any], header: dict[str, str]) -> None:
    sys.stdout.write(render_list(fmt, rows, header))


# ------------------------------------------------------------------------------ inspect

# JSON objects that are Go maps in Docker's inspect types (by the key holding them); every
# other object was a struct. A null under one of these keys was a nil map, under a pointer
# key a nil pointer, and otherwise a nil slice: what the typed template run prints.
_MAP_KEYS = frozenset(
    {
        "Labels",
        "Volumes",
        "ExposedPorts",
        "Ports",
        "Networks",
        "PortBindings",
        "Options",
        "Sysctls",
        "Tmpfs",
        "StorageOpt",
        "Data",
        "Containers",
        "Status",
        "DriverOpts",
        "Annotations",
        "Peers",
        "Services",
    }
)
_POINTER_KEYS = frozenset(
    {
        "Health",
        "Healthcheck",
        "OomKillDisable",
        "PidsLimit",
        "Init",
        "NetworkingConfig",
        "IPAMConfig",
        "ConfigFrom",
        "UsageData",
        "ClusterVolume",
        "Metadata",
        "Platform",
    }
)


# Struct fields Docker leaves out of the JSON when empty (omitempty) that templates ask for:
# the typed run still has them, so they print as their zero value rather than failing.
_OMITTED: dict[tuple[str, str], Any] = {
    ("State", "Health"): NIL_PTR,
    ("Config", "Healthcheck"): NIL_PTR,
    ("Config", "ExposedPorts"): NIL_MAP,
    ("Config", "Shell"): NIL_SLICE,
    ("Config", "StopSignal"): "",
    ("Config", "StopTimeout"): NIL_PTR,
    ("Config", "ArgsEscaped"): False,
    ("Config", "MacAddress"): "",
}


def typed(value: Any, key: str = "", parent: str = "") -> Any:
    """The inspect JSON as Docker's typed structs would show it to a template."""
    if value is None:
        if key in _MAP_KEYS or (key == "Config" and parent == "LogConfig"):
            return NIL_MAP
        return NIL_PTR if key in _POINTER_KEYS else NIL_SLICE
    if isinstance(value, dict):
        if key in _MAP_KEYS or (key == "Config" and parent == "LogConfig"):
            return GoMap({k: typed(v, "", key) for k, v in value.items()})
        struct = StructDict({k: typed(v, k, key) for k, v in value.items()})
        struct.omitted = {f: zero for (owner, f), zero in _OMITTED.items() if owner == key}
        if "Id" in struct:  # the Go field is ID (json:"Id"): {{.ID}} works on the typed run
            struct.omitted["ID"] = struct["Id"]
        return struct
    if isinstance(value, list):
        return [typed(v, "", key) for v in value]
    return value


def render_inspect(
    fmt: str, objs: Sequence[dict[str, Any]], on_error: Callable[[str], None]
) -> str:
    """``inspect -f``: the template on each object (a missing field is an error, as in
    Docker's raw fallback); an object whose template fails is reported through
    ``on_error`` and left out."""
    tmpl = _parse(fmt)
    out = []
    for obj in objs:
        try:
            out.append(tmpl.execute(typed(obj), missing_key_error=True) + "\n")
        except TemplateError as e:
            on_error(str(e))
    return "".join(out)
