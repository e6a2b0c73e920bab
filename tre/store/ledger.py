"""The release ledger: every table a project has released, as it was published.

Rows are written in the release's own write transaction (`Database.write()`) and never
changed (the schema refuses updates and deletes). `tre.service.ledger` turns them into
`disclosure.differencing.PublishedTable` for the differencing checks.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

__all__ = ["list_released_tables", "put_released_table"]


def put_released_table(
    conn: sqlite3.Connection,
    *,
    project: str,
    job_id: int,
    output: str,
    released_at: datetime,
    body: dict[str, Any],
) -> None:
    """Record one released table (its published counts as JSON)."""
    conn.execute(
        "INSERT INTO released_tables (project, job_id, output, released_at, body) "
        "VALUES (?, ?, ?, ?, ?)",
        (project, job_id, output, released_at.isoformat(), json.dumps(body, allow_nan=False)),
    )


def list_released_tables(
    conn: sqlite3.Connection, project: str
) -> list[tuple[int, dict[str, Any]]]:
    """(job id, body) of every table `project` has released, oldest first."""
    rows = conn.execute(
        "SELECT job_id, body FROM released_tables WHERE project = ? ORDER BY job_id, output",
        (project,),
    ).fetchall()
    return [(int(row[0]), json.loads(row[1])) for row in rows]
