"""Registry operations for both front ends: pull, push, login, logout, search.

Progress goes to an optional callback as Docker's JSON messages (``{"status": ..., "id": ...,
"progressDetail": {"current": ..., "total": ...}}``), which the CLI renders as bars or lines
and the API can stream as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dockyard.errors import CorruptData, InvalidArgument, Unavailable

if TYPE_CHECKING:
    from dockyard.engine import Engine
    from dockyard.image.manifest import Descriptor, Platform
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
        # Credentials a daemon's client sent with the request being served (see
        # given_credentials); None: the saved ones (config.json, credential helpers).
        self._given: dict[str, tuple[str, str]] | None = None

    @contextmanager
    def given_credentials(self, logins: Mapping[str, tuple[str, str]]) -> Iterator[None]:
        """Use ``logins`` (registry -> (user, password)) instead of the saved credentials
        while the block runs: what Docker's daemon does with ``X-Registry-Auth`` and
        ``X-Registry-Config``, which are all it knows of a client's logins. No logins (a
        client that sent none) change nothing."""
        from dockyard.registry.endpoint import normalize_registry

        if not logins:
            yield
            return
        saved = self._given
        self._given = {normalize_registry(k): v for k, v in logins.items()}
        try:
            yield
        finally:
            self._given = saved

    def client(self, registry: str) -> RegistryClient:
        from dockyard.registry.client import RegistryClient
        from dockyard.registry.endpoint import endpoint_for, insecure_registries

        given = self._given

        def saved_login() -> tuple[str, str] | None:
            if given is not None:
                return given.get(registry)
            # Read when the registry asks for credentials, not before: an anonymous pull
            # neither reads config.json nor runs a credential helper.
            from dockyard.registry import credentials

            return credentials.get(registry)

        endpoint = endpoint_for(registry, insecure_registries(self.insecure))
        return RegistryClient(endpoint, saved_login)

    # ------------------------------------------------------------ pull

    def pull(
        self,
        reference: str,
        *,
        all_tags: bool = False,
        progress: Progress | None = None,
        platform: tuple[str, str, str] | None = None,
    ) -> str:
        """``docker pull``: returns the image ID (of the last tag with ``all_tags``);
        ``platform`` (os, architecture, variant) picks an index's entry (default: the
        host's)."""
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
        chosen = None
        if platform is not None:
            from dockyard.image.manifest import Platform

            chosen = Platform(*platform)
        image_id, _ = pull_one(store, self.client(ref.domain), ref, emit, chosen)
        self._event("pull", ref)
        return image_id

    def _event(self, action: str, ref: Reference) -> None:
        """Docker's pull/push events: the reference as the actor, its repository as name."""
        self.engine.events.emit("image", action, ref.familiar(), {"name": ref.familiar_name()})

    # ------------------------------------------------------------ push

    def push(
        self,
        reference: str,
        progress: Progress | None = None,
        *,
        all_tags: bool = False,
        compression: str | None = None,
    ) -> list[str]:
        """``docker push``: returns the manifest digest of each tag pushed. ``compression``
        (gzip or zstd) is the one every layer goes up in; None: a blob already known for
        the layer (the pulled one), else gzip, as Docker."""
        from dockyard.image.reference import parse_reference
        from dockyard.registry.compress import PUSH_COMPRESSIONS
        from dockyard.registry.push import push_image

        if compression is not None and compression not in PUSH_COMPRESSIONS:
            raise InvalidArgument(
                f'invalid compression "{compression}": must be one of '
                + ", ".join(f'"{c}"' for c in PUSH_COMPRESSIONS)
            )
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
            digest, _, _ = push_image(self.engine.store, client, r, emit, compression)
            out.append(digest)
            self._event("push", r)
        return out

    # ------------------------------------------------------------ distribution

    def distribution(self, reference: str) -> tuple[Descriptor, list[Platform]]:
        """``GET /distribution/{name}/json``: the descriptor of what the registry holds for
        ``reference`` (a manifest or an index) and the platforms it is for (an index's
        entries; a manifest's from its config)."""
        import json

        from dockyard.image.manifest import (
            INDEX_TYPES,
            Descriptor,
            Index,
            Manifest,
            Platform,
            media_type_of,
        )
        from dockyard.image.reference import parse_reference

        ref = parse_reference(reference)
        client = self.client(ref.domain)
        raw, media_type, digest = client.get_manifest(ref.repository, ref.digest or ref.tag or "")
        media_type = media_type_of(raw) or media_type
        descriptor = Descriptor(media_type, digest, len(raw))
        if media_type in INDEX_TYPES:
            index = Index.from_bytes(raw, media_type)
            return descriptor, [m.platform for m in index.manifests if m.platform is not None]
        manifest = Manifest.from_bytes(raw, media_type)
        config = json.loads(client.read_blob(ref.repository, manifest.config.digest, 1 << 22))
        platform = Platform(
            os=str(config.get("os", "")),
            architecture=str(config.get("architecture", "")),
            variant=str(config.get("variant", "")),
        )
        return descriptor, [platform]

    # ------------------------------------------------------------ login

    def check_login(self, registry: str | None, username: str, password: str) -> str:
        """Whether the registry takes these credentials (``POST /auth``: Docker's daemon
        checks, its client saves); returns the registry's name. Unauthorized otherwise, in
        Docker's words."""
        from dockyard.registry.client import RegistryClient
        from dockyard.registry.endpoint import endpoint_for, insecure_registries, normalize_registry
        from dockyard.registry.errors import Unauthorized

        if not username:
            raise InvalidArgument("Username is required")
        if not password:
            raise InvalidArgument("Password is required")
        name = normalize_registry(registry or "docker.io")
        endpoint = endpoint_for(name, insecure_registries(self.insecure))
        client = RegistryClient(endpoint, (username, password))
        try:
            client.ping()
            if client.auth.scheme == "bearer":
                # A token without scopes proves the password (Docker's login does the same).
                client.auth.token(())
        except Unauthorized:
            raise Unauthorized(
                f'Get "{client.endpoint.base}/v2/": unauthorized: incorrect username or password'
            ) from None
        return name

    def login(self, registry: str | None, username: str, password: str) -> str | None:
        """Check the credentials against the registry, then save them (Docker's config.json,
        or its credential helper). Returns the file the password was written to in clear
        (None when a helper took it). Nothing is saved when the registry refuses them."""
        from dockyard.registry import credentials

        name = self.check_login(registry, username, password)
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
