"""``build`` flags that need more than a string: ``--secret`` (read here, before anything is
built, as Docker's CLI reads them) and ``--output``."""

from __future__ import annotations

import os
from collections.abc import Sequence

from dockyard.builder.parser import BuildError
from dockyard.builder.state import Output
from dockyard.errors import InvalidArgument

MAX_SECRET_SIZE = 500 * 1024  # BuildKit's limit for one secret


def _fields(spec: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for field in spec.split(","):
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq:
            raise InvalidArgument(f"invalid field '{field}' must be a key=value pair")
        out[key] = value
    return out


def read_secrets(specs: Sequence[str]) -> dict[str, bytes]:
    """``--secret id=x[,src=FILE|,env=VAR]`` -> id -> content. Without ``src``/``env`` an
    environment variable named like the id wins, else a file of that name (BuildKit's
    rule). Errors are Docker's: ``could not parse secrets: [...]: ...``."""
    out: dict[str, bytes] = {}
    for spec in specs:
        try:
            ident, value = _read_secret(spec)
        except InvalidArgument as e:
            # Docker's words; a build that cannot start exits 1, as docker build does
            raise BuildError(f"could not parse secrets: [{' '.join(specs)}]: {e}") from None
        out[ident] = value
    return out


def _read_secret(spec: str) -> tuple[str, bytes]:
    fields = _fields(spec)
    for key in fields:
        if key not in ("type", "id", "src", "source", "env"):
            raise InvalidArgument(f"unexpected key '{key}' in '{spec}'")
    if fields.get("type", "file") not in ("file", "env"):
        raise InvalidArgument(f"unsupported secret type {fields['type']!r}")
    ident = fields.get("id", "")
    if not ident:
        raise InvalidArgument("secret missing ID")
    src = fields.get("src") or fields.get("source") or ""
    env = fields.get("env", "")
    if fields.get("type") == "env" and not env:
        env, src = src or ident, ""
    if not src and not env:
        if ident in os.environ:
            env = ident
        else:
            src = ident
    if env:
        value = os.environ.get(env)
        if value is None:
            raise InvalidArgument(f"secret env {env} not set")
        return ident, value.encode()
    try:
        size = os.stat(src).st_size
    except OSError as e:
        raise InvalidArgument(f"failed to stat {src}: stat {src}: {_go_error(e)}") from None
    if size > MAX_SECRET_SIZE:
        raise InvalidArgument(f"secret {ident} too big. max size 500KB")
    try:
        with open(src, "rb") as f:
            return ident, f.read()
    except OSError as e:
        raise InvalidArgument(f"failed to read {src}: {_go_error(e)}") from None


def _go_error(e: OSError) -> str:
    """An errno as Go words it ("no such file or directory")."""
    return (e.strerror or str(e)).lower()


def parse_outputs(specs: Sequence[str]) -> list[Output]:
    """``-o DIR`` (a local directory), ``-o -`` (a tar on stdout) or
    ``type=local|tar|image|docker[,dest=...]``."""
    out = []
    for spec in specs:
        if "=" not in spec:
            out.append(Output("tar", "-") if spec == "-" else Output("local", spec))
            continue
        fields = _fields(spec)
        kind = fields.get("type", "")
        dest = fields.get("dest", "")
        if kind in ("image", "docker", "moby"):
            out.append(Output("image"))
        elif kind == "local":
            if not dest:
                raise InvalidArgument("dest is required for local output")
            out.append(Output("local", dest))
        elif kind == "tar":
            out.append(Output("tar", dest or "-"))
        elif not kind:
            raise InvalidArgument(f"type is required for output: {spec}")
        else:
            raise InvalidArgument(
                f"output type {kind!r} is not supported by this builder "
                "(supported: local, tar, image)"
            )
    if sum(1 for o in out if o.dest == "-") > 1:
        raise InvalidArgument("only one output may write to stdout")
    return out
