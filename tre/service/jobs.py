"""Submitting, watching and cancelling jobs.

Which jobs a person may see is `job_queries`' (light enough for `tre status` to answer
at once); `get_job` and `list_jobs` are here too, from there."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from jobs.catalog_checks import spec_catalog_problems
from jobs.code import code_hash, sha256s, unlock_code, write_code
from jobs.results import read_error
from jobs.spec import JobSpec, PythonStep
from policies.access import (
    cancel_job_refusals,
    raise_if,
    role_refusals,
    submit_refusals,
)
from policies.limits import load_limits
from policies.refusals import DEFAULT_FIX, PROJECT_STATE_CODES, Refusal, hints, texts
from slurm.backend import Backend
from slurm.backends import get_backend
from tre.errors import InputError, PermissionDenied, StateError, TreError
from tre.models import Job, JobState, ProjectState, Resources, Role
from tre.service import projects
from tre.service.job_progress import progress_of as progress_of  # the web's door
from tre.service.job_queries import get_job
from tre.service.job_queries import list_jobs as list_jobs  # re-exported: the web's door
from tre.service.session import Session
from tre.service.state import set_job_state
from tre.service.timeline import timeline
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
    """Check `spec` against the approvals and queue it, or record it as refused.

    A refused job is kept (state `refused`, with every reason) and PermissionDenied is
    raised, so both the researcher and the audit log see what was refused and why.
    """
    pickles = pickles or {}
    person = session.person()
    raise_if(role_refusals(person, Role.RESEARCHER, "submitting a job"), "you cannot submit jobs")
    limits = load_limits(session.home.root)
    if len(spec.steps) > limits.steps_per_job:
        raise InputError(
            f"this job has {len(spec.steps):,} steps; this TRE runs at most "
            f"{limits.steps_per_job:,} steps in one job (its limits, so that no job holds "
            "up the others)",
            fix=f"split the job into jobs of at most {limits.steps_per_job:,} steps each",
        )
    python_steps = [s.name for s in spec.steps if isinstance(s, PythonStep)]
    _check_code_keys(pickles, python_steps)
    missing = [name for name in python_steps if name not in pickles]
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
    if project.state in (ProjectState.SUSPENDED, ProjectState.CLOSED):
        why = projects.state_reason(session, project)
        if why:  # the admin's words: the researcher is never left guessing why
            code = PROJECT_STATE_CODES[project.state]
            reasons.append(Refusal(code, f"the TRE's admins {project.state.value} it: {why}"))
    job = Job(
        id=0,
        project=spec.project,
        submitter=session.actor,
        title=spec.title,
        state=JobState.SUBMITTED,
        spec=spec.model_dump(mode="json"),
        spec_hash=spec_hash(spec),
        code_hash=code_hash(pickles),
        code_sha256=sha256s(pickles),
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
                JobState.REFUSED,
                actor=session.actor,
                role="researcher",
                reason="; ".join(texts(reasons)),
                details={"codes": list(dict.fromkeys(r.code.value for r in reasons))},
            )
        else:
            _write_job_folder(session, job, spec, pickles)
            job = set_job_state(conn, job, JobState.QUEUED, actor=session.actor, role="researcher")
    if reasons:
        raise PermissionDenied(
            f"job {job.id} was refused", reasons=texts(reasons), fix=refusal_fix(reasons, job)
        )
    return job


def refusal_fix(reasons: list[Refusal], job: Job) -> str:
    """What to do about these refusals, one hint per kind, in a fixed order (found by
    their codes: `policies.refusals.FIXES`)."""
    found = hints((r.code for r in reasons), submitter=job.submitter, project=job.project)
    return "; ".join(found) or DEFAULT_FIX


def _check_code_keys(pickles: dict[str, bytes], python_steps: list[str]) -> None:
    """Code may come only for the spec's python steps: a key names a file in the job
    folder, so anything else (a path, another step) is refused before it is used."""
    wrong = [key for key in pickles if key not in python_steps]
    if not wrong:
        return
    # Keys come from the request body: long ones are cut short in the message.
    shown = ", ".join(repr(key) if len(key) <= 200 else repr(key[:200]) + "..." for key in wrong)
    steps = ", ".join(map(repr, python_steps))
    raise InputError(
        f"code was attached for {shown}, which {'is' if len(wrong) == 1 else 'are'} not "
        "the name of a python step of the job spec",
        reasons=[
            f"the spec's python steps are {steps}" if steps else "the spec has no python steps"
        ],
        fix="key each step's code by the name of its python step in the spec, as "
        "'tre submit' does, and attach no other code",
    )


def _write_job_folder(session: Session, job: Job, spec: JobSpec, pickles: dict[str, bytes]) -> None:
    folder = session.home.job_dir(job.id)
    if folder.exists():
        # Left by a submission that crashed before its transaction committed: not a job.
        unlock_code(folder)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, mode=0o700)
    (folder / "spec.json").write_text(json.dumps(spec.model_dump(mode="json"), indent=2))
    # Read-only from now on: a queued job runs the code it was submitted with.
    write_code(folder, pickles)


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


def cancel_job(session: Session, job_id: int) -> Job:
    """Cancel a queued, running or checking job (its submitter or an admin)."""
    job = get_job(session, job_id)
    raise_if(cancel_job_refusals(session.person(), job), f"you cannot cancel job {job_id}")
    role = "researcher" if session.actor == job.submitter else "admin"
    if job.state in (JobState.QUEUED, JobState.CHECKING):  # nothing runs: just settle it
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
            f"job {job_id} is {job.state.value}; only queued, running or checking jobs can "
            "be cancelled"
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


def job_logs(session: Session, job_id: int, tail: int = 200, *, held: bool = False) -> str:
    """The last lines of the job's logs, and its failure reason if it failed.

    A sandboxed job's own log holds whatever its code printed, so it is held for the
    output checkers: its project's members see tre's status lines (its state, reason
    and progress), and only checkers and admins see the log (`held`), as they would see
    an output before release.
    """
    job = get_job(session, job_id)
    folder = session.home.job_dir(job.id)
    sandboxed = bool(job.handle.get("sandbox"))
    if held:
        me = session.person()
        refusals = role_refusals(me, Role.CHECKER, "reading a job's held log")
        if refusals and not (me is not None and Role.ADMIN in me.roles and me.active):
            raise_if(refusals, f"you cannot read the held log of job {job_id}")
        if me is not None and me.name == job.submitter:
            raise PermissionDenied(
                f"job {job_id} is yours: its held log goes to other output checkers",
                fix="ask a checker to release it",
            )
        with session.write() as conn:
            session.record(conn, "job.held_log_read", f"job:{job.id}", "checker")
    elif sandboxed:
        return _status_lines(session, job)
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
        parts.append(f"== reason ==\n{error.get('reason', '')}")
    if job.reason and not (error and not held):
        parts.append(f"== {job.state.value} ==\n{job.reason}")
    body = "\n\n".join(parts) or f"job {job_id} has no logs yet (it is {job.state.value})"
    return "== timeline ==\n" + "\n".join(timeline(session, job)) + "\n\n" + body


def _status_lines(session: Session, job: Job) -> str:
    """What tre itself says of a sandboxed job: never anything its code wrote."""
    lines = [f"== job {job.id}: {job.state.value} ==", *timeline(session, job)]
    for step, seen in progress_of(session, job).items():
        lines.append(f"{step}: {seen.get('done', 0)} of {seen.get('total', 0)} part(s) done")
    if job.reason:
        lines.append(job.reason)
    lines.append(
        "The job's own log (what its code printed) is held for the output checkers; "
        "ask them to release it if you need it."
    )
    return "\n".join(lines)
