"""The dispatcher: takes queued jobs to a backend, watches them, and checks their outputs.

Every pass (`tick`) works from the state store and the backends' handles alone, so a
dispatcher that crashed and restarted picks up exactly where the last one stopped: it
finds running jobs by their handles, never starts a job twice, and fails a job whose
process died without a result. Only one dispatcher runs per home (a lock file).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from jobs.code import check_submitted
from jobs.errors import CodeChanged
from jobs.job_input import write_input
from jobs.results import RESULT, is_disk_full
from jobs.spec import PythonStep
from jobs.untrusted import UntrustedOutput
from policies.limits import load_limits
from slurm.backend import Backend, Submission
from slurm.backends import get_backend
from slurm.errors import SlurmCommandError
from slurm.scripts import LOG_FOLDER, SCRATCH_WIPED
from tre.errors import PlatformError, StateError, TreError
from tre.keyservice.process import service_pid
from tre.models import Job, JobState
from tre.outcomes import Outcome
from tre.service import job_slots, job_start, sandboxing
from tre.service.check_worker import Checks
from tre.service.grants import record_refusals, retire_finished_grants
from tre.service.judging import FREE_SPACE, Judgement, judge_ended
from tre.service.judging_context import context_for
from tre.service.projects import expire_due_projects
from tre.service.researcher_view import planned_parts
from tre.service.sandboxing import OUT
from tre.service.session import SYSTEM, Session
from tre.service.specs import spec_of
from tre.service.state import set_job_state
from tre.store import repo
from tre.units import format_duration

log = logging.getLogger("tre.dispatcher")
ACTIVE = {JobState.QUEUED, JobState.RUNNING, JobState.CHECKING}


class DispatcherBusy(PlatformError):
    """Another dispatcher holds this home's lock."""


