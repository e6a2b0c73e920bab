"""Each job's disclosure check in a process of its own, so that no job holds up the TRE.

The dispatcher hands a job in `checking` to `Checks.start` and asks `Checks.poll` on
each pass; meanwhile it goes on starting and watching every other job. The check
(`tre.service.checking.check_job`: rules, suppression, differencing, reports) runs in
a child process under the TRE's limits (`policies.limits`): `check_seconds` of wall
time, after which the dispatcher kills it, and `check_memory` through a memory cgroup
where the host offers one (and CPU time as a backstop). The child writes the output
request it made, or why it could not, as one small file in a folder of its own attempt;
the dispatcher alone records states (`tre.service.dispatcher`).

Children are forked from a forkserver that has imported the checking code once, so a
check starts in milliseconds instead of paying for the imports each time. A child dies
with its forkserver, and the forkserver with the dispatcher: a check in progress when
the dispatcher stops is abandoned, and redone by the next dispatcher (`check_job` is
safe to repeat).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import resource
import secrets
import shutil
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from pathlib import Path

from policies.limits import Limits
from slurm import cgroups
from tre.models import OutputRequest

log = logging.getLogger("tre.dispatcher")
ATTEMPTS = "checks"  # in the job folder: one folder per attempt, removed when read
REQUEST = "request.json"
ERROR = "error.json"
PR_SET_PDEATHSIG = 1


@dataclass
class Running:
    """One check in progress."""

    process: BaseProcess
    folder: Path
    started: float
    cgroups: tuple[Path, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """A finished check: the request it made, or why it made none."""

    request: OutputRequest | None = None
    reason: str = ""


@dataclass
class Checks:
    """The dispatcher's checks in progress, one per job."""

    limits: Limits
    #: What the child runs: `run_check`; a test may give another module-level function
    #: with the same arguments (it is imported by the child, not pickled by value).
    target: Callable[[str, int, str, float], None] | None = None
    running: dict[int, Running] = field(default_factory=dict)
    _context: ForkServerContext | None = None

    def start(self, home_root: Path, job_id: int, job_folder: Path) -> None:
        """Start checking job `job_id` (a no-op if it is being checked)."""
        if job_id in self.running:
            return
        attempt = job_folder / ATTEMPTS / secrets.token_hex(6)
        attempt.mkdir(parents=True, mode=0o700)
        process = self._mp().Process(
            target=self.target or run_check,
            args=(str(home_root), job_id, str(attempt), self.limits.check_seconds),
            name=f"tre-check-{job_id}",
            daemon=True,
        )
        process.start()
        groups = cgroups.make_cgroups(f"check-{job_id}-{attempt.name}", self.limits.check_memory)
        for group in groups:  # the check has done nothing heavy yet: join it now
            with contextlib.suppress(OSError):
                (group / "cgroup.procs").write_text(str(process.pid))
        self.running[job_id] = Running(process, attempt, time.monotonic(), groups)

    def poll(self, job_id: int) -> Outcome | None:
        """The check's outcome once it has ended (None while it runs, or if none runs)."""
        check = self.running.get(job_id)
        if check is None:
            return None
        if check.process.is_alive():
            if time.monotonic() - check.started <= self.limits.check_seconds:
                return None
            self.abandon(job_id)
            return Outcome(
                reason=f"disclosure checking took longer than the TRE's limit of "
                f"{self.limits.check_seconds:g} seconds for one job; make its outputs "
                "fewer or smaller (coarser table keys), or split the job"
            )
        del self.running[job_id]
        cgroups.kill_cgroups(check.cgroups)
        try:
            return _read(check, self.limits)
        finally:
            shutil.rmtree(check.folder, ignore_errors=True)

    def is_checking(self, job_id: int) -> bool:
        return job_id in self.running

    def stop_all(self) -> None:
        """Abandon every check in progress (the next dispatcher redoes them)."""
        for job_id in list(self.running):
            self.abandon(job_id)

    def abandon(self, job_id: int) -> None:
        """Stop checking `job_id` (cancelled meanwhile, or the dispatcher stops)."""
        check = self.running.pop(job_id, None)
        if check is None:
            return
        with contextlib.suppress(ProcessLookupError, AttributeError):
            check.process.kill()
        check.process.join(timeout=5)
        cgroups.kill_cgroups(check.cgroups)
        shutil.rmtree(check.folder, ignore_errors=True)

    def _mp(self) -> ForkServerContext:
        if self._context is None:
            context = multiprocessing.get_context("forkserver")
            assert isinstance(context, ForkServerContext)
            # Imported once in the forkserver; every check forks from it ready to run.
            context.set_forkserver_preload(["tre.service.check_worker", "tre.service.checking"])
            self._context = context
        return self._context


