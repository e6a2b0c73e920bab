"""The Python API for notebooks: `tre.submit(fn, project=..., datasets=...)`.

import tre

def summarise(ctx):
    people = ctx.dataset("residents")
    ctx.table("by_authority", people, rows=["local_authority"])

job = tre.submit(summarise, project="lcr-health", datasets={"residents": ["local_authority"]})
job.wait()          # needs a dispatcher: `tre run`, or submit(..., run=True) on one machine
print(job.state)    # awaiting_review
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.python_step import pickle_function
from jobs.spec import parse_spec
from tre.errors import InputError
from tre.models import Job
from tre.service import jobs as job_service
from tre.service.dispatcher import Dispatcher
from tre.service.session import Session
from tre.states import JOB_ACTIVE


@dataclass
class JobHandle:
    """A submitted job, as seen from a notebook."""

    id: int
    home: Path | None = None
    acting_as: str | None = None

    def _job(self) -> Job:
        session = Session.open(self.home, self.acting_as)
        try:
            return job_service.get_job(session, self.id)
        finally:
            session.close()

    @property
    def state(self) -> str:
        return self._job().state.value

    @property
    def reason(self) -> str:
        return self._job().reason

    def wait(self, timeout: float = 3600.0, poll: float = 1.0) -> str:
        """Block until the job leaves queued/running/checking; returns its state."""
        deadline = time.monotonic() + timeout
        while (job := self._job()).state in JOB_ACTIVE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} is still {job.state.value} after {timeout}s")
            time.sleep(poll)
        return job.state.value


def submit(
    fn: Callable[[Any], None],
    *,
    project: str,
    datasets: dict[str, list[str]],
    title: str | None = None,
    description: str = "",
    resources: dict[str, Any] | None = None,
    outputs: dict[str, str] | None = None,
    home: str | Path | None = None,
    acting_as: str | None = None,
    run: bool = False,
) -> JobHandle:
    """Submit `fn(ctx)` as a one-step python job; with `run`, also run it here to the end.
    `outputs` declares the outputs it makes ({name: what it shows}): before release you
    see only those (docs/job-spec.md)."""
    name = re.sub(r"[^a-z0-9_-]", "_", fn.__name__.lower()).strip("_") or "analysis"
    if not name[0].isalpha():
        name = "step_" + name
    spec = parse_spec(
        {
            "project": project,
            "title": title or f"{fn.__name__} (from Python)",
            "description": description,
            "datasets": datasets,
            "resources": resources or {},
            "steps": [
                {
                    "kind": "python",
                    "name": name,
                    "function": f"{name}.py:{name}",
                    "outputs": outputs or {},
                }
            ],
        },
        source="tre.submit",
    )
    if not callable(fn):
        raise InputError("tre.submit needs a function taking one argument (the context)")
    root = Path(home) if home is not None else None
    session = Session.open(root, acting_as)
    try:
        job = job_service.submit_job(session, spec, {name: pickle_function(fn)})
        if run:
            Dispatcher(session).run(once=True)
    finally:
        session.close()
    return JobHandle(job.id, root, acting_as)
