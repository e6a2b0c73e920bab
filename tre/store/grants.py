"""Reading and writing key grants (table `key_grants`, migration 004).

Writes must run inside `Database.write()` so they commit with their audit event. The
token is never stored here: it is a credential, and lives only in the job's input.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tre.errors import NotFound

__all__ = ["GrantRecord", "find_grant", "get_grant", "list_grants", "mark_revoked", "put_grant"]


class GrantRecord(BaseModel):
    """One grant the service issued, as admins list it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    job_id: int | None = None
    project: str | None = None
    holder: str
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    revoked_reason: str | None = None
    datasets: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="name -> {version, columns}"
    )
    keys: list[str] = Field(default_factory=list)
    signed_with: int = Field(default=1, description="version of the grant-signing key")

    def active(self, now: datetime) -> bool:
        """Neither revoked nor expired at `now`."""
        return self.revoked_at is None and now < self.expires_at


def put_grant(conn: sqlite3.Connection, grant: GrantRecord) -> None:
    """Store a newly issued grant."""
    body = json.dumps(
        {"datasets": grant.datasets, "keys": grant.keys, "signed_with": grant.signed_with},
        sort_keys=True,
    )
    conn.execute(
        "INSERT INTO key_grants (id, job_id, project, holder, issued_at, expires_at, "
        "revoked_at, revoked_reason, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            grant.id,
            grant.job_id,
            grant.project,
            grant.holder,
            grant.issued_at.isoformat(),
            grant.expires_at.isoformat(),
            grant.revoked_at.isoformat() if grant.revoked_at else None,
            grant.revoked_reason,
            body,
        ),
    )


def _record(row: sqlite3.Row) -> GrantRecord:
    body = json.loads(row["body"])
    return GrantRecord(
        id=row["id"],
        job_id=row["job_id"],
        project=row["project"],
        holder=row["holder"],
        issued_at=datetime.fromisoformat(row["issued_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        revoked_at=datetime.fromisoformat(row["revoked_at"]) if row["revoked_at"] else None,
        revoked_reason=row["revoked_reason"],
        datasets=body.get("datasets", {}),
        keys=body.get("keys", []),
        signed_with=body.get("signed_with", 1),  # grants stored before it was recorded: v1
    )


def find_grant(conn: sqlite3.Connection, grant_id: str) -> GrantRecord | None:
    """The grant `grant_id`, or None."""
    row = conn.execute("SELECT * FROM key_grants WHERE id = ?", (grant_id,)).fetchone()
    return _record(row) if row else None


def get_grant(conn: sqlite3.Connection, grant_id: str) -> GrantRecord:
    """The grant `grant_id`; NotFound naming it otherwise."""
    found = find_grant(conn, grant_id)
    if found is None:
        raise NotFound(
            f"there is no key grant {grant_id!r}", fix="list the grants with 'tre keys grants'"
        )
    return found


def list_grants(
    conn: sqlite3.Connection,
    *,
    project: str | None = None,
    job_id: int | None = None,
    unrevoked: bool = False,
    live_at: datetime | None = None,
) -> list[GrantRecord]:
    """Grants, oldest first; filtered by project, job, not yet revoked, or not yet
    expired at `live_at`."""
    sql, params = "SELECT * FROM key_grants WHERE 1=1", list[object]()
    if project is not None:
        sql += " AND project = ?"
        params.append(project)
    if job_id is not None:
        sql += " AND job_id = ?"
        params.append(job_id)
    if unrevoked:
        sql += " AND revoked_at IS NULL"
    if live_at is not None:  # ISO text of UTC times sorts as the times do
        sql += " AND expires_at > ?"
        params.append(live_at.isoformat())
    rows = conn.execute(sql + " ORDER BY issued_at, rowid", params).fetchall()
    return [_record(r) for r in rows]


def mark_revoked(conn: sqlite3.Connection, grant_id: str, at: datetime, reason: str) -> None:
    """Record that `grant_id` was revoked at `at`, and why (a revoked grant stays so)."""
    conn.execute(
        "UPDATE key_grants SET revoked_at = ?, revoked_reason = ? "
        "WHERE id = ? AND revoked_at IS NULL",
        (at.isoformat(), reason, grant_id),
    )
