"""What became of a job that stopped running: a state, an outcome code (tre/outcomes.py)
and the words people are shown, decided from what the backend said and what the job
left in its folder (already copied out of its sandbox's reach by
`sandboxing.collect`). Nothing here changes anything: the dispatcher records the
judgement.

The order matters: a cancel wins over anything the job did; a result over an error; a
retryable end (its node failed) is tried again while the profile allows; a job's own
error is its words, bounded for the researcher when its code was the researcher's
(`researcher_view`), except where tre can say more in its own words (a revoked grant,
changed code); a job that never started is the platform's fault (its key service's, if
tre finds that gone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.results import RESULT, read_error
from jobs.spec import JobSpec
from slurm.backend import BackendStatus
from tre.outcomes import Outcome
from tre.service import start_failure
from tre.service.researcher_view import researcher_reason
from tre.states import JobState

KEY_SERVICE_LOST = (
    "the key service stopped while the job ran, so it could not read its data: the "
    "platform's fault, not the job's; submit it again (the TRE's administrators see the "
    "key service's state with 'tre keys service status')"
)
#: What a job failed by a full disk says after its reason.
FREE_SPACE = "free space on it (the platform's to fix), then the job can be submitted again"


@dataclass(frozen=True)
class Judgement:
    state: JobState
    outcome: Outcome
    reason: str


@dataclass(frozen=True)
class Context:
    """What judging may ask the service for, only when it needs it."""

    sandboxed: bool
    max_retries: int
    catalog: Callable[[], dict[str, list[str]]]  # the real columns of what it read
    revoked: Callable[[], str]  # tre's account of its revoked grant, or ""
    code_changed: Callable[[], str]  # tre's account of its changed code, or ""
    logs: Callable[[], list[Path]]  # its backend's log files
    #: Whether the key service the job began with is gone (stopped, or another one
    #: answers now): tre's own check, never the job's word.
    key_service_lost: Callable[[], bool] = lambda: False


def judge_ended(
    job_id: int,
    cancel_requested: bool,
    attempts: int,
    spec: JobSpec,
    status: BackendStatus,
    folder: Path,
    context: Context,
) -> Judgement:
    """The judgement on a job whose backend says it has ended."""
    if cancel_requested:
        return Judgement(
            JobState.CANCELLED, Outcome.CANCELLED, "cancelled at its submitter's request"
        )
    if (folder / RESULT / "result.json").exists():
        return Judgement(JobState.CHECKING, Outcome.RESULT, "")
    if status.retryable and attempts <= context.max_retries:
        return Judgement(
            JobState.QUEUED,
            Outcome.RETRIED,
            f"{status.detail}; trying again (attempt {attempts + 1} of {context.max_retries + 1})",
        )
    error = read_error(folder)
    if error is not None and error.get("disk_full"):
        return Judgement(
            JobState.FAILED,
            Outcome.DISK_FULL,
            f"{error['reason']}; {FREE_SPACE} ({status.detail})",
        )
    if error is not None:
        return _own_error(error, spec, status, context)
    if start_failure.never_started(folder):
        reason = start_failure.reason(job_id, status.detail, context.logs())  # logs its tail
        if context.key_service_lost():
            # A job reads its keys as it starts: one that died on the way in while the key
            # service went away died of that (tre's own check, as for KeyServiceDown).
            return Judgement(JobState.FAILED, Outcome.KEY_SERVICE_LOST, KEY_SERVICE_LOST)
        return Judgement(JobState.FAILED, Outcome.NEVER_STARTED, reason)
    return Judgement(
        JobState.FAILED,
        Outcome.NO_RESULT,
        f"the job ended without a result ({status.detail}); "
        "it may have been killed, run out of memory, or its node failed",
    )


def _own_error(
    error: dict[str, Any], spec: JobSpec, status: BackendStatus, context: Context
) -> Judgement:
    outcome = Outcome.JOB_ERROR
    reason = str(error.get("reason", "the job failed"))
    if context.sandboxed:
        reason = researcher_reason(spec, error, context.catalog())
        if error.get("type") == "GrantRevoked" and (why := context.revoked()):
            outcome, reason = Outcome.GRANT_REVOKED, f"the key grant of {why}; {reason}"
        elif error.get("type") == "CodeChanged" and (changed := context.code_changed()):
            outcome, reason = Outcome.CODE_CHANGED, changed  # checked again: not its word
        elif error.get("type") == "KeyServiceDown" and context.key_service_lost():
            outcome, reason = Outcome.KEY_SERVICE_LOST, KEY_SERVICE_LOST
    if status.detail and "Slurm" in status.detail:
        reason = f"{reason} ({status.detail})"
    return Judgement(JobState.FAILED, outcome, reason)
