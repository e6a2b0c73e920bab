"""Submitting, watching and cancelling jobs."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from jobs.catalog_checks import spec_catalog_problems
from jobs.progress import read_progress
from jobs.python_step import code_hash
from jobs.results import read_error
from jobs.spec import JobSpec, PythonStep
from policies.access import (
    cancel_job_refusals,
    raise_if,
    role_refusals,
    submit_refusals,
    view_job_refusals,
)
from slurm.backend import Backend, get_backend
from tre.errors import InputError, PermissionDenied, StateError, TreError
from tre.models import Job, JobState, Resources, Role
from tre.service.session import Session
from tre.service.state import set_job_state
from tre.store import repo


def fit_defaults(asked: Resources, quota: Resources) -> Resources:
    """Resources the spec left out default to tre's defaults, capped by the project's quota
    (what the researcher wrote explicitly is kept, and checked against the quota)."""
    given = asked.model_fields_set
    fitted = {
        name: getattr(asked, name)
        if name in given
        else min(getattr(asked, name), getattr(quota, name))
        for name in Resources.model_fields
    }
    return Resources.model_validate(fitted)


def spec_hash(spec: JobSpec) -> str:
    """A content hash of the spec, stable across key order and formatting."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def submit_job(session: Session, spec: JobSpec, pickles: dict[str, bytes] | None = None) -> Job:
    """Check `spec` against the approvals and queue it, or record it as rejected.

    A refused job is kept (state `rejected`, with every reason) and PermissionDenied is
    raised, so both the researcher and the audit log see what was refused and why.
    """
    pickles = pickles or {}
    person = session.person()
    raise_if(role_refusals(person, Role.RESEARCHER, "submitting a job"), "you cannot submit jobs")
    missing = [s.name for s in spec.steps if isinstance(s, PythonStep) and s.name not in pickles]
    if missing:
        raise InputError(
            f"python step(s) {', '.join(missing)} have no code attached",
            fix="submit with 'tre submit SPEC.yaml' so the functions are loaded",
        )
    conn = session.conn
    project = repo.get_project(conn, spec.project)
    spec = spec.model_copy(update={"resources": fit_defaults(spec.resources, project.quota)})
    everything = {d.name: d for d in repo.list_datasets(conn)}
    catalog = {name: everything[name] for name in spec.datasets if name in everything}
    reasons = submit_refusals(
        person, project, spec.datasets, spec.resources, everything, session.today()
    )
    reasons += spec_catalog_problems(spec, catalog)
    job = Job(
        id=0,
        project=spec.project,
        submitter=session.actor,
        title=spec.title,
        state=JobState.SUBMITTED,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec_hash(spec),
        code_hash=code_hash(pickles),
        dataset_versions={name: d.version for name, d in catalog.items()},
    )
    with session.write() as conn:
        job = repo.insert_job(conn, job)
        session.record(
            conn,
            "job.submit",
            f"job:{job.id}",
            Role.RESEARCHER,
            {
                "project": job.project,
                "spec_hash": job.spec_hash,
                "code_hash": job.code_hash,
                "datasets": job.dataset_versions,
            },
        )
        if reasons:
            job = set_job_state(
                conn,
                job,
                JobState.REJECTED,
                actor=session.actor,
                role="researcher",
                reason="; ".join(reasons),
            )
        else:
            _write_job_folder(session, job, spec, pickles)
            job = set_job_state(conn, job, JobState.QUEUED, actor=session.actor, role="researcher")
    if reasons:
        raise PermissionDenied(
            f"job {job.id} was rejected", reasons=reasons, fix=refusal_fix(reasons, job)
        )
    return job


_FIXES = (
    (
        "accreditation",
        "ask an admin to renew your accreditation "
        "(tre admin update {submitter} --accredited-until YYYY-MM-DD)",
    ),
    ("not a member", "ask the project's lead to have you added as a member of {project}"),
    (
        "expired",
        "ask an admin to renew the project (tre project approve {project} --expires YYYY-MM-DD)",
    ),
    (
        "not approved",
        "change the job spec to use only what {project} is approved for, or ask "
        "an admin to amend the project",
    ),
    (
        "column",
        "declare only columns the dataset has and the project is approved for "
        "('tre project show {project}' lists them)",
    ),
    ("catalog", "use a dataset from the catalog ('tre dataset list')"),
    ("quota", "ask for less (resources: in the job spec) or ask an admin to raise the quota"),
    ("filter", "correct the filter values to the column's type"),
    ("not a number", "use numeric columns, or list text predictors under categorical"),
)


