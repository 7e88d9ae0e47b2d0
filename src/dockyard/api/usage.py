"""Routes: disk usage (``/system/df``) and the prunes of every kind (containers, images,
volumes, networks, build cache). Filters are read into the engine's PruneFilters, the same
the CLI's ``--filter`` gives, and each prune is one engine call."""

from __future__ import annotations

from typing import Any

from dockyard.api.http import Call, Router
from dockyard.errors import InvalidArgument
from dockyard.units import unix_time

routes = Router()

_DF_TYPES = ("container", "image", "volume", "build-cache")


@routes.route("GET", "/system/df")
def system_df(call: Call) -> dict[str, Any]:
    types = call.query.get("type") or list(_DF_TYPES)  # API 1.42: ask for some kinds only
    for t in types:
        if t not in _DF_TYPES:
            raise InvalidArgument(f"unknown object type: {t}")
    engine = call.engine
    du = engine.system.df()
    out: dict[str, Any] = {}
    if "image" in types:
        out["LayersSize"] = du.images_disk
        out["Images"] = [_image_entry(call, u) for u in du.images]
    else:
        out["Images"] = None
    out["Containers"] = None
    if "container" in types:
        image_size = {u.id: u.size for u in du.images}
        out["Containers"] = []
        for row in engine.containers.list_shapes(all_containers=True):
            size_rw = du.container_sizes.get(row["Id"], 0)
            image_id = str(row.get("ImageID", ""))
            out["Containers"].append(
                {**row, "SizeRw": size_rw, "SizeRootFs": image_size.get(image_id, 0) + size_rw}
            )
    out["Volumes"] = None
    if "volume" in types:
        out["Volumes"] = [
            {
                **v,
                "UsageData": {
                    "Size": du.volume_sizes.get(v["Name"], 0),
                    "RefCount": du.volume_users.get(v["Name"], 0),
                },
            }
            for v in engine.volumes.list_volumes()
        ]
    # The classic builder's cache is made of images (counted above), as in Docker 20.10.
    out["BuildCache"] = [] if "build-cache" in types else None
    if call.version < (1, 42):
        out["BuilderSize"] = 0  # removed in API 1.42
    return out


def _image_entry(call: Call, usage: Any) -> dict[str, Any]:
    data = call.engine.images.inspect(usage.id)
    entry = {
        "Containers": usage.containers,
        "Created": unix_time(data["Created"]),
        "Id": data["Id"],
        "Labels": (data["Config"] or {}).get("Labels") or {},
        "ParentId": data["Parent"],
        # Docker's placeholders for an image without tags or digests.
        "RepoDigests": data["RepoDigests"] or ["<none>@<none>"],
        "RepoTags": data["RepoTags"] or ["<none>:<none>"],
        "SharedSize": usage.shared_size,
        "Size": usage.size,
    }
    if call.version < (1, 44):
        entry["VirtualSize"] = usage.size  # removed in API 1.44
    return entry


# ---------------------------------------------------------------- prune


def _filters(call: Call, allowed: tuple[str, ...]) -> Any:
    from dockyard.engine.prune import prune_filters

    return prune_filters(call.filters(), allowed)


@routes.route("POST", "/containers/prune")
def container_prune(call: Call) -> dict[str, Any]:
    from dockyard.engine.prune import CONTAINER_FILTERS

    removed, size = call.engine.containers.prune(_filters(call, CONTAINER_FILTERS))
    return {"ContainersDeleted": removed or None, "SpaceReclaimed": size}


@routes.route("POST", "/images/prune")
def image_prune(call: Call) -> dict[str, Any]:
    from dockyard.engine.prune import IMAGE_FILTERS

    report = call.engine.images.prune(filters=_filters(call, IMAGE_FILTERS))
    deleted = [{kind: what} for kind, what in report.items]
    return {"ImagesDeleted": deleted or None, "SpaceReclaimed": report.reclaimed}


@routes.route("POST", "/volumes/prune")
def volume_prune(call: Call) -> dict[str, Any]:
    from dockyard.engine.prune import VOLUME_FILTERS

    filters = _filters(call, VOLUME_FILTERS)
    # Before API 1.42 a prune took named volumes too; since, only with the "all" filter.
    everything = filters.all or call.version < (1, 42)
    removed, size = call.engine.volumes.prune(all_volumes=everything, filters=filters)
    return {"VolumesDeleted": removed, "SpaceReclaimed": size}


@routes.route("POST", "/networks/prune")
def network_prune(call: Call) -> dict[str, Any]:
    from dockyard.engine.prune import NETWORK_FILTERS

    removed = call.engine.networks.prune(_filters(call, NETWORK_FILTERS))
    return {"NetworksDeleted": removed or None}


@routes.route("POST", "/build/prune")
def build_prune(call: Call) -> dict[str, Any]:
    from dockyard.engine.builder import cache_prune_until

    until = cache_prune_until(call.filters())
    report = call.engine.builder.prune(all_entries=call.flag("all"), until=until)
    return {"CachesDeleted": report.deleted or None, "SpaceReclaimed": report.reclaimed}
