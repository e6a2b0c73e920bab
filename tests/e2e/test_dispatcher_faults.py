"""One job never stops the dispatcher: a fault at any stage fails that job, with a reason,
and the next job runs (issue: "No input stops the TRE")."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import EXAMPLES, write_spec
from tre.models import JobState
from tre.service import dispatcher as dispatcher_module
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


@pytest.mark.parametrize(
    ("stage", "target", "fault"),
    [
        ("start", "grant_job", RuntimeError("secret detail 42")),
        ("checking", "check_job", MemoryError()),
    ],
)
def test_a_fault_in_one_stage_fails_that_job_and_the_next_one_runs(
    cli, home, monkeypatch, stage, target, fault
):
    first = _submit(cli, EXAMPLES / "health_by_area.yaml")
    second = _submit(cli, EXAMPLES / "health_by_area.yaml")
    real = getattr(dispatcher_module, target)
    calls = []

    def faulty(session, job, *args, **kwargs):
        calls.append(job.id)
        if job.id == first:
            raise fault
        return real(session, job, *args, **kwargs)

    monkeypatch.setattr(dispatcher_module, target, faulty)
    _run(home)
    assert first in calls
    assert _states(home, first, second) == [JobState.FAILED, JobState.AWAITING_REVIEW]
    reason = _reason(home, first)
    if isinstance(fault, MemoryError):
        assert "needs more memory than the TRE has" in reason
    else:
        assert "internal error in tre (RuntimeError)" in reason
        assert "secret detail" not in reason  # internal messages stay out of it


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
