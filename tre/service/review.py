"""Output review: two output checkers, neither the job's author, vote on every output;
then a checker releases what both approved, with a manifest, to the release area.

What may be approved: an output whose disclosure status, after protection (suppression,
rounding), is "pass" or "review"; a protected table is released as protected, so a table
with failing cells becomes releasable once they are suppressed. A "fail" output cannot
be approved. Two outputs that the report finds disclose together (a "fail" differencing
finding within the request) cannot both be approved by one checker, nor both released.
At release, every released table is recorded in the project's ledger, against which
later requests are checked for differencing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from policies.access import raise_if, review_refusals, view_job_refusals
from tre.errors import InputError, PermissionDenied, StateError
from tre.models import Decision, Job, JobState, OutputRequest, Review, SdcStatus, utcnow
from tre.service import projects
from tre.service.checking import read_report
from tre.service.ledger import record_release

# The read-only side, re-exported: review's callers keep one door (review.show).
from tre.service.request_view import RequestView, view_of
from tre.service.request_view import show as show
from tre.service.request_view import visible_reviews as visible_reviews
from tre.service.session import Session
from tre.service.state import set_job_state
from tre.store import repo

REVIEWS_NEEDED = 2
_ANOTHER_CHECKER = "another output checker, who did not submit the job, must review it"


def queue(session: Session) -> list[RequestView]:
    """Requests awaiting review, oldest first (checkers and admins)."""
    me = session.person()
    if me is None or not {"checker", "admin"} & {r.value for r in me.roles}:
        raise PermissionDenied("only output checkers and admins see the review queue")
    views = []
    for job in repo.list_jobs(session.conn, states={JobState.AWAITING_REVIEW}):
        request = repo.find_output_request(session.conn, job.id)
        if request is not None:
            views.append(view_of(session, job, request))
    return views


def vote(
    session: Session, job_id: int, outputs: list[str] | None, decision: Decision, comment: str
) -> list[Review]:
    """Record the acting checker's vote on some (or all) outputs of a job."""
    job = repo.get_job(session.conn, job_id)
    raise_if(
        review_refusals(session.person(), job),
        f"you cannot review job {job_id}",
        fix=_ANOTHER_CHECKER,
    )
    if job.state is not JobState.AWAITING_REVIEW:
        raise StateError(f"job {job_id} is {job.state.value}, not awaiting review")
    if not comment.strip():
        raise InputError("every review needs a comment saying why", fix="add --comment '...'")
    request = repo.find_output_request(session.conn, job_id)
    assert request is not None, "a job awaiting review always has an output request"
    by_name = {o.name: o for o in request.outputs}
    names = outputs or list(by_name)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InputError(
            f"job {job_id} has no output(s) {', '.join(unknown)}",
            fix=f"its outputs are: {', '.join(by_name)}",
        )
    failing = [n for n in names if by_name[n].sdc_status is SdcStatus.FAIL]
    if decision is Decision.APPROVE and failing:
        raise PermissionDenied(
            f"output(s) {', '.join(failing)} fail the disclosure rules even after protection "
            "and cannot be approved",
            reasons=[f"{n}: {by_name[n].summary}" for n in failing],
            fix="reject them, or return the request so the researcher can revise the job "
            "(e.g. coarser categories); see the disclosure report for the failing cells",
        )
    advisory = [n for n in names if by_name[n].advisory]
    if decision is Decision.APPROVE and outputs is None and advisory:
        raise PermissionDenied(
            f"output(s) {', '.join(advisory)} were computed by researcher code, so their "
            "disclosure checks are advisory; each must be approved by name",
            reasons=[f"{n}: {by_name[n].summary}" for n in advisory],
            fix="check the cells yourself in the report, then approve each by name "
            f"(--output {advisory[0]}); approve the others by name too",
        )
    if decision is Decision.APPROVE:
        _refuse_both_of_a_pair(session, request, names)
    reviews = [
        Review(job_id=job_id, output=n, checker=session.actor, decision=decision, comment=comment)
        for n in names
    ]
    with session.write() as conn:
        for review in reviews:
            repo.put_review(conn, review)
            session.record(
                conn,
                f"output.{decision.value}",
                f"job:{job_id}/{review.output}",
                "checker",
                {"comment": comment},
            )
    return reviews


