"""Which stages a build needs, and running the independent ones at the same time.

BuildKit builds the stages the target depends on (``FROM <stage>``, ``COPY --from``, ``RUN
--mount ... from=``), each as soon as its dependencies are done. Here each stage runs on a
thread of its own with its own store connections (SQLite connections belong to a thread);
RUN steps are runc processes, so stages really do overlap. What the user sees stays in
Dockerfile order: the first unfinished stage writes through, the others are recorded and
replayed when their turn comes (``OrderedProgress``), so the output reads like a
sequential build's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dockyard.builder.progress import Progress
from dockyard.builder.state import Cancelled, Flag


def dependencies(names: Sequence[str], refs: Sequence[Sequence[str]]) -> list[set[int]]:
    """For stage i (named ``names[i]``, or ""), the earlier stages it reads, given the
    names/numbers each one refers to (``refs[i]``: its FROM base, --from values). A
    reference that cannot be told (an unexpanded ``$``) depends on every earlier stage."""
    out: list[set[int]] = []
    for i, words in enumerate(refs):
        deps: set[int] = set()
        for w in words:
            if "$" in w:
                deps.update(range(i))
                continue
            key = w.lower()
            if key.isdigit() and int(key) < i:
                deps.add(int(key))
                continue
            for j in range(i):
                if names[j] and names[j] == key:
                    deps.add(j)
        out.append(deps)
    return out


def needed(deps: Sequence[set[int]], target: int) -> list[int]:
    """The stages ``target`` needs (itself included), in Dockerfile order."""
    seen: set[int] = set()
    todo = [target]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        todo.extend(deps[i])
    return sorted(seen)


class _Channel(Progress):
    """One stage's view of the build's progress: written through while the stage is the
    first unfinished one, recorded otherwise."""

    def __init__(self, owner: OrderedProgress, index: int) -> None:
        super().__init__()
        self.owner = owner
        self.index = index

    def _call(self, name: str, *args: Any) -> None:
        self.owner.call(self.index, name, args)

    def step(self, n: int, total: int, text: str, stage: str) -> None:
        self._call("step", n, total, text, stage)

    def base(self, image_id: str) -> None:
        self._call("base", image_id)

    def running(self, container_id: str) -> None:
        self._call("running", container_id)

    def output(self, data: bytes) -> None:
        self._call("output", data)

    def cached(self, image_id: str) -> None:
        self._call("cached", image_id)

    def done(self, image_id: str, container_id: str = "") -> None:
        self._call("done", image_id, container_id)

    def message(self, text: str) -> None:
        self._call("message", text)

    def warning(self, text: str) -> None:
        self._call("warning", text)

    def failed(self, text: str) -> None:
        self._call("failed", text)


class OrderedProgress:
    """Channels for stages ``order`` (in Dockerfile order) over one Progress."""

    def __init__(self, target: Progress, order: Sequence[int]) -> None:
        import threading  # only parallel builds pay for it

        self.target = target
        self.order = list(order)
        self.lock = threading.Lock()
        self.head = 0  # position in ``order`` of the stage that writes through
        self.pending: dict[int, list[tuple[str, tuple[Any, ...]]]] = {i: [] for i in order}
        self.finished: set[int] = set()

    def channel(self, index: int) -> Progress:
        return _Channel(self, index)

    def call(self, index: int, name: str, args: tuple[Any, ...]) -> None:
        with self.lock:
            if self.head < len(self.order) and self.order[self.head] == index:
                getattr(self.target, name)(*args)
            else:
                self.pending[index].append((name, args))

    def finish(self, index: int) -> None:
        """Stage ``index`` is done (or gave up): later stages' records may now be shown."""
        with self.lock:
            self.finished.add(index)
            while self.head < len(self.order) and self.order[self.head] in self.finished:
                self.head += 1
                if self.head < len(self.order):
                    self._replay(self.order[self.head])

    def flush(self) -> None:
        """Everything recorded, in order (the build is over, failed or not)."""
        with self.lock:
            for i in self.order[self.head :]:
                self._replay(i)
            self.head = len(self.order)

    def _replay(self, index: int) -> None:
        for name, args in self.pending[index]:
            getattr(self.target, name)(*args)
        self.pending[index].clear()


def run_stages(
    order: Sequence[int],
    deps: Mapping[int, set[int]],
    run: Callable[[int], None],
    cancel: Flag,
) -> None:
    """``run(i)`` for every stage in ``order`` once its dependencies are done, independent
    ones on threads at the same time. The first failure (in Dockerfile order) is raised
    after every thread has stopped; the others are told to stop through ``cancel``."""
    import threading

    errors: dict[int, BaseException] = {}
    done: dict[int, threading.Event] = {i: threading.Event() for i in order}
    failed: set[int] = set()
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            for d in deps.get(i, ()):
                done[d].wait()
                if d in failed:
                    raise Cancelled()
            if cancel.is_set():
                raise Cancelled()
            run(i)
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            with lock:
                errors[i] = e
                failed.add(i)
            cancel.set()
        finally:
            done[i].set()

    threads = [threading.Thread(target=worker, args=(i,), name=f"stage-{i}") for i in order]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)  # a timeout keeps the main thread open to Ctrl-C
    except BaseException:
        cancel.set()
        for t in threads:
            t.join()
        raise
    real = [i for i in order if i in errors and not isinstance(errors[i], Cancelled)]
    if real:
        raise errors[real[0]]
    if errors:
        raise errors[min(errors)]
