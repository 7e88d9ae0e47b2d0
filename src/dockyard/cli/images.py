"""Image verbs: images, tag, rmi, history, save, load, import, inspect, image prune/bootstrap."""

from __future__ import annotations

import os
import sys

from dockyard.cli.context import Context
from dockyard.cli.output import (
    ago,
    confirm,
    human_size,
    parse_filters,
    print_deleted,
    table,
    trunc_id,
)
from dockyard.errors import DockyardError, InvalidArgument, NotFound

# Not typing's: inspect, images and image prune start with this module (~3 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def print_deleted_images(report: Any) -> None:
    """The ``Deleted Images:`` section of a prune (image prune, system prune)."""
    print_deleted("Images", [f"{kind.lower()}: {what}" for kind, what in report.items])


def _print_report(report: Any, *, prune: bool = False) -> None:
    if prune:
        print_deleted_images(report)
        print(f"Total reclaimed space: {human_size(report.reclaimed)}")
        return
    for kind, what in report.items:
        print(f"{kind}: {what}")


def cmd_images(ctx: Context, argv: list[str]) -> int:
    a = ctx.args("images", argv)
    filters = parse_filters(a.filter)
    unknown = set(filters) - {"dangling", "reference"}
    if unknown:
        raise InvalidArgument(f"invalid filter '{sorted(unknown)[0]}'")
    dangling = None
    if "dangling" in filters:
        v = filters["dangling"][-1].lower()
        if v not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={v}'")
        dangling = v in ("true", "1")
    refs = filters.get("reference", []) + ([a.reference] if a.reference else [])
    rows = ctx.engine.images.list_images(all_images=a.all, dangling=dangling)
    if refs:
        from dockyard.engine.images import _match_reference

        rows = [r for r in rows if any(_match_reference(x, r.repository, r.tag) for x in refs)]
    if a.quiet:
        seen: list[str] = []
        for r in rows:
            i = trunc_id(r.id, a.no_trunc)
            if i not in seen:
                seen.append(i)
        if seen:
            print("\n".join(seen))
        return 0
    from dockyard.cli.rows import ImageRow

    ctxs = [ImageRow(r, trunc=not a.no_trunc) for r in rows]
    fmt = a.format or ""
    if fmt and fmt != "table":
        from dockyard.cli.formatter import write_list

        # NewImageFormat: --digests adds the column to a custom table that lacks it
        if fmt.startswith("table") and a.digests and "{{.Digest}}" not in fmt:
            fmt += "\t{{.Digest}}"
        write_list(fmt, ctxs, ImageRow.header)
        return 0
    cols = ["Repository", "Tag"] + (["Digest"] if a.digests else []) + ["ID", "CreatedSince"]
    # the default table's {{if .CreatedSince}}...{{else}}N/A{{end}}
    cells = [
        [getattr(x, c)() for c in cols[:-1]] + [x.CreatedSince() or "N/A", x.Size()] for x in ctxs
    ]
    print(table([ImageRow.header[c] for c in cols] + ["SIZE"], cells))
    return 0


