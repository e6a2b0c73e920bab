"""/api/jobs: submit, list, inspect, cancel; logs, outputs and released files."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Query, Response

from jobs.spec import parse_spec
from tre.errors import InputError, NotFound, PermissionDenied, StateError
from tre.service import jobs, review
from tre.web import views
from tre.web.auth import ApiAuth
from tre.web.routes import Routes
from tre.web.schemas import JobDetailOut, JobId, JobOut, LogsOut, RequestOut, SubmitBody

router = Routes(prefix="/api", tags=["jobs"])
#: What reading one job can meet: no such job, or one the caller may not see.
READ = (NotFound, PermissionDenied)


@router.post("/jobs", status_code=201, errors=(InputError, NotFound, PermissionDenied, StateError))
def submit_job(body: SubmitBody, auth: ApiAuth) -> JobOut:
    """Check a job spec against the project's approval and queue it.

    A refused job is kept as `refused` and answered 403 with every reason.
    """
    spec = parse_spec(body.spec, "the job spec")
    pickles = {}
    for step, text in body.code.items():
        try:
            pickles[step] = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(
                f"the code of python step {step!r} is not base64",
                fix="send each step's cloudpickled function base64-encoded, as 'tre submit' does",
            ) from None
    with auth.session(writes=True) as s:
        return JobOut.of(jobs.submit_job(s, spec, pickles))


@router.get("/jobs")
def list_jobs(
    auth: ApiAuth,
    everything: Annotated[
        bool, Query(alias="all", description="Every job you may see, not only yours.")
    ] = False,
) -> list[JobOut]:
    """Your jobs, or with all=true every job you may see."""
    with auth.session() as s:
        return [JobOut.of(j) for j in jobs.list_jobs(s, everything=everything)]


@router.get("/jobs/{job_id}", errors=READ)
def get_job(job_id: JobId, auth: ApiAuth) -> JobDetailOut:
    """One job: its state, progress per step and what its backend says."""
    with auth.session() as s:
        job = jobs.get_job(s, job_id)
        return JobDetailOut(
            job=JobOut.of(job),
            progress=jobs.progress_of(s, job),
            backend=jobs.backend_detail(s, job),
        )


@router.get("/jobs/{job_id}/logs", errors=READ)
def job_logs(
    job_id: JobId,
    auth: ApiAuth,
    tail: Annotated[int, Query(ge=1, le=10_000)] = 200,
    held: bool = False,
) -> LogsOut:
    """The last lines of a job's logs: tre's status lines, or (`held`, output checkers
    and admins) the job's own log, which may hold what its code printed."""
    with auth.session() as s:
        return LogsOut(job_id=job_id, text=jobs.job_logs(s, job_id, tail, held=held))


@router.post("/jobs/{job_id}/cancel", errors=(*READ, StateError))
def cancel_job(job_id: JobId, auth: ApiAuth) -> JobOut:
    """Cancel a queued or running job (its submitter or an admin)."""
    with auth.session(writes=True) as s:
        return JobOut.of(jobs.cancel_job(s, job_id))


@router.get("/jobs/{job_id}/outputs", errors=(*READ, StateError))
def job_outputs(job_id: JobId, auth: ApiAuth) -> RequestOut:
    """A finished job's outputs with their disclosure status, and the reviews you may see."""
    with auth.session() as s:
        view = review.show(s, job_id)
    return RequestOut(
        job=JobOut.of(view.job),
        outputs=view.request.outputs,
        reviews=view.reviews,
        counts=view.counts,
        reviews_needed=review.REVIEWS_NEEDED,
        undeclared=view.undeclared,
    )


@router.get(
    "/jobs/{job_id}/release",
    errors=(*READ, StateError),
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "The released files."}},
)
def job_release(job_id: JobId, auth: ApiAuth) -> Response:
    """The released files of a job and their manifest, as a zip (every sha256 checked)."""
    with auth.session(writes=True) as s:
        data = views.release_zip(s, job_id)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="job-{job_id}-release.zip"'},
    )
