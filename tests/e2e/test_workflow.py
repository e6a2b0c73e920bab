"""Every role through the CLI, with real jobs on a real local Dask cluster."""

import json
import re

import pytest

from tests.conftest import EXAMPLES
from tre import audit
from tre.service.session import Session

pytestmark = pytest.mark.slow


def submit_and_run(cli, spec, who="rita"):
    result = cli("submit", spec, who=who)
    assert result.code == 0, result.err
    job_id = result.out.split()[1]
    run = cli("run", "--once", who="ada")
    assert run.code == 0, run.err
    return job_id


def test_from_submission_to_a_fetched_release(cli, home, tmp_path):
    job = submit_and_run(cli, EXAMPLES / "health_by_area.yaml")
    status = cli("status", job, who="rita")
    assert "awaiting_review" in status.out
    assert "residents_by_area (table): pass" in status.out
    # Its small cells are suppressed, so the protected table goes to review.
    assert "copd_by_deprivation (table): review" in status.out

    # The report marks the failing cells, with the reason, for the checkers.
    report = json.loads((home / "jobs" / f"{int(job):06d}" / "report" / "report.json").read_text())
    assert report["status"] == "review"
    assert report["outputs"][1]["check_status"] == "fail"
    html = (home / "jobs" / f"{int(job):06d}" / "report" / "report.html").read_text()
    assert "threshold" in html
    # Which rows each table counts, filters included, in every form of the report.
    md = (home / "jobs" / f"{int(job):06d}" / "report" / "report.md").read_text()
    md = md.replace("\\_", "_")  # Markdown escapes underscores
    for text in (md, html):
        assert "Rows counted:" in text and "residents v1; every row" in text
        assert "only rows where has_copd == true" in text

    # tre review show gives the report's verdict and rules, not only its path.
    shown = cli("review", "show", job, who="carl").out
    assert "Disclosure report: ? REVIEW (2 outputs: 0 fail, 1 review, 1 pass)" in shown, shown
    rules = shown.split("Rules:", 1)[1]
    assert "10" in rules.split("The full report:", 1)[0]

    # tre logs: when the job entered each state, and how long each took (tre's record).
    timeline = cli("logs", job, who="rita").out
    assert re.search(r"\d\d:\d\d:\d\d  running", timeline), timeline
    assert re.search(r"\d\d:\d\d:\d\d  checking  \(ran \d+ s\)", timeline), timeline

    # Nothing to fetch yet, and the researcher is told so, not offered a fetch.
    waiting = " ".join(cli("outputs", job, who="rita").out.split())
    assert "nothing can be fetched until they release it" in waiting
    assert "--to DIR" not in waiting

    # The author may not review (failing outputs: tests/e2e/test_disclosure.py).
    own = cli("review", "approve", job, "-m", "fine", who="rita")
    assert own.code == 4

    # One approval is not enough.
    cli("review", "approve", job, "--output", "residents_by_area", "-m", "safe", who="carl")
    cli("review", "reject", job, "--output", "copd_by_deprivation", "-m", "small", who="carl")
    early = cli("review", "release", job, who="carl")
    assert early.code == 4 and "1 of the 2 reviews" in early.err
    assert not (home / "releases" / f"{int(job):06d}").exists()

    # Before the decision the researcher sees no checker's vote or comment.
    assert "small" not in cli("status", job, who="rita").out
    cli("review", "approve", job, "--output", "residents_by_area", "-m", "safe", who="chen")
    comment = "Bands too fine for Halton; merge 3-6 and 7+"
    cli("review", "reject", job, "--output", "copd_by_deprivation", "-m", comment, who="chen")
    released = cli("review", "release", job, who="chen")
    assert released.code == 0, released.err
    assert "partially_released" in released.out

    # Once decided, the checkers' words reach the researcher, and what to do next.
    seen = cli("status", job, who="rita").out
    assert f"chen rejected: {comment}" in seen and "carl rejected: small" in seen
    assert "chen approved: safe" in seen
    assert f"fetch the released files: tre outputs {job} --to DIR" in " ".join(seen.split())
    assert f"chen rejected: {comment}" in cli("outputs", job, who="rita").out

    fetched = cli("outputs", job, "--to", tmp_path / "mine", who="rita")
    assert fetched.code == 0, fetched.err
    table = (tmp_path / "mine" / "residents_by_area" / "residents_by_area.csv").read_text()
    assert table.startswith("local_authority,age_band,count")
    assert not (tmp_path / "mine" / "copd_by_deprivation").exists()
    manifest = json.loads((tmp_path / "mine" / f"manifest-{job}.json").read_text())
    assert sorted(manifest["reviewers"]["residents_by_area"]) == ["carl", "chen"]
    assert manifest["rules"]["parameters"]["threshold"] == 10

    # Someone outside the project cannot fetch it.
    outsider = cli("outputs", job, "--to", tmp_path / "theirs", who="olga")
    assert outsider.code == 4

    verify = cli("audit", "verify", who="ada")
    assert verify.code == 0 and "intact" in verify.out


