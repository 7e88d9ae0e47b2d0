"""The ``dockyard`` command: global options, then one command's module (cli/ for the verbs,
api/ for ``dockyard daemon``). Above both front ends, which never import each other. Kept
import-light: only the chosen command's module is imported."""

from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False  # not typing's: ~2 ms of every command's start-up
if TYPE_CHECKING:
    from dockyard.cli.context import Context

USAGE = """Usage:  dockyard [OPTIONS] COMMAND

A Docker-compatible container engine

Options:
      --root string       Storage root (default /var/lib/dockyard, or $DOCKYARD_ROOT)
      --run-root string   Runtime state root (default /run/dockyard, or $DOCKYARD_RUN_ROOT)
  -D, --debug             Show tracebacks for errors
  -v, --version           Print version information and quit

Container commands:
  run         Run a command in a new container
  create      Create a new container
  start       Start one or more stopped containers
  stop        Stop one or more running containers
  restart     Restart one or more containers
  kill        Kill one or more running containers
  pause       Pause all processes within one or more containers
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  rm          Remove one or more containers
  ps          List containers
  logs        Fetch the logs of a container
  attach      Attach to a running container
  exec        Run a command in a running container
  wait        Block until containers stop, then print their exit codes
  top         Display the running processes of a container
  rename      Rename a container
  cp          Copy files between a container and the host
  diff        Inspect changes to files on a container's filesystem
  export      Export a container's filesystem as a tar archive
  commit      Create a new image from a container's changes
  port        List port mappings of a container
  stats       Display a live stream of container resource usage
  container   Manage containers (ls, prune, ...)
  volume      Manage volumes (create, ls, inspect, rm, prune)
  network     Manage networks (create, ls, inspect, rm, prune, connect, disconnect)

Image commands:
  build       Build an image from a Dockerfile
  builder     Manage builds (build, prune)
  images      List images
  image       Manage images (ls, rm, inspect, prune, tag, history, save, load, import, bootstrap)
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  rmi         Remove one or more images
  history     Show the history of an image
  save        Save one or more images to a tar archive
  load        Load an image from a tar archive or STDIN
  import      Import the contents from a tarball to create a filesystem image
  inspect     Return low-level information on Docker objects

Registry commands:
  pull        Download an image from a registry
  push        Upload an image to a registry
  login       Log in to a registry
  logout      Log out from a registry
  search      Search a registry for images

System:
  system      Manage dockyard (df, check, prune, restore, events)
  events      Get real time events (containers, images, networks, volumes)
  version     Show the version information
  hub         Run our registry (serve, user, repo, gc)
  daemon      Serve the Docker Engine API on a Unix socket
"""

# command -> (module under dockyard.cli, function)
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("build", "cmd_build"),
    "images": ("images", "cmd_images"),
    "tag": ("images", "cmd_tag"),
    "rmi": ("images", "cmd_rmi"),
    "history": ("images", "cmd_history"),
    "save": ("images", "cmd_save"),
    "load": ("images", "cmd_load"),
    "import": ("images", "cmd_import"),
    "inspect": ("images", "cmd_inspect"),
    "pull": ("registry", "cmd_pull"),
    "push": ("registry", "cmd_push"),
    "login": ("registry", "cmd_login"),
    "logout": ("registry", "cmd_logout"),
    "search": ("registry", "cmd_search"),
    "version": ("system", "cmd_version"),
    "events": ("events", "cmd_events"),
    "run": ("containers", "cmd_run"),
    "create": ("containers", "cmd_create"),
    "start": ("containers", "cmd_start"),
    "stop": ("containers", "cmd_stop"),
    "restart": ("containers", "cmd_restart"),
    "kill": ("containers", "cmd_kill"),
    "pause": ("containers", "cmd_pause"),
    "unpause": ("containers", "cmd_unpause"),
    "update": ("containers", "cmd_update"),
    "export": ("containers", "cmd_export"),
    "rm": ("containers", "cmd_rm"),
    "ps": ("ps", "cmd_ps"),
    "logs": ("containers", "cmd_logs"),
    "attach": ("containers", "cmd_attach"),
    "exec": ("containers", "cmd_exec"),
    "wait": ("containers", "cmd_wait"),
    "top": ("containers", "cmd_top"),
    "rename": ("containers", "cmd_rename"),
    "cp": ("containers", "cmd_cp"),
    "diff": ("containers", "cmd_diff"),
    "commit": ("containers", "cmd_commit"),
    "port": ("containers", "cmd_port"),
    "stats": ("stats", "cmd_stats"),
}

