"""What every page shares: rendering with the common context, the error page, and the
CSRF check of form posts."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from tre.errors import PermissionDenied, TreError
from tre.models import Person
from tre.web.auth import Credentials, csrf_ok
from tre.web.state import WebState

#: Headers on every page: nothing cached, nothing framed, nothing loaded from elsewhere.
NO_STORE = {"Cache-Control": "no-store"}


def _state(request: Request) -> WebState:
    state: WebState = request.app.state.tre
    return state


def render_text(request: Request, template: str, **context: Any) -> str:
    """A template rendered with the shared context (the person, their roles, CSRF)."""
    me: Person | None = context.pop("me", None)
    base = {
        "me": me,
        "roles": [r.value for r in me.roles] if me is not None else [],
        "csrf": context.pop("csrf", ""),
        "path": request.url.path,
    }
    return _state(request).templates.get_template(template).render(**base, **context)


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page as a response."""
    return HTMLResponse(
        render_text(request, template, **context), status_code=status, headers=NO_STORE
    )


def error_page(request: Request, error: TreError, status: int) -> str:
    """The page for an error: its message, every reason and the fix."""
    return render_text(request, "error.html", title="Not possible", error=error, status=status)


def require_csrf(auth: Credentials, sent: str) -> None:
    """Refuse a form POST whose CSRF token does not match the session it came with."""
    if not csrf_ok(auth, sent):
        raise PermissionDenied(
            "this form's security token is missing or out of date",
            fix="reload the page and submit the form again",
        )
