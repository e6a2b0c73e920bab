"""Why a job changed state when the dispatcher moved it: a code per outcome, for tools,
tests and the fixes people are shown; the words for people stay in `Job.reason`.

As OpenSAFELY's job-runner keeps a `StatusCode` beside its messages: a code does not
change when the wording does, so nothing has to find an outcome by matching text. The
table is listed in docs/states.md (generated: `python -m tre.docs`). Judging an ended
job, and wording it, is `tre/service/judging.py`.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    # running -> checking
    RESULT = "result"
    # running -> queued
    RETRIED = "retried"
    # -> cancelled
    CANCELLED = "cancelled"
    # queued -> failed, before anything ran
    NO_LONGER_ALLOWED = "no_longer_allowed"
    CODE_CHANGED = "code_changed"
    SANDBOX_UNMADE = "sandbox_unmade"
    BACKEND_REFUSED = "backend_refused"
    # running -> failed
    DISPATCHER_STOPPED = "dispatcher_stopped"
    WALLTIME = "walltime"
    OUTPUTS_REFUSED = "outputs_refused"
    DISK_FULL = "disk_full"
    JOB_ERROR = "job_error"
    GRANT_REVOKED = "grant_revoked"
    KEY_SERVICE_LOST = "key_service_lost"
    NEVER_STARTED = "never_started"
    NO_RESULT = "no_result"
    # checking -> failed
    CHECK_FAILED = "check_failed"
    # any state the dispatcher handles -> failed
    TRE_ERROR = "tre_error"


#: What each code means, and whose it is to act on (the generated table of docs/states.md).
MEANINGS: dict[Outcome, str] = {
    Outcome.RESULT: "it handed back a result; disclosure control checks it next",
    Outcome.RETRIED: "its node failed or it was preempted: queued again, per the site "
    "profile's retries",
    Outcome.CANCELLED: "cancelled at its submitter's request",
    Outcome.NO_LONGER_ALLOWED: "its approvals changed before it started (project, "
    "membership, dataset, columns): the researcher asks the admin",
    Outcome.CODE_CHANGED: "its code no longer matches what was submitted: resubmit",
    Outcome.SANDBOX_UNMADE: "its sandbox could not be made (the host's job users, its "
    "data's files): the TRE's administrators",
    Outcome.BACKEND_REFUSED: "the backend (Slurm, say) would not start it: the TRE's "
    "administrators, or its resources",
    Outcome.DISPATCHER_STOPPED: "the dispatcher stopped while starting it: resubmit",
    Outcome.WALLTIME: "it ran past its walltime: ask for more, or make it faster",
    Outcome.OUTPUTS_REFUSED: "what it handed back was refused (a link, an oversized "
    "file): the job's code",
    Outcome.DISK_FULL: "the disk filled while it ran: the TRE's administrators",
    Outcome.JOB_ERROR: "it stopped with an error of its own (in the researcher's code, "
    "or a missing column, say): the researcher",
    Outcome.GRANT_REVOKED: "its key grant was revoked or expired while it ran",
    Outcome.KEY_SERVICE_LOST: "the key service stopped while it ran, so it could not read "
    "its data: the platform's fault; submit it again",
    Outcome.NEVER_STARTED: "it died before it started: the platform's fault, the TRE's "
    "administrators",
    Outcome.NO_RESULT: "it ended without a result or an error (killed, out of memory, "
    "its node failed)",
    Outcome.CHECK_FAILED: "disclosure control could not check its outputs",
    Outcome.TRE_ERROR: "tre itself could not handle it (a bug, a full disk): the "
    "TRE's administrators have the dispatcher's log",
}


def table() -> str:
    """The codes as a Markdown table (docs/states.md)."""
    rows = ["| code | meaning |", "|---|---|"]
    rows += [f"| `{code.value}` | {MEANINGS[code]} |" for code in Outcome]
    return "\n".join(rows) + "\n"