def _read(check: Running, limits: Limits) -> Outcome:
    """What a check that ended left: its request, its reason, or how it died."""
    request = check.folder / REQUEST
    error = check.folder / ERROR
    if request.exists():
        return Outcome(request=OutputRequest.model_validate_json(request.read_bytes()))
    if error.exists():
        return Outcome(reason=str(json.loads(error.read_bytes())["reason"]))
    code = check.process.exitcode
    if code == -signal.SIGKILL:
        return Outcome(
            reason="disclosure checking was stopped: it needed more memory than the TRE's "
            f"limit of {limits.check_memory >> 20:,} MiB for one job; make the job's outputs "
            "fewer or smaller (coarser table keys), or split the job"
        )
    if code == -signal.SIGXCPU:
        return Outcome(
            reason="disclosure checking used more CPU time than the TRE's limit for one job; "
            "make the job's outputs fewer or smaller, or split the job"
        )
    return Outcome(
        reason=f"disclosure checking ended without a result (exit status {code}); the TRE's "
        "administrators have the details in the dispatcher's log"
    )


def run_check(home_root: str, job_id: int, attempt: str, seconds: float) -> None:
    """The child: check the job and leave its request, or the reason, in `attempt`."""
    _die_with_parent()
    cpu = int(seconds) + 60
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    folder = Path(attempt)
    try:
        text = _check(Path(home_root), job_id)
    except BaseException as exc:  # everything ends in a reason; the dispatcher lives on
        _write(folder / ERROR, json.dumps({"reason": _reason(job_id, exc)}))
        return
    _write(folder / REQUEST, text)


def _check(home_root: Path, job_id: int) -> str:
    from tre.service.checking import check_job
    from tre.service.session import Session
    from tre.store import repo

    session = Session.open(home_root)
    try:
        request = check_job(session, repo.get_job(session.conn, job_id))
    finally:
        session.close()
    return request.model_dump_json()


def _reason(job_id: int, exc: BaseException) -> str:
    """The job's failure reason for `exc` (tre's words: the message of a TreError is
    tre's own; of anything else only its type, with where to the log)."""
    from jobs.results import is_disk_full
    from tre.errors import TreError

    if isinstance(exc, TreError):
        return f"disclosure checking failed: {exc.message}"
    if isinstance(exc, MemoryError):
        return (
            "checking the job's outputs needs more memory than the TRE allows (MemoryError); "
            "make the job's outputs smaller (fewer or coarser table keys) and submit again"
        )
    if isinstance(exc, OSError) and is_disk_full(exc):
        return (
            "the TRE home's disk is full (ENOSPC), so the job's outputs could not be checked; "
            "free space on it (the platform's to fix), then the job can be submitted again"
        )
    where = "; ".join(
        f"{Path(f.filename).name}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__)[-4:]
    )
    log.error("job %s: checking stopped by %s at %s", job_id, type(exc).__name__, where)
    if isinstance(exc, OSError | ValueError | KeyError):
        return f"its results could not be read for checking: {type(exc).__name__}"
    return (
        f"an internal error in tre ({type(exc).__name__}) stopped checking this job; the TRE "
        "administrators have the details in the dispatcher's log (a bug in tre)"
    )


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _die_with_parent() -> None:
    """SIGKILL this process when its parent (the forkserver) dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
