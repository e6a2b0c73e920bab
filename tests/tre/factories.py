"""Jobs in the two end states issue 27 tells apart: refused at submission, and rejected
by the output checkers, reached through the service layer.

A job reaches review here without a job process: the dispatcher's own steps (each
`set_job_state`, its output request) are taken in-process, as `Dispatcher` takes them,
so the state table still guards every move. The votes and the release are the service's
own. (A job process cannot start from a source tree that is not installed, and what it
computes is not what these tests are about.)
"""

from __future__ import annotations

import json

import pytest

from jobs.spec import JobSpec
from tests.conftest import PROJECT
from tre.errors import PermissionDenied
from tre.models import Decision, Job, JobState, OutputRecord, OutputRequest, SdcStatus
from tre.service import jobs, review
from tre.service.session import Session
from tre.service.state import set_job_state
from tre.store import repo

SPEC = {
    "project": PROJECT,
    "title": "COPD by area",
    "datasets": {"residents": ["local_authority"]},
    "resources": {"workers": 1, "walltime": "10m"},
    "steps": [
        {"kind": "table", "name": "by_area", "dataset": "residents", "rows": ["local_authority"]}
    ],
}


def refused_at_submission(olga: Session) -> Job:
    """olga (no member of the project) submits a job: it is refused, with its reasons."""
    with pytest.raises(PermissionDenied):
        jobs.submit_job(olga, JobSpec.model_validate(SPEC))
    return repo.list_jobs(olga.conn)[-1]


def rejected_at_review(rita: Session, carl: Session, chen: Session) -> Job:
    """rita's job, run and checked as the dispatcher does it, whose one output both
    checkers reject; carl settles it, so it ends `rejected`."""
    job = jobs.submit_job(rita, JobSpec.model_validate(SPEC))
    folder = rita.home.job_dir(job.id)
    (folder / "report.json").write_text(json.dumps({"outputs": []}))
    request = OutputRequest(
        job_id=job.id,
        project=job.project,
        author=job.submitter,
        outputs=[
            OutputRecord(
                name="by_area",
                kind="table",
                step="by_area",
                sdc_status=SdcStatus.FAIL,
                summary="2 cells count fewer than 10 people",
            )
        ],
        report_json="report.json",
        report_html="report.html",
        report_markdown="report.md",
    )
    with rita.write() as conn:
        system = {"actor": "tre", "role": "system"}
        job = set_job_state(conn, job, JobState.RUNNING, backend="local", attempts=1, **system)
        job = set_job_state(conn, job, JobState.CHECKING, **system)
        repo.put_output_request(conn, request)
        job = set_job_state(conn, job, JobState.AWAITING_REVIEW, **system)
    review.vote(carl, job.id, None, Decision.REJECT, "small cells")
    review.vote(chen, job.id, None, Decision.REJECT, "small cells in two areas")
    return review.release(carl, job.id)