def cmd_tag(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser(
        "SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
    )
    p.add_argument("source")
    p.add_argument("target")
    a = p.parse_args(argv)
    ctx.engine.images.tag(a.source, a.target)
    return 0


def cmd_rmi(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] IMAGE [IMAGE...]", "Remove one or more images")
    p.add_argument("images", nargs="+")
    p.add_argument("-f", "--force", action="store_true", help="Force removal of the image")
    p.add_argument("--no-prune", action="store_true", help="Do not delete untagged parents")
    a = p.parse_args(argv)
    status = 0
    for name in a.images:
        # Docker goes on with the other names and exits 1 if any failed.
        try:
            report = ctx.engine.images.remove([name], force=a.force, prune=not a.no_prune)
        except DockyardError as e:
            print(f"Error: {e}", file=sys.stderr)
            status = 1
            continue
        _print_report(report)
    return status


def cmd_image_prune(ctx: Context, argv: list[str]) -> int:
    a = ctx.args("image prune", argv)
    from dockyard.cli.output import parse_filters
    from dockyard.engine.prune import IMAGE_FILTERS, prune_filters

    filters = prune_filters(parse_filters(a.filter), IMAGE_FILTERS)
    what = (
        "all images without at least one container associated to them"
        if a.all
        else "all dangling images"
    )
    if not a.force and not confirm(f"This will remove {what}."):
        return 0
    _print_report(ctx.engine.images.prune(all_images=a.all, filters=filters), prune=True)
    return 0


def cmd_history(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] IMAGE", "Show the history of an image")
    p.add_argument("image")
    p.add_argument("-H", "--human", default="true", help="Print sizes and dates in human form")
    p.add_argument("-q", "--quiet", action="store_true", help="Only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="Don't truncate output")
    p.add_argument("--format", help="Pretty-print history using a Go template")
    a = p.parse_args(argv)
    rows = ctx.engine.images.history(a.image)
    human = a.human.lower() not in ("false", "0")
    if a.quiet:
        print("\n".join(trunc_id(r.id, a.no_trunc) if r.id != "<missing>" else r.id for r in rows))
        return 0
    dicts = []
    for r in rows:
        created_by = r.created_by
        if not a.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        dicts.append(
            {
                "ID": trunc_id(r.id, a.no_trunc) if r.id != "<missing>" else r.id,
                "CreatedSince": ago(r.created) if human else r.created,
                "CreatedAt": r.created,
                "CreatedBy": created_by,
                "Size": human_size(r.size) if human else str(r.size),
                "Comment": r.comment,
            }
        )
    if a.format and a.format != "table":
        from dockyard.cli.formatter import write_list
        from dockyard.cli.rows import DictRow

        header = {
            "ID": "IMAGE",
            "CreatedSince": "CREATED",
            "CreatedAt": "CREATED AT",
            "CreatedBy": "CREATED BY",
            "Size": "SIZE",
            "Comment": "COMMENT",
        }
        write_list(a.format, [DictRow(d, "*image.historyContext") for d in dicts], header)
        return 0
    cols = ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"]
    print(
        table(
            ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            [[d[c] for c in cols] for d in dicts],
        )
    )
    return 0


def cmd_save(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive")
    p.add_argument("images", nargs="+")
    p.add_argument("-o", "--output", help="Write to a file, instead of STDOUT")
    p.add_argument(
        "--format",
        default="docker",
        choices=["docker", "oci"],
        help="Archive format: docker (docker-archive) or oci (OCI image layout)",
    )
    a = p.parse_args(argv)
    ctx.engine.images.save(a.images, a.output, a.format)
    return 0


def cmd_load(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", help="Read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress the load output")
    a = p.parse_args(argv)
    path = a.input
    spooled = None
    if path is None:
        if sys.stdin.isatty():
            raise InvalidArgument(
                "requested load from stdin, but stdin is empty or a terminal; use -i FILE"
            )
        from dockyard.engine.images import stdin_to_file

        spooled = path = stdin_to_file(sys.stdin.buffer, ctx.engine.store.content.ingest_dir)
    elif not os.path.exists(path):
        raise NotFound(f"open {path}: no such file or directory")
    try:
        lines = ctx.engine.images.load(path)
    finally:
        if spooled:
            os.unlink(spooled)
    if not a.quiet:
        print("\n".join(lines))
    return 0


def cmd_import(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser(
        "[OPTIONS] file|- [REPOSITORY[:TAG]]",
        "Import the contents from a tarball to create a filesystem image",
    )
    p.add_argument("source")
    p.add_argument("reference", nargs="?")
    p.add_argument(
        "-c",
        "--change",
        action="append",
        default=[],
        help="Apply Dockerfile instruction to the created image",
    )
    p.add_argument("-m", "--message", default="", help="Set commit message for imported image")
    a = p.parse_args(argv)
    if a.source == "-":
        src = sys.stdin.buffer
        image_id = ctx.engine.images.import_(src, a.reference, a.change, a.message, "-")
    else:
        if "://" in a.source:
            image_id = ctx.engine.images.import_url(a.source, a.reference, a.change, a.message)
            print(image_id)
            return 0
        try:
            f = open(a.source, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFound(f"open {a.source}: no such file or directory") from None
        with f:
            image_id = ctx.engine.images.import_(f, a.reference, a.change, a.message, a.source)
    print(image_id)
    return 0


def _inspect_common(ctx: Context, argv: list[str], name: str) -> tuple[Any, list[str]]:
    a = ctx.args(name, argv)
    return a, a.names


def _print_inspect(objs: list[dict[str, Any]], fmt: str | None) -> int:
    """The objects as indented JSON, or each through ``-f``'s template; an object the
    template fails on prints one ``Error:`` line and makes the status 1, as in Docker."""
    if not fmt:
        from dockyard.fastjson import dumps_indented

        print(dumps_indented(objs))
        return 0
    from dockyard.cli.formatter import render_inspect

    failed: list[str] = []
    out = render_inspect(fmt, objs, failed.append)
    sys.stdout.write(out)
    for err in failed:
        print(f"Error: {err}", file=sys.stderr)
    return 1 if failed else 0


def inspect_each(
    names: list[str],
    get: Callable[[str], dict[str, Any]],
    fmt: str | None,
    *,
    missing: str = "",
    catch: type[DockyardError] = NotFound,
) -> int:
    """``docker <object> inspect NAME...``: every object found is printed; each name that
    fails prints one ``Error:`` line (``<missing>: NAME`` when given, else the error's own
    message) and makes the exit status 1."""
    objs, status = [], 0
    for n in names:
        try:
            objs.append(get(n))
        except catch as e:
            print(f"Error: {missing}: {n}" if missing else f"Error: {e}", file=sys.stderr)
            status = 1
    return _print_inspect(objs, fmt) or status


def cmd_image_inspect(ctx: Context, argv: list[str]) -> int:
    a, names = _inspect_common(ctx, argv, "image inspect")
    return inspect_each(names, ctx.engine.images.inspect, a.format, missing="No such image")


def cmd_inspect(ctx: Context, argv: list[str]) -> int:
    a, names = _inspect_common(ctx, argv, "inspect")
    if a.type not in (None, "container", "image", "volume"):
        raise InvalidArgument(f'"{a.type}" is not a valid value for --type')
    objs, status = [], 0
    for n in names:
        obj = _find_object(ctx, n, a.type)
        if obj is None:
            print(f"Error: No such object: {n}", file=sys.stderr)
            status = 1
        else:
            objs.append(obj)
    return _print_inspect(objs, a.format) or status


def _find_object(ctx: Context, name: str, kind: str | None) -> dict[str, Any] | None:
    """Docker's order: a container, then an image, then a volume (unless --type says)."""
    # The services are made on first use: inspecting a container loads no image code.
    for k in ("container", "image", "volume"):
        if kind in (None, k):
            service = getattr(ctx.engine, f"{k}s")
            try:
                obj: dict[str, Any] = service.inspect(name)
                return obj
            except (NotFound, InvalidArgument):
                continue
    return None


def cmd_container_inspect(ctx: Context, argv: list[str]) -> int:
    a, names = _inspect_common(ctx, argv, "container inspect")
    return inspect_each(names, ctx.engine.containers.inspect, a.format, missing="No such container")


def cmd_bootstrap(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser(
        "[OPTIONS] busybox | debian[:SUITE] | node[:VERSION] | python[:VERSION]",
        "Make a base image on this machine: busybox from the host's static busybox (offline),"
        " debian, node and python from Debian's packages (mmdebstrap)",
    )
    p.add_argument("name")
    p.add_argument("--suite", help="Debian suite (default bookworm; debian:SUITE names it)")
    p.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="URL",
        help="Debian mirror, or a sources.list line (default: mmdebstrap's, with the"
        " updates and security suites)",
    )
    p.add_argument(
        "-c",
        "--change",
        action="append",
        default=[],
        help="Apply Dockerfile instruction to the image config (as import does)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="Build again even if the bootstrap cache has these package versions",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="Print only the image ID")
    a = p.parse_args(argv)
    from dockyard.store.bootstrap.debian import BootstrapOptions

    options = BootstrapOptions(
        suite=a.suite,
        mirrors=tuple(a.mirror),
        changes=tuple(a.change),
        use_cache=not a.no_cache,
    )
    image_id, _tags = ctx.engine.images.bootstrap(
        a.name, options, None if a.quiet else BootstrapProgress()
    )
    print(image_id)
    return 0


class BootstrapProgress:
    """Bootstrap's progress on stderr (stdout keeps the image ID alone): pull's renderer on a
    terminal; elsewhere one line per step and phase, without the counts in between."""

    def __init__(self) -> None:
        from dockyard.cli.registry import ProgressPrinter

        self.tty = sys.stderr.isatty()
        self.printer = ProgressPrinter(sys.stderr, tty=self.tty)
        self.last: dict[str, str] = {}

    def __call__(self, msg: dict[str, Any]) -> None:
        if not self.tty:
            ident, status = str(msg.get("id", "")), str(msg.get("status", ""))
            if self.last.get(ident) == status:
                return
            self.last[ident] = status
            msg = {k: v for k, v in msg.items() if k != "progressDetail"}
        elif msg.get("unit") == "packages" and msg.get("progressDetail"):
            # counts of packages, not bytes: the bar without pull's sizes
            from dockyard.cli.registry import progress_bar

            done, total = msg["progressDetail"]["current"], msg["progressDetail"]["total"]
            bar = progress_bar(done, total).split("]")[0] + "]"
            msg = {"id": msg["id"], "status": f"{msg['status']} {bar} {done}/{total} packages"}
        self.printer(msg)
