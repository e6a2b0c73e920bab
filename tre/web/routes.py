"""Routes declared per module and added to the app one by one, so `app.routes` lists
every endpoint and page itself (FastAPI keeps included routers nested), and a test can
walk them all.

Every route is a `GuardedRoute`:

1. It checks its caller's credentials (an API route its bearer token, a page its session
   cookie) before it reads anything else of the request. FastAPI reads and validates
   the body before it runs an endpoint's dependencies, so without this a caller with no
   token would be told, field by field, what the body should hold.
2. Its OpenAPI description lists every error status it can answer, each with the error
   body: those its shape implies (401 with a token to check, 404 with a path parameter,
   422 with any parameter or body, 400 and 413 with a body, 503 once it opens the store)
   and those of the `errors=` it declares (the `TreError` classes its service calls
   raise, mapped to statuses by `tre.web.errors.status_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant, get_flat_params
from fastapi.routing import APIRoute

from tre.errors import TreError
from tre.web.auth import Credentials, api_credentials, bearer_credentials, page_credentials
from tre.web.errors import error_responses, status_for

Endpoint = Callable[..., Any]
Handler = Callable[[Request], Coroutine[Any, Any, Response]]

#: The dependency naming a route's credentials -> how to read them from the request
#: without touching the body (the store is checked afterwards, in `Credentials.verify`).
_CREDENTIALS: dict[Callable[..., Credentials], Callable[[Request], Credentials]] = {
    api_credentials: bearer_credentials,
    page_credentials: page_credentials,
}


def _credentials_reader(dependant: Dependant) -> Callable[[Request], Credentials] | None:
    """How the route's credentials are read, if it takes any."""
    pending = list(dependant.dependencies)
    while pending:
        current = pending.pop()
        if current.call in _CREDENTIALS:
            return _CREDENTIALS[current.call]
        pending.extend(current.dependencies)
    return None


def shape_statuses(dependant: Dependant) -> set[int]:
    """The error statuses a route can answer because of its shape alone."""
    statuses = set()
    reader = _credentials_reader(dependant)
    if reader is bearer_credentials:
        statuses |= {401, 503}
    elif reader is not None:
        statuses.add(503)
    if dependant.path_params:
        statuses.add(404)  # e.g. an id with a '/' in it names no route
    if get_flat_params(dependant) or dependant.body_params:
        statuses.add(422)
    if dependant.body_params:
        statuses |= {400, 413}  # a body that cannot be read, or one too large
    return statuses


class GuardedRoute(APIRoute):
    """A route that authenticates before it reads the body, and documents its errors."""

    def __init__(self, path: str, endpoint: Endpoint, **options: Any) -> None:
        shape = shape_statuses(get_dependant(path=path, call=endpoint))
        declared = options.pop("responses", None) or {}
        options["responses"] = {**error_responses(shape), **declared}
        super().__init__(path, endpoint, **options)

    def get_route_handler(self) -> Handler:
        """FastAPI's handler, behind the credentials check."""
        handler = super().get_route_handler()
        read = _credentials_reader(self.dependant)
        if read is None:
            return handler

        async def guarded(request: Request) -> Response:
            credentials = read(request)  # headers and cookies only: no I/O
            await run_in_threadpool(credentials.verify)  # SQLite blocks: off the loop
            return await handler(request)

        return guarded


@dataclass
class Routes:
    """The routes of one module: `@routes.get(path, errors=(NotFound, ...))`,
    `.post(path)`, `.patch(path)`, then `routes.add_to(app)`."""

    prefix: str = ""
    tags: list[str] = field(default_factory=list)
    include_in_schema: bool = True
    entries: list[tuple[str, str, Endpoint, dict[str, Any]]] = field(default_factory=list)

    def _route(
        self, method: str, path: str, options: dict[str, Any]
    ) -> Callable[[Endpoint], Endpoint]:
        def declare(endpoint: Endpoint) -> Endpoint:
            self.entries.append((method, self.prefix + path, endpoint, options))
            return endpoint

        return declare

    def get(self, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        """Declare a GET route."""
        return self._route("GET", path, options)

    def post(self, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        """Declare a POST route."""
        return self._route("POST", path, options)

    def patch(self, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
        """Declare a PATCH route."""
        return self._route("PATCH", path, options)

    def add_to(self, app: FastAPI) -> None:
        """Add every declared route to `app`."""
        for method, path, endpoint, declared in self.entries:
            options = dict(declared)
            errors: Iterable[type[TreError]] = options.pop("errors", ())
            responses = {
                **error_responses({status_for(kind) for kind in errors}),
                **options.pop("responses", {}),
            }
            app.router.add_api_route(
                path,
                endpoint,
                methods=[method],
                tags=list(self.tags) or None,
                include_in_schema=self.include_in_schema,
                responses=responses,
                route_class_override=GuardedRoute,
                **options,
            )
