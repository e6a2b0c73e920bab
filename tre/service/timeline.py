"""A job's timeline for `tre logs`: when it entered each state and how long each took,
from tre's own audit record, never from anything the job wrote."""

from __future__ import annotations

from datetime import datetime

from tre import audit
from tre.models import Job
from tre.service.session import Session


def timeline(session: Session, job: Job) -> list[str]:
    """When the job entered each state, and how long the previous one took, from tre's
    own audit record (never anything the job wrote): 'HH:MM:SS  state  (took ...)'."""
    lines: list[str] = []
    previous: tuple[str, datetime] | None = None
    for event in audit.events(session.conn, obj=f"job:{job.id}"):
        if not event.action.startswith("job.") or event.action == "job.started":
            continue
        state = "submitted" if event.action == "job.submit" else event.meaning[4:]
        if state not in _STATE_WORDS:
            continue
        at = datetime.fromisoformat(event.at)
        took = ""
        if previous is not None and (seconds := (at - previous[1]).total_seconds()) >= 1:
            took = f"  ({_STATE_WORDS[previous[0]]} {_took(round(seconds))})"
        lines.append(f"{at:%H:%M:%S}  {state}{took}")
        previous = (state, at)
    return lines


def _took(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


#: How the time in each state reads after it ended.
_STATE_WORDS = {
    "submitted": "checked at submission in",
    "queued": "waited in the queue",
    "running": "ran",
    "checking": "checked in",
    "awaiting_review": "reviewed in",
    "released": "",
    "partially_released": "",
    "returned": "",
    "refused": "",
    "rejected": "",
    "failed": "",
    "cancelled": "",
}
