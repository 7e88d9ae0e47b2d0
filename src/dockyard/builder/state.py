"""The values a build passes around: its options, a stage's state as steps go, a step's plan."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from dockyard.builder.parser import BuildError
from dockyard.errors import DockyardError

if TYPE_CHECKING:
    from dockyard.builder.platforms import Platform
    from dockyard.store import Store
    from dockyard.store.images import LayerBlob

DEFAULT_SHELL = ["/bin/sh", "-c"]


class Output(NamedTuple):
    """``--output``: where the result goes instead of (or besides) the image store."""

    type: str  # "local" (a directory), "tar" (a file, or "-": stdout), "image"
    dest: str = ""


class BuildOptions(NamedTuple):
    dockerfile: str  # the Dockerfile's text
    context: str | None = None  # the context dir; None: no context (``build - < Dockerfile``)
    tags: Sequence[str] = ()
    build_args: Mapping[str, str | None] = {}  # shared default: read only
    target: str = ""
    no_cache: bool = False
    labels: Mapping[str, str] = {}  # shared default: read only
    network: str = "default"
    pull: bool = False
    dockerignore: str | None = None  # the .dockerignore text, when the context has one
    secrets: Mapping[str, bytes] = {}  # --secret id -> its content (read by the CLI)
    platform: str = ""  # --platform: the target platform ("" = the build machine's)
    outputs: Sequence[Output] = ()
    cache_from: Sequence[str] = ()  # image references whose layers may stand for steps


class Cancelled(Exception):
    """A stage stopped because another one failed (or the build was interrupted)."""


class Flag:
    """A flag threads read and one sets (a threading.Event without importing threading on
    the cached-rebuild path: a bool's assignment is atomic)."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class StepFailed(BuildError):
    """A RUN that exited non-zero: Docker's builder exits with the command's code.
    ``classic``: the classic builder's own words for it, which ``POST /build`` streams
    (``The command '/bin/sh -c exit 3' returned a non-zero code: 3``)."""

    def __init__(self, message: str, code: int, classic: str = "") -> None:
        super().__init__(message)
        self.exit_code = code if 0 < code < 256 else 1
        self.code = code
        self.classic = classic or message


class State:
    """One stage as its steps go: the image so far, its config, its ARGs. It holds no store
    connection: stages may be built on other threads, each with its own."""

    def __init__(self, image_id: str, data: dict[str, Any]) -> None:
        self.image_id = image_id  # "" for scratch before any step
        self.data = data  # the whole image config JSON
        self.args: dict[str, str | None] = {}
        self.cmd_set = False
        self._blobs: list[LayerBlob] | None = None if image_id else []
        # Set while the stage is built: its step number, whether the cache already missed
        # (after a miss every later step of the stage runs), the platform it is for.
        self.n = 0
        self.missed = False
        self.platform: Platform | None = None

    @property
    def config(self) -> dict[str, Any]:
        cfg = self.data.setdefault("config", {})
        assert isinstance(cfg, dict)
        return cfg

    @property
    def diff_ids(self) -> list[str]:
        return list(self.data.get("rootfs", {}).get("diff_ids", []))

    @property
    def history(self) -> list[dict[str, Any]]:
        h = self.data.get("history")
        return list(h) if isinstance(h, list) else []

    def blobs(self, store: Store) -> list[LayerBlob]:
        if self._blobs is None:
            from dockyard.store.images import LayerBlob

            self._blobs = [
                LayerBlob(
                    la.blob, store.images.blob_media_type(la.blob), store.content.size(la.blob)
                )
                for la in store.images.layers(self.image_id)
            ]
        return list(self._blobs)

    def set_image(self, image_id: str, data: dict[str, Any], blobs: list[LayerBlob] | None) -> None:
        self.image_id = image_id
        self.data = data
        self._blobs = blobs

    def copy(self) -> State:
        """A new stage starting from this one's image (``FROM <stage>``)."""
        import json

        new = State(self.image_id, json.loads(json.dumps(self.data)))
        new._blobs = self._blobs
        return new

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for e in self.config.get("Env") or []:
            k, _, v = str(e).partition("=")
            out[k] = v
        return out

    def expansion_env(self) -> dict[str, str]:
        """What ``$name`` means in this stage: ARG values, overridden by ENV."""
        env = {k: v for k, v in self.args.items() if v is not None}
        env.update(self.env())
        return env

    def lower_ids(self, store: Store) -> list[int]:
        from dockyard.image.digest import chain_ids

        ids = []
        snaps = store.snapshots
        for chain in chain_ids(self.diff_ids):
            snap = snaps.get(chain)
            if snap is None:
                raise DockyardError(f"layer {chain} of the build's image is missing from the store")
            ids.append(snap.id)
        return list(reversed(ids))


class Plan(NamedTuple):
    created_by: str
    material: object  # what the cache key covers besides the parent
    # None: metadata only; the callable returns None when the step changed no file (an
    # empty layer: Docker records it in the history only)
    apply: Callable[[State], tuple[LayerBlob, str] | None] | None = None
    change: Callable[[State], None] | None = None  # config change
    run_label: bool = False  # classic "Running in" lines
