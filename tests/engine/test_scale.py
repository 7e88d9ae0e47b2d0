"""Costs that stay flat as the store grows: what ``ps``, ``images``, ``image prune`` and
``system df`` ask SQLite, and how many container rows they decode, measured on a small store
and again after it grew (1,000 containers, 100 images, 1,000 tags, made through the engine).
Counts, not wall time: a query per row or a decode of every row shows up here."""

from __future__ import annotations

import io
import tarfile

import pytest

from dockyard.engine import Engine
from dockyard.engine.containers import records
from dockyard.model.container import ContainerSpec

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Counter:
    """SQL statements run and container rows decoded while a call runs."""

    def __init__(self, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements: list[str] = []
        self.decoded = 0
        self.conn = engine.store.db.conn
        real = records.decode

        def decode(data: str) -> object:
            self.decoded += 1
            return real(data)

        monkeypatch.setattr(records, "decode", decode)

    def __call__(self, fn: Callable[[], object]) -> tuple[int, int]:
        self.statements.clear()
        self.decoded = 0
        self.conn.set_trace_callback(self.statements.append)
        try:
            fn()
        finally:
            self.conn.set_trace_callback(None)
        return len(self.statements), self.decoded


def _tiny_tar() -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("f")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    return buf


def _grow(engine: Engine, prefix: str, containers: int, images: int, tags: int) -> None:
    for i in range(containers):
        engine.containers.create(
            ContainerSpec("busybox", cmd=("true",), name=f"{prefix}{i}", network_mode="none")
        )
    tar = _tiny_tar()
    for i in range(images):
        tar.seek(0)
        engine.images.import_(tar, f"{prefix}{i}:v1", [], f"image {prefix}{i}", "-")
    for i in range(tags):
        engine.images.tag("busybox", f"{prefix}-tag{i}:latest")


@pytest.mark.slow
def test_listing_and_prune_cost_the_same_on_a_big_store(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = Counter(engine, monkeypatch)
    svc = engine.containers
    cases: dict[str, Callable[[], object]] = {
        "ps": lambda: svc.list_shapes(),
        "images": lambda: engine.images.list_images(),
        "image prune (nothing to prune)": lambda: engine.images.prune(),
        "system df": lambda: engine.system.df(),
    }
    _grow(engine, "small", containers=3, images=2, tags=2)
    small = {name: count(fn) for name, fn in cases.items()}
    _grow(engine, "big", containers=1000, images=100, tags=1000)
    big = {name: count(fn) for name, fn in cases.items()}

    # ps without -a: the created containers are not read at all.
    assert big["ps"] == small["ps"] == (1, 0), big["ps"]
    # images, image prune: a fixed number of queries, whatever the number of images and tags.
    assert big["images"][0] == small["images"][0], big["images"]
    assert big["image prune (nothing to prune)"][0] == small["image prune (nothing to prune)"][0]
    assert "Deleted" not in str(engine.images.prune().items)
    # system df: one query per kind of thing, none per image (it lists every container:
    # Docker's df reports every container's size), and no container decoded.
    assert big["system df"][0] == small["system df"][0], big["system df"]
    assert big["system df"][1] == 0
    # ps -a prints every container from the list entries kept with the rows: no row decoded,
    # no query per row.
    statements, decoded = count(lambda: svc.list_shapes(all_containers=True))
    assert decoded == 0 and statements < 10
    assert len(engine.images.list_images()) >= 1100
