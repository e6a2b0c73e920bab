"""The one place errors become HTTP responses.

A `TreError` keeps its message, every reason and its fix; its class (the CLI's exit
code) picks the HTTP status. API callers get JSON, browsers an HTML page saying the
same. No traceback ever reaches a client: an unexpected exception is logged on the
server and answered with a plain 500, which is always a bug (no route documents it).

    exit code  error             HTTP
    2          InputError        400   (a request that does not fit the schema: 422;
                                        a body larger than MAX_BODY_BYTES: 413)
    3          NotFound          404
    4          PermissionDenied  403   (no or a bad token: 401)
    5          StateError        409
    6          PlatformError     503   (the installation, not the request, is at fault)

`error_responses()` describes these statuses for the OpenAPI description; every route
lists those it can answer (`tre.web.routes`).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tre.errors import InputError, NotFound, PermissionDenied, PlatformError, StateError, TreError
from tre.service.tokens import Unauthenticated
from tre.web.auth import LoginRequired
from tre.web.render import error_page
from tre.web.schemas import ErrorOut

log = logging.getLogger("tre.web")

_STATUS: list[tuple[type[TreError], int]] = [
    (Unauthenticated, 401),
    (InputError, 400),
    (NotFound, 404),
    (PermissionDenied, 403),
    (StateError, 409),
    # Not 500: the request was fine, and a client may try again once the
    # administrators have mended the installation (a key service back, a disk freed).
    (PlatformError, 503),
]
#: The largest request body the server reads: a job spec with its python steps' pickled
#: functions (base64) is far smaller; the limit keeps one request from filling memory.
MAX_BODY_BYTES = 64 * 1024**2
_HTTP_TEXT = {
    # FastAPI's own refusal of a body it cannot decode (not UTF-8 JSON, say).
    400: (
        "there was an error parsing the body",
        "send a JSON body (UTF-8, Content-Type: application/json) matching the schema at "
        "/openapi.json",
    ),
    413: (
        f"the request body is larger than the {MAX_BODY_BYTES // 1024**2} MiB this server reads",
        "send a smaller body: a job's python steps should load their data on the cluster, "
        "not carry it in their code",
    ),
    404: (
        "there is no such page or endpoint",
        "check the address; the API is described at /openapi.json",
    ),
    405: (
        "that method is not allowed here",
        "check the method; the API is described at /openapi.json",
    ),
}


#: What each error status means, in every route's OpenAPI description.
STATUS_MEANINGS = {
    400: "The request was refused as invalid (InputError), or its body could not be read; "
    "the message, reasons and fix say what to change.",
    401: "No API token, or one that is malformed, unknown, expired or revoked, or whose "
    "holder was deactivated.",
    403: "A policy refuses the action (PermissionDenied); the reasons list every one.",
    404: "There is no such job, project, person or address (NotFound).",
    409: "The object's current state does not allow the action (StateError).",
    413: f"The request body is larger than {MAX_BODY_BYTES // 1024**2} MiB.",
    422: "The path, query or body does not fit this schema; each problem is a reason, "
    "e.g. 'body.comment: Field required'.",
    503: "The TRE cannot serve the request now: its installation is broken or a service it "
    "needs is unavailable (PlatformError). The administrators' to fix.",
}


def status_for(kind: type[TreError]) -> int:
    """The HTTP status for a kind of TreError."""
    return next((status for base, status in _STATUS if issubclass(kind, base)), 400)


def status_of(error: TreError) -> int:
    """The HTTP status for a TreError."""
    return status_for(type(error))


def error_responses(statuses: set[int]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each with the error body."""
    return {
        status: {"model": ErrorOut, "description": STATUS_MEANINGS[status]}
        for status in sorted(statuses)
    }


def error_body(error: TreError) -> dict[str, Any]:
    """The JSON body of an error: what is wrong, every reason, the fix and whose it is."""
    return ErrorOut.of(error).model_dump()


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


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path takes. Each route has one method, and Starlette's
    405 names only those of the first route whose path matched."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


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
        kind = {400: InputError, 404: NotFound, 413: InputError}.get(exc.status_code, TreError)
        error = kind(message, fix=fix)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return respond(request, error, status=exc.status_code, headers=headers)

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
