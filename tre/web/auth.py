"""Who is asking: API tokens for programs, signed session cookies for browsers, CSRF.

- The API takes `Authorization: Bearer tre_...` on every request; the token is checked
  against its stored hash each time (`tre.service.tokens.authenticate`).
- A browser signs in once by pasting its token into the login page. It gets a session
  cookie that names the token's public id, an expiry and a nonce, signed with the home's
  key (HMAC-SHA256); HttpOnly and SameSite=Strict. Every request re-checks that token in
  the store, so revoking a token or deactivating its person ends their sessions at once,
  and checks that the session was not signed out (`tre.service.tokens`), so a copy of
  the cookie stops working when its browser signs out.
- Every form POST carries a CSRF token derived from the session cookie (HMAC with the
  same key); the login form uses a double-submit cookie, since it has no session yet.

Nothing here opens a database connection outside `Credentials.session()`, which runs in
the endpoint's own thread (SQLite connections belong to one thread).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tre.service import tokens
from tre.service.session import Session
from tre.store import Database
from tre.web.state import WebState

SESSION_COOKIE = "tre_session"
LOGIN_COOKIE = "tre_login"
SESSION_SECONDS = 8 * 3600  # a working day; the token's own expiry may end it sooner

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API token issued by a TRE admin ('tre admin token NAME').",
)


class LoginRequired(tokens.Unauthenticated):
    """A page was asked for without a valid session: the browser should sign in."""


def web_state(request: Request) -> WebState:
    """The app's fixed context."""
    state: WebState = request.app.state.tre
    return state


@dataclass(frozen=True)
class Credentials:
    """What a request presented: a bearer token, or a verified browser session."""

    state: WebState
    token: str | None = None  # the API token's text (never logged)
    token_id: str | None = None  # from a verified session cookie
    nonce: str | None = None  # the session cookie's nonce: what signing out ends
    csrf: str = ""  # the CSRF token forms must echo (browser sessions)

    @contextmanager
    def session(self, *, writes: bool = False) -> Iterator[Session]:
        """A session acting as the token's person, open for this request only; with
        `writes`, the request takes its turn among those that change state."""
        home = self.state.home
        # The server migrated the database at start; a request needs only a connection.
        db = Database.for_home(home, migrate=False)
        turn = self.state.writes if writes else nullcontext()
        try:
            token = self._check(db)
            with turn:
                yield Session(home=home, db=db, actor=token.person)
        finally:
            db.close()

    def verify(self) -> None:
        """Check these credentials in the store now, with a connection of their own;
        Unauthenticated or LoginRequired if they do not work. Routes call this before
        they read the request body (`tre.web.routes.GuardedRoute`)."""
        db = Database.for_home(self.state.home, migrate=False)
        try:
            self._check(db)
        finally:
            db.close()

    def _check(self, db: Database) -> tokens.ApiToken:
        if self.token is not None:
            return tokens.authenticate(db.conn, self.token)
        return self._check_browser_session(db)

    def _check_browser_session(self, db: Database) -> tokens.ApiToken:
        """The session's token, if it still works and the session was not signed out;
        else LoginRequired (the browser goes to the sign-in page)."""
        try:
            token = tokens.check_token_id(db.conn, self.token_id or "")
        except tokens.Unauthenticated as exc:
            # The session outlived its token: sign in again (with a new token).
            raise LoginRequired(exc.message, fix=exc.fix) from None
        # A session without a nonce cannot be told apart from an ended one: refuse it.
        if self.nonce is None or tokens.browser_session_ended(db.conn, self.nonce):
            raise LoginRequired("this session was signed out", fix="sign in again")
        return token


def bearer_credentials(request: Request) -> Credentials:
    """The bearer token of an API request, unchecked; Unauthenticated (401) if there is
    none. Reads only the Authorization header, never the body."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise tokens.Unauthenticated(
            "this request carries no API token",
            fix="send the header 'Authorization: Bearer tre_...' with the token a TRE admin "
            "issued you ('tre admin token NAME')",
        )
    return Credentials(web_state(request), token=token.strip())


def api_credentials(
    request: Request,
    # Declared for the OpenAPI description's security scheme; the header is read above.
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Credentials:
    """The bearer token of an API request; Unauthenticated (401) if there is none."""
    return bearer_credentials(request)


def page_credentials(request: Request) -> Credentials:
    """The verified session of a browser; LoginRequired (to the login page) if none."""
    state = web_state(request)
    cookie = request.cookies.get(SESSION_COOKIE, "")
    verified = read_session_cookie(state.secret, cookie)
    if verified is None:
        raise LoginRequired(
            "please sign in", fix="paste the API token a TRE admin issued you on the sign-in page"
        )
    return Credentials(
        state,
        token_id=verified.token_id,
        nonce=verified.nonce,
        csrf=csrf_token(state.secret, cookie),
    )


ApiAuth = Annotated[Credentials, Depends(api_credentials)]
PageAuth = Annotated[Credentials, Depends(page_credentials)]


# -- signing ---------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(secret: bytes, purpose: str, text: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}|{text}".encode(), hashlib.sha256).digest())


def make_session_cookie(secret: bytes, token_id: str, token_expires: float) -> tuple[str, int]:
    """A signed session cookie for `token_id`, and its lifetime in seconds."""
    expires = int(min(time.time() + SESSION_SECONDS, token_expires))
    body = f"v1.{token_id}.{expires}.{secrets.token_hex(8)}"
    return f"{body}.{_sign(secret, 'session', body)}", max(0, expires - int(time.time()))


@dataclass(frozen=True)
class SessionCookie:
    """What a verified session cookie names (all public: the cookie's secret part is its
    signature, which is never kept)."""

    token_id: str
    expires_at: datetime  # UTC
    nonce: str  # random per sign-in: tells this session from others of the same token


def read_session_cookie(secret: bytes, cookie: str) -> SessionCookie | None:
    """What a session cookie names, if its signature holds and it has not expired.

    This checks the cookie only: whether its token still works and whether the session
    was signed out are checked in `Credentials.session()`, which has the database.
    """
    body, _, signature = cookie.rpartition(".")
    parts = body.split(".")
    if len(parts) != 4 or parts[0] != "v1" or not parts[2].isdigit():
        return None
    if not hmac.compare_digest(signature, _sign(secret, "session", body)):
        return None
    if int(parts[2]) <= time.time():
        return None
    return SessionCookie(
        token_id=parts[1], expires_at=datetime.fromtimestamp(int(parts[2]), UTC), nonce=parts[3]
    )


def csrf_token(secret: bytes, cookie: str) -> str:
    """The CSRF token bound to one session cookie."""
    return _sign(secret, "csrf", cookie)


def csrf_ok(credentials: Credentials, sent: str) -> bool:
    """Whether a form's CSRF field matches the session it came with."""
    return bool(sent) and hmac.compare_digest(sent, credentials.csrf)


def new_login_nonce() -> str:
    """A random value for the login form's double-submit CSRF check."""
    return secrets.token_urlsafe(24)
