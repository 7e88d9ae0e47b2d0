"""``dockyard network create|ls|inspect|rm|prune``: Docker's verbs and output shapes."""

from __future__ import annotations

from dockyard.cli.context import Context
from dockyard.cli.output import confirm, for_each_name, print_deleted, table
from dockyard.errors import DockyardError, InvalidArgument

_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE"}


def cmd_network_create(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] NETWORK", "Create a network")
    p.add_argument("name")
    p.add_argument("-d", "--driver", default="bridge")
    p.add_argument("--subnet", action="append", default=[])
    p.add_argument("--gateway", action="append", default=[])
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--internal", action="store_true")
    a = p.parse_args(argv)
    if a.driver != "bridge":
        raise InvalidArgument(f"network driver {a.driver!r} is not supported: use bridge")
    if len(a.subnet) > 1 or len(a.gateway) > 1:
        raise InvalidArgument("only one --subnet and one --gateway are supported")
    labels = dict(lbl.partition("=")[::2] for lbl in a.label)
    print(
        ctx.engine.networks.create(
            a.name,
            subnet=a.subnet[0] if a.subnet else None,
            gateway=a.gateway[0] if a.gateway else None,
            labels=labels,
            internal=a.internal,
        )
    )
    return 0


def cmd_network_ls(ctx: Context, argv: list[str]) -> int:
    a = ctx.args("network ls", argv)
    from dockyard.cli.rows import NetworkRow

    nets = [NetworkRow(n, trunc=not a.no_trunc) for n in ctx.engine.networks.list_networks()]
    if a.quiet:
        if nets:
            print("\n".join(n.ID() for n in nets))
        return 0
    if a.format and a.format != "table":
        from dockyard.cli.formatter import write_list

        write_list(a.format, nets, NetworkRow.header)
        return 0
    rows = [[n.ID(), n.Name(), n.Driver(), n.Scope()] for n in nets]
    print(table(list(_HEADERS.values()), rows))
    return 0


def cmd_network_inspect(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.images import inspect_each

    p = ctx.parser("[OPTIONS] NETWORK [NETWORK...]", "Display detailed information on networks")
    p.add_argument("names", nargs="+")
    p.add_argument("-f", "--format")
    a = p.parse_args(argv)
    return inspect_each(a.names, ctx.engine.networks.inspect, a.format, catch=DockyardError)


def cmd_network_rm(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("NETWORK [NETWORK...]", "Remove one or more networks")
    p.add_argument("names", nargs="+")
    a = p.parse_args(argv)
    return for_each_name(a.names, ctx.engine.networks.remove)


def cmd_network_prune(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Remove all unused networks")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument(
        "--filter",
        action="append",
        default=[],
        help='Provide filter values (e.g. "until=<timestamp>")',
    )
    a = p.parse_args(argv)
    from dockyard.cli.output import parse_filters
    from dockyard.engine.prune import NETWORK_FILTERS, prune_filters

    filters = prune_filters(parse_filters(a.filter), NETWORK_FILTERS)
    if not a.force and not confirm(
        "This will remove all custom networks not used by at least one container."
    ):
        return 0
    print_deleted("Networks", ctx.engine.networks.prune(filters))
    return 0


def cmd_network_connect(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] NETWORK CONTAINER", "Connect a container to a network")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("--alias", action="append", default=[])
    p.add_argument("--ip", default="")
    a = p.parse_args(argv)
    ctx.engine.networks.connect(a.network, a.container, a.alias, a.ip)
    return 0


def cmd_network_disconnect(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] NETWORK CONTAINER", "Disconnect a container from a network")
    p.add_argument("network")
    p.add_argument("container")
    p.add_argument("-f", "--force", action="store_true")
    a = p.parse_args(argv)
    ctx.engine.networks.disconnect(a.network, a.container, force=a.force)
    return 0
