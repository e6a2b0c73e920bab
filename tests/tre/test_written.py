"""Records stored before the rules for new input (`tre.written`) still load.

An older tre stored memory and walltime as bare bytes and seconds, took any memory,
and any title. The dispatcher reads a stored spec with `JobSpec.model_validate`, the
checker with `parse_spec(..., as_written=False)`, the store with `model_validate_json`:
none of them may refuse such a record, while the same values written anew are refused.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from jobs.errors import SpecError
from jobs.spec import JobSpec, load_spec, parse_spec
from tests.conftest import EXAMPLES, PROJECT
from tre.service import jobs
from tre.store import repo

OLD_RESOURCES = {"workers": 1, "cores": 1, "memory": 128 * 1024**2, "walltime": 600}


def rewrite(home: Path, table: str, key: str, value: object, change: Callable[[Any], None]):
    """Change one stored record's body as an older tre would have written it."""
    conn = sqlite3.connect(home / "state.db")
    try:
        with conn:
            query = f"SELECT body FROM {table} WHERE {key} = ?"
            body = json.loads(conn.execute(query, (value,)).fetchone()[0])
            change(body)
            update = f"UPDATE {table} SET body = ? WHERE {key} = ?"
            conn.execute(update, (json.dumps(body), value))
    finally:
        conn.close()


def test_a_job_stored_with_bare_bytes_and_seconds_loads_as_the_dispatcher_reads_it(
    home, session_as
):
    job = jobs.submit_job(session_as("rita"), load_spec(EXAMPLES / "health_by_area.yaml"))

    def older(body: dict) -> None:
        body["spec"]["resources"] = OLD_RESOURCES  # below today's floor, and unitless
        body["spec"]["title"] = body["title"] = "Conditions\tby area"

    rewrite(home, "jobs", "id", job.id, older)
    stored = repo.get_job(session_as("ada").conn, job.id)
    for spec in (
        JobSpec.model_validate(stored.spec),  # tre.service.dispatcher
        parse_spec(stored.spec, as_written=False),  # tre.service.checking
    ):
        assert (spec.resources.memory, spec.resources.walltime) == (128 * 1024**2, 600)
        assert spec.title == "Conditions\tby area"
    with pytest.raises(SpecError) as info:  # the same values, written anew
        parse_spec(stored.spec)
    text = info.value.render()
    assert "resources.memory: memory 134217728 has no unit" in text
    assert "resources.walltime: duration 600 has no unit" in text
    assert "title: it contains control character U+0009" in text


def test_a_project_stored_with_a_bare_quota_loads_and_takes_jobs(home, session_as):
    def older(body: dict) -> None:
        body["quota"] = {"workers": 2, "cores": 1, "memory": 2 * 1024**3, "walltime": 1800}

    rewrite(home, "projects", "name", PROJECT, older)
    project = repo.get_project(session_as("ada").conn, PROJECT)
    assert (project.quota.memory, project.quota.walltime) == (2 * 1024**3, 1800)
    job = jobs.submit_job(session_as("rita"), load_spec(EXAMPLES / "health_by_area.yaml"))
    assert job.state.value == "queued"
    assert job.spec["resources"]["memory"] == "1GiB"  # stored now as written: with its unit


def test_a_person_stored_with_a_role_twice_loads_with_each_role_once(home, session_as):
    rewrite(home, "people", "name", "carl", lambda body: body.update(roles=["checker"] * 2))
    assert repo.get_person(session_as("ada").conn, "carl").roles == ["checker"]
