"""The output checkers' pages: the review queue, and one page per output request with
its tables, votes and release."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from policies.access import role_refusals
from tre.errors import InputError, TreError
from tre.models import Decision, JobState, Role
from tre.service import review
from tre.service.session import Session
from tre.service.specs import spec_of
from tre.web import views
from tre.web.auth import PageAuth
from tre.web.errors import status_of
from tre.web.render import render, require_csrf
from tre.web.report_view import finding_lines, output_views, rule_lines
from tre.web.routes import Routes
from tre.web.schemas import JobId

router = Routes(include_in_schema=False)
DECISION_SYMBOLS = {"approve": "✓", "reject": "✗", "return": "↩"}


@router.get("/review")
def queue_page(request: Request, auth: PageAuth) -> Response:
    """Requests awaiting review, oldest first, with the report's risk."""
    with auth.session() as s:
        me = s.person()
        items = []
        for v in review.queue(s):
            total = review.REVIEWS_NEEDED * len(v.request.outputs)
            items.append(
                {
                    "job": v.job,
                    "since": v.request.created_at.strftime("%Y-%m-%d %H:%M"),
                    "risk": views.risk_of(views.read_report(s, v), len(v.request.outputs)),
                    "done": sum(min(c, review.REVIEWS_NEEDED) for c in v.counts.values()),
                    "total": total,
                    "yours": v.job.submitter == s.actor,
                }
            )
    return render(
        request,
        "queue.html",
        title="Review queue",
        me=me,
        csrf=auth.csrf,
        items=items,
        needed=review.REVIEWS_NEEDED,
        can_review=not role_refusals(me, Role.CHECKER, "reviewing outputs"),
    )


def review_context(s: Session, job_id: int) -> dict[str, Any]:
    """Everything the request page shows, for a checker who may review it."""
    view = views.reviewable(s, job_id)
    report = views.read_report(s, view)
    spec = spec_of(view.job)
    by_output: dict[str, list[Any]] = {o.name: [] for o in view.request.outputs}
    for r in view.reviews:
        by_output.setdefault(r.output, []).append(r)
    return {
        "title": f"Review job {view.job.id}",
        "me": s.person(),
        "job": view.job,
        "outputs": view.request.outputs,
        "views": output_views(report),
        "overall": str(report.get("status") or "unknown"),
        "rule_lines": rule_lines(report),
        "findings": finding_lines(report),
        "spec_description": spec.description,
        "step_descriptions": {step.name: step.description for step in spec.steps},
        "counts": view.counts,
        "reviews": by_output,
        "hidden": {
            name: view.counts.get(name, 0) - len(shown) for name, shown in by_output.items()
        },
        "mine": {r.output: r.decision.value for r in view.reviews if r.checker == s.actor},
        "needed": review.REVIEWS_NEEDED,
        "done": sum(min(c, review.REVIEWS_NEEDED) for c in view.counts.values()),
        "total": review.REVIEWS_NEEDED * len(view.request.outputs),
        "awaiting": view.job.state is JobState.AWAITING_REVIEW,
        "ready": views.ready_to_release(view),
        "previous": views.previous_releases(s, view.job),
        "decision_symbols": DECISION_SYMBOLS,
    }


@router.get("/review/{job_id}")
def review_page(
    request: Request,
    job_id: JobId,
    auth: PageAuth,
    recorded: str = "",
    released: str = "",
) -> Response:
    """One output request: each output's table with marked cells, the votes, the release."""
    with auth.session() as s:
        context = review_context(s, job_id)
    message = ""
    if recorded in context["counts"]:
        message = f"Your decision on {recorded} is recorded."
    elif released:
        message = f"Job {job_id} is settled: {context['job'].state.value.replace('_', ' ')}."
    return render(request, "review.html", csrf=auth.csrf, message=message, error=None, **context)


def _again(request: Request, auth: PageAuth, s: Session, job_id: int, error: TreError) -> Response:
    """The request page again, with what went wrong at the top (if the page may be shown)."""
    context = review_context(s, job_id)  # a refusal to see the page raises instead
    return render(
        request,
        "review.html",
        status=status_of(error),
        csrf=auth.csrf,
        message="",
        error=error,
        **context,
    )


@router.post("/review/{job_id}/vote")
def vote_form(
    request: Request,
    job_id: JobId,
    auth: PageAuth,
    csrf: Annotated[str, Form()] = "",
    output: Annotated[str, Form()] = "",
    decision: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """Record the checker's decision on one output (a comment is required)."""
    require_csrf(auth, csrf)
    with auth.session(writes=True) as s:
        try:
            if decision not in {d.value for d in Decision}:
                raise InputError(
                    "choose approve, reject or return",
                    fix="pick one of the three decisions and submit again",
                )
            review.vote(s, job_id, [output] if output else None, Decision(decision), comment)
        except TreError as error:
            return _again(request, auth, s, job_id, error)
    name = quote(output, safe="")
    return RedirectResponse(f"/review/{job_id}?recorded={name}#output-{name}", 303)


@router.post("/review/{job_id}/release")
def release_form(
    request: Request, job_id: JobId, auth: PageAuth, csrf: Annotated[str, Form()] = ""
) -> Response:
    """Settle the request: release what both checkers approved."""
    require_csrf(auth, csrf)
    with auth.session(writes=True) as s:
        try:
            review.release(s, job_id)
        except TreError as error:
            return _again(request, auth, s, job_id, error)
    return RedirectResponse(f"/review/{job_id}?released=1", 303)
