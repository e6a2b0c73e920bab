"""Judging an ended job: a state, an outcome code and the words, in a fixed order of
precedence (tre/service/judging.py). Pure: a folder and what the backend said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.spec import JobSpec
from slurm.backend import BackendStatus
from tre.outcomes import MEANINGS, Outcome, table
from tre.service.judging import Context, judge_ended
from tre.states import JobState

SPEC = JobSpec.model_validate(
    {
        "project": "p",
        "title": "t",
        "datasets": {"residents": ["age_band"]},
        "steps": [{"kind": "python", "name": "mine", "function": "mine.py:mine"}],
    }
)
ENDED = BackendStatus("ended", "Slurm job 9: Slurm state FAILED")


def _context(**changes) -> Context:
    values = {
        "sandboxed": True,
        "max_retries": 1,
        "catalog": lambda: {"residents": ["age_band", "sex"]},
        "revoked": lambda: "",
        "code_changed": lambda: "",
        "logs": lambda: [],
    }
    return Context(**(values | changes))


def _folder(tmp_path: Path, *, result=False, error=None, progress=True) -> Path:
    folder = tmp_path / "000009"
    folder.mkdir()
    if result:
        (folder / "result").mkdir()
        (folder / "result" / "result.json").write_text("{}")
    if error is not None:
        (folder / "error.json").write_text(json.dumps(error))
    if progress:
        (folder / "progress.json").write_text("{}")
    return folder


def _judge(folder, *, cancel=False, attempts=1, status=ENDED, **context):
    return judge_ended(9, cancel, attempts, SPEC, status, folder, _context(**context))


def test_a_cancel_wins_over_a_result_and_a_result_over_an_error(tmp_path):
    folder = _folder(tmp_path, result=True, error={"reason": "boom"})
    assert _judge(folder, cancel=True).outcome is Outcome.CANCELLED
    judged = _judge(folder)
    assert (judged.state, judged.outcome) == (JobState.CHECKING, Outcome.RESULT)


def test_a_failed_node_is_tried_again_only_as_often_as_the_profile_allows(tmp_path):
    lost = BackendStatus("ended", "Slurm job 9: NODE_FAIL", retryable=True)
    folder = _folder(tmp_path, progress=False)
    again = _judge(folder, status=lost, attempts=1)
    assert (again.state, again.outcome) == (JobState.QUEUED, Outcome.RETRIED)
    assert "attempt 2 of 2" in again.reason
    spent = _judge(folder, status=lost, attempts=2)
    assert spent.outcome is Outcome.NEVER_STARTED and spent.state is JobState.FAILED


def test_researcher_code_s_own_error_is_told_in_tre_s_words(tmp_path):
    secret = "Leak: resident 12345 is 97"
    folder = _folder(tmp_path, error={"reason": secret, "type": "ValueError", "where": "x:3"})
    judged = _judge(folder)
    assert (judged.state, judged.outcome) == (JobState.FAILED, Outcome.JOB_ERROR)
    assert secret not in judged.reason and "ValueError at line 3" in judged.reason
    assert judged.reason.endswith("(Slurm job 9: Slurm state FAILED)")


@pytest.mark.parametrize(
    ("kind", "hook", "outcome"),
    [
        ("GrantRevoked", "revoked", Outcome.GRANT_REVOKED),
        ("CodeChanged", "code_changed", Outcome.CODE_CHANGED),
    ],
)
def test_what_tre_can_say_itself_it_says_in_its_own_words(tmp_path, kind, hook, outcome):
    folder = _folder(tmp_path, error={"reason": "whatever the job said", "type": kind})
    judged = _judge(folder, **{hook: lambda: "tre's own account"})
    assert judged.outcome is outcome and "tre's own account" in judged.reason
    # Without tre's own account, the job's claim is only an error of its own.
    assert _judge(folder).outcome is Outcome.JOB_ERROR


def test_a_full_disk_a_job_that_never_started_and_one_that_left_nothing(tmp_path):
    full = _folder(tmp_path, error={"reason": "no space", "disk_full": True})
    assert _judge(full).outcome is Outcome.DISK_FULL
    (tmp_path / "b").mkdir()
    never = _folder(tmp_path / "b", progress=False)
    judged = _judge(never)
    assert judged.outcome is Outcome.NEVER_STARTED and "platform's fault" in judged.reason
    (tmp_path / "c").mkdir()
    assert _judge(_folder(tmp_path / "c")).outcome is Outcome.NO_RESULT


def test_every_code_has_a_meaning_in_the_generated_table():
    assert set(MEANINGS) == set(Outcome)
    for code in Outcome:
        assert f"| `{code.value}` |" in table()


def test_a_lost_key_service_is_the_platforms_fault_only_when_tre_finds_it_gone(tmp_path):
    folder = _folder(tmp_path, error={"reason": "gone", "type": "KeyServiceDown", "where": "x:7"})
    judged = _judge(folder, key_service_lost=lambda: True)
    assert judged.outcome is Outcome.KEY_SERVICE_LOST and "line 7" not in judged.reason
    # The job saying so is not enough: researcher code can raise anything.
    assert _judge(folder).outcome is Outcome.JOB_ERROR


def test_a_job_that_died_starting_as_its_key_service_went_is_told_so(tmp_path):
    """The key service stopped between the job's start and its first progress: the job
    is the key service's loss, not an unexplained start failure (test_hostile's race)."""
    never = _folder(tmp_path, progress=False)
    judged = _judge(never, key_service_lost=lambda: True)
    assert judged.outcome is Outcome.KEY_SERVICE_LOST
    assert judged.reason.startswith("the key service stopped while the job ran")
    assert _judge(never).outcome is Outcome.NEVER_STARTED