def outcome(request: OutputRequest, reviews: list[Review]) -> tuple[dict[str, str], list[str]]:
    """Each output's outcome (approved / rejected / returned), and what still lacks reviews."""
    outcomes, lacking = {}, []
    for output in request.outputs:
        votes = [r for r in reviews if r.output == output.name]
        if len({r.checker for r in votes}) < REVIEWS_NEEDED:
            lacking.append(
                f"output {output.name!r} has {len(votes)} of the {REVIEWS_NEEDED} reviews it needs"
            )
            continue
        decisions = {r.decision for r in votes}
        if Decision.RETURN in decisions:
            outcomes[output.name] = "returned"
        elif decisions == {Decision.APPROVE} and output.sdc_status is not SdcStatus.FAIL:
            outcomes[output.name] = "approved"
        else:
            outcomes[output.name] = "rejected"  # any rejection, or checkers disagree
    return outcomes, lacking


def release(session: Session, job_id: int) -> Job:
    """Settle a reviewed request: release approved outputs, or return or reject it."""
    job = repo.get_job(session.conn, job_id)
    raise_if(
        review_refusals(session.person(), job),
        f"you cannot release job {job_id}",
        fix=_ANOTHER_CHECKER,
    )
    if job.state is not JobState.AWAITING_REVIEW:
        raise StateError(f"job {job_id} is {job.state.value}, not awaiting review")
    project = repo.get_project(session.conn, job.project)
    if project.state not in projects.RELEASES:
        raise projects.stopped_refusal(session, project, f"job {job_id} cannot be released")
    request = repo.find_output_request(session.conn, job_id)
    assert request is not None
    reviews = repo.list_reviews(session.conn, job_id)
    outcomes, lacking = outcome(request, reviews)
    if lacking:
        raise PermissionDenied(
            f"job {job_id} cannot be released yet",
            reasons=lacking,
            fix="two output checkers, other than the author, must review every output",
        )
    approved = [n for n, o in outcomes.items() if o == "approved"]
    clashes = _disclosing_pairs(session, request, set(approved))
    if clashes:
        raise PermissionDenied(
            f"job {job_id} cannot be released: approved outputs disclose together",
            reasons=clashes,
            fix="a checker changes their vote on one output of each pair (or larger set) to "
            "reject or return",
        )
    if "returned" in outcomes.values():
        state = JobState.RETURNED
    elif len(approved) == len(outcomes):
        state = JobState.RELEASED
    elif approved:
        state = JobState.PARTIALLY_RELEASED
    else:
        state = JobState.REJECTED
    manifest = None
    report = read_report(session, request)
    if state in (JobState.RELEASED, JobState.PARTIALLY_RELEASED):
        manifest = _publish(session, job, request, reviews, approved, report)
    with session.write() as conn:
        recorded: list[str] = []
        if manifest is not None:
            repo.put_release(conn, job_id, manifest)
            recorded = record_release(conn, job, report, approved, at=utcnow())
        return set_job_state(
            conn,
            job,
            state,
            actor=session.actor,
            role="checker",
            reason=", ".join(f"{n}: {o}" for n, o in outcomes.items()),
            details={"outcomes": outcomes, "ledger": recorded},
        )


def _refuse_both_of_a_pair(session: Session, request: OutputRequest, names: list[str]) -> None:
    """Refuse an approval that would leave this checker approving every output of a pair
    (or larger set) the report finds disclosing together."""
    mine = {
        r.output
        for r in repo.list_reviews(session.conn, request.job_id)
        if r.checker == session.actor and r.decision is Decision.APPROVE
    }
    clashes = _disclosing_pairs(session, request, mine | set(names))
    if clashes:
        raise PermissionDenied(
            "you cannot approve every output of a pair (or larger set) that discloses when "
            "released together",
            reasons=clashes,
            fix="leave at least one output of each such set unapproved: reject or return it "
            "(the disclosure report's differencing section explains each)",
        )


