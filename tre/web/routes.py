"""Routes declared per module and added to the app one by one, so `app.routes` lists
every endpoint and page itself (FastAPI keeps included routers nested), and a test can
walk them all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

Endpoint = Callable[..., Any]


@dataclass
class Routes:
    """The routes of one module: `@routes.get(path)`, `.post(path)`, `.patch(path)`, then
    `routes.add_to(app)`."""

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
        for method, path, endpoint, options in self.entries:
            app.add_api_route(
                path,
                endpoint,
                methods=[method],
                tags=list(self.tags) or None,
                include_in_schema=self.include_in_schema,
                **options,
            )
