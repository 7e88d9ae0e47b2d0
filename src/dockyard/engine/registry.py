"""Registry operations for both front ends: pull, push, login, logout, search.

Progress goes to an optional callback as Docker's JSON messages (``{"status": ..., "id": ...,
"progressDetail": {"current": ..., "total": ...}}``), which the CLI renders as bars or lines
and the API can stream as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dockyard.errors import CorruptData, InvalidArgument, Unavailable

if TYPE_CHECKING:
    from dockyard.engine import Engine
    from dockyard.image.reference import Reference
    from dockyard.registry.client import RegistryClient

Progress = Callable[[dict[str, Any]], None]


def _ignore(_msg: dict[str, Any]) -> None:
    pass


class RegistryService:
    def __init__(self, engine: Engine, insecure: Sequence[str] = ()):
        self.engine = engine
        # Registries reached over plain HTTP besides loopback ones (--insecure-registry).
        self.insecure: tuple[str, ...] = tuple(insecure)

    def client(self, registry: str) -> RegistryClient:
        from dockyard.registry.client import RegistryClient
        from dockyard.registry.endpoint import endpoint_for, insecure_registries

        def saved_login() -> tuple[str, str] | None:
            # Read when the registry asks for credentials, not before: an anonymous pull
            # neither reads config.json nor runs a credential helper.
            from dockyard.registry import credentials

            return credentials.get(registry)

        endpoint = endpoint_for(registry, insecure_registries(self.insecure))
        return RegistryClient(endpoint, saved_login)

    # ------------------------------------------------------------ pull

    def pull(
        self, reference: str, *, all_tags: bool = False, progress: Progress | None = None
    ) -> str:
        """``docker pull``: returns the image ID (of the last tag with ``all_tags``)."""
        from dockyard.image.reference import parse_reference, parse_repository
        from dockyard.registry.pull import pull_one

        emit = progress or _ignore
        store = self.engine.store
        if all_tags:
            try:
                repo_ref = parse_repository(reference)
            except InvalidArgument:
                raise InvalidArgument("tag can't be used with --all-tags/-a") from None
            client = self.client(repo_ref.domain)
            tags = client.tags(repo_ref.repository)
            if not tags:
                raise InvalidArgument(f"no tags in repository {repo_ref.familiar_name()}")
            image_id = ""
            for tag in tags:
                ref = repo_ref.with_tag(tag)  # refuses a tag name the grammar does not allow
                image_id, _ = pull_one(store, client, ref, emit)
                self._event("pull", ref)
            return image_id
        ref = parse_reference(reference)
        image_id, _ = pull_one(store, self.client(ref.domain), ref, emit)
        self._event("pull", ref)
        return image_id

    def _event(self, action: str, ref: Reference) -> None:
        """Docker's pull/push events: the reference as the actor, its repository as name."""
        self.engine.events.emit("image", action, ref.familiar(), {"name": ref.familiar_name()})

    # ------------------------------------------------------------ push

    def push(
        self, reference: str, progress: Progress | None = None, *, all_tags: bool = False
    ) -> list[str]:
        """``docker push``: returns the manifest digest of each tag pushed."""
        from dockyard.image.reference import parse_reference
        from dockyard.registry.push import push_image

        emit = progress or _ignore
        ref = parse_reference(reference, default_tag=not all_tags)
        if ref.digest:
            raise InvalidArgument("cannot push a digest reference")
        if all_tags and ref.tag:
            raise InvalidArgument("tag can't be used with --all-tags/-a")
        if all_tags:
            rows = self.engine.store.db.query(
                "SELECT name FROM tags WHERE name LIKE ? ESCAPE '\\' ORDER BY name",
                (ref.name.replace("%", "\\%").replace("_", "\\_") + ":%",),
            )
            refs = [parse_reference(str(r["name"])) for r in rows]
            if not refs:
                from dockyard.errors import NotFound

                raise NotFound(
                    f"An image does not exist locally with the tag: {ref.familiar_name()}"
                )
        else:
            refs = [ref]
        client = self.client(ref.domain)
        emit({"status": f"The push refers to repository [{ref.familiar_name()}]"})
        out = []
        for r in refs:
            digest, _, _ = push_image(self.engine.store, client, r, emit)
            out.append(digest)
            self._event("push", r)
        return out

    # ------------------------------------------------------------ login

    def login(self, registry: str | None, username: str, password: str) -> str | None:
        """Check the credentials against the registry, then save them (Docker's config.json,
        or its credential helper). Returns the file the password was written to in clear
        (None when a helper took it). Nothing is saved when the registry refuses them."""
        from dockyard.registry import credentials
        from dockyard.registry.client import RegistryClient
        from dockyard.registry.endpoint import endpoint_for, insecure_registries, normalize_registry

        if not username:
            raise InvalidArgument("Username is required")
        if not password:
            raise InvalidArgument("Password is required")
        name = normalize_registry(registry or "docker.io")
        endpoint = endpoint_for(name, insecure_registries(self.insecure))
        client = RegistryClient(endpoint, (username, password))
        client.ping()
        if client.auth.scheme == "bearer":
            # A token without scopes proves the password (Docker's login does the same).
            client.auth.token(())
        try:
            return credentials.store(name, username, password)
        except (Unavailable, CorruptData) as e:
            raise type(e)(f"Error saving credentials: {e}") from None

    def logout(self, registry: str | None) -> tuple[str, bool]:
        """Forget saved credentials. Returns (registry name, whether any were saved)."""
        from dockyard.registry import credentials
        from dockyard.registry.endpoint import normalize_registry

        name = normalize_registry(registry or "docker.io")
        return name, credentials.erase(name)

    # ------------------------------------------------------------ search

    def search(
        self, term: str, *, limit: int = 25, filters: dict[str, list[str]] | None = None
    ) -> list[dict[str, Any]]:
        """``docker search``: rows with Docker's keys (name, description, star_count,
        is_official, is_automated)."""
        from dockyard.registry.endpoint import normalize_registry

        if not 1 <= limit <= 100:
            raise InvalidArgument("limit should be between 1 and 100")
        registry, text = "docker.io", term
        first, sep, rest = term.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            registry, text = normalize_registry(first), rest
        if not text:
            raise InvalidArgument("search term must not be empty")
        stars, official, automated = _search_filters(filters or {})
        data = self.client(registry).search(text, limit)
        rows = []
        for r in data.get("results") or []:
            if not isinstance(r, dict):
                continue
            row: dict[str, Any] = {
                "name": str(r.get("name", "")),
                "description": str(r.get("description") or ""),
                "star_count": int(r.get("star_count") or 0),
                "is_official": bool(r.get("is_official")),
                "is_automated": bool(r.get("is_automated")),
            }
            if row["star_count"] < stars:
                continue
            if official is not None and row["is_official"] != official:
                continue
            if automated is not None and row["is_automated"] != automated:
                continue
            rows.append(row)
        return rows[:limit]


def _search_filters(filters: dict[str, list[str]]) -> tuple[int, bool | None, bool | None]:
    stars, official, automated = 0, None, None
    for key, values in filters.items():
        for v in values:
            if key == "stars":
                try:
                    stars = max(stars, int(v))
                except ValueError:
                    raise InvalidArgument(f"invalid filter 'stars={v}'") from None
            elif key in ("is-official", "is-automated"):
                if v.lower() not in ("true", "false", "1", "0"):
                    raise InvalidArgument(f"invalid filter '{key}={v}'")
                flag = v.lower() in ("true", "1")
                if key == "is-official":
                    official = flag
                else:
                    automated = flag
            else:
                raise InvalidArgument(f"invalid filter '{key}'")
    return stars, official, automated
