"""API tokens: how people prove who they are to `tre serve`.

An admin issues a token to a registered person (`tre admin token NAME`). The token is
shown once and stored only as its sha256, so a copy of the state database gives no one
a working token. Tokens expire, can be revoked, and stop working as soon as their
person is deactivated. Issuing and revoking are audit events; the token itself is
never logged, printed by the server, or written anywhere but to the admin who asked.

A token reads `tre_<id>_<secret>`: the id is public (listings, revocation, the browser
session), the secret is 32 random bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from datetime import UTC, datetime, time, timedelta

from policies.access import raise_if, role_refusals
from tre.errors import InputError, PermissionDenied, StateError
from tre.models import Role, utcnow
from tre.service.session import Session
from tre.store import repo, sessions
from tre.store import tokens as store
from tre.store.tokens import ApiToken
from tre.units import parse_duration

__all__ = [
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME",
    "ApiToken",
    "Unauthenticated",
    "authenticate",
    "check_token_id",
    "issue_token",
    "list_tokens",
    "parse_expiry",
    "revoke_token",
    "token_state",
]

PREFIX = "tre_"
DEFAULT_LIFETIME = timedelta(days=30)
MAX_LIFETIME = timedelta(days=366)
_TOKEN_RE = re.compile(r"^tre_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NEW_TOKEN = "ask a TRE admin for a new token ('tre admin token NAME' on the TRE host)"  # noqa: S105


class Unauthenticated(PermissionDenied):
    """The request carries no credentials, or credentials this TRE does not accept."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def parse_expiry(text: str | None, now: datetime | None = None) -> datetime:
    """When a token issued now should expire: a date (valid through that day, UTC), a
    duration such as '30d' or '12h', or by default 30 days from now."""
    now = now or utcnow()
    if text is None or not text.strip():
        return now + DEFAULT_LIFETIME
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        try:
            return now + timedelta(seconds=parse_duration(text))
        except ValueError:
            raise InputError(
                f"cannot read the expiry {text!r}",
                fix="give a date (2026-12-31) or a duration from now (90d, 12h)",
            ) from None
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=UTC)


def issue_token(
    session: Session, person: str, *, expires: datetime | None = None
) -> tuple[ApiToken, str]:
    """Issue a new token for `person` (admin only); returns its record and its text.

    The text is the only copy: it is not stored and cannot be shown again.
    """
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "issuing API tokens"),
        "you cannot issue API tokens",
    )
    now = utcnow()
    expires = expires or now + DEFAULT_LIFETIME
    problems = []
    if expires <= now:
        problems.append(f"the expiry {expires:%Y-%m-%d %H:%M} UTC is not in the future")
    if expires - now > MAX_LIFETIME:
        problems.append(f"a token may last at most {MAX_LIFETIME.days} days")
    if problems:
        raise InputError(
            f"cannot issue a token for {person!r}",
            reasons=problems,
            fix="choose an expiry within a year (--expires 90d or a date)",
        )
    with session.write() as conn:
        holder = repo.get_person(conn, person)
        if not holder.active:
            raise StateError(
                f"{person}'s registration is deactivated, so they cannot have a token",
                fix=f"reactivate them first ('tre admin update {person} --activate')",
            )
        token_id = secrets.token_hex(6)
        text = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        record = ApiToken(
            id=token_id,
            person=person,
            hash=_digest(text),
            created_by=session.actor,
            created_at=now,
            expires_at=expires,
        )
        store.insert_token(conn, record)
        session.record(
            conn,
            "token.issue",
            f"person:{person}",
            Role.ADMIN,
            {"token_id": token_id, "expires_at": expires.isoformat()},
        )
    return record, text


def revoke_token(session: Session, token_id: str) -> ApiToken:
    """Revoke a token at once (admin only); browser sessions made with it end too."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "revoking API tokens"),
        "you cannot revoke API tokens",
    )
    with session.write() as conn:
        token = store.get_token(conn, token_id)
        if token.revoked_at is not None:
            raise StateError(
                f"token {token_id} was already revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC "
                f"by {token.revoked_by}"
            )
        now = utcnow()
        store.revoke_token(conn, token_id, now, session.actor)
        session.record(
            conn, "token.revoke", f"person:{token.person}", Role.ADMIN, {"token_id": token_id}
        )
    return store.get_token(session.conn, token_id)


def list_tokens(session: Session, person: str | None = None) -> list[ApiToken]:
    """Issued tokens (ids, holders, dates; never a token), admin only."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "listing API tokens"),
        "you cannot list API tokens",
    )
    return store.list_tokens(session.conn, person)


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    """'active', 'expired' or 'revoked', for listings."""
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at <= (now or utcnow()) else "active"


def authenticate(conn: sqlite3.Connection, text: str, now: datetime | None = None) -> ApiToken:
    """The valid token `text` is, or Unauthenticated saying what is wrong with it.

    The comparison of hashes takes the same time whatever they hold, and nothing here
    ever repeats the token's secret.
    """
    match = _TOKEN_RE.match(text.strip())
    if match is None:
        raise Unauthenticated(
            "the credentials are not a tre API token (they look like tre_<id>_<secret>)",
            fix="send 'Authorization: Bearer tre_...' with the token an admin gave you",
        )
    token = store.find_token(conn, match.group(1))
    if token is None or not hmac.compare_digest(token.hash, _digest(text.strip())):
        raise Unauthenticated("this TRE does not know that API token", fix=_NEW_TOKEN)
    return check_token_id(conn, token.id, now)


def check_token_id(
    conn: sqlite3.Connection, token_id: str, now: datetime | None = None
) -> ApiToken:
    """The token with this id if it is still good (not revoked or expired, its person
    registered and active), else Unauthenticated. Browser sessions check this on
    every request, so revoking a token ends them."""
    token = store.find_token(conn, token_id)
    if token is None:
        raise Unauthenticated("this TRE does not know that API token", fix=_NEW_TOKEN)
    now = now or utcnow()
    if token.revoked_at is not None:
        raise Unauthenticated(
            f"API token {token.id} was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC",
            fix=_NEW_TOKEN,
        )
    if token.expires_at <= now:
        raise Unauthenticated(
            f"API token {token.id} expired on {token.expires_at:%Y-%m-%d %H:%M} UTC",
            fix=_NEW_TOKEN,
        )
    person = repo.find_person(conn, token.person)
    if person is None or not person.active:
        raise Unauthenticated(
            f"API token {token.id} belongs to {token.person}, whose registration is "
            + ("gone" if person is None else "deactivated"),
            fix="ask a TRE admin to reactivate the registration",
        )
    return token


def browser_session_ended(conn: sqlite3.Connection, nonce: str) -> bool:
    """Whether the browser session with this cookie nonce was signed out."""
    return sessions.session_ended(conn, nonce)


def end_browser_session(
    session: Session, *, nonce: str, token_id: str, expires_at: datetime
) -> bool:
    """Sign out one browser session (its cookie's nonce), so a copy of the cookie stops
    working too; audited as `session.end` with the token's id, never the token or the
    cookie. False if it was signed out already (nothing is written)."""
    me = session.person()
    role = me.roles[0] if me is not None else Role.RESEARCHER
    with session.write() as conn:
        if not sessions.end_session(conn, nonce, token_id, utcnow(), expires_at):
            return False
        session.record(
            conn,
            "session.end",
            f"person:{session.actor}",
            role,
            {"token_id": token_id, "via": "browser"},
        )
    return True