def refusal_fix(reasons: list[str], job: Job) -> str:
    """What to do about these reasons, one hint per kind, in a fixed order."""
    text = "\n".join(reasons)
    hints = [
        hint.format(submitter=job.submitter, project=job.project)
        for key, hint in _FIXES
        if key in text
    ]
    return "; ".join(dict.fromkeys(hints)) or "correct the job spec and submit again"


def _write_job_folder(session: Session, job: Job, spec: JobSpec, pickles: dict[str, bytes]) -> None:
    folder = session.home.job_dir(job.id)
    if folder.exists():
        # Left by a submission that crashed before its transaction committed: not a job.
        shutil.rmtree(folder)
    (folder / "code").mkdir(parents=True, mode=0o700)
    (folder / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
    for step, data in pickles.items():
        (folder / "code" / f"{step}.pkl").write_bytes(data)


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


def backend_of(session: Session, job: Job) -> Backend:
    return get_backend(job.backend, session.home.config.slurm_profile)


def backend_detail(session: Session, job: Job) -> str:
    """What the backend says about a running job (e.g. its Slurm state and node)."""
    if job.state is not JobState.RUNNING or not job.handle or job.handle.get("starting"):
        return ""
    try:
        return backend_of(session, job).poll(job.handle).detail
    except TreError as exc:
        return f"(the backend cannot be asked: {exc.message})"


def list_running(session: Session) -> list[Job]:
    """Jobs on a backend now (the dispatcher's view; no policy applies)."""
    return repo.list_jobs(session.conn, states={JobState.RUNNING})


def progress_of(session: Session, job: Job) -> dict[str, dict[str, int]]:
    return dict(read_progress(session.home.job_dir(job.id)).get("steps", {}))


def cancel_job(session: Session, job_id: int) -> Job:
    """Cancel a queued or running job (its submitter or an admin)."""
    job = get_job(session, job_id)
    raise_if(cancel_job_refusals(session.person(), job), f"you cannot cancel job {job_id}")
    role = "researcher" if session.actor == job.submitter else "admin"
    if job.state is JobState.QUEUED:
        with session.write() as conn:
            return set_job_state(
                conn,
                job,
                JobState.CANCELLED,
                actor=session.actor,
                role=role,
                reason=f"cancelled by {session.actor}",
            )
    if job.state is not JobState.RUNNING:
        raise StateError(
            f"job {job_id} is {job.state.value}; only queued or running jobs can be cancelled"
        )
    with session.write() as conn:
        job = repo.get_job(conn, job_id)
        repo.put_job(conn, job.model_copy(update={"cancel_requested": True}))
        session.record(conn, "job.cancel_requested", f"job:{job_id}", role)
    if job.handle.get("pid") or job.handle.get("slurm_job_id"):
        backend_of(session, job).cancel(job.handle)
    with session.write() as conn:
        current = repo.get_job(conn, job_id)
        if current.state is JobState.RUNNING:
            return set_job_state(
                conn,
                current,
                JobState.CANCELLED,
                actor=session.actor,
                role=role,
                reason=f"cancelled by {session.actor}",
            )
        return current


def job_logs(session: Session, job_id: int, tail: int = 200) -> str:
    """The last lines of the job's logs, and its failure reason if it failed."""
    job = get_job(session, job_id)
    folder = session.home.job_dir(job.id)
    parts = []
    paths: list[Path] = []
    if job.backend and job.handle:
        paths = backend_of(session, job).log_paths(folder, job.handle)
    for path in paths:
        if path.exists():
            lines = path.read_text(errors="replace").splitlines()[-tail:]
            parts.append(f"== {path.name} ==\n" + "\n".join(lines))
    error = read_error(folder)
    if error:
        parts.append(f"== reason ==\n{error['reason']}")
    if job.reason and not error:
        parts.append(f"== {job.state.value} ==\n{job.reason}")
    return "\n\n".join(parts) or f"job {job_id} has no logs yet (it is {job.state.value})"
