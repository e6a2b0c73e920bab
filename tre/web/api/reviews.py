"""/api/reviews: the output checkers' queue, votes and releases."""

from __future__ import annotations

from tre.errors import InputError, NotFound, PermissionDenied, StateError
from tre.models import Review
from tre.service import review
from tre.web import views
from tre.web.auth import ApiAuth
from tre.web.routes import Routes
from tre.web.schemas import JobId, JobOut, QueueItemOut, ReviewDetailOut, VoteBody

router = Routes(prefix="/api", tags=["reviews"])
#: What acting on one request can meet: no such job, a caller who may not review it,
#: or a request not (or no longer) awaiting review.
REVIEW = (NotFound, PermissionDenied, StateError)


@router.get("/reviews", errors=(PermissionDenied,))
def review_queue(auth: ApiAuth) -> list[QueueItemOut]:
    """Requests awaiting review, oldest first, with the risk the disclosure report shows."""
    with auth.session() as s:
        return [
            QueueItemOut(
                job=JobOut.of(v.job),
                outputs=v.request.outputs,
                counts=v.counts,
                risk=views.risk_of(views.read_report(s, v), len(v.request.outputs)),
                yours=v.job.submitter == s.actor,
            )
            for v in review.queue(s)
        ]


@router.get("/reviews/{job_id}", errors=REVIEW)
def review_detail(job_id: JobId, auth: ApiAuth) -> ReviewDetailOut:
    """One request for a checker who may review it: outputs, votes, and the full report."""
    with auth.session() as s:
        view = views.reviewable(s, job_id)
        report = views.read_report(s, view)
    return ReviewDetailOut(
        job=JobOut.of(view.job),
        outputs=view.request.outputs,
        reviews=view.reviews,
        counts=view.counts,
        reviews_needed=review.REVIEWS_NEEDED,
        ready_to_release=views.ready_to_release(view),
        report=report,
    )


@router.post("/reviews/{job_id}/votes", status_code=201, errors=(*REVIEW, InputError))
def vote(job_id: JobId, body: VoteBody, auth: ApiAuth) -> list[Review]:
    """Approve, reject or return some (or all) outputs, with a comment."""
    with auth.session(writes=True) as s:
        return review.vote(s, job_id, body.outputs, body.decision, body.comment)


@router.post("/reviews/{job_id}/release", errors=REVIEW)
def release(job_id: JobId, auth: ApiAuth) -> JobOut:
    """Settle a request every output of which has two reviews: release what both approved."""
    with auth.session(writes=True) as s:
        return JobOut.of(review.release(s, job_id))
