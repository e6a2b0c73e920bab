"""An output request as the acting person may see it: the read-only side of review,
in a module of its own so that `tre status JOB` and the job pages answer without
loading what review's actions need (the disclosure checks' polars, the key grants'
pyarrow: issue 27's "a CLI that answers at once").
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.access import raise_if, review_refusals, view_job_refusals
from tre.errors import NotFound
from tre.models import Job, JobState, OutputRequest, Review
from tre.service.researcher_view import BEFORE_RELEASE, declared_only
from tre.service.session import Session
from tre.service.specs import spec_of
from tre.store import repo


@dataclass
class RequestView:
    """An output request as the acting person may see it."""

    job: Job
    request: OutputRequest
    reviews: list[Review]  # only those the viewer may see (see `visible_reviews`)
    counts: dict[str, int]  # reviews per output, whoever made them
    #: Outputs of python steps the spec does not declare, left out of `request` for a
    #: researcher before release (`researcher_view.declared_only`).
    undeclared: int = 0


def show(session: Session, job_id: int) -> RequestView:
    """One request: checkers (not its author), admins, and the project's members see it."""
    job = repo.get_job(session.conn, job_id)
    raise_if(
        view_job_refusals(session.person(), job, repo.find_project(session.conn, job.project)),
        f"you cannot see the outputs of job {job_id}",
    )
    request = repo.find_output_request(session.conn, job_id)
    if request is None:
        raise NotFound(f"job {job_id} has no outputs to review (it is {job.state.value})")
    return view_of(session, job, request)


def view_of(session: Session, job: Job, request: OutputRequest) -> RequestView:
    reviews = repo.list_reviews(session.conn, job.id)
    counts = {o.name: sum(r.output == o.name for r in reviews) for o in request.outputs}
    undeclared = 0
    me = session.person()
    # Who may review this job (never its author), and admins, see every output as made.
    reviewer = me is not None and (
        "admin" in {r.value for r in me.roles} or not review_refusals(me, job)
    )
    if not reviewer and job.state in BEFORE_RELEASE:
        request, undeclared = declared_only(spec_of(job), request)
        counts = {
            name: n for name, n in counts.items() if any(o.name == name for o in request.outputs)
        }
    return RequestView(
        job, request, visible_reviews(session.actor, job, reviews), counts, undeclared
    )


def visible_reviews(viewer: str, job: Job, reviews: list[Review]) -> list[Review]:
    """A checker sees others' votes on an output only after voting on it themselves, so
    the second review is independent; after the decision everyone involved sees all."""
    if job.state is not JobState.AWAITING_REVIEW:
        return reviews
    mine = {r.output for r in reviews if r.checker == viewer}
    return [r for r in reviews if r.checker == viewer or r.output in mine]