def test_regression_linkage_and_python_steps_run_and_are_checked(cli, home):
    for spec in ("gp_visits_model.yaml", "fire_linked.yaml", "early_help/summary.yaml"):
        assert cli("submit", EXAMPLES / spec, who="rita").code == 0
    assert cli("run", "--once", who="ada").code == 0
    s = Session.open(home, "ada")
    from tre.store import repo

    jobs = repo.list_jobs(s.conn)
    s.close()
    assert [j.state.value for j in jobs] == ["awaiting_review"] * 3, [j.reason for j in jobs]
    show = cli("review", "show", "3", who="carl")
    assert "median_days_note (file" in show.out and "review" in show.out
    regression = cli("review", "show", "1", who="carl")
    assert "gp_visits_model (regression" in regression.out


def test_a_refused_submission_is_recorded_with_every_reason(cli, home):
    result = cli("submit", EXAMPLES / "not_approved.yaml", who="rita")
    assert result.code == 4
    assert "ward" in result.err and "not approved" in result.err
    assert "workers 8 is over" in result.err
    s = Session.open(home, "ada")
    actions = [e.action for e in audit.events(s.conn, obj="job:1")]
    s.close()
    assert actions == ["job.submit", "job.refused"]


def test_nothing_leaves_a_suspended_project_until_it_is_reinstated(cli, home, tmp_path):
    """docs/projects.md, 'When a project stops': a job awaiting review when its project
    is suspended keeps its votes, but nothing is released, nor fetched, until an admin
    reinstates the project; each refusal gives the state and the admin's reason."""
    job = submit_and_run(cli, EXAMPLES / "health_by_area.yaml")
    for checker in ("carl", "chen"):
        for output, verdict in (
            ("residents_by_area", "approve"),
            ("copd_by_deprivation", "reject"),
        ):
            voted = cli("review", verdict, job, "--output", output, "-m", "ok", who=checker)
            assert voted.code == 0, voted.err
    why = "data-sharing agreement under review by Knowsley"
    assert cli("project", "suspend", "lcr-health-fire", "--reason", why, who="ada").code == 0
    refused = cli("review", "release", job, who="chen")
    assert refused.code == 4
    said = " ".join(refused.err.split())
    assert "project 'lcr-health-fire' is suspended" in said and why in said, said
    assert "tre project approve lcr-health-fire" in said
    assert not (home / "releases" / f"{int(job):06d}").exists()
    assert "awaiting_review" in cli("status", job, who="rita").out  # votes and job kept
    # A new job is refused with the admin's reason, and no hint to change the spec.
    submitted = cli("submit", EXAMPLES / "health_by_area.yaml", who="rita")
    said = " ".join(submitted.err.split())
    assert submitted.code != 0 and f"the TRE's admins suspended it: {why}" in said, said
    assert "nothing runs while the project is suspended" in said
    assert "change the job spec" not in said

    assert cli("project", "approve", "lcr-health-fire", who="ada").code == 0
    released = cli("review", "release", job, who="chen")
    assert released.code == 0, released.err

    assert cli("project", "suspend", "lcr-health-fire", "--reason", why, who="ada").code == 0
    fetch = cli("outputs", job, "--to", tmp_path / "mine", who="rita")
    assert fetch.code == 4 and why in " ".join(fetch.err.split())
    assert not (tmp_path / "mine").exists()
    assert cli("project", "approve", "lcr-health-fire", who="ada").code == 0
    fetched = cli("outputs", job, "--to", tmp_path / "mine", who="rita")
    assert fetched.code == 0, fetched.err
    assert (tmp_path / "mine" / "residents_by_area" / "residents_by_area.csv").exists()
