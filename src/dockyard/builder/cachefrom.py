"""``build --cache-from IMAGE``: steps taken from an image built before, elsewhere.

The classic builder's rule (moby image/cache): a step whose local cache misses may take the
next entry of a cache-from image when that image was built on exactly what the build has so
far (the same history entries and layers, in order) and the entry was made by the same
instruction (its ``created_by``). The step's image is then made from its parent, the
entry and, if the entry made one, that image's layer: nothing runs and nothing is copied.
An image that is not in the store is pulled from its registry first; one that cannot be had
is skipped with a warning, as Docker skips it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from dockyard.builder.state import Plan, State
from dockyard.errors import DockyardError, NotFound

if TYPE_CHECKING:
    from dockyard.builder.builder import Builder


def resolve(builder: Builder, refs: list[str]) -> list[str]:
    """The image IDs of ``--cache-from`` references (pulled when missing)."""
    out = []
    for ref in refs:
        try:
            out.append(builder.store.images.resolve(ref))
            continue
        except NotFound:
            pass
        except DockyardError as e:
            builder.progress.warning(f"--cache-from {ref}: {e}")
            continue
        try:
            builder.progress.message(f"Pulling {ref} (cache source)")
            out.append(str(builder.engine.registry.pull(ref)))
        except DockyardError as e:
            builder.progress.warning(f"--cache-from {ref} is not usable: {e}")
    return out


def find(builder: Builder, state: State, plan: Plan) -> str | None:
    """An image for this step made from a cache-from image's entry, or None."""
    store = builder.store
    parent_history = state.history
    parent_diffs = state.diff_ids
    n = len(parent_history)
    for target_id in builder.cache_sources:
        target = json.loads(store.content.read(target_id))
        history: list[dict[str, Any]] = target.get("history") or []
        diffs: list[str] = (target.get("rootfs") or {}).get("diff_ids") or []
        if (
            len(history) <= n
            or history[:n] != parent_history
            or diffs[: len(parent_diffs)] != parent_diffs
        ):
            continue
        entry = history[n]
        if entry.get("created_by", "") != plan.created_by:
            continue
        new_diffs = list(parent_diffs)
        blobs = state.blobs(store)
        if not entry.get("empty_layer"):
            index = sum(1 for h in history[: n + 1] if not h.get("empty_layer")) - 1
            if index >= len(diffs) or index != len(parent_diffs):
                continue
            layers = store.images.layers(target_id)
            from dockyard.store.images import LayerBlob

            la = layers[index]
            blobs = [*blobs, LayerBlob(la.blob, store.images.blob_media_type(la.blob),
                                       store.content.size(la.blob))]  # fmt: skip
            new_diffs.append(diffs[index])
        tmp = state.copy()
        tmp.args = state.args
        if plan.change is not None:
            plan.change(tmp)
        return builder.commit_image(tmp, new_diffs, blobs, dict(entry), str(entry.get("created")))
    return None
