"""``dockyard daemon``: serve the engine as the Docker Engine API on a Unix socket."""

from __future__ import annotations

from dockyard.cli.context import Context


def cmd_daemon(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Serve the Docker Engine API on a Unix socket")
    p.add_argument(
        "-H",
        "--host",
        default="",
        help="Socket to listen on (default unix://<run-root>/dockyard.sock)",
    )
    p.add_argument("--debug", action="store_true", help="Log every request")
    a = p.parse_args(argv)
    from dockyard.api import serve
    from dockyard.engine import Engine

    engine = Engine(root=ctx.root, run_root=ctx.run_root)  # resolves the defaults only
    return serve(engine.root, engine.run_root, a.host, debug=a.debug)
