"""The release ledger as the service uses it: written at release, read at checking.

At release, every approved table of the request is recorded as it was published (from
the report the checkers reviewed); when a later request of the same project is checked,
its tables are compared with all of them (`disclosure.differencing`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from disclosure.differencing import PublishedTable, published_from_report
from tre.models import Job
from tre.store import ledger

__all__ = ["record_release", "released_tables"]


def released_tables(conn: sqlite3.Connection, project: str) -> list[PublishedTable]:
    """Every table `project` has released so far, oldest first."""
    return [
        PublishedTable.from_json(body, job_id=job_id)
        for job_id, body in ledger.list_released_tables(conn, project)
    ]


def record_release(
    conn: sqlite3.Connection,
    job: Job,
    report: Mapping[str, Any],
    approved: Iterable[str],
    at: datetime,
) -> list[str]:
    """Record the approved tables of `job` (from its report) in the ledger, inside the
    caller's write transaction; returns the names recorded."""
    chosen = set(approved)
    recorded = []
    outputs = report.get("outputs") or []
    for output in outputs:
        if not isinstance(output, Mapping) or output.get("name") not in chosen:
            continue
        table = published_from_report(output, report, job_id=job.id)
        if table is None:
            continue
        ledger.put_released_table(
            conn,
            project=job.project,
            job_id=job.id,
            output=table.name,
            released_at=at,
            body=table.to_json(),
        )
        recorded.append(table.name)
    return recorded
