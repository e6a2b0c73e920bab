"""What the dispatcher hands a job as it starts it: whether it is still allowed to run
(the approvals may have changed while it queued), and its input (`jobs.job_input`): its
spec, its signed key grant for its declared columns only, its code's checksums.
"""

from __future__ import annotations

from datetime import date

from jobs.code import code_path
from jobs.job_input import JobInput, source_to_dict
from jobs.spec import JobSpec
from policies.access import submit_refusals
from slurm.backend import Backend
from slurm.job_users import Slot
from tre.models import Job
from tre.service import sandboxing
from tre.service.checking import evidence_top_k
from tre.service.grants import grant_job
from tre.service.session import Session
from tre.store import repo


def still_allowed(session: Session, job: Job, spec: JobSpec, today: date) -> list[str]:
    """Why `job` may no longer run as it was accepted (none: it may): its submitter, its
    project and its datasets' versions, checked again as at submission."""
    conn = session.conn
    project = repo.get_project(conn, job.project)
    catalog = {
        n: d for n, v in job.dataset_versions.items() if (d := repo.find_dataset(conn, n, v))
    }
    refusals = submit_refusals(
        repo.find_person(conn, job.submitter),
        project,
        spec.datasets,
        spec.resources,
        catalog,
        today,
    )
    return [r.text for r in refusals]


def job_input(
    session: Session,
    backend: Backend,
    job: Job,
    spec: JobSpec,
    code_sha256: dict[str, str],
    slot: Slot | None,
) -> JobInput:
    """The input of `job` as `backend` starts it, in `slot` when sandboxed."""
    # The job's signed key grant: its declared columns' keys, for its walltime only.
    granted = grant_job(session, job, spec, queues=backend.queues)
    if slot is not None:  # sandboxed
        gateway = backend.key_gateway  # on another node: keys over mutual TLS
        if gateway:
            sandboxing.gateway_files(session, job, slot, granted, gateway)
        granted = sandboxing.inside(granted, gateway)
    sources = {name: source_to_dict(source) for name, source in granted.items()}
    return JobInput(
        job_id=job.id,
        spec=spec,
        sources=sources,
        code={step: code_path(step) for step in code_sha256},
        code_sha256=code_sha256,
        top_k=evidence_top_k(session, job),
    )
