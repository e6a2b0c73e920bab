"""States of jobs and projects, and the one table of valid transitions for each.

The tables are data: the service layer asks `check_transition()` before any change,
a test checks every state appears, and `tre docs states` writes the diagrams in
`docs/states.md` from them.
"""

from __future__ import annotations

from enum import StrEnum

from tre.errors import StateError


class JobState(StrEnum):
    SUBMITTED = "submitted"  # received; the policy check runs in the same call
    REFUSED = "refused"  # refused at submission (policy, quota, approvals); never ran
    QUEUED = "queued"  # approved to run; waiting for the dispatcher
    RUNNING = "running"  # on a backend
    FAILED = "failed"  # ended without outputs; `reason` says why
    CANCELLED = "cancelled"  # stopped by its submitter or an admin
    CHECKING = "checking"  # outputs back; disclosure control running
    AWAITING_REVIEW = "awaiting_review"  # waiting for two output checkers
    RELEASED = "released"  # every output approved and released
    PARTIALLY_RELEASED = "partially_released"  # some outputs released, others rejected
    RETURNED = "returned"  # checkers asked the researcher for changes
    REJECTED = "rejected"  # the checkers rejected every output; nothing released


JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.SUBMITTED: frozenset({JobState.QUEUED, JobState.REFUSED}),
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    # running -> queued: another attempt after a node failure or preemption.
    JobState.RUNNING: frozenset(
        {JobState.CHECKING, JobState.FAILED, JobState.CANCELLED, JobState.QUEUED}
    ),
    # checking -> cancelled: its submitter or an admin stops a check that cannot finish.
    JobState.CHECKING: frozenset({JobState.AWAITING_REVIEW, JobState.FAILED, JobState.CANCELLED}),
    JobState.AWAITING_REVIEW: frozenset(
        {
            JobState.RELEASED,
            JobState.PARTIALLY_RELEASED,
            JobState.RETURNED,
            JobState.REJECTED,
        }
    ),
    JobState.REFUSED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
    JobState.RELEASED: frozenset(),
    JobState.PARTIALLY_RELEASED: frozenset(),
    JobState.RETURNED: frozenset(),
    JobState.REJECTED: frozenset(),
}

#: States in which a job is still the dispatcher's business.
JOB_ACTIVE = frozenset({JobState.QUEUED, JobState.RUNNING, JobState.CHECKING})
#: States from which nothing more happens.
JOB_FINAL = frozenset(s for s, nxt in JOB_TRANSITIONS.items() if not nxt)


class ProjectState(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    EXPIRED = "expired"
    CLOSED = "closed"


PROJECT_TRANSITIONS: dict[ProjectState, frozenset[ProjectState]] = {
    ProjectState.REQUESTED: frozenset({ProjectState.APPROVED, ProjectState.REJECTED}),
    ProjectState.APPROVED: frozenset(
        {
            ProjectState.SUSPENDED,
            ProjectState.EXPIRED,
            ProjectState.CLOSED,
        }
    ),
    ProjectState.SUSPENDED: frozenset(
        {
            ProjectState.APPROVED,
            ProjectState.EXPIRED,
            ProjectState.CLOSED,
        }
    ),
    # An expired project can be renewed (a new expiry date, approved by an admin).
    ProjectState.EXPIRED: frozenset({ProjectState.APPROVED, ProjectState.CLOSED}),
    ProjectState.REJECTED: frozenset(),
    ProjectState.CLOSED: frozenset(),
}


def check_transition(kind: str, current: StrEnum, new: StrEnum) -> None:
    """Raise StateError unless `current` -> `new` is in the table for `kind`."""
    table: dict = JOB_TRANSITIONS if kind == "job" else PROJECT_TRANSITIONS
    allowed = table[current]
    if new not in allowed:
        options = ", ".join(sorted(s.value for s in allowed)) or "none: it is final"
        raise StateError(
            f"a {kind} in state '{current}' cannot become '{new}'",
            fix=f"from '{current}' a {kind} may become: {options}",
        )


def mermaid(kind: str) -> str:
    """The state diagram of `kind` ('job' or 'project') as mermaid text."""
    table: dict = JOB_TRANSITIONS if kind == "job" else PROJECT_TRANSITIONS
    first = next(iter(table))
    lines = ["stateDiagram-v2", f"    [*] --> {first.value}"]
    for state, targets in table.items():
        for target in sorted(targets, key=lambda s: list(table).index(s)):
            lines.append(f"    {state.value} --> {target.value}")
        if not targets:
            lines.append(f"    {state.value} --> [*]")
    return "\n".join(lines) + "\n"
