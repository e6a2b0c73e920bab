"""Signing in and out, the start page, and the stylesheet."""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from tre.errors import PermissionDenied
from tre.models import Role
from tre.service import tokens
from tre.service.session import Session
from tre.store import Database
from tre.web.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    Credentials,
    LoginRequired,
    PageAuth,
    SessionCookie,
    make_session_cookie,
    new_login_nonce,
    page_credentials,
    read_session_cookie,
    web_state,
)
from tre.web.render import render, require_csrf
from tre.web.routes import Routes

router = Routes(include_in_schema=False)
STYLESHEET = resources.files("tre.web").joinpath("static/style.css").read_text()
_LOGIN_SECONDS = 3600


def safe_next(target: str) -> str:
    """Where to go after signing in: a path on this site only (never another site)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, next_path: str, error: Exception | None, status: int) -> Response:
    nonce = new_login_nonce()
    response = render(
        request,
        "login.html",
        status,
        title="Sign in",
        login_nonce=nonce,
        next=next_path,
        error=error,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=_LOGIN_SECONDS,
        httponly=True,
        samesite="strict",
        secure=web_state(request).cookie_secure,
        path="/login",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    """The sign-in page: paste an API token."""
    return _login_page(request, safe_next(next), None, 200)


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the token; on success start a signed session and go where the person was going."""
    state = web_state(request)
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(nonce, csrf):
        error = PermissionDenied(
            "the sign-in form is out of date", fix="sign in again from this page"
        )
        return _login_page(request, safe_next(next), error, 403)
    db = Database.for_home(state.home, migrate=False)
    try:
        record = tokens.authenticate(db.conn, token)
        session = Session(home=state.home, db=db, actor=record.person)
        me = session.person()
        role = me.roles[0] if me is not None else Role.RESEARCHER
        with state.writes, session.write() as conn:
            session.record(
                conn,
                "session.start",
                f"person:{record.person}",
                role,
                {"token_id": record.id, "via": "browser"},
            )
    except tokens.Unauthenticated as exc:
        return _login_page(request, safe_next(next), exc, 401)
    finally:
        db.close()
    cookie, max_age = make_session_cookie(state.secret, record.id, record.expires_at.timestamp())
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=state.cookie_secure,
        path="/",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _end_session(auth: Credentials, cookie: SessionCookie) -> None:
    """Record the session as ended, so a copy of its cookie stops working too, with a
    `session.end` event naming the token's id (never the token or the cookie)."""
    try:
        with auth.session(writes=True) as s:
            tokens.end_browser_session(
                s, nonce=cookie.nonce, token_id=cookie.token_id, expires_at=cookie.expires_at
            )
    except LoginRequired:
        # Already signed out, or its token no longer works: nothing is left to end.
        return


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """End the browser session, on the server and in the browser (the token itself stays
    valid until revoked or expired)."""
    state = web_state(request)
    cookie = read_session_cookie(state.secret, request.cookies.get(SESSION_COOKIE, ""))
    if cookie is not None:
        auth = page_credentials(request)
        require_csrf(auth, csrf)
        _end_session(auth, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def start(auth: PageAuth) -> Response:
    """Send each person to the page their role starts from."""
    with auth.session() as s:
        me = s.person()
    roles = set(me.roles) if me is not None else set()
    if Role.CHECKER in roles:
        target = "/review"
    elif Role.RESEARCHER in roles:
        target = "/jobs"
    elif Role.ADMIN in roles:
        target = "/admin"
    else:  # pragma: no cover - every person holds a role
        target = "/login"
    return RedirectResponse(target, status_code=303)


@router.get("/static/style.css")
def stylesheet() -> Response:
    """The one stylesheet (public: it holds nothing but layout)."""
    return Response(
        STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )
