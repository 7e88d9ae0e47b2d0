"""What a build needs from the engine that runs it, as protocols: the builder sits below the
engine (engine/builder.py hands it the Engine, which has these), so it names the few things
it uses instead of importing the engine."""

from __future__ import annotations

from typing import Any, Protocol

from dockyard.store import Store


class BuildNetworks(Protocol):
    """The engine's networks, as RUN steps on a bridge network use them."""

    def resolve(self, ref: str) -> str: ...
    def for_container(self, mode: str) -> Any: ...
    def ensure_device(self, r: Any) -> None: ...
    def lease(self, network: str, container_id: str) -> str: ...
    def release(self, network: str, container_id: str) -> None: ...


class BuildRegistry(Protocol):
    def pull(self, reference: str, *, platform: tuple[str, str, str] | None = None) -> str: ...


class BuildHost(Protocol):
    """The engine a build runs in: its store, its dirs, its networks, its registry client."""

    @property
    def root(self) -> str: ...
    @property
    def run_root(self) -> str: ...
    @property
    def store(self) -> Store: ...
    @property
    def networks(self) -> BuildNetworks: ...
    @property
    def registry(self) -> BuildRegistry: ...

    def close(self) -> None: ...
