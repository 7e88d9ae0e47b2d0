"""OCI and Docker schema2 manifests, indexes and descriptors.

Both families carry the same information; we keep one model and remember the media type
so that what we serialise is what the peer expects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dockyard.errors import CorruptData
from dockyard.image.digest import validate_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_FOREIGN_GZIP = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
GZIP_LAYER_TYPES = frozenset({OCI_LAYER_GZIP, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_GZIP})
PLAIN_LAYER_TYPES = frozenset({OCI_LAYER, DOCKER_LAYER})
LAYER_TYPES = GZIP_LAYER_TYPES | PLAIN_LAYER_TYPES | {OCI_LAYER_ZSTD}

# A registry may refuse larger manifests; Docker and distribution cap them at 4 MiB.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Descriptor:
        if not isinstance(obj, dict):
            raise CorruptData("descriptor is not a JSON object")
        try:
            media_type = str(obj.get("mediaType", ""))
            digest = validate_digest(str(obj["digest"]))
            size = int(obj["size"])
        except (KeyError, TypeError, ValueError) as e:
            raise CorruptData(f"malformed descriptor: {e}") from None
        except Exception as e:  # InvalidArgument from validate_digest
            raise CorruptData(str(e)) from None
        if size < 0:
            raise CorruptData("descriptor has a negative size")
        plat = obj.get("platform")
        platform = None
        if isinstance(plat, dict):
            platform = Platform(
                os=str(plat.get("os", "")),
                architecture=str(plat.get("architecture", "")),
                variant=str(plat.get("variant", "")),
            )
        ann = obj.get("annotations") or {}
        return cls(media_type, digest, size, {str(k): str(v) for k, v in ann.items()}, platform)


@dataclass(frozen=True, slots=True)
class Manifest:
    config: Descriptor
    layers: tuple[Descriptor, ...]
    media_type: str = OCI_MANIFEST
    annotations: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        obj: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [d.to_json() for d in self.layers],
        }
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        return json.dumps(obj, indent=3).encode()

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "") -> Manifest:
        obj = _load_json(data, "manifest")
        mt = str(obj.get("mediaType") or media_type or OCI_MANIFEST)
        if mt not in MANIFEST_TYPES:
            raise CorruptData(f"unsupported manifest media type {mt!r}")
        if obj.get("schemaVersion") != 2:
            raise CorruptData("manifest schemaVersion must be 2")
        layers = obj.get("layers")
        if not isinstance(layers, list):
            raise CorruptData("manifest has no layers list")
        return cls(
            config=Descriptor.from_json(obj.get("config")),
            layers=tuple(Descriptor.from_json(x) for x in layers),
            media_type=mt,
            annotations={str(k): str(v) for k, v in (obj.get("annotations") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class Index:
    manifests: tuple[Descriptor, ...]
    media_type: str = OCI_INDEX
    annotations: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        obj: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [d.to_json() for d in self.manifests],
        }
        if self.annotations:
            obj["annotations"] = dict(self.annotations)
        return json.dumps(obj).encode()

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str = "") -> Index:
        obj = _load_json(data, "index")
        mt = str(obj.get("mediaType") or media_type or OCI_INDEX)
        if mt not in INDEX_TYPES:
            raise CorruptData(f"unsupported index media type {mt!r}")
        ms = obj.get("manifests")
        if not isinstance(ms, list):
            raise CorruptData("index has no manifests list")
        return cls(
            manifests=tuple(Descriptor.from_json(x) for x in ms),
            media_type=mt,
            annotations={str(k): str(v) for k, v in (obj.get("annotations") or {}).items()},
        )

    def select(self, platform: Platform) -> Descriptor:
        """The manifest for ``platform`` (linux/amd64 by default, as Docker on this host)."""
        for d in self.manifests:
            p = d.platform
            if (
                p
                and p.os == platform.os
                and p.architecture == platform.architecture
                and (not platform.variant or p.variant == platform.variant)
            ):
                return d
        from dockyard.errors import NotFound

        raise NotFound(
            f"no matching manifest for {platform.os}/{platform.architecture} "
            "in the manifest list entries"
        )


def media_type_of(data: bytes) -> str:
    """The mediaType a manifest or index declares (empty when it declares none)."""
    obj = _load_json(data, "manifest")
    return str(obj.get("mediaType") or ("" if "manifests" not in obj else OCI_INDEX))


def _load_json(data: bytes, what: str) -> dict[str, Any]:
    if len(data) > MAX_MANIFEST_SIZE:
        raise CorruptData(f"{what} is larger than {MAX_MANIFEST_SIZE} bytes")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptData(f"{what} is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise CorruptData(f"{what} is not a JSON object")
    return obj
