"""A job's progress as the acting person may see it, and where a sandboxed job writes.

Apart from `tre.service.sandboxing` and `tre.service.jobs`, which load the sandbox, the
key system and the Slurm backends: `tre status JOB` and the job pages read progress
without them (issue 27). A sandboxed job's progress file is read as untrusted (no
links, a size cap), and a researcher sees of it only parts done out of the parts tre
planned (`researcher_view.bounded_progress`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jobs.progress import PROGRESS, read_progress
from jobs.untrusted import is_dir, read_small
from tre.models import Job, JobState
from tre.service.researcher_view import bounded_progress
from tre.service.session import Session
from tre.service.specs import spec_of

OUT = "out"  # a sandboxed job's own output folder
HANDOVER = "handover"  # the python steps' own output folder (jobs/handover.py)


def progress_of(session: Session, job: Job) -> dict[str, dict[str, int]]:
    """Per step of the job's spec: parts done and in all. A sandboxed job's file is read
    as untrusted: only parts done out of the parts tre planned (`researcher_view`)."""
    folder = session.home.job_dir(job.id)
    if not job.handle.get("sandbox"):
        return dict(read_progress(folder).get("steps", {}))
    raw = read_running_progress(folder) if job.state is JobState.RUNNING else {}
    if not raw:
        raw = read_progress(folder)
    planned = job.handle.get("parts")
    steps = [step.name for step in spec_of(job).steps]
    return bounded_progress(steps, planned if isinstance(planned, dict) else {}, raw)


def read_running_progress(folder: Path) -> dict[str, Any]:
    """A running sandboxed job's progress file, read as untrusted (no links, size cap):
    the engine's, or while its python steps run in their own sandbox first, theirs
    (what the researcher sees of either is bounded: tre/service/researcher_view.py)."""
    data = read_small(folder / OUT / PROGRESS)
    if data is None and is_dir(folder / HANDOVER):
        data = read_small(folder / HANDOVER / PROGRESS)
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
