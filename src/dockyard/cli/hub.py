"""``dockyard hub serve|user|repo|gc``: run and administer the hub registry.

The admin verbs work on the data dir directly (SQLite in WAL mode), also while ``serve`` runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.cli.context import Context
from dockyard.cli.output import human_duration, human_size, table
from dockyard.cli.parser import ArgumentParser
from dockyard.errors import InvalidArgument

if TYPE_CHECKING:
    from dockyard.registry.hub.store import HubStore

DEFAULT_DATA = "/var/lib/dockyard-hub"
_Verb = Callable[[Context, list[str]], int]
DEFAULT_ADDR = "127.0.0.1:5001"


def _add_data(p: ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default=os.environ.get("DOCKYARD_HUB_DATA", DEFAULT_DATA),
        help=f"Data directory (default {DEFAULT_DATA}, or $DOCKYARD_HUB_DATA)",
    )


@contextmanager
def _open_store(data: str) -> Iterator[HubStore]:
    import sqlite3

    from dockyard.errors import Unavailable
    from dockyard.registry.hub.store import HubStore

    try:
        store = HubStore(Path(data))
    except (OSError, sqlite3.Error) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise Unavailable(f"cannot open the hub data dir {data}: {reason}") from None
    try:
        yield store
    finally:
        store.close()


def _parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise InvalidArgument(f"invalid --addr {addr!r}: expected HOST:PORT, e.g. {DEFAULT_ADDR}")
    if host.startswith("["):
        raise InvalidArgument("IPv6 listen addresses are not supported; use an IPv4 address")
    return host or "0.0.0.0", int(port)


def cmd_hub_serve(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Serve the hub registry (OCI distribution API, tokens, search)")
    p.add_argument("--addr", default=DEFAULT_ADDR, help=f"Listen address (default {DEFAULT_ADDR})")
    _add_data(p)
    p.add_argument("--service", default="dockyard-hub", help="Token service name")
    p.add_argument("--realm", help="Token realm URL (default: http://<Host>/token)")
    p.add_argument("--token-ttl", type=int, default=300, help="Token lifetime in seconds")
    p.add_argument("-q", "--quiet", action="store_true", help="Do not log requests")
    p.add_argument("--tls-cert", metavar="FILE", help="Serve HTTPS with this PEM certificate")
    p.add_argument("--tls-key", metavar="FILE", help="The certificate's PEM private key")
    a = p.parse_args(argv)
    host, port = _parse_addr(a.addr)
    if a.token_ttl <= 0:
        raise InvalidArgument("--token-ttl must be positive")
    if bool(a.tls_cert) != bool(a.tls_key):
        raise InvalidArgument("--tls-cert and --tls-key go together")
    import signal

    from dockyard.registry.hub.server import HubServer, serve, server_tls
    from dockyard.registry.hub.tokens import load_key

    tls = None
    if a.tls_cert:
        import ssl

        try:
            tls = server_tls(a.tls_cert, a.tls_key)
        except (OSError, ssl.SSLError) as e:
            reason = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
            raise InvalidArgument(
                f"cannot load --tls-cert {a.tls_cert} / --tls-key {a.tls_key}: {reason}"
            ) from None

    with _open_store(a.data) as store:
        key = load_key(store.data / "token.key")

        def ready(server: HubServer) -> None:
            def stop(signum: int, frame: object) -> None:
                server.shutdown()  # connections close, requests in progress finish

            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
            print(f"dockyard hub listening on {server.url} (data {store.data})", flush=True)

        try:
            serve(
                store,
                host,
                port,
                service=a.service,
                token_ttl=a.token_ttl,
                key=key,
                realm=a.realm,
                quiet=a.quiet,
                ready=ready,
                tls=tls,
            )
        except KeyboardInterrupt:
            return 0
        except OSError as e:
            from dockyard.errors import Unavailable

            raise Unavailable(f"cannot listen on {a.addr}: {e.strerror or e}") from None
    return 0


def _read_password(prompt_twice: bool, from_stdin: bool) -> str:
    if from_stdin:
        text = sys.stdin.read()
        return text[:-1] if text.endswith("\n") else text
    if not sys.stdin.isatty():
        raise InvalidArgument("no terminal to prompt for a password: use --password-stdin")
    import getpass

    pw = getpass.getpass("Password: ")
    if prompt_twice and getpass.getpass("Retype password: ") != pw:
        raise InvalidArgument("passwords do not match")
    return pw


def cmd_hub_user(ctx: Context, argv: list[str]) -> int:
    verbs = {
        "add": _user_add,
        "ls": _user_ls,
        "list": _user_ls,
        "rm": _user_rm,
        "remove": _user_rm,
        "passwd": _user_passwd,
    }
    return _sub(ctx, "user", verbs, argv)


def _sub(ctx: Context, group: str, verbs: Mapping[str, _Verb], argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(
            f"Usage:  dockyard hub {group} COMMAND\n\nCommands:\n"
            + "\n".join(f"  {v}" for v in verbs)
        )
        return 0
    verb = argv[0]
    fn = verbs.get(verb)
    if fn is None:
        print(
            f"unknown command: dockyard hub {group} {verb}\nSee 'dockyard hub {group} --help'.",
            file=sys.stderr,
        )
        return 125
    ctx.prog = f"hub {group} {verb}"
    return fn(ctx, argv[1:])


def _user_add(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] NAME", "Create a hub account (its namespace is NAME/...)")
    p.add_argument("name")
    p.add_argument("--admin", action="store_true", help="May push official images (library/)")
    p.add_argument("--password-stdin", action="store_true", help="Read the password from stdin")
    _add_data(p)
    a = p.parse_args(argv)
    from dockyard.registry.hub.names import check_user

    check_user(a.name)
    password = _read_password(True, a.password_stdin)
    with _open_store(a.data) as store:
        store.accounts.add(a.name, password, admin=a.admin)
    print(f"Created user {a.name}{' (admin)' if a.admin else ''}")
    return 0


def _user_passwd(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] NAME", "Change a hub account's password")
    p.add_argument("name")
    p.add_argument("--password-stdin", action="store_true")
    _add_data(p)
    a = p.parse_args(argv)
    password = _read_password(True, a.password_stdin)
    with _open_store(a.data) as store:
        store.accounts.set_password(a.name, password)
    print(f"Changed the password of {a.name}")
    return 0


def _user_ls(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "List hub accounts")
    p.add_argument("-q", "--quiet", action="store_true")
    _add_data(p)
    a = p.parse_args(argv)
    import time

    with _open_store(a.data) as store:
        users = store.accounts.list()
    if a.quiet:
        for name, _, _ in users:
            print(name)
        return 0
    rows = [
        [n, "yes" if admin else "no", human_duration(time.time() - created) + " ago"]
        for n, admin, created in users
    ]
    print(table(["NAME", "ADMIN", "CREATED"], rows))
    return 0


def _user_rm(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("NAME [NAME...]", "Remove hub accounts (their repositories stay)")
    p.add_argument("names", nargs="+")
    _add_data(p)
    a = p.parse_args(argv)
    with _open_store(a.data) as store:
        for n in a.names:
            store.accounts.remove(n)
            print(n)
    return 0


def cmd_hub_repo(ctx: Context, argv: list[str]) -> int:
    verbs = {
        "ls": _repo_ls,
        "list": _repo_ls,
        "describe": _repo_describe,
        "star": _repo_star,
        "private": _repo_private,
        "public": _repo_public,
        "rm": _repo_rm,
        "remove": _repo_rm,
    }
    return _sub(ctx, "repo", verbs, argv)


def _repo_name(name: str) -> str:
    from dockyard.registry.hub.errors import RegistryError
    from dockyard.registry.hub.names import check_name

    try:
        return check_name(name)
    except RegistryError as e:
        raise InvalidArgument(e.message) from None


def _repo_ls(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "List the hub's repositories")
    p.add_argument("-q", "--quiet", action="store_true")
    _add_data(p)
    a = p.parse_args(argv)
    with _open_store(a.data) as store:
        repos = store.list_repos()
    if a.quiet:
        for r in repos:
            print(r["name"])
        return 0
    rows = [
        [
            r["name"],
            r["description"][:45],
            str(r["star_count"]),
            "[OK]" if r["is_official"] else "",
            "private" if r["is_private"] else "public",
            str(r["tag_count"]),
        ]
        for r in repos
    ]
    print(table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL", "VISIBILITY", "TAGS"], rows))
    return 0


def _repo_describe(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] REPOSITORY DESCRIPTION", "Set the description search shows")
    p.add_argument("name")
    p.add_argument("description")
    _add_data(p)
    a = p.parse_args(argv)
    if len(a.description) > 1000 or "\n" in a.description:
        raise InvalidArgument("the description must be one line of at most 1000 characters")
    with _open_store(a.data) as store:
        store.describe(_repo_name(a.name), a.description.strip())
    return 0


def _repo_star(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] REPOSITORY", "Star a repository on behalf of a user")
    p.add_argument("name")
    p.add_argument("-u", "--user", required=True, help="The user who stars it")
    p.add_argument("--remove", action="store_true", help="Remove the star")
    _add_data(p)
    a = p.parse_args(argv)
    with _open_store(a.data) as store:
        store.star(_repo_name(a.name), a.user, on=not a.remove)
    return 0


def _visibility(ctx: Context, argv: list[str], private: bool) -> int:
    what = "private (pulls need the owner's login)" if private else "public"
    p = ctx.parser("[OPTIONS] REPOSITORY", f"Make a repository {what}")
    p.add_argument("name")
    _add_data(p)
    a = p.parse_args(argv)
    with _open_store(a.data) as store:
        store.set_private(_repo_name(a.name), private)
    return 0


def _repo_private(ctx: Context, argv: list[str]) -> int:
    return _visibility(ctx, argv, True)


def _repo_public(ctx: Context, argv: list[str]) -> int:
    return _visibility(ctx, argv, False)


def _repo_rm(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("REPOSITORY [REPOSITORY...]", "Remove repositories (run gc to free space)")
    p.add_argument("names", nargs="+")
    _add_data(p)
    a = p.parse_args(argv)
    with _open_store(a.data) as store:
        for n in a.names:
            store.remove_repo(_repo_name(n))
            print(n)
    return 0


def cmd_hub_gc(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Delete blobs no manifest references (safe while serving)")
    _add_data(p)
    p.add_argument(
        "--grace",
        type=float,
        default=3600,
        help="Keep unreferenced blobs touched within this many seconds (default 3600)",
    )
    p.add_argument(
        "--upload-grace",
        type=float,
        default=24 * 3600,
        help="Abandon upload sessions idle this many seconds (default 86400)",
    )
    p.add_argument("--dry-run", action="store_true", help="Only report what would be deleted")
    a = p.parse_args(argv)
    if a.grace < 0 or a.upload_grace < 0:
        raise InvalidArgument("grace periods must not be negative")
    from dockyard.registry.hub.gc import collect

    with _open_store(a.data) as store:
        r = collect(store, a.grace, a.upload_grace, dry_run=a.dry_run)
    verb = "Would delete" if a.dry_run else "Deleted"
    print(f"{verb} blobs: {r.blobs_removed}")
    print(f"{verb} upload sessions: {r.uploads_removed}")
    print(f"Total reclaimed space: {human_size(r.bytes_freed)}")
    return 0
