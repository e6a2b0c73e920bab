"""The one place errors become HTTP responses.

A `TreError` keeps its message, every reason and its fix; its class (the CLI's exit
code) picks the HTTP status. API callers get JSON, browsers an HTML page saying the
same. No traceback ever reaches a client: an unexpected exception is logged on the
server and answered with a plain 500.

    exit code  error             HTTP
    2          InputError        400   (a malformed request body: 422)
    3          NotFound          404
    4          PermissionDenied  403   (no or a bad token: 401)
    5          StateError        409
    6          PlatformError     500
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tre.errors import InputError, NotFound, PermissionDenied, PlatformError, StateError, TreError
from tre.service.tokens import Unauthenticated
from tre.web.auth import LoginRequired
from tre.web.render import error_page

log = logging.getLogger("tre.web")

_STATUS: list[tuple[type[TreError], int]] = [
    (Unauthenticated, 401),
    (InputError, 400),
    (NotFound, 404),
    (PermissionDenied, 403),
    (StateError, 409),
    (PlatformError, 500),
]
_HTTP_TEXT = {
    404: (
        "there is no such page or endpoint",
        "check the address; the API is described at /openapi.json",
    ),
    405: (
        "that method is not allowed here",
        "check the method; the API is described at /openapi.json",
    ),
}


def status_of(error: TreError) -> int:
    """The HTTP status for a TreError."""
    return next((status for kind, status in _STATUS if isinstance(error, kind)), 400)


def error_body(error: TreError) -> dict[str, Any]:
    """The JSON body of an error: what is wrong, every reason, the fix and whose it is."""
    return {
        "error": {
            "kind": type(error).__name__,
            "message": error.message,
            "reasons": list(error.reasons),
            "fix": error.fix,
            "owner": error.owner,
            "exit_code": error.exit_code,
        }
    }


def wants_json(request: Request) -> bool:
    """API paths and the OpenAPI spec answer in JSON; everything else is a page."""
    path = request.url.path
    return path.startswith("/api/") or path == "/api" or path.endswith(".json")


def validation_reasons(exc: RequestValidationError) -> list[str]:
    """One readable line per problem in a request, e.g. "body.comment: Field required"."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            message = "unknown field (check the spelling)"
        lines.append(f"{where}: {message}" if where else message)
    return lines


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into JSON or a page."""

    async def tre_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, TreError)
        if isinstance(exc, LoginRequired) and request.method == "GET" and not wants_json(request):
            query = f"?{request.url.query}" if request.url.query else ""
            target = quote(request.url.path + query, safe="")
            return RedirectResponse(f"/login?next={target}", status_code=303)
        return respond(request, exc)

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        error = InputError(
            "the request is not valid",
            reasons=validation_reasons(exc),
            fix="correct the fields named above; /openapi.json describes every request",
        )
        return respond(request, error, status=422)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message, fix = _HTTP_TEXT.get(exc.status_code, (str(exc.detail), None))
        error: TreError = (
            NotFound(message, fix=fix) if exc.status_code == 404 else TreError(message, fix=fix)
        )
        return respond(request, error, status=exc.status_code, headers=exc.headers)

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        error = PlatformError(
            f"the server failed on this request ({type(exc).__name__})",
            fix="tell the TRE administrators; the server's log has the details",
        )
        return respond(request, error, status=500)

    app.add_exception_handler(TreError, tre_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def respond(
    request: Request,
    error: TreError,
    *,
    status: int | None = None,
    headers: Any = None,
) -> Response:
    """The error as JSON (API) or as a page (browsers), with its status."""
    status = status or status_of(error)
    headers = dict(headers or {})
    if status == 401 and wants_json(request):
        headers["WWW-Authenticate"] = "Bearer"
    if wants_json(request):
        return JSONResponse(error_body(error), status_code=status, headers=headers)
    html = error_page(request, error, status)
    return HTMLResponse(html, status_code=status, headers=headers)