DAEMON = ("", "daemon")  # the Engine API server (api/), not a CLI verb
COMMANDS["daemon"] = DAEMON

_CONTAINER_VERBS = {
    verb: target
    for verb, target in COMMANDS.items()
    if target[0] == "containers" and verb not in ("run", "create")
}

GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "hub": {
        "serve": ("hub", "cmd_hub_serve"),
        "user": ("hub", "cmd_hub_user"),
        "repo": ("hub", "cmd_hub_repo"),
        "gc": ("hub", "cmd_hub_gc"),
    },
    "builder": {
        "build": ("build", "cmd_build"),
        "prune": ("build", "cmd_builder_prune"),
    },
    "image": {
        "build": ("build", "cmd_build"),
        "ls": ("images", "cmd_images"),
        "list": ("images", "cmd_images"),
        "rm": ("images", "cmd_rmi"),
        "remove": ("images", "cmd_rmi"),
        "inspect": ("images", "cmd_image_inspect"),
        "prune": ("images", "cmd_image_prune"),
        "tag": ("images", "cmd_tag"),
        "history": ("images", "cmd_history"),
        "save": ("images", "cmd_save"),
        "load": ("images", "cmd_load"),
        "import": ("images", "cmd_import"),
        "bootstrap": ("images", "cmd_bootstrap"),
    },
    "system": {
        "df": ("system", "cmd_df"),
        "check": ("system", "cmd_check"),
        "prune": ("system", "cmd_prune"),
        "restore": ("system", "cmd_restore"),
        "events": ("events", "cmd_events"),
    },
    "container": {
        **_CONTAINER_VERBS,
        "run": ("containers", "cmd_run"),
        "create": ("containers", "cmd_create"),
        "ls": ("ps", "cmd_ps"),
        "list": ("ps", "cmd_ps"),
        "ps": ("ps", "cmd_ps"),
        "inspect": ("images", "cmd_container_inspect"),
        "prune": ("containers", "cmd_container_prune"),
        "stats": ("stats", "cmd_stats"),
        "_exited": ("containers", "cmd_exited"),
        "_restart": ("containers", "cmd_restart_after"),
    },
    "network": {
        "create": ("networks", "cmd_network_create"),
        "ls": ("networks", "cmd_network_ls"),
        "list": ("networks", "cmd_network_ls"),
        "inspect": ("networks", "cmd_network_inspect"),
        "rm": ("networks", "cmd_network_rm"),
        "remove": ("networks", "cmd_network_rm"),
        "prune": ("networks", "cmd_network_prune"),
        "connect": ("networks", "cmd_network_connect"),
        "disconnect": ("networks", "cmd_network_disconnect"),
    },
    "volume": {
        "create": ("volumes", "cmd_volume_create"),
        "ls": ("volumes", "cmd_volume_ls"),
        "list": ("volumes", "cmd_volume_ls"),
        "inspect": ("volumes", "cmd_volume_inspect"),
        "rm": ("volumes", "cmd_volume_rm"),
        "remove": ("volumes", "cmd_volume_rm"),
        "prune": ("volumes", "cmd_volume_prune"),
    },
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts: dict[str, str] = {}
    debug = False
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a in ("-v", "--version"):
            from dockyard import __version__

            print(f"dockyard version {__version__}")
            return 0
        if a in ("-h", "--help"):
            print(USAGE)
            return 0
        if a in ("-D", "--debug"):
            debug = True
            continue
        key, eq, value = a.partition("=")
        if key in ("--root", "--run-root"):
            if not eq:
                if not args:
                    return _usage_error(f"flag needs an argument: {key}")
                value = args.pop(0)
            opts[key] = value
            continue
        return _usage_error(f"unknown flag: {a}")
    if not args:
        print(USAGE)
        return 0
    name = args.pop(0)
    prog = name
    target = COMMANDS.get(name)
    if target is None and name in GROUPS:
        group = GROUPS[name]
        if not args or args[0] in ("-h", "--help"):
            print(
                f"Usage:  dockyard {name} COMMAND\n\nCommands:\n"
                + "\n".join(f"  {c}" for c in group)
            )
            return 0
        sub = args.pop(0)
        target = group.get(sub)
        prog = f"{name} {sub}"
        if target is None:
            return _usage_error(f"unknown command: dockyard {name} {sub}")
    if target is None:
        return _usage_error(f"unknown command: dockyard {name}")
    if target not in _SHORT:
        gc.enable()  # the entry script turned it off for start-up; a long run needs it
    if target == COMMANDS["exec"]:
        # Common exec forms become `runc exec` without argparse and most imports; the rest,
        # and every error, come back here for the normal path.
        from dockyard.cli.exec_fast import lean_exec

        lean_exec(opts.get("--root"), opts.get("--run-root"), args)
    if target == COMMANDS["logs"]:
        # `logs --tail N` and friends without argparse: a latency benchmark. None: the
        # normal path (other forms, and every error, reported there).
        from dockyard.cli.logs_fast import lean_logs

        lean_code = lean_logs(opts.get("--root"), opts.get("--run-root"), args)
        if lean_code is not None:
            _exit_now(lean_code)

    from dockyard.cli.context import Context
    from dockyard.errors import DockyardError

    ctx = Context(root=opts.get("--root"), run_root=opts.get("--run-root"), prog=prog)
    # __import__, not importlib.import_module: importlib brings warnings (~0.5 ms).
    func = cmd_daemon if target == DAEMON else getattr(_cli(target[0]), target[1])
    try:
        code = int(func(ctx, args) or 0)
    except DockyardError as e:
        if debug:
            ctx.close()
            raise
        print(f"Error: {e}", file=sys.stderr)
        code = e.exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # Output piped into `head`: not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 141
    except BaseException:
        ctx.close()
        raise
    if target[0] == "containers" or target in _QUICK_EXIT:
        _exit_now(code)
    ctx.close()
    return code


