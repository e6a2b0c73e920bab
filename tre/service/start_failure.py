"""A job whose process ended before it started: what the dispatcher says, and to whom.

A job's program writes its progress file as its first act (`slurm.launch`), before it
reads its input or any researcher code runs. A job that ends with no result, no error
and no progress file therefore died on the way in: the sandbox did not start, the
Python in it was not found (exit 127) or could not run (126), an import failed. Those
are the platform's faults, and the job fails with a reason that says so.

The last lines of the process's output go to the dispatcher's log, for the TRE's
administrators. They are not in the job's reason: in a sandboxed home a job that did
run researcher code could have removed its progress file and printed anything, so
the reason a researcher reads holds only tre's own words and the exit status.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from jobs.progress import PROGRESS

log = logging.getLogger("tre.dispatcher")
TAIL_BYTES = 8192
TAIL_LINES = 5
#: What an exit status means when a job's program could not be started at all.
STATUSES = {
    126: "a program it needs could not be run (exit status 126: not executable or not permitted)",
    127: "a program it needs was not found (exit status 127)",
}
_STATUS = re.compile(r"exited with status (\d+)")


def never_started(folder: Path) -> bool:
    """Whether the job's program ended before it wrote its first progress."""
    return not (folder / PROGRESS).exists()


def reason(job_id: int, detail: str, logs: list[Path]) -> str:
    """The job's failure reason; the last lines it printed go to the dispatcher's log."""
    tail = last_lines(logs)
    log.warning(
        "job %s could not start (%s); its last output: %s",
        job_id,
        detail,
        " | ".join(tail) if tail else "(none)",
    )
    found = _STATUS.search(detail)
    meaning = STATUSES.get(int(found.group(1))) if found else None
    return (
        f"the job could not start: {meaning or detail}. This is the platform's fault, not "
        "your job's: the TRE's administrators have the details in the dispatcher's log "
        "(docs/operations.md, 'When jobs do not start')"
    )


def last_lines(logs: list[Path], count: int = TAIL_LINES) -> list[str]:
    """The last `count` non-empty lines of the job's logs, each cut to 300 characters."""
    lines: list[str] = []
    for path in logs:
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, 2)
                handle.seek(max(0, size - TAIL_BYTES))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        lines += [ln.strip()[:300] for ln in text.splitlines() if ln.strip()]
    return lines[-count:]
