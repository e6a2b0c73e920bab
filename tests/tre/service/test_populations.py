"""The population the service records for a table: filters, kinds, and a condition every
value meets read as "not null" only where ingest noted the range."""

from __future__ import annotations

import polars as pl

from jobs.outputs import TableOutput
from jobs.spec import parse_spec
from tests.conftest import PROJECT
from tre.models import Job, JobState
from tre.service.populations import population_of


def _population(session, *filters: str, dataset_version: int = 1):
    spec = parse_spec(
        {
            "project": PROJECT,
            "title": "t",
            "datasets": {"residents": ["local_authority", "ltc_count", "sex"]},
            "steps": [
                {
                    "kind": "table",
                    "name": "t",
                    "dataset": "residents",
                    "rows": ["local_authority"],
                    "filter": list(filters),
                }
            ],
        },
        as_written=False,
    )
    job = Job(
        id=1, project=PROJECT, submitter="rita", title="t", state=JobState.RUNNING, spec={},
        spec_hash="h", dataset_versions={"residents": dataset_version},
    )  # fmt: skip
    output = TableOutput(
        name="t", step="t", description="", datasets=["residents"], rows=["local_authority"],
        columns=[], value=None, statistic="count", quantile=None, cells=pl.DataFrame(),
    )  # fmt: skip
    return population_of(session.conn, output, spec, job)


def test_conditions_every_value_meets_read_as_not_null_and_others_as_written(session_as):
    found = _population(session_as("ada"), "ltc_count >= 0", "ltc_count <= 7", "sex in ['F', 'M']")
    assert found["filters"] == ["ltc_count <= 7", "ltc_count not null", "sex not null"]
    assert found["written"] == ["ltc_count <= 7", "ltc_count >= 0", 'sex in ["F", "M"]']
    assert found["types"] == {"ltc_count": "integer", "sex": "text"}


def test_a_condition_some_values_fail_stays_as_written(session_as):
    found = _population(session_as("ada"), "ltc_count >= 1", "sex == 'F'")
    assert found["filters"] == ["ltc_count >= 1", 'sex == "F"']
    assert "written" not in found


def test_a_version_ingested_before_ranges_were_noted_keeps_its_filters(session_as):
    ada = session_as("ada")
    with ada.write() as conn:
        conn.execute("DELETE FROM dataset_domains WHERE name = 'residents'")
    found = _population(ada, "ltc_count >= 0")
    assert found["filters"] == ["ltc_count >= 0"] and "written" not in found
