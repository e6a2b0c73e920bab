"""A stored job's spec is parsed once per job and spec (tre/service/specs.py)."""

from __future__ import annotations

from unittest import mock

from jobs.spec import JobSpec
from tre.models import Job, JobState
from tre.service import specs

RAW = {
    "project": "p",
    "title": "t",
    "datasets": {"residents": ["age_band"]},
    "steps": [{"kind": "table", "name": "by_age", "dataset": "residents", "rows": ["age_band"]}],
}


def _job(job_id: int, spec_hash: str, title: str = "t") -> Job:
    return Job(
        id=job_id,
        project="p",
        submitter="rita",
        title=title,
        state=JobState.QUEUED,
        spec={**RAW, "title": title},
        spec_hash=spec_hash,
    )


def test_a_job_s_spec_is_validated_once_however_often_it_is_read():
    job = _job(90001, "h1")
    with mock.patch.object(JobSpec, "model_validate", wraps=JobSpec.model_validate) as parse:
        first = specs.spec_of(job)
        assert specs.spec_of(job) is first and specs.spec_of(job.model_copy()) is first
        assert parse.call_count == 1
        # Another spec under the same job is parsed afresh, even under the same stored
        # hash (a row edited outside tre).
        changed = specs.spec_of(_job(90001, "h1", title="other"))
        assert changed.title == "other" and parse.call_count == 2
    assert first.steps[0].name == "by_age"