def _disclosing_pairs(session: Session, request: OutputRequest, chosen: set[str]) -> list[str]:
    """The report's "fail" differencing findings naming two or more outputs of the
    request, all of them in `chosen`, each as a sentence."""
    found = []
    for finding in read_report(session, request).get("differencing") or []:
        outputs, jobs = finding.get("outputs") or [], finding.get("jobs") or []
        new = [o for o, j in zip(outputs, jobs, strict=False) if o and j is None]
        if finding.get("status") == "fail" and len(new) >= 2 and set(new) <= chosen:
            named = ", ".join(new[:-1]) + f" and {new[-1]}"
            found.append(f"{named}: {finding.get('message', '')}")
    return found


def _publish(
    session: Session,
    job: Job,
    request: OutputRequest,
    reviews: list[Review],
    approved: list[str],
    report: dict[str, Any],
) -> dict[str, Any]:
    """Copy approved outputs and a manifest into the release area (all or nothing)."""
    home = session.home
    source = home.job_dir(job.id)
    final = home.release_dir(job.id)
    tmp = final.with_name(final.name + ".tmp")
    for path in (tmp, final):
        # A release folder without a `released` job is left by a crash before the commit.
        if path.exists():
            shutil.rmtree(path)
    tmp.mkdir(parents=True, mode=0o700)
    files = []
    for output in request.outputs:
        if output.name not in approved:
            continue
        for relative in output.files:
            data = (source / relative).read_bytes()
            target = tmp / output.name / Path(relative).name
            target.parent.mkdir(exist_ok=True)
            target.write_bytes(data)
            files.append(
                {
                    "output": output.name,
                    "path": f"{output.name}/{target.name}",
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                }
            )
    manifest = {
        "format": 1,
        **job.provenance(),
        "rules": _rules_of(report),
        "reviewers": {n: sorted(r.checker for r in reviews if r.output == n) for n in approved},
        "released_by": session.actor,
        "released_at": utcnow().isoformat(),
        "files": files,
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, final)
    return manifest


def _rules_of(report: dict[str, Any]) -> dict[str, Any]:
    """The disclosure rules the outputs were checked and protected with, as the report
    recorded them (files can change later; the report is what the checkers saw)."""
    policy = report.get("policy") or {}
    files = policy.get("files") or []
    base = next((f for f in files if f.get("layer") == "tre"), files[0] if files else {})
    return {
        "policy": base.get("path"),
        "policy_sha256": base.get("sha256"),
        "parameters": {**(report.get("rules") or {}), **(report.get("protection") or {})},
        "files": files,
        "notes": policy.get("notes") or [],
    }


def fetch(session: Session, job_id: int, destination: Path) -> list[Path]:
    """Copy a job's released outputs to `destination`, checking every file's sha256."""
    job = repo.get_job(session.conn, job_id)
    project = repo.find_project(session.conn, job.project)
    raise_if(
        view_job_refusals(session.person(), job, project),
        f"you cannot fetch the outputs of job {job_id}",
    )
    if project is not None and project.state not in projects.FETCHES:
        raise projects.stopped_refusal(
            session, project, f"the outputs of job {job_id} cannot be fetched"
        )
    manifest = repo.find_release(session.conn, job_id)
    if manifest is None or job.state not in (JobState.RELEASED, JobState.PARTIALLY_RELEASED):
        raise StateError(
            f"job {job_id} has no released outputs (it is {job.state.value})",
            fix="outputs can be fetched once two checkers approved and released them",
        )
    folder = session.home.release_dir(job_id)
    clashes = [f["path"] for f in manifest["files"] if (destination / f["path"]).exists()]
    if clashes:
        raise InputError(
            f"{destination} already has {', '.join(clashes)}",
            fix="fetch into an empty folder (--to DIR)",
        )
    written = []
    for entry in manifest["files"]:
        data = (folder / entry["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise StateError(
                f"released file {entry['path']} does not match its manifest",
                fix="tell the TRE administrators: the release area was altered",
            )
        target = destination / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(target)
    (destination / f"manifest-{job_id}.json").write_text(json.dumps(manifest, indent=2))
    with session.write() as conn:
        session.record(
            conn, "release.fetch", f"job:{job_id}", "researcher", {"files": len(written)}
        )
    return written
