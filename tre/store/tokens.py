"""Reading and writing API tokens. Only a token's hash is ever stored; writes must run
inside `Database.write()` so they commit with their audit event."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from tre.errors import NotFound


@dataclass(frozen=True)
class ApiToken:
    """One issued token, as stored: its public id and hash, never the token itself."""

    id: str
    person: str
    hash: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None


def _token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(
        id=row["id"],
        person=row["person"],
        hash=row["hash"],
        created_by=row["created_by"],
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        revoked_at=datetime.fromisoformat(row["revoked_at"]) if row["revoked_at"] else None,
        revoked_by=row["revoked_by"],
    )


def insert_token(conn: sqlite3.Connection, token: ApiToken) -> None:
    """Store a newly issued token."""
    conn.execute(
        "INSERT INTO api_tokens (id, person, hash, created_by, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            token.id,
            token.person,
            token.hash,
            token.created_by,
            token.created_at.isoformat(),
            token.expires_at.isoformat(),
        ),
    )


def find_token(conn: sqlite3.Connection, token_id: str) -> ApiToken | None:
    """The token with this public id, or None."""
    row = conn.execute("SELECT * FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
    return _token(row) if row else None


def get_token(conn: sqlite3.Connection, token_id: str) -> ApiToken:
    """The token with this public id; NotFound names the id."""
    token = find_token(conn, token_id)
    if token is None:
        raise NotFound(
            f"there is no token {token_id!r}",
            fix="list tokens and their ids with 'tre admin tokens'",
        )
    return token


def list_tokens(conn: sqlite3.Connection, person: str | None = None) -> list[ApiToken]:
    """Every token (or one person's), oldest first."""
    if person is None:
        rows = conn.execute("SELECT * FROM api_tokens ORDER BY created_at, rowid").fetchall()
    else:
        rows = conn.execute(
            "SELECT * FROM api_tokens WHERE person = ? ORDER BY created_at, rowid", (person,)
        ).fetchall()
    return [_token(r) for r in rows]


def revoke_token(conn: sqlite3.Connection, token_id: str, at: datetime, by: str) -> None:
    """Mark a token revoked (it stays in the table, for the record)."""
    conn.execute(
        "UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?",
        (at.isoformat(), by, token_id),
    )
