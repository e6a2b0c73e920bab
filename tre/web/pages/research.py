"""The researchers' pages: their jobs and states, logs, the disclosure summary of their
outputs, and their released files to download."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from tre.errors import NotFound
from tre.models import JobState
from tre.service import jobs, review
from tre.service.researcher_view import ADVISORY_NOTE
from tre.web import views
from tre.web.auth import PageAuth
from tre.web.render import render
from tre.web.routes import Routes
from tre.web.schemas import JobId

router = Routes(include_in_schema=False)
WITH_OUTPUTS = {
    JobState.AWAITING_REVIEW,
    JobState.RELEASED,
    JobState.PARTIALLY_RELEASED,
    JobState.RETURNED,
    JobState.REJECTED,
}


@router.get("/jobs")
def jobs_page(request: Request, auth: PageAuth, all: str = "") -> Response:
    """My jobs (or every job of my projects) and their states, newest first."""
    with auth.session() as s:
        found = jobs.list_jobs(s, everything=bool(all))
        me = s.person()
    found.sort(key=lambda j: j.id, reverse=True)
    return render(
        request,
        "jobs.html",
        title="My jobs",
        me=me,
        csrf=auth.csrf,
        found=found,
        everything=bool(all),
    )


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: JobId, auth: PageAuth) -> Response:
    """One job: state, progress, logs, the disclosure summary and released files."""
    with auth.session() as s:
        job = jobs.get_job(s, job_id)
        context: dict[str, Any] = {
            "me": s.person(),
            "job": job,
            "progress": jobs.progress_of(s, job),
            "backend": jobs.backend_detail(s, job),
            "logs": jobs.job_logs(s, job_id),
            "view": None,
            "outcomes": {},
            "manifest": None,
        }
        if job.state in WITH_OUTPUTS:  # a refused job never ran: it has no outputs
            view = review.show(s, job_id)
            context["view"] = view
            if job.state is not JobState.AWAITING_REVIEW:
                context["outcomes"] = review.outcome(view.request, view.reviews)[0]
            if job.state in views.RELEASED:
                path = s.home.release_dir(job_id) / "manifest.json"
                context["manifest"] = json.loads(path.read_text())
    return render(
        request,
        "job.html",
        title=f"Job {job_id}",
        csrf=auth.csrf,
        needed=review.REVIEWS_NEEDED,
        advisory_note=ADVISORY_NOTE,
        **context,
    )


@router.get("/jobs/{job_id}/release.zip")
def release_zip(job_id: JobId, auth: PageAuth) -> Response:
    """Every released file of a job with its manifest, as a zip."""
    with auth.session(writes=True) as s:
        data = views.release_zip(s, job_id)
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="job-{job_id}-release.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/jobs/{job_id}/released/{output}/{filename}")
def released_file(job_id: JobId, output: str, filename: str, auth: PageAuth) -> Response:
    """One released file, checked against its manifest's sha256 on the way out."""
    with auth.session(writes=True) as s:
        _manifest, files = views.released_files(s, job_id)
    data = files.get(f"{output}/{filename}")
    if data is None:
        raise NotFound(
            f"job {job_id} released no file {output}/{filename}",
            fix=f"see the released files on /jobs/{job_id}",
        )
    media = "text/csv" if filename.endswith(".csv") else "application/octet-stream"
    return Response(
        data,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
