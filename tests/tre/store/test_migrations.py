"""Migrations of a home made by an older tre: 008_refused_jobs (issue 27) tells a job
refused at submission (now `refused`) from one whose outputs were rejected, and leaves
the audit log as it was written."""

from __future__ import annotations

from jobs.spec import JobSpec
from tests.tre.factories import SPEC, rejected_at_review
from tre import audit
from tre.home import Home
from tre.models import Job, JobState
from tre.service.jobs import code_hash, spec_hash
from tre.service.session import Session
from tre.service.timeline import timeline
from tre.store import Database, repo

MIGRATION = "008_refused_jobs"


def refused_as_before_issue_27(olga: Session) -> Job:
    """What `submit_job` stored for a refused job before issue 27: state `rejected` and
    the event `job.rejected` from `submitted`, with the refusal's reason and codes."""
    spec = JobSpec.model_validate(SPEC)
    job = Job(
        id=0,
        project=spec.project,
        submitter=olga.actor,
        title=spec.title,
        state=JobState.SUBMITTED,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec_hash(spec),
        code_hash=code_hash({}),
    )
    reason = "olga is not a member of project 'lcr-health-fire'"
    with olga.write() as conn:
        job = repo.insert_job(conn, job)
        olga.record(conn, "job.submit", f"job:{job.id}", "researcher", {"project": job.project})
        old = job.model_copy(update={"state": JobState("rejected"), "reason": reason})
        repo.put_job(conn, old)
        audit.append(
            conn,
            actor="olga",
            role="researcher",
            action="job.rejected",
            obj=f"job:{job.id}",
            details={"from": "submitted", "reason": reason, "codes": ["not_a_member"]},
        )
    return old


def test_a_job_refused_at_submission_reads_refused_after_upgrade(home, session_as, cli):
    rejected = rejected_at_review(session_as("rita"), session_as("carl"), session_as("chen"))
    refused = refused_as_before_issue_27(session_as("olga"))
    assert rejected.state is JobState.REJECTED
    ada = session_as("ada")
    chain = [(e.seq, e.hash) for e in audit.events(ada.conn)]
    ada.conn.execute("DELETE FROM schema_migrations WHERE name = ?", (MIGRATION,))
    ada.close()

    upgraded = Home.open(home)
    db = Database.open(upgraded.db_path, upgraded.audit_head)
    assert MIGRATION in db.applied()  # applied again (later ones may follow it)
    states = dict(db.conn.execute("SELECT id, state FROM jobs").fetchall())
    db.close()

    assert states == {rejected.id: "rejected", refused.id: "refused"}
    s = Session.open(home, "ada")
    try:
        assert repo.get_job(s.conn, refused.id).state is JobState.REFUSED
        assert repo.get_job(s.conn, refused.id).reason == refused.reason
        assert repo.get_job(s.conn, rejected.id).state is JobState.REJECTED
        # The audit log is as it was written, and still verifies.
        assert [(e.seq, e.hash) for e in audit.events(s.conn)] == chain
        assert audit.verify(s.conn, s.home.audit_head).ok
        # Its old event reads as the refusal it was.
        assert [line.split()[1] for line in timeline(s, repo.get_job(s.conn, refused.id))] == [
            "submitted",
            "refused",
        ]
    finally:
        s.close()
    shown = cli("audit", "log", "--object", f"job:{refused.id}", who="ada").out
    assert "job.rejected (now job.refused)" in shown


def test_a_second_run_changes_nothing(home, session_as):
    refused = refused_as_before_issue_27(session_as("olga"))
    ada = session_as("ada")
    ada.conn.execute("DELETE FROM schema_migrations WHERE name = ?", (MIGRATION,))
    ada.close()
    upgraded = Home.open(home)
    for _ in range(2):
        Database.open(upgraded.db_path, upgraded.audit_head).close()
    s = Session.open(home, "ada")
    try:
        assert repo.get_job(s.conn, refused.id).state is JobState.REFUSED
    finally:
        s.close()
