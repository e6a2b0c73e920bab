"""The one place job and project states change: state and audit event, one transaction."""

from __future__ import annotations

import sqlite3
from typing import Any

from tre import audit
from tre.models import Job, JobState, Project, ProjectState, utcnow
from tre.states import check_transition
from tre.store import repo


def set_job_state(
    conn: sqlite3.Connection,
    job: Job,
    new: JobState,
    *,
    actor: str,
    role: str,
    reason: str = "",
    details: dict[str, Any] | None = None,
    **changes: Any,
) -> Job:
    """Move `job` to `new` (if the table allows it), store it and audit it.

    Must run inside a write transaction; `changes` are other fields to update with it.
    The job is re-read first so a stale copy can never overwrite a newer state.
    """
    current = repo.get_job(conn, job.id)
    check_transition("job", current.state, new)
    updated = current.model_copy(
        update={"state": new, "reason": reason or current.reason, "updated_at": utcnow(), **changes}
    )
    repo.put_job(conn, updated)
    audit.append(
        conn,
        actor=actor,
        role=role,
        action=f"job.{new.value}",
        obj=f"job:{job.id}",
        details={"from": current.state.value, "reason": reason, **(details or {})},
    )
    return updated


def set_project_state(
    conn: sqlite3.Connection,
    project: Project,
    new: ProjectState,
    *,
    actor: str,
    role: str,
    reason: str = "",
    **changes: Any,
) -> Project:
    current = repo.get_project(conn, project.name)
    check_transition("project", current.state, new)
    updated = current.model_copy(update={"state": new, **changes})
    repo.put_project(conn, updated)
    audit.append(
        conn,
        actor=actor,
        role=role,
        action=f"project.{new.value}",
        obj=f"project:{project.name}",
        details={"from": current.state.value, "reason": reason},
    )
    return updated
