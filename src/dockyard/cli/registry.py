"""Registry verbs: pull, push, login, logout, search; and the pull that run/create do first."""

from __future__ import annotations

import sys
from typing import IO, Any

from dockyard.cli.context import Context
from dockyard.cli.output import human_size, table
from dockyard.cli.parser import ArgumentParser
from dockyard.errors import InvalidArgument, NotFound

# Statuses that only move a bar: a plain (non-terminal) output skips them, as Docker's does.
_PROGRESS_STATUSES = frozenset({"Downloading", "Extracting", "Pushing", "Waiting"})
BAR_WIDTH = 50


class ProgressPrinter:
    """Renders Docker JSON messages: one line per layer, redrawn in place on a terminal
    (cursor up, clear, rewrite; Docker's jsonmessage does the same), plain lines otherwise."""

    def __init__(self, stream: IO[str] | None = None, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.ids: dict[str, int] = {}  # layer id -> line index (0 = oldest)
        self.lines = 0

    def __call__(self, msg: dict[str, Any]) -> None:
        if "status" not in msg:
            return  # aux messages (a push's digest) are for API clients; the lines said it
        status = str(msg.get("status", ""))
        ident = str(msg.get("id", ""))
        detail = msg.get("progressDetail") or {}
        if not self.tty:
            if status in _PROGRESS_STATUSES and detail:
                return
            self.stream.write(f"{ident}: {status}\n" if ident else f"{status}\n")
            self.stream.flush()
            return
        text = f"{ident}: {status}" if ident else status
        if detail and detail.get("total", 0) > 0:
            text += " " + progress_bar(int(detail["current"]), int(detail["total"]))
        if ident and ident in self.ids and not status.startswith("Pulling from"):
            up = self.lines - self.ids[ident]
            self.stream.write(f"\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")
        else:
            if ident and not status.startswith("Pulling from"):
                self.ids[ident] = self.lines
            self.stream.write(text + "\n")
            self.lines += 1
        self.stream.flush()


def progress_bar(current: int, total: int) -> str:
    """``[=====>      ]  12.3MB/45.6MB`` as Docker draws it."""
    current = min(current, total)
    filled = int(BAR_WIDTH * current / total) if total else 0
    bar = "=" * filled
    if filled < BAR_WIDTH:
        bar += ">" + " " * (BAR_WIDTH - filled - 1)
    return f"[{bar}] {human_size(current):>8}/{human_size(total)}"


def _insecure_flag(p: ArgumentParser) -> None:
    p.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="Reach this registry over plain HTTP (also $DOCKYARD_INSECURE_REGISTRIES)",
    )


def _service(ctx: Context, insecure: list[str]) -> Any:
    service = ctx.engine.registry
    service.insecure = tuple(insecure)
    return service


def cmd_pull(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] NAME[:TAG|@DIGEST]", "Pull an image from a registry")
    p.add_argument("name")
    p.add_argument("-a", "--all-tags", action="store_true", help="Download all tagged images")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--platform", default="", help="Only linux/amd64 is supported")
    _insecure_flag(p)
    a = p.parse_args(argv)
    if a.platform and a.platform not in ("linux/amd64", "linux"):
        raise InvalidArgument(f"unsupported platform {a.platform!r}: only linux/amd64")
    from dockyard.image.reference import parse_reference

    progress = None if a.quiet else ProgressPrinter()
    _service(ctx, a.insecure_registry).pull(a.name, all_tags=a.all_tags, progress=progress)
    ref = parse_reference(a.name, default_tag=not a.all_tags)
    print(str(ref))
    return 0


