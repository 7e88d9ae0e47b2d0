"""The image configuration (OCI image-spec ``config.json``; Docker's "image JSON").

An image's ID is the sha256 of its config bytes, so configs are kept as the exact bytes
they arrived as; this module reads them and builds new ones.
"""

from __future__ import annotations

import time

from dockyard import fastjson
from dockyard.errors import CorruptData
from dockyard.image.digest import digest_bytes, validate_digest

# Neither typing nor json at import: `image inspect` and `image prune` read configs (~5 ms).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple

    class _Fields(NamedTuple):
        raw: bytes
        data: dict[str, Any]
else:

    class _Fields(tuple):
        """(raw, data): namedtuple's shape without importing collections (~2 ms of
        ``image inspect``)."""

        __slots__ = ()

        def __new__(cls, raw: bytes, data: dict[str, Any]) -> _Fields:
            return tuple.__new__(cls, (raw, data))

        raw = property(lambda self: self[0])
        data = property(lambda self: self[1])


DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Fields of the container config that Docker's inspect always shows, with their empty value.
CONTAINER_CONFIG_FIELDS: dict[str, Any] = {
    "Hostname": "",
    "Domainname": "",
    "User": "",
    "AttachStdin": False,
    "AttachStdout": False,
    "AttachStderr": False,
    "ExposedPorts": None,
    "Tty": False,
    "OpenStdin": False,
    "StdinOnce": False,
    "Env": None,
    "Cmd": None,
    "Image": "",
    "Volumes": None,
    "WorkingDir": "",
    "Entrypoint": None,
    "OnBuild": None,
    "Labels": None,
}


class ImageConfig(_Fields):
    """A parsed, validated view of config bytes. ``raw`` is what the ID is computed over."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return digest_bytes(self.raw)

    @property
    def diff_ids(self) -> list[str]:
        return list(self.data["rootfs"]["diff_ids"])

    @property
    def config(self) -> dict[str, Any]:
        cfg = self.data.get("config")
        return cfg if isinstance(cfg, dict) else {}

    @property
    def created(self) -> str:
        return str(self.data.get("created") or "")

    @property
    def history(self) -> list[dict[str, Any]]:
        h = self.data.get("history")
        return [x for x in h if isinstance(x, dict)] if isinstance(h, list) else []

    @property
    def architecture(self) -> str:
        return str(self.data.get("architecture") or "")

    @property
    def os(self) -> str:
        return str(self.data.get("os") or "")

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        try:
            data = fastjson.loads(raw)
        except ValueError as e:  # json's JSONDecodeError, UnicodeDecodeError
            raise CorruptData(f"image config is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise CorruptData("image config is not a JSON object")
        rootfs = data.get("rootfs")
        if not isinstance(rootfs, dict) or rootfs.get("type") != "layers":
            raise CorruptData('image config needs rootfs.type "layers"')
        diff_ids = rootfs.get("diff_ids")
        if not isinstance(diff_ids, list):
            raise CorruptData("image config has no rootfs.diff_ids list")
        for d in diff_ids:
            try:
                validate_digest(str(d))
            except Exception:
                raise CorruptData(f"image config has a malformed diff_id {str(d)[:80]!r}") from None
        return cls(raw, data)


def now_rfc3339() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"


def encode_config(data: dict[str, Any]) -> bytes:
    """Serialise a config the way we always do, so equal configs give equal IDs."""
    import json  # sort_keys and separators: the json package's encoder

    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def new_config(
    diff_ids: list[str],
    config: dict[str, Any],
    history: list[dict[str, Any]],
    created: str | None = None,
    architecture: str = "amd64",
    os_name: str = "linux",
    extra: dict[str, Any] | None = None,
) -> ImageConfig:
    data: dict[str, Any] = {
        "architecture": architecture,
        "os": os_name,
        "created": created or now_rfc3339(),
        "config": {k: v for k, v in config.items() if v not in (None, "", [], {})},
        "history": history,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    if extra:
        data.update(extra)
    raw = encode_config(data)
    return ImageConfig(raw, data)


def docker_container_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The container config as ``docker inspect`` shows it: every field, empty ones as null."""
    out = dict(CONTAINER_CONFIG_FIELDS)
    out.update(
        {k: v for k, v in cfg.items() if k in out or k in ("StopSignal", "Healthcheck", "Shell")}
    )
    return out
