"""``build --output``: the result's files, besides the image.

* ``type=local,dest=DIR``: the final stage's root filesystem written into DIR (made if
  missing), as BuildKit's local exporter writes it for the user who asked: files belong to
  the caller, set-id bits and device nodes left out.
* ``type=tar,dest=FILE`` (``-``: stdout): the same tree as one tar, owners as in the image.

The layers are applied in order through the one tar extractor (whiteouts delete what they
name), so nothing in an image can write outside the destination.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockyard.builder.parser import BuildError
from dockyard.builder.state import Output, State
from dockyard.image.unpack import UnpackOptions

if TYPE_CHECKING:
    from dockyard.store import Store

_TO_HOST = UnpackOptions(
    noun="layer",
    whiteouts="delete",
    owners="extractor",
    strip_setid=True,
    xattrs=False,
    root_metadata=False,
    devices="skip",
)
_TO_TAR = UnpackOptions(noun="layer", whiteouts="delete", root_metadata=False, devices="create")


def flatten(store: Store, state: State, dest: str, options: UnpackOptions) -> None:
    """Apply the image's layers, bottom first, into directory ``dest``."""
    from dockyard.image.compression import LAYER_COMPRESSIONS
    from dockyard.image.tarstream import TarStream
    from dockyard.image.unpack import open_root, unpack

    root = open_root(dest)
    try:
        for blob in state.blobs(store):
            with (
                store.content.open(blob.digest) as f,
                TarStream(f, noun="layer", compressions=LAYER_COMPRESSIONS) as tar,
            ):
                unpack(tar, root, options)
    finally:
        os.close(root)


def export(store: Store, state: State, outputs: Sequence[Output]) -> None:
    for out in outputs:
        if out.type == "image":
            continue
        if out.type == "local":
            os.makedirs(out.dest, exist_ok=True)
            flatten(store, state, out.dest, _TO_HOST)
        elif out.type == "tar":
            _export_tar(store, state, out.dest)
        else:
            raise BuildError(f"unsupported exporter type {out.type!r}")


def _export_tar(store: Store, state: State, dest: str) -> None:
    from dockyard.image.layer import write_layer

    work = os.path.join(store.root, "build", "tmp", f"{os.getpid()}-{os.urandom(6).hex()}")
    os.makedirs(work)
    tmp = f"{dest}.{os.getpid()}.tmp" if dest != "-" else ""
    try:
        flatten(store, state, work, _TO_TAR)
        if dest == "-":
            write_layer(work, sys.stdout.buffer, from_overlay_upper=False)
            sys.stdout.buffer.flush()
            return
        with open(tmp, "wb") as f:
            write_layer(work, f, from_overlay_upper=False)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
