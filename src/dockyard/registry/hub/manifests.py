"""Manifest validation for the hub: what an image manifest or index must look like to be
accepted, and which blobs and manifests it names (each must exist before it is stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dockyard.httpd.jsonbody import JSONError, loads
from dockyard.registry.hub.errors import RegistryError
from dockyard.registry.hub.names import check_digest

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
# Manifests nest four or five levels (annotations); deeper is an attack on the decoder.
MAX_MANIFEST_DEPTH = 100
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
INDEX_TYPES = {OCI_INDEX, DOCKER_LIST}
# Layers a registry is not expected to hold (Windows foreign layers, nondistributable).
_FOREIGN_LAYER_MARKERS = ("foreign", "nondistributable")


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    refs: list[tuple[str, int, str]]  # (digest, size, "blob" | "manifest")
    subject: str | None
    artifact_type: str
    annotations: dict[str, str]


def parse_manifest(data: bytes, content_type: str) -> ParsedManifest:
    """Validate an image manifest or index and list what it names."""
    try:
        obj = loads(data, MAX_MANIFEST_DEPTH)
    except JSONError as e:
        raise RegistryError("MANIFEST_INVALID", f"manifest is not valid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise RegistryError("MANIFEST_INVALID", "manifest is not a JSON object")
    if obj.get("schemaVersion") != 2:
        raise RegistryError(
            "MANIFEST_INVALID", "only schemaVersion 2 manifests (OCI, Docker schema2) are accepted"
        )
    declared = obj.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise RegistryError("MANIFEST_INVALID", "mediaType must be a string")
    ct = content_type.split(";", 1)[0].strip().lower()
    known = MANIFEST_TYPES | INDEX_TYPES
    if declared and ct in known and ct != declared:
        raise RegistryError(
            "MANIFEST_INVALID",
            f"Content-Type {ct} does not match the manifest's mediaType {declared}",
        )
    media_type = declared or (ct if ct in known else "")
    if not media_type:
        media_type = OCI_INDEX if "manifests" in obj else OCI_MANIFEST
    refs: list[tuple[str, int, str]] = []
    artifact_type = obj.get("artifactType") or ""
    if media_type in MANIFEST_TYPES:
        config = _descriptor(obj.get("config"), "config")
        layers = obj.get("layers")
        if not isinstance(layers, list):
            raise RegistryError("MANIFEST_INVALID", "manifest has no layers list")
        refs.append((config[0], config[1], "blob"))
        for i, raw in enumerate(layers):
            d = _descriptor(raw, f"layers[{i}]")
            if raw.get("urls") or any(m in d[2] for m in _FOREIGN_LAYER_MARKERS):
                continue
            refs.append((d[0], d[1], "blob"))
        artifact_type = artifact_type or config[2]
    elif media_type in INDEX_TYPES:
        ms = obj.get("manifests")
        if not isinstance(ms, list):
            raise RegistryError("MANIFEST_INVALID", "index has no manifests list")
        for i, raw in enumerate(ms):
            d = _descriptor(raw, f"manifests[{i}]")
            refs.append((d[0], d[1], "manifest"))
    else:
        raise RegistryError("MANIFEST_INVALID", f"unsupported manifest media type {media_type!r}")
    subject = None
    if obj.get("subject") is not None:
        subject = _descriptor(obj["subject"], "subject")[0]
    ann = obj.get("annotations") or {}
    if not isinstance(ann, dict):
        raise RegistryError("MANIFEST_INVALID", "annotations must be an object")
    return ParsedManifest(
        media_type,
        list(dict.fromkeys(refs)),
        subject,
        str(artifact_type),
        {str(k): str(v) for k, v in ann.items()},
    )


def _descriptor(raw: Any, where: str) -> tuple[str, int, str]:
    if not isinstance(raw, dict):
        raise RegistryError("MANIFEST_INVALID", f"{where} is not a descriptor object")
    digest, size, mt = raw.get("digest"), raw.get("size"), raw.get("mediaType", "")
    if not isinstance(digest, str):
        raise RegistryError("MANIFEST_INVALID", f"{where} has no digest")
    try:
        check_digest(digest)
    except RegistryError as e:
        raise RegistryError("MANIFEST_INVALID", f"{where}: {e.message}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError("MANIFEST_INVALID", f"{where} has no valid size")
    if not isinstance(mt, str):
        raise RegistryError("MANIFEST_INVALID", f"{where} has an invalid mediaType")
    return digest, size, mt