class Dispatcher:
    def __init__(
        self,
        session: Session,
        backend: Backend | None = None,
        *,
        max_running: int = 1,
        on_event: Callable[[Job, str], None] | None = None,
    ) -> None:
        self.session = session
        config = session.home.config
        self.backend = backend or get_backend(config.backend, config.slurm_profile)
        self.max_running = max_running
        self.on_event = on_event or (lambda job, text: None)
        self._lock: IO[str] | None = None
        # Each job's disclosure check runs in a process of its own (check_worker).
        self.checks = Checks(load_limits(session.home.root))

    # -- lifecycle ----------------------------------------------------------------------

    def lock(self) -> None:
        """Take the home's dispatcher lock, or raise DispatcherBusy."""
        path = self.session.home.root / "dispatcher.lock"
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise DispatcherBusy(
                f"another dispatcher (pid {holder}) is already running for this home",
                fix="let it work, or stop it before starting another",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock = handle

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def run(
        self,
        *,
        once: bool = False,
        interval: float = 2.0,
        should_stop: Callable[[], bool] = lambda: False,
        after_tick: Callable[[], None] | None = None,
    ) -> None:
        """Pass after pass; with `once`, until every job active at the start is settled."""
        self.lock()
        try:
            while not should_stop():
                try:
                    busy = self.tick()
                except (OSError, sqlite3.OperationalError) as exc:
                    if not disk_full(exc):
                        raise
                    if once:
                        raise PlatformError(
                            "the TRE home's disk is full (ENOSPC): the dispatcher cannot "
                            "record what its jobs did",
                            fix="free space on the TRE home's disk, then run it again",
                        ) from exc
                    # The store is as the last commit left it: try again next pass.
                    log.warning("the TRE home's disk is full (ENOSPC); trying again")
                    busy = True
                if after_tick is not None:
                    after_tick()
                if once and not busy:
                    return
                _sleep(0.2 if once else interval, should_stop)
        finally:
            self.checks.stop_all()  # abandoned; the next dispatcher checks them again
            self.unlock()

    def tick(self) -> bool:
        """One pass over all active jobs; True while any job is still active."""
        expire_due_projects(self.session)
        retire_finished_grants(self.session)  # a finished job's token unwraps nothing
        record_refusals(self.session)  # what the key service refused, into the audit log
        for job in repo.list_jobs(self.session.conn, states={JobState.RUNNING}):
            self._guard(job, self._watch)
        checking = repo.list_jobs(self.session.conn, states={JobState.CHECKING})
        for job in checking:
            self._guard(job, self._check)
        for job_id in set(self.checks.running) - {job.id for job in checking}:
            self.checks.abandon(job_id)  # cancelled (or failed) while being checked
        running = len(repo.list_jobs(self.session.conn, states={JobState.RUNNING}))
        for job in repo.list_jobs(self.session.conn, states={JobState.QUEUED}):
            if running >= self.max_running:
                break
            self._guard(job, self._start)
            running += 1
        return bool(repo.list_jobs(self.session.conn, states=ACTIVE))

    def _guard(self, job: Job, action: Callable[[Job], None]) -> None:
        """Run one job's action; a job moved on by someone else meanwhile is not an error."""
        try:
            action(job)
        except StateError:
            log.info("job %s changed state meanwhile; skipped", job.id)
        except (OSError, sqlite3.OperationalError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and not disk_full(exc):
                raise
            # One job's files (a full disk, most likely) must not stop the dispatcher.
            self._fail_on_error(job, exc)
        except PlatformError:
            raise  # the installation, not this job: every job would meet it (said once)
        except TreError as exc:
            self._fail_on_error(job, exc)
        except Exception as exc:  # one job must never stop every project's jobs
            # A bug in tre, or a job that makes tre's own code fail (a spec stored by an
            # older version, a check that cannot run on its outputs): that job fails with
            # the reason, and the loop goes on. The log gets where, never the message.
            where = "; ".join(
                f"{Path(f.filename).name}:{f.lineno}"
                for f in traceback.extract_tb(exc.__traceback__)[-4:]
            )
            log.error("job %s: internal error %s at %s", job.id, type(exc).__name__, where)
            self._fail_on_error(job, exc)

    def _fail_on_error(self, job: Job, exc: Exception) -> None:
        if isinstance(exc, OSError | sqlite3.OperationalError) and disk_full(exc):
            reason = f"the TRE home's disk is full (ENOSPC) while handling the job; {FREE_SPACE}"
        elif isinstance(exc, OSError):
            reason = f"the dispatcher could not handle the job's files: {exc.strerror or exc}"
        elif isinstance(exc, TreError):
            reason = f"tre could not handle the job: {exc.message}"
        elif isinstance(exc, MemoryError):
            reason = (
                "checking or handling the job needs more memory than the TRE has (MemoryError); "
                "make the job's outputs smaller (fewer or coarser table keys) and submit again"
            )
        else:
            reason = (
                f"an internal error in tre ({type(exc).__name__}) stopped this job; the "
                "TRE administrators have the details in the dispatcher's log (a bug in tre)"
            )
        log.warning("job %s: %s", job.id, reason)
        try:
            running = repo.find_job(self.session.conn, job.id) or job
            handle = running.handle
            if running.state is JobState.RUNNING and (
                handle.get("pid") or handle.get("slurm_job_id")
            ):
                self._backend_of(running).cancel(handle)  # a failed job must not run on
        except Exception as stop:
            log.warning("job %s: cannot stop it: %s", job.id, type(stop).__name__)
        try:
            self._set(job, JobState.FAILED, reason, outcome=Outcome.TRE_ERROR)
        except (StateError, OSError, sqlite3.Error) as again:
            # Not even that could be recorded (the database is on the full disk too):
            # the job stays as it is, and the next pass tries again.
            log.warning("job %s: cannot record its failure yet: %s", job.id, again)

    # -- the three kinds of work ----------------------------------------------------------

    def _start(self, job: Job) -> None:
        session = self.session
        spec = spec_of(job)
        reasons = job_start.still_allowed(session, job, spec, session.today())
        if reasons:
            reason = "no longer allowed to run: " + "; ".join(reasons)
            self._set(job, JobState.FAILED, reason, outcome=Outcome.NO_LONGER_ALLOWED)
            return
        folder = session.home.job_dir(job.id)
        steps = [s.name for s in spec.steps if isinstance(s, PythonStep)]
        try:
            # Unpickling runs code under the job's grant: it must be the code submitted.
            code_sha256 = check_submitted(folder, steps, job.code_hash, job.code_sha256)
        except CodeChanged as exc:
            self._set(
                job,
                JobState.FAILED,
                exc.render(),
                details={"code_hash": job.code_hash},
                outcome=Outcome.CODE_CHANGED,
            )
            return
        leftovers = (RESULT, RESULT + ".tmp", "error.json", "progress.json", SCRATCH_WIPED, OUT)
        for leftover in (*leftovers, sandboxing.HANDOVER, f"{LOG_FOLDER}/{SCRATCH_WIPED}"):
            _remove(folder / leftover)
        sandboxed = sandboxing.is_sandboxed(session, self.backend)
        slot = None
        if sandboxed:
            try:
                slot = job_slots.free_slot(session.conn)
            except TreError as exc:
                reason = f"the job's sandbox cannot be made: {exc.message}"
                self._set(job, JobState.FAILED, reason, outcome=Outcome.SANDBOX_UNMADE)
                return
            if slot is None:
                return  # every job user is busy: it waits for the next pass
        job_input = job_start.job_input(session, self.backend, job, spec, code_sha256, slot)
        write_input(folder, job_input)
        box = code_box = None
        if slot is not None:
            try:
                box = sandboxing.plan(
                    session,
                    job,
                    slot,
                    spec,
                    job_input.secured_sources(),
                    as_job_user=self.backend.runs_as_job_user,
                    reach=self.backend.reaches_as_job_user,
                )
                split = sandboxing.code_plan(box, slot, spec) if self.backend.splits_code else None
                if split is not None:
                    box, code_box = split
            except TreError as exc:
                sandboxing.release(folder)
                reason = f"the job's sandbox cannot be made: {exc.message}"
                self._set(job, JobState.FAILED, reason, outcome=Outcome.SANDBOX_UNMADE)
                return
        project = repo.get_project(session.conn, job.project)
        submission = Submission(
            sandbox=box,
            code_sandbox=code_box,
            name=f"tre-{session.home.tag}-{job.id}",
            job_id=job.id,
            job_dir=folder,
            project=job.project,
            resources=spec.resources,
            placement=project.slurm,
        )
        # Record `running` before the backend starts anything: if we crash in between, the
        # job is failed on restart rather than started a second time.
        job = self._set(
            job,
            JobState.RUNNING,
            "",
            backend=self.backend.name,
            handle={"starting": True, **({"slot": slot.index} if slot else {})},
            attempts=job.attempts + 1,
        )
        try:
            handle = self.backend.submit(submission)
        except TreError as exc:
            if slot is not None:
                sandboxing.release(folder)
            detail = "; ".join([exc.message, *exc.reasons])
            reason = f"the backend could not start the job: {detail}"
            self._set(job, JobState.FAILED, reason, outcome=Outcome.BACKEND_REFUSED)
            return
        if slot is not None:  # what a researcher may see of its progress: tre's own count
            handle = {
                **handle,
                "slot": slot.index,
                "parts": planned_parts(spec, job_input.secured_sources(), job_input.target_rows),
            }
            if (keys_pid := service_pid(session.home)) is not None:
                handle["keys_pid"] = keys_pid  # the key service it began with
        with session.write() as conn:
            current = repo.get_job(conn, job.id)
            repo.put_job(conn, current.model_copy(update={"handle": handle}))
            session.record(
                conn,
                "job.started",
                f"job:{job.id}",
                "system",
                {"backend": self.backend.name, "handle": handle},
                actor=SYSTEM,
            )

    def _watch(self, job: Job) -> None:
        folder = self.session.home.job_dir(job.id)
        if job.handle.get("starting"):
            if "slot" in job.handle:
                sandboxing.release(folder)
            reason = "the dispatcher stopped while starting this job; resubmit it"
            self._set(job, JobState.FAILED, reason, outcome=Outcome.DISPATCHER_STOPPED)
            return
        backend = self._backend_of(job)
        try:
            status = backend.poll(job.handle)
        except SlurmCommandError as exc:
            # Slurm not answering is no news about the job: ask again next pass.
            log.warning("job %s: cannot poll its backend: %s", job.id, exc.message)
            return
        if status.state == "running":
            if job.cancel_requested:
                backend.cancel(job.handle)
                reason = "cancelled at its submitter's request"
                self._end(job, Judgement(JobState.CANCELLED, Outcome.CANCELLED, reason))
            elif not backend.enforces_walltime and self._over_walltime(job):
                backend.cancel(job.handle)
                walltime = format_duration(spec_of(job).resources.walltime)
                reason = f"walltime of {walltime} exceeded"
                self._end(job, Judgement(JobState.FAILED, Outcome.WALLTIME, reason))
            return
        if job.handle.get("sandbox"):
            try:
                sandboxing.collect(folder)  # what the job left is untrusted until copied
            except UntrustedOutput as exc:
                reason = f"its outputs were refused: {exc.message}"
                self._end(job, Judgement(JobState.FAILED, Outcome.OUTPUTS_REFUSED, reason))
                return
        context = context_for(self.session, job, backend)
        spec = spec_of(job)
        self._end(
            job,
            judge_ended(job.id, job.cancel_requested, job.attempts, spec, status, folder, context),
        )

    def _check(self, job: Job) -> None:
        """Start the job's check in its own process, or take its outcome once it ended."""
        session = self.session
        if not self.checks.is_checking(job.id):
            self.checks.start(session.home.root, job.id, session.home.job_dir(job.id))
            return
        outcome = self.checks.poll(job.id)
        if outcome is None:
            return  # still checking: the dispatcher goes on with the other jobs
        if outcome.request is None:
            self._set(job, JobState.FAILED, outcome.reason, outcome=Outcome.CHECK_FAILED)
            return
        request = outcome.request
        with session.write() as conn:
            repo.put_output_request(conn, request)
            statuses = {o.name: o.sdc_status.value for o in request.outputs}
            set_job_state(
                conn,
                job,
                JobState.AWAITING_REVIEW,
                actor=SYSTEM,
                role="system",
                details={"outputs": statuses, "report": request.report_html},
            )
        self.on_event(job, "awaiting_review")

    # -- helpers --------------------------------------------------------------------------

    def _backend_of(self, job: Job) -> Backend:
        """The backend that started `job` (the home may have changed backends since)."""
        if job.backend == self.backend.name:
            return self.backend
        return get_backend(job.backend, self.session.home.config.slurm_profile)

    def _over_walltime(self, job: Job) -> bool:
        started = float(job.handle.get("submitted", time.time()))
        walltime = spec_of(job).resources.walltime
        return time.time() - started > walltime

    def _end(self, job: Job, judged: Judgement) -> None:
        """Settle a job that stopped running, and wipe (or confirm the wipe of) its scratch."""
        folder = self.session.home.job_dir(job.id)
        if job.handle.get("sandbox"):
            sandboxing.release(folder)  # before its slot is free for the next job
        self._set(job, judged.state, judged.reason, outcome=judged.outcome)
        scratch = folder / "scratch"
        details: dict[str, Any] = {}
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
            details = {"where": "job folder", "confirmed": not scratch.exists()}
        elif self._backend_of(job).scratch_on_nodes:
            # The allocation wipes its node-local scratch on exit and leaves a marker.
            wiped = (folder / SCRATCH_WIPED, folder / LOG_FOLDER / SCRATCH_WIPED)
            details = {"where": "compute node", "confirmed": any(p.exists() for p in wiped)}
        if details:
            with self.session.write() as conn:
                self.session.record(
                    conn, "job.scratch_wiped", f"job:{job.id}", "system", details, actor=SYSTEM
                )

    def _set(
        self,
        job: Job,
        state: JobState,
        reason: str,
        details: dict[str, Any] | None = None,
        outcome: Outcome | None = None,
        **changes: Any,
    ) -> Job:
        if outcome is not None:
            details = {**(details or {}), "outcome": outcome.value}
        with self.session.write() as conn:
            updated = set_job_state(
                conn,
                job,
                state,
                actor=SYSTEM,
                role="system",
                reason=reason,
                details=details,
                outcome=outcome,
                **changes,
            )
        self.on_event(updated, state.value)
        return updated


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk is full: a file's write, or SQLite's (SQLITE_FULL)."""
    if isinstance(exc, sqlite3.Error):
        return exc.sqlite_errorcode == sqlite3.SQLITE_FULL
    return is_disk_full(exc)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _sleep(seconds: float, should_stop: Callable[[], bool]) -> None:
    """Sleep between passes, waking at once when asked to stop."""
    deadline = time.monotonic() + seconds
    while not should_stop() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.1))
