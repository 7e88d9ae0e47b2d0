"""``dockyard build``: Docker's flags, the context dir or ``-``, classic or BuildKit output."""

from __future__ import annotations

import os
import sys

from dockyard.build.parser import BuildError
from dockyard.cli.context import Context
from dockyard.errors import InvalidArgument

_TAR_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ")


def _read_stdin() -> bytes:
    return sys.stdin.buffer.read()


def _is_tar(data: bytes) -> bool:
    return data[257:262] == b"ustar" or any(data.startswith(m) for m in _TAR_MAGIC)


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
    p.add_argument("--rm", default=True, action="store_true", help="(always) remove containers")
    p.add_argument("--force-rm", action="store_true", help="(always) remove containers")
    a = p.parse_args(argv)

    from dockyard.build.builder import BuildOptions
    from dockyard.build.progress import make_progress

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

    context: str | None
    dockerignore: str | None = None
    stdin_context_dir: str | None = None
    if a.path == "-":
        if a.file == "-":
            raise InvalidArgument(
                "invalid argument: can't use stdin for both build context and dockerfile"
            )
        data = _read_stdin()
        if _is_tar(data):
            context = stdin_context_dir = _unpack_context(ctx, data)
            dockerfile = _read_dockerfile(context, a.file)
        else:
            context = None
            dockerfile = data.decode("utf-8", "replace")
    else:
        if "://" in a.path or a.path.startswith("git@"):
            raise BuildError(
                f"unable to prepare context: remote contexts are not supported: {a.path}"
            )
        context = os.path.abspath(a.path)
        if not os.path.isdir(context):
            raise BuildError(f'unable to prepare context: path "{a.path}" not found')
        if a.file == "-":
            dockerfile = _read_stdin().decode("utf-8", "replace")
        else:
            dockerfile = _read_dockerfile(context, a.file)
    if context is not None:
        try:
            with open(os.path.join(context, ".dockerignore"), encoding="utf-8") as f:
                dockerignore = f.read()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise InvalidArgument(f"unable to read .dockerignore: {e.strerror}") from None

    import signal

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds the build: its container, mounts and temp dirs go

    signal.signal(signal.SIGTERM, _terminate)
    progress = make_progress(a.progress if a.progress != "auto" else "classic", a.quiet)
    try:
        image_id = ctx.engine.builder.build(
            BuildOptions(
                dockerfile=dockerfile,
                context=context,
                tags=a.tag,
                build_args=build_args,
                target=a.target,
                no_cache=a.no_cache,
                labels=labels,
                network=a.network,
                pull=a.pull,
                dockerignore=dockerignore,
            ),
            progress,
        )
    finally:
        if stdin_context_dir:
            import shutil

            shutil.rmtree(stdin_context_dir, ignore_errors=True)
    if a.quiet:
        print(image_id)
    return 0


def _read_dockerfile(context: str, name: str | None) -> str:
    if name:
        path = name if os.path.isabs(name) or os.path.exists(name) else os.path.join(context, name)
    else:
        path = os.path.join(context, "Dockerfile")
        if not os.path.exists(path) and os.path.exists(os.path.join(context, "dockerfile")):
            path = os.path.join(context, "dockerfile")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise BuildError(
            f"unable to prepare context: unable to evaluate symlinks in Dockerfile path: "
            f"lstat {path}: no such file or directory"
        ) from None
    except IsADirectoryError:
        raise BuildError(f"unable to prepare context: {path} is a directory") from None


def _unpack_context(ctx: Context, data: bytes) -> str:
    """A tar on stdin is the context (``docker build - < context.tar``)."""
    import io

    from dockyard.errors import CorruptData
    from dockyard.image.layer import apply_layer

    base = os.path.join(ctx.engine.root, "build", "tmp")
    os.makedirs(base, exist_ok=True)
    path = os.path.join(base, f"{os.getpid()}-ctx-{os.urandom(6).hex()}")
    os.makedirs(path)
    try:
        stream = io.BytesIO(data)
        if data.startswith((b"BZh", b"\xfd7zXZ")):
            import bz2
            import lzma

            raw = bz2.decompress(data) if data.startswith(b"BZh") else lzma.decompress(data)
            stream = io.BytesIO(raw)
        apply_layer(stream, path, overlay_whiteouts=False)
    except (CorruptData, OSError) as e:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        raise InvalidArgument(f"unable to read the build context from stdin: {e}") from None
    except BaseException:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        raise
    return path
