"""The release ledger: per project, oldest first, append-only."""

import sqlite3
from datetime import UTC, datetime

import pytest

from tre.store.db import Database
from tre.store.ledger import list_released_tables, put_released_table


def add_job(conn, job_id, project):
    conn.execute(
        "INSERT INTO jobs (id, project, submitter, state, updated_at, body) "
        "VALUES (?, ?, 'rita', 'released', '2026-01-01', '{}')",
        (job_id, project),
    )


def test_released_tables_are_listed_per_project_and_cannot_be_changed(tmp_path):
    db = Database.create(tmp_path / "state.db")
    at = datetime(2026, 1, 2, tzinfo=UTC)
    with db.write() as conn:
        add_job(conn, 1, "falls")
        add_job(conn, 2, "other")
        put_released_table(
            conn, project="falls", job_id=1, output="b", released_at=at, body={"x": 2}
        )
        put_released_table(
            conn, project="falls", job_id=1, output="a", released_at=at, body={"x": 1}
        )
        put_released_table(conn, project="other", job_id=2, output="c", released_at=at, body={})
    assert list_released_tables(db.conn, "falls") == [(1, {"x": 1}), (1, {"x": 2})]
    assert list_released_tables(db.conn, "nobody") == []
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), db.write() as conn:
        conn.execute("UPDATE released_tables SET body = '{}'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"), db.write() as conn:
        conn.execute("DELETE FROM released_tables")
    with pytest.raises(sqlite3.IntegrityError), db.write() as conn:  # once per output
        put_released_table(conn, project="falls", job_id=1, output="a", released_at=at, body={})
