"""Routes: registries. ``POST /auth`` (``docker login``: checked, never saved: the client
keeps its logins), ``POST /images/{name}/push``, ``GET /images/search``,
``GET /distribution/{name}/json``. Credentials come with each request (``X-Registry-Auth``),
as Docker's daemon takes them; the engine uses them instead of any saved ones."""

from __future__ import annotations

from typing import Any

from dockyard.api.http import Call, Router
from dockyard.errors import InvalidArgument

routes = Router()


def request_logins(call: Call, registry: str = "") -> dict[str, tuple[str, str]]:
    """The request's ``X-Registry-Auth`` as the engine's logins map. Its ``serveraddress``
    names the registry; without one it is for ``registry``, the one the operation talks to
    (docker-py's ``push(auth_config={"username", "password"})`` sends none)."""
    from dockyard.model.docker.auth import registry_auth

    auth = registry_auth(call.req.headers.get("X-Registry-Auth"))
    if auth is None or auth.login is None:
        return {}
    return {auth.server or registry: auth.login}


@routes.route("POST", "/auth")
def auth(call: Call) -> dict[str, str]:
    from dockyard.model.docker.auth import auth_from_json

    config = auth_from_json(call.json(required=True))
    if config.identity_token and not config.username:
        raise InvalidArgument("identity tokens are not supported: log in with a password")
    call.engine.registry.check_login(config.server or None, config.username, config.password)
    return {"IdentityToken": "", "Status": "Login Succeeded"}


@routes.route("POST", "/images/{name*}/push")
def image_push(call: Call) -> None:
    from dockyard.api.images import _progress_stream as progress_stream
    from dockyard.image.reference import parse_reference

    name, tag = call.params["name"], call.arg("tag")
    reference = f"{name}:{tag}" if tag else name
    domain = parse_reference(reference, default_tag=False).domain
    logins = request_logins(call, domain)
    root, run_root = call.engine.root, call.engine.run_root

    def push(emit: Any) -> list[str]:
        # Its own engine: the push runs in another thread than this connection's.
        from dockyard.engine import Engine

        engine = Engine(root=root, run_root=run_root)
        try:
            with engine.registry.given_credentials(logins):
                # No tag: every tag of the repository, as Docker's daemon does.
                return engine.registry.push(reference, progress=emit, all_tags=not tag)
        finally:
            engine.close()

    call.handler.json_stream(progress_stream(push))


@routes.route("GET", "/images/search")
def image_search(call: Call) -> list[dict[str, Any]]:
    term = call.arg("term")
    if not term:
        raise InvalidArgument("search term must not be empty")
    limit = call.int_arg("limit", 25) or 25
    registry = call.engine.registry
    logins = request_logins(call)
    with registry.given_credentials(logins):
        return registry.search(term, limit=limit, filters=call.filters())


@routes.route("GET", "/distribution/{name*}/json")
def distribution(call: Call) -> dict[str, Any]:
    from dockyard.image.reference import parse_reference

    name = call.params["name"]
    registry = call.engine.registry
    logins = request_logins(call, parse_reference(name).domain)
    with registry.given_credentials(logins):
        descriptor, platforms = registry.distribution(name)
    return {
        "Descriptor": {
            "mediaType": descriptor.media_type,
            "digest": descriptor.digest,
            "size": descriptor.size,
        },
        "Platforms": [p.to_json() for p in platforms],
    }