# The small image, system, volume and network verbs end as the container verbs do
# (``_exit_now``): closing the store would checkpoint its WAL, ~3 ms of `inspect`'s time.
_QUICK_EXIT = {
    ("ps", "cmd_ps"),
    ("images", "cmd_images"),
    ("images", "cmd_inspect"),
    ("images", "cmd_image_inspect"),
    ("images", "cmd_container_inspect"),
    ("images", "cmd_image_prune"),
    ("system", "cmd_version"),
    ("system", "cmd_df"),
    ("volumes", "cmd_volume_ls"),
    ("networks", "cmd_network_ls"),
}

# Commands that end soon after their modules load: the collector stays off for them (the
# entry script turns it off; it would walk the new modules' objects several times, ~1 ms).
# Their garbage is freed by reference counting; a cycle or two lives until the exit.
_SHORT = _QUICK_EXIT | {
    ("containers", "cmd_create"),
    ("containers", "cmd_port"),
    ("containers", "cmd_rm"),
    ("containers", "cmd_run"),  # an attached one turns it on for the session (runtime/attach)
}


def _cli(name: str) -> object:
    __import__(f"dockyard.cli.{name}")
    return sys.modules[f"dockyard.cli.{name}"]


def cmd_daemon(ctx: Context, argv: list[str]) -> int:
    """``dockyard daemon``: serve the engine as the Docker Engine API on a Unix socket."""
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


def _exit_now(code: int) -> None:
    """End a container command without tearing the interpreter down: every file it wrote is
    closed by then, and closing the metadata DB would make SQLite checkpoint its WAL (a few ms
    of fsync on every ``run``). Committed transactions are already durable in the WAL, which
    the next command reads, and the store keeps the WAL small (``wal_autocheckpoint``)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)


def _usage_error(message: str) -> int:
    print(f"{message}\nSee 'dockyard --help'.", file=sys.stderr)
    return 125


if __name__ == "__main__":
    sys.exit(main())
