"""What tre finds out itself about a job that ended, for judging it
(`tre.service.judging.Context`): never the job's word. Each is asked only when judging
needs it (a job's own error names a revoked grant, changed code, a lost key service).
"""

from __future__ import annotations

import logging

from jobs.code import check_submitted
from jobs.errors import CodeChanged
from jobs.spec import PythonStep
from slurm.backend import Backend
from tre.keyservice.process import service_pid
from tre.models import Job
from tre.service.judging import Context
from tre.service.session import Session
from tre.service.specs import spec_of
from tre.store import grants as grant_store
from tre.store import repo

log = logging.getLogger("tre.dispatcher")


def context_for(session: Session, job: Job, backend: Backend) -> Context:
    """The judging context of `job`, which `backend` ran."""
    folder = session.home.job_dir(job.id)
    return Context(
        sandboxed=bool(job.handle.get("sandbox")),
        max_retries=backend.max_retries,
        catalog=lambda: catalog(session, job),
        revoked=lambda: revoked(session, job),
        code_changed=lambda: code_changed(session, job),
        logs=lambda: backend.log_paths(folder, job.handle),
        key_service_lost=lambda: key_service_lost(session, job),
    )


def code_changed(session: Session, job: Job) -> str:
    """tre's own account of a job's code that no longer matches its submission."""
    spec = spec_of(job)
    steps = [s.name for s in spec.steps if isinstance(s, PythonStep)]
    folder = session.home.job_dir(job.id)
    try:
        check_submitted(folder, steps, job.code_hash, job.code_sha256)
    except CodeChanged as exc:
        return exc.render()
    return ""


def catalog(session: Session, job: Job) -> dict[str, list[str]]:
    """The real columns of each dataset version the job read (tre's, not the job's)."""
    catalog = {}
    for name, version in job.dataset_versions.items():
        found = repo.find_dataset(session.conn, name, version)
        if found is not None:
            catalog[name] = found.column_names
    return catalog


def revoked(session: Session, job: Job) -> str:
    """Why the newest grant of `job` was revoked, as the TRE recorded it ('' if not)."""
    records = [
        g for g in grant_store.list_grants(session.conn, project=job.project) if g.job_id == job.id
    ]
    last = records[-1] if records else None
    if last is None or last.revoked_reason is None:
        return ""
    return f"job {job.id} (project '{job.project}') was revoked: {last.revoked_reason}"


def key_service_lost(session: Session, job: Job) -> bool:
    """Whether the key service `job` began with is gone: none answers, or another."""
    now = service_pid(session.home)
    began = job.handle.get("keys_pid")
    lost = now is None or (isinstance(began, int) and now != began)
    if lost:
        log.warning("job %s: the key service stopped while it ran", job.id)
    return lost
