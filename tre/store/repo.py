"""Reading and writing each domain object. Every function takes the open connection;
writes must run inside `Database.write()` so they commit with their audit event."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tre.errors import NotFound
from tre.models import Dataset, Job, JobState, OutputRequest, Person, Project, Review


def _dump(model: Any) -> str:
    return str(model.model_dump_json())


# -- people ---------------------------------------------------------------------------


def put_person(conn: sqlite3.Connection, person: Person) -> None:
    conn.execute(
        "INSERT INTO people (name, body) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET body = excluded.body",
        (person.name, _dump(person)),
    )


def find_person(conn: sqlite3.Connection, name: str) -> Person | None:
    row = conn.execute("SELECT body FROM people WHERE name = ?", (name,)).fetchone()
    return Person.model_validate_json(row[0]) if row else None


def get_person(conn: sqlite3.Connection, name: str) -> Person:
    person = find_person(conn, name)
    if person is None:
        raise NotFound(
            f"nobody called {name!r} is registered with this TRE",
            fix="check the name with 'tre admin people', or ask an admin to register them",
        )
    return person


def list_people(conn: sqlite3.Connection) -> list[Person]:
    rows = conn.execute("SELECT body FROM people ORDER BY name").fetchall()
    return [Person.model_validate_json(r[0]) for r in rows]


def admin_confirmations_recorded(conn: sqlite3.Connection) -> int:
    """How many admin confirmations the audit log holds (the bootstrap ends at one)."""
    row = conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'person.confirm_admin'")
    return int(row.fetchone()[0])


# -- projects -------------------------------------------------------------------------


def put_project(conn: sqlite3.Connection, project: Project) -> None:
    conn.execute(
        "INSERT INTO projects (name, state, body) VALUES (?, ?, ?) ON CONFLICT(name) "
        "DO UPDATE SET state = excluded.state, body = excluded.body",
        (project.name, project.state.value, _dump(project)),
    )


def find_project(conn: sqlite3.Connection, name: str) -> Project | None:
    row = conn.execute("SELECT body FROM projects WHERE name = ?", (name,)).fetchone()
    return Project.model_validate_json(row[0]) if row else None


def get_project(conn: sqlite3.Connection, name: str) -> Project:
    project = find_project(conn, name)
    if project is None:
        raise NotFound(
            f"there is no project called {name!r}",
            fix="check the name with 'tre project list'",
        )
    return project


def list_projects(conn: sqlite3.Connection) -> list[Project]:
    rows = conn.execute("SELECT body FROM projects ORDER BY name").fetchall()
    return [Project.model_validate_json(r[0]) for r in rows]


# -- datasets -------------------------------------------------------------------------


def put_dataset(conn: sqlite3.Connection, dataset: Dataset) -> None:
    conn.execute(
        "INSERT INTO datasets (name, version, body) VALUES (?, ?, ?)",
        (dataset.name, dataset.version, _dump(dataset)),
    )


def find_dataset(conn: sqlite3.Connection, name: str, version: int | None = None) -> Dataset | None:
    if version is None:
        row = conn.execute(
            "SELECT body FROM datasets WHERE name = ? ORDER BY version DESC LIMIT 1", (name,)
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT body FROM datasets WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
    return Dataset.model_validate_json(row[0]) if row else None


def get_dataset(conn: sqlite3.Connection, name: str, version: int | None = None) -> Dataset:
    dataset = find_dataset(conn, name, version)
    if dataset is None:
        which = f"{name!r} version {version}" if version else repr(name)
        raise NotFound(
            f"there is no dataset {which} in the catalog",
            fix="check the name with 'tre dataset list'",
        )
    return dataset


def list_datasets(conn: sqlite3.Connection) -> list[Dataset]:
    """The newest version of every dataset."""
    rows = conn.execute(
        "SELECT body FROM datasets d WHERE version = "
        "(SELECT MAX(version) FROM datasets WHERE name = d.name) ORDER BY name"
    ).fetchall()
    return [Dataset.model_validate_json(r[0]) for r in rows]


def next_dataset_version(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT MAX(version) FROM datasets WHERE name = ?", (name,)).fetchone()
    return int(row[0] or 0) + 1


# -- jobs -----------------------------------------------------------------------------


def insert_job(conn: sqlite3.Connection, job: Job) -> Job:
    """Store a new job; its id comes from the database (the `id` given is ignored)."""
    cur = conn.execute(
        "INSERT INTO jobs (project, submitter, state, updated_at, body) VALUES (?, ?, ?, ?, '{}')",
        (job.project, job.submitter, job.state.value, job.updated_at.isoformat()),
    )
    stored = job.model_copy(update={"id": int(cur.lastrowid or 0)})
    put_job(conn, stored)
    return stored


def put_job(conn: sqlite3.Connection, job: Job) -> None:
    conn.execute(
        "UPDATE jobs SET state = ?, updated_at = ?, body = ? WHERE id = ?",
        (job.state.value, job.updated_at.isoformat(), _dump(job), job.id),
    )


#: SQLite's integers are 64-bit: a larger id names no job (and would overflow the query).
MAX_ID = 2**63 - 1


def _no_such_id(job_id: int) -> bool:
    return not isinstance(job_id, int) or not 0 < job_id <= MAX_ID


def find_job(conn: sqlite3.Connection, job_id: int) -> Job | None:
    if _no_such_id(job_id):
        return None
    row = conn.execute("SELECT body FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return Job.model_validate_json(row[0]) if row else None


def get_job(conn: sqlite3.Connection, job_id: int) -> Job:
    job = find_job(conn, job_id)
    if job is None:
        raise NotFound(f"there is no job {job_id}", fix="list your jobs with 'tre status'")
    return job


def list_jobs(
    conn: sqlite3.Connection,
    *,
    states: set[JobState] | None = None,
    project: str | None = None,
    submitter: str | None = None,
) -> list[Job]:
    sql, params = "SELECT body FROM jobs WHERE 1=1", []
    if states is not None:
        sql += f" AND state IN ({','.join('?' * len(states))})"
        params += [s.value for s in states]
    if project is not None:
        sql += " AND project = ?"
        params.append(project)
    if submitter is not None:
        sql += " AND submitter = ?"
        params.append(submitter)
    rows = conn.execute(sql + " ORDER BY id", params).fetchall()
    return [Job.model_validate_json(r[0]) for r in rows]


# -- outputs, reviews, releases -------------------------------------------------------


def put_output_request(conn: sqlite3.Connection, request: OutputRequest) -> None:
    conn.execute(
        "INSERT INTO output_requests (job_id, body) VALUES (?, ?) "
        "ON CONFLICT(job_id) DO UPDATE SET body = excluded.body",
        (request.job_id, _dump(request)),
    )


def find_output_request(conn: sqlite3.Connection, job_id: int) -> OutputRequest | None:
    if _no_such_id(job_id):
        return None
    row = conn.execute("SELECT body FROM output_requests WHERE job_id = ?", (job_id,)).fetchone()
    return OutputRequest.model_validate_json(row[0]) if row else None


def put_review(conn: sqlite3.Connection, review: Review) -> None:
    """One vote per checker per output; a checker may change their vote before release."""
    conn.execute(
        "INSERT INTO reviews (job_id, output, checker, body) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(job_id, output, checker) DO UPDATE SET body = excluded.body",
        (review.job_id, review.output, review.checker, _dump(review)),
    )


def list_reviews(conn: sqlite3.Connection, job_id: int) -> list[Review]:
    if _no_such_id(job_id):
        return []
    rows = conn.execute(
        "SELECT body FROM reviews WHERE job_id = ? ORDER BY output, checker", (job_id,)
    ).fetchall()
    return [Review.model_validate_json(r[0]) for r in rows]


def put_release(conn: sqlite3.Connection, job_id: int, manifest: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO releases (job_id, body) VALUES (?, ?)", (job_id, json.dumps(manifest))
    )


def find_release(conn: sqlite3.Connection, job_id: int) -> dict[str, Any] | None:
    if _no_such_id(job_id):
        return None
    row = conn.execute("SELECT body FROM releases WHERE job_id = ?", (job_id,)).fetchone()
    return json.loads(row[0]) if row else None