def pull_missing(ctx: Context, image: str, policy: str = "missing") -> None:
    """``run``/``create`` of an image that is not here: pull it first, as Docker does, with
    the messages on stderr so the container's output stays alone on stdout. ``policy`` is
    ``--pull``: missing (the default), always or never."""
    from dockyard.image.reference import looks_like_image_id, parse_reference

    if policy not in ("missing", "always", "never"):
        raise InvalidArgument(
            f'invalid pull option: \'{policy}\': must be one of "always", "missing" or "never"'
        )
    if policy != "always":
        try:
            ctx.engine.store.images.resolve(image)
            return
        except NotFound:
            if policy == "never":
                raise
    try:
        ref = parse_reference(image)
    except InvalidArgument:
        if looks_like_image_id(image):
            raise NotFound(f"No such image: {image}") from None
        raise
    if policy == "missing":
        print(f"Unable to find image '{ref.familiar()}' locally", file=sys.stderr)
    ctx.engine.registry.pull(image, progress=ProgressPrinter(sys.stderr))


def cmd_push(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] NAME[:TAG]", "Push an image to a registry")
    p.add_argument("name")
    p.add_argument("-a", "--all-tags", action="store_true", help="Push all tags of the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument(
        "--compression",
        help="Compress every layer with gzip or zstd (default: the blob pulled, else gzip)",
    )
    _insecure_flag(p)
    a = p.parse_args(argv)
    progress = None if a.quiet else ProgressPrinter()
    _service(ctx, a.insecure_registry).push(
        a.name, progress, all_tags=a.all_tags, compression=a.compression
    )
    return 0


def cmd_login(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] [SERVER]", "Log in to a registry")
    p.add_argument("server", nargs="?")
    p.add_argument("-u", "--username", default="")
    p.add_argument("-p", "--password", default="")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")
    _insecure_flag(p)
    a = p.parse_args(argv)
    password = a.password
    if a.password_stdin:
        if a.password:
            raise InvalidArgument("--password and --password-stdin are mutually exclusive")
        if not a.username:
            raise InvalidArgument("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif password:
        print(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
            file=sys.stderr,
        )
    username = a.username
    if not username:
        if not sys.stdin.isatty():
            raise InvalidArgument("Cannot perform an interactive login from a non TTY device")
        username = input("Username: ").strip()
    if not password:
        if not sys.stdin.isatty():
            raise InvalidArgument("Cannot perform an interactive login from a non TTY device")
        import getpass

        password = getpass.getpass("Password: ")
    path = _service(ctx, a.insecure_registry).login(a.server, username, password)
    if path:  # Docker warns only when no credential helper keeps the password
        print(f"WARNING! Your password will be stored unencrypted in {path}.", file=sys.stderr)
    print("Login Succeeded")
    return 0


def cmd_logout(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[SERVER]", "Log out from a registry")
    p.add_argument("server", nargs="?")
    a = p.parse_args(argv)
    from dockyard.registry.endpoint import config_key

    name, removed = ctx.engine.registry.logout(a.server)
    if removed:
        print(f"Removing login credentials for {config_key(name)}")
    else:
        print(f"Not logged in to {config_key(name)}")
    return 0


def cmd_search(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] TERM", "Search a registry for images")
    p.add_argument("term")
    p.add_argument("-f", "--filter", action="append", default=[], help="Filter output")
    p.add_argument("--limit", type=int, default=25, help="Max number of search results")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("--format", help="Pretty-print search using a Go template")
    _insecure_flag(p)
    a = p.parse_args(argv)
    filters: dict[str, list[str]] = {}
    for f in a.filter:
        key, eq, value = f.partition("=")
        if not eq:
            raise InvalidArgument(f"bad format of filter (expected name=value): {f}")
        filters.setdefault(key.strip().lower(), []).append(value.strip())
    rows = _service(ctx, a.insecure_registry).search(a.term, limit=a.limit, filters=filters)
    from dockyard.cli.rows import SearchRow

    ctxs = [SearchRow(r, trunc=not a.no_trunc) for r in rows]
    if a.format and a.format != "table":
        from dockyard.cli.formatter import write_list

        write_list(a.format, ctxs, SearchRow.header)
        return 0
    cols = ["Name", "Description", "StarCount", "IsOfficial", "IsAutomated"]
    print(
        table([SearchRow.header[c] for c in cols], [[getattr(x, c)() for c in cols] for x in ctxs])
    )
    return 0
