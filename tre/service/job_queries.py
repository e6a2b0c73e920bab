"""Which jobs a person may see: the read-only queries behind `tre status`.

A module of its own, apart from `tre.service.jobs`, because it needs only the store and
the access policy: `jobs` loads the sandbox, the Slurm backends and the secured reader
(dask, pyarrow, polars), a second and more that `tre status` must not pay (issue 27).
"""

from __future__ import annotations

from policies.access import raise_if, view_job_refusals
from tre.errors import PermissionDenied
from tre.models import Job
from tre.service.session import Session
from tre.store import repo


def get_job(session: Session, job_id: int) -> Job:
    """A job the acting person may see."""
    job = repo.get_job(session.conn, job_id)
    project = repo.find_project(session.conn, job.project)
    raise_if(view_job_refusals(session.person(), job, project), f"you cannot see job {job_id}")
    return job


def list_jobs(session: Session, *, everything: bool = False) -> list[Job]:
    """Jobs the acting person may see: their own, or with `everything`, all they may see."""
    me = session.person()
    if me is None:
        raise PermissionDenied(
            "you are not registered with this TRE",
            fix="ask a TRE admin to register you (tre admin register)",
        )
    if not everything:
        return repo.list_jobs(session.conn, submitter=session.actor)
    projects = {p.name: p for p in repo.list_projects(session.conn)}
    return [
        j
        for j in repo.list_jobs(session.conn)
        if not view_job_refusals(me, j, projects.get(j.project))
    ]
