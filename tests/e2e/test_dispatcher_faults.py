"""One job never stops the dispatcher: a fault at any stage fails that job, with a reason,
and the next job runs (issue: "No input stops the TRE")."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import yaml

from policies.limits import Limits
from tests.conftest import EXAMPLES, write_spec
from tre.models import JobState
from tre.service import job_start, projects
from tre.service.check_worker import Checks, run_check
from tre.service.dispatcher import Dispatcher
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow


def _submit(cli, spec) -> int:
    result = cli("submit", spec, who="rita")
    assert result.code == 0, result.err
    return int(result.out.split()[1])


def _states(home, *job_ids: int) -> list[JobState]:
    s = Session.open(home, "ada")
    try:
        return [repo.get_job(s.conn, j).state for j in job_ids]
    finally:
        s.close()


def _reason(home, job_id: int) -> str:
    s = Session.open(home, "ada")
    try:
        return repo.get_job(s.conn, job_id).reason
    finally:
        s.close()


def _run(home, max_running: int = 1) -> None:
    s = Session.open(home, "ada")
    try:
        Dispatcher(s, max_running=max_running).run(once=True, interval=0.1)
    finally:
        s.close()


def test_a_non_finite_filter_is_refused_at_submission(cli, tmp_path):
    for value in (".nan", ".inf", "-.inf"):
        spec = write_spec(
            tmp_path,
            {
                "project": "lcr-health-fire",
                "title": "Filters on NaN",
                "datasets": {"residents": ["local_authority", "ltc_count"]},
                "steps": [
                    {
                        "kind": "table",
                        "name": "t",
                        "dataset": "residents",
                        "rows": ["local_authority"],
                        "filter": f"ltc_count > {value}",
                    }
                ],
            },
        )
        result = cli("submit", spec, who="rita")
        assert result.code == 2, (value, result.out, result.err)
        assert "a filter value must be a finite number" in result.err
        assert "internal error" not in result.err


def test_a_stored_spec_that_no_longer_validates_fails_only_its_job(cli, home):
    # A job stored by an older tre with a NaN filter (kept as JSON null): the dispatcher
    # used to fail on it at every pass. Now that job fails and the next one runs.
    bad = _submit(cli, EXAMPLES / "health_by_area.yaml")
    good = _submit(cli, EXAMPLES / "health_by_area.yaml")
    s = Session.open(home, "ada")
    try:
        job = repo.get_job(s.conn, bad)
        spec = json.loads(json.dumps(job.spec))
        spec["steps"][1]["filter"] = [{"column": "has_copd", "op": "==", "value": None}]
        with s.write() as conn:
            repo.put_job(conn, job.model_copy(update={"spec": spec}))
    finally:
        s.close()
    _run(home)
    assert _states(home, bad, good) == [JobState.FAILED, JobState.AWAITING_REVIEW]
    assert "internal error in tre (ValidationError)" in _reason(home, bad)


def test_a_fault_while_starting_fails_that_job_and_the_next_one_runs(cli, home, monkeypatch):
    first = _submit(cli, EXAMPLES / "health_by_area.yaml")
    second = _submit(cli, EXAMPLES / "health_by_area.yaml")
    real = job_start.grant_job  # where the dispatcher grants a starting job its keys
    calls = []

    def faulty(session, job, *args, **kwargs):
        calls.append(job.id)
        if job.id == first:
            raise RuntimeError("secret detail 42")
        return real(session, job, *args, **kwargs)

    monkeypatch.setattr(job_start, "grant_job", faulty)
    _run(home)
    assert first in calls
    assert _states(home, first, second) == [JobState.FAILED, JobState.AWAITING_REVIEW]
    reason = _reason(home, first)
    assert "internal error in tre (RuntimeError)" in reason
    assert "secret detail" not in reason  # internal messages stay out of it


def _limits(home, text: str) -> None:
    (home / "policies").mkdir(exist_ok=True)
    (home / "policies" / "limits.yaml").write_text(text)


def _one_table(tmp_path):
    return write_spec(
        tmp_path,
        {
            "project": "lcr-health-fire",
            "title": "One table",
            "datasets": {"residents": ["local_authority"]},
            "steps": [
                {"kind": "table", "name": "t", "dataset": "residents", "rows": ["local_authority"]}
            ],
        },
        name="one.yaml",
    )


def hanging_check(home_root: str, job_id: int, attempt: str, seconds: float) -> None:
    """A check that never ends for a job whose folder holds a file named `hang` (run in
    the check's own process, as `run_check` is); the real check for any other job."""
    if (Path(attempt).parent.parent / "hang").exists():
        time.sleep(3600)
    run_check(home_root, job_id, attempt, seconds)


def test_a_check_that_overruns_fails_its_job_and_holds_up_no_other(cli, home):
    first = _submit(cli, EXAMPLES / "health_by_area.yaml")
    second = _submit(cli, EXAMPLES / "health_by_area.yaml")
    (home / "jobs" / f"{first:06d}" / "hang").touch()
    events: list[tuple[int, str]] = []
    s = Session.open(home, "ada")
    try:
        dispatcher = Dispatcher(s, on_event=lambda job, what: events.append((job.id, what)))
        dispatcher.checks = Checks(Limits(check_seconds=20), target=hanging_check)
        dispatcher.run(once=True, interval=0.2)
    finally:
        s.close()
    assert _states(home, first, second) == [JobState.FAILED, JobState.AWAITING_REVIEW]
    assert _reason(home, first).startswith(
        "disclosure checking took longer than the TRE's limit of 20 seconds for one job"
    )
    # The other job was started, run and checked while the first one's check hung.
    assert events.index((second, "awaiting_review")) < events.index((first, "failed"))
    assert not list((home / "jobs" / f"{first:06d}" / "checks").iterdir())  # nothing left


def test_a_job_with_more_outputs_than_the_limit_fails_alone(cli, home, tmp_path):
    _limits(home, "outputs_per_job: 1\n")
    two = _submit(cli, EXAMPLES / "health_by_area.yaml")
    one = _submit(cli, _one_table(tmp_path))
    _run(home)
    assert _states(home, two, one) == [JobState.FAILED, JobState.AWAITING_REVIEW]
    assert _reason(home, two) == (
        f"disclosure checking failed: job {two} made 2 outputs; this TRE checks at most 1 "
        "outputs of one job (its limits)"
    )


def test_a_job_of_more_steps_than_the_limit_is_refused_at_submission(cli, tmp_path):
    step = {"kind": "table", "dataset": "residents", "rows": ["local_authority"]}
    spec = write_spec(
        tmp_path,
        {
            "project": "lcr-health-fire",
            "title": "Two thousand alike tables",
            "datasets": {"residents": ["local_authority"]},
            "steps": [{**step, "name": f"t{i}"} for i in range(2000)],
        },
    )
    result = cli("submit", spec, who="rita")
    assert result.code == 2, result.out
    said = " ".join(result.err.split())
    assert "this job has 2,000 steps; this TRE runs at most 200 steps in one job" in said
    assert "split the job into jobs of at most 200 steps each" in said
    assert "Job " not in result.out  # nothing queued


def test_a_fault_while_a_job_runs_fails_and_stops_it(cli, home, monkeypatch):
    first = _submit(cli, EXAMPLES / "health_by_area.yaml")
    second = _submit(cli, EXAMPLES / "health_by_area.yaml")
    real = Dispatcher._over_walltime

    def faulty(self, job):
        if job.id == first:
            raise KeyError("a bug while watching")
        return real(self, job)

    monkeypatch.setattr(Dispatcher, "_over_walltime", faulty)
    _run(home)
    assert _states(home, first, second) == [JobState.FAILED, JobState.AWAITING_REVIEW]
    assert "internal error in tre (KeyError)" in _reason(home, first)
    # Its processes were stopped, not left to run on.
    assert not (home / "jobs" / f"{first:06d}" / "result").exists()


def test_a_job_stuck_in_checking_can_be_cancelled(cli, home, monkeypatch):
    job_id = _submit(cli, EXAMPLES / "health_by_area.yaml")
    monkeypatch.setattr(Dispatcher, "_check", lambda self, job: None)  # a check that hangs
    s = Session.open(home, "ada")
    try:
        dispatcher = Dispatcher(s)
        for _ in range(600):
            dispatcher.tick()
            if repo.get_job(s.conn, job_id).state is JobState.CHECKING:
                break
            time.sleep(0.1)
    finally:
        s.close()
    assert _states(home, job_id) == [JobState.CHECKING]
    cancelled = cli("cancel", job_id, who="rita")
    assert cancelled.code == 0, cancelled.err
    assert _states(home, job_id) == [JobState.CANCELLED]


def test_a_dispatcher_asked_to_stop_mid_check_stops_and_the_next_one_redoes_it(cli, home):
    job_id = _submit(cli, EXAMPLES / "health_by_area.yaml")
    (home / "jobs" / f"{job_id:06d}" / "hang").touch()
    stop = threading.Event()
    checker: list[int] = []
    s = Session.open(home, "ada")
    try:
        dispatcher = Dispatcher(s)
        dispatcher.checks = Checks(Limits(), target=hanging_check)

        def ask_to_stop_mid_check() -> None:
            while job_id not in dispatcher.checks.running:
                time.sleep(0.05)
            checker.append(dispatcher.checks.running[job_id].process.pid)
            stop.set()

        thread = threading.Thread(target=ask_to_stop_mid_check, daemon=True)
        thread.start()
        dispatcher.run(interval=0.2, should_stop=stop.is_set)
        thread.join(timeout=5)
    finally:
        s.close()
    assert checker, "the check never started"
    assert not Path(f"/proc/{checker[0]}").exists() or _zombie(checker[0])  # abandoned
    assert _states(home, job_id) == [JobState.CHECKING]
    (home / "jobs" / f"{job_id:06d}" / "hang").unlink()
    _run(home)  # a new dispatcher checks it again from the job's results
    assert _states(home, job_id) == [JobState.AWAITING_REVIEW]


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_job_of_200_steps_runs_and_an_ordinary_job_beside_it_is_not_held_up(cli, home, tmp_path):
    # The limit's largest job: 200 alike tables (the shape of the job that once held the
    # dispatcher for hours). Another project's ordinary job is submitted after it.
    s = Session.open(home, "rita")
    try:
        request = yaml.safe_load((EXAMPLES / "project.yaml").read_text())
        request.update(name="other-project", members=[], expires="2099-01-01")
        projects.request_project(s, request)
        s.actor = "bob"
        projects.approve_project(s, "other-project")
    finally:
        s.close()
    step = {"kind": "table", "dataset": "residents", "rows": ["local_authority"]}
    big = _submit(
        cli,
        write_spec(
            tmp_path,
            {
                "project": "lcr-health-fire",
                "title": "Two hundred alike tables",
                "datasets": {"residents": ["local_authority", "age_band"]},
                "steps": [{**step, "name": f"t{i}", "columns": ["age_band"]} for i in range(200)],
            },
            name="big.yaml",
        ),
    )
    ordinary = _submit(
        cli,
        write_spec(
            tmp_path,
            {
                "project": "other-project",
                "title": "An ordinary table",
                "datasets": {"residents": ["local_authority"]},
                "steps": [{**step, "name": "t"}],
            },
            name="ordinary.yaml",
        ),
    )
    events: list[tuple[int, str]] = []
    s = Session.open(home, "ada")
    try:
        dispatcher = Dispatcher(
            s, max_running=2, on_event=lambda job, what: events.append((job.id, what))
        )
        dispatcher.run(once=True, interval=0.2)
    finally:
        s.close()
    assert _states(home, big, ordinary) == [JobState.AWAITING_REVIEW, JobState.AWAITING_REVIEW]
    # The ordinary job, submitted second, was checked and ready first.
    assert events.index((ordinary, "awaiting_review")) < events.index((big, "awaiting_review"))
