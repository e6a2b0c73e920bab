"""The web app: `create_app(home)` builds the FastAPI application `tre serve` runs.

/api/...        the JSON API (bearer tokens), described at /openapi.json
/api/health     up or down, and the age of the dispatcher's last pass (no token)
/login, /       sign-in and the pages for checkers, researchers and admins (session cookie)
/static/...     the stylesheet

Interactive API docs (/docs, /redoc) are off: they load scripts from the internet, and
nothing this service sends may depend on an outside resource.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tre.store import Database
from tre.web import api, errors, health, pages
from tre.web.state import make_state
from tre.web.ticks import DispatcherTicks

#: Sent with every response: no scripts, no framing, nothing loaded from other sites.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """ASGI middleware adding `SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _version() -> str:
    try:
        return version("tre")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def create_app(
    home: Path | None = None,
    *,
    cookie_secure: bool = False,
    dispatcher_ticks: DispatcherTicks | None = None,
) -> FastAPI:
    """The app serving the TRE home at `home` (default: TRE_HOME, else ./.tre).

    The database is migrated here, once; each request then opens a plain connection.
    `cookie_secure` marks session cookies Secure (set it when clients use https);
    `dispatcher_ticks` is where the server's own dispatcher thread records its passes.
    """
    state = make_state(home, cookie_secure=cookie_secure, dispatcher_ticks=dispatcher_ticks)
    Database.for_home(state.home).close()
    app = _routed_app()
    app.state.tre = state
    return app


def describe_api() -> dict[str, Any]:
    """The OpenAPI description `tre serve` gives at /openapi.json, without a home (the
    API fuzz test generates its requests from it before any server runs)."""
    return _routed_app().openapi()


def _routed_app() -> FastAPI:
    """Every route, error handler and middleware; no state (no home) yet."""
    app = FastAPI(
        title="tre",
        summary="A job runner for trusted research environments: the service API.",
        description=(
            "Every endpoint under /api but `GET /api/health` needs `Authorization: Bearer "
            "tre_...`, a token a TRE admin issues with `tre admin token NAME`; the token is "
            'checked before anything else of the request. Errors are JSON: `{"error": '
            '{"kind", "message", "reasons", "fix", "owner", "exit_code"}}`, and each '
            "operation lists the error statuses it can answer."
        ),
        version=_version(),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
        max_body_size=errors.MAX_BODY_BYTES,
    )
    errors.install(app)
    api.add_to(app)
    health.router.add_to(app)
    pages.add_to(app)
    app.add_middleware(SecurityHeaders)
    return app
