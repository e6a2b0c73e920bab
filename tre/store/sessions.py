"""Browser sessions ended by signing out. The session cookie is signed, not stored, so
ending one means remembering its nonce until the cookie would have expired anyway.
Writes must run inside `Database.write()` so they commit with their audit event."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime


def _stamp(at: datetime) -> str:
    # One fixed form (UTC, with microseconds), so the text sorts in time order in SQL.
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def end_session(
    conn: sqlite3.Connection, nonce: str, token_id: str, ended_at: datetime, expires_at: datetime
) -> bool:
    """Record the session with this nonce as ended; False if it already was. Rows whose
    cookie has expired by `ended_at` are deleted first: no request can present them."""
    conn.execute("DELETE FROM ended_sessions WHERE expires_at <= ?", (_stamp(ended_at),))
    cursor = conn.execute(
        "INSERT OR IGNORE INTO ended_sessions (nonce, token_id, ended_at, expires_at) "
        "VALUES (?, ?, ?, ?)",
        (nonce, token_id, _stamp(ended_at), _stamp(expires_at)),
    )
    return cursor.rowcount == 1


def session_ended(conn: sqlite3.Connection, nonce: str) -> bool:
    """Whether the session with this nonce was signed out."""
    row = conn.execute("SELECT 1 FROM ended_sessions WHERE nonce = ?", (nonce,)).fetchone()
    return row is not None
