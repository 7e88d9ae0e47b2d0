"""``dockyard build``: Docker's flags; the context (a directory, ``-``, a URL, a git repository)
from build/prepare.py; classic or BuildKit output."""

from __future__ import annotations

import os
import sys

from dockyard.cli.context import Context
from dockyard.errors import InvalidArgument


def cmd_build(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS] PATH | URL | -", "Build an image from a Dockerfile")
    p.add_argument("path")
    p.add_argument("-t", "--tag", action="append", default=[], help="Name and optionally a tag")
    p.add_argument("-f", "--file", help="Name of the Dockerfile (default: 'PATH/Dockerfile')")
    p.add_argument("--build-arg", action="append", default=[], help="Set build-time variables")
    p.add_argument("--target", default="", help="Set the target build stage to build")
    p.add_argument("--no-cache", action="store_true", help="Do not use cache when building")
    p.add_argument("--label", action="append", default=[], help="Set metadata for an image")
    p.add_argument("-q", "--quiet", action="store_true", help="Print the image ID on success")
    p.add_argument(
        "--progress",
        default="auto",
        choices=("auto", "plain", "tty"),
        help="Type of progress output (auto, plain, tty)",
    )
    p.add_argument("--network", default="default", help="Networking mode for RUN instructions")
    p.add_argument("--pull", action="store_true", help="Always attempt to pull the base images")
    p.add_argument("--iidfile", default="", help="Write the image ID to the file")
    p.add_argument("--rm", default=True, action="store_true", help="(always) remove containers")
    p.add_argument("--force-rm", action="store_true", help="(always) remove containers")
    p.add_argument(
        "--secret",
        action="append",
        default=[],
        help='Secret to expose to the build (format: "id=mysecret[,src=/local/secret]")',
    )
    p.add_argument(
        "-o",
        "--output",
        action="append",
        default=[],
        help='Output destination (format: "type=local,dest=path")',
    )
    p.add_argument(
        "--cache-from", action="append", default=[], help="Images to consider as cache sources"
    )
    p.add_argument(
        "--platform", default="", help="Set platform if server is multi-platform capable"
    )
    a = p.parse_args(argv)

    from dockyard.builder.builder import BuildOptions
    from dockyard.builder.progress import make_progress

    build_args: dict[str, str | None] = {}
    for spec in a.build_arg:
        k, eq, v = spec.partition("=")
        if not k:
            raise InvalidArgument(f"invalid build-arg {spec!r}")
        build_args[k] = v if eq else None
    labels: dict[str, str] = {}
    for spec in a.label:
        k, _, v = spec.partition("=")
        if not k:
            raise InvalidArgument(f"invalid label {spec!r}")
        labels[k] = v

    from dockyard.cli.buildopts import parse_outputs, read_secrets

    # Docker's CLI reads the secrets before it sends anything: a missing file fails here.
    secrets = read_secrets(a.secret)
    outputs = parse_outputs(a.output)
    cache_from = [r for spec in a.cache_from for r in _cache_from_refs(spec)]

    import signal

    from dockyard.builder.prepare import prepare

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds the build: its container, mounts and temp dirs go

    signal.signal(signal.SIGTERM, _terminate)
    if a.iidfile:
        try:
            os.unlink(a.iidfile)  # as Docker: no stale ID is left if this build fails
        except FileNotFoundError:
            pass
        except OSError as e:
            raise InvalidArgument(f"Removing image ID file: {e.strerror}: {a.iidfile}") from None
    to_stdout = any(o.dest == "-" for o in outputs)
    progress = make_progress(
        a.progress if a.progress != "auto" else "classic", a.quiet, stderr=to_stdout
    )
    say = None if a.quiet else progress.message
    with prepare(ctx.engine.root, a.path, a.file, sys.stdin.buffer, say) as prepared:
        image_id = ctx.engine.builder.build(
            BuildOptions(
                dockerfile=prepared.dockerfile,
                context=prepared.context,
                tags=a.tag,
                build_args=build_args,
                target=a.target,
                no_cache=a.no_cache,
                labels=labels,
                network=a.network,
                pull=a.pull,
                dockerignore=prepared.dockerignore,
                secrets=secrets,
                platform=a.platform,
                outputs=outputs,
                cache_from=cache_from,
            ),
            progress,
        )
    if a.iidfile:
        _write_iidfile(a.iidfile, image_id)
    if a.quiet and not to_stdout:
        print(image_id)
    return 0


def _cache_from_refs(spec: str) -> list[str]:
    """``--cache-from REF`` or BuildKit's ``type=registry,ref=REF`` form."""
    if "=" not in spec:
        return [spec]
    fields = dict(f.partition("=")[::2] for f in spec.split(","))
    kind = fields.get("type", "registry")
    if kind != "registry" or not fields.get("ref"):
        raise InvalidArgument(
            f"--cache-from {spec}: only images (type=registry,ref=...) are supported"
        )
    return [fields["ref"]]


def _write_iidfile(path: str, image_id: str) -> None:
    """The full image ID, no newline (Docker's --iidfile), replaced atomically."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(image_id)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise InvalidArgument(f"Cannot write image ID file: {e.strerror}: {path}") from None


def cmd_builder_prune(ctx: Context, argv: list[str]) -> int:
    p = ctx.parser("[OPTIONS]", "Remove build cache")
    p.add_argument(
        "-a", "--all", action="store_true", help="Remove all unused build cache, not just dangling"
    )
    p.add_argument("--filter", action="append", default=[], help='Filter values ("until=24h")')
    p.add_argument("-f", "--force", action="store_true", help="Do not prompt for confirmation")
    a = p.parse_args(argv)
    from dockyard.engine.builder import cache_prune_until

    filters: dict[str, list[str]] = {}
    for spec in a.filter:
        key, _, value = spec.partition("=")
        filters.setdefault(key, []).append(value)
    until = cache_prune_until(filters)
    from dockyard.cli.output import confirm, human_size, print_deleted

    what = "all build cache" if a.all else "all dangling build cache"
    if not a.force and not confirm(f"This will remove {what}.", sep=" "):
        return 0
    report = ctx.engine.builder.prune(all_entries=a.all, until=until)
    print_deleted("build cache objects", report.deleted)
    print(f"Total reclaimed space: {human_size(report.reclaimed)}")
    return 0
