"""The code a job runs is the code that was submitted.

A python step's pickle replaced in the job folder after submission would run under the
submitter's key grant. The dispatcher refuses to start a job whose code differs from
what was recorded at submission, and the job's own process refuses code changed after
that check. Either way the job fails saying so, and the replacement never runs (its
unpickling alone would leave a marker file)."""

from __future__ import annotations

import json
import pickle
import stat
from pathlib import Path

import pytest

from slurm.backend import Submission
from slurm.local import LocalBackend
from tests.conftest import PROJECT, write_spec
from tre import audit
from tre.audit import AuditEvent
from tre.models import Job
from tre.service.dispatcher import Dispatcher
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow

STEP = "by_area"
CODE = """
def by_area(ctx):
    ctx.table("by_area", ctx.dataset("residents"), rows=["local_authority"])
"""


class TouchesOnLoad:
    """Someone else's code: unpickling it creates `marker` (pickle calls Path.touch)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.touch, (self.marker,))


def submit_python_job(folder: Path, cli) -> int:
    (folder / "by_area.py").write_text(CODE)
    spec = write_spec(
        folder,
        {
            "project": PROJECT,
            "title": "Residents by area, in python",
            "datasets": {"residents": ["local_authority"]},
            "resources": {"workers": 1, "walltime": "10m"},
            "steps": [{"kind": "python", "name": STEP, "function": f"by_area.py:{STEP}"}],
        },
    )
    result = cli("submit", spec, who="rita")
    assert result.code == 0, result.err
    return int(result.out.split()[1])


def replace_code(job_dir: Path, marker: Path) -> None:
    """Replace the step's pickle as someone with the server's rights could, read-only
    modes notwithstanding."""
    code = job_dir / "code"
    code.chmod(0o700)
    (code / f"{STEP}.pkl").unlink()
    (code / f"{STEP}.pkl").write_bytes(pickle.dumps(TouchesOnLoad(marker)))
    code.chmod(0o500)


def job_of(home: Path, job_id: int) -> tuple[Job, list[AuditEvent]]:
    s = Session.open(home, "ada")
    try:
        return repo.get_job(s.conn, job_id), audit.events(s.conn, obj=f"job:{job_id}")
    finally:
        s.close()


def test_a_queued_jobs_code_is_read_only(cli, home, tmp_path):
    job_id = submit_python_job(tmp_path, cli)
    code = home / "jobs" / f"{job_id:06d}" / "code"
    assert stat.S_IMODE(code.stat().st_mode) == 0o500
    assert stat.S_IMODE((code / f"{STEP}.pkl").stat().st_mode) == 0o400
    job, _ = job_of(home, job_id)
    assert set(job.code_sha256) == {STEP} and job.code_hash


def test_code_replaced_before_dispatch_fails_the_job_and_never_runs(cli, home, tmp_path):
    job_id = submit_python_job(tmp_path, cli)
    job_dir = home / "jobs" / f"{job_id:06d}"
    marker = tmp_path / "someone-elses-code-ran"
    replace_code(job_dir, marker)

    assert cli("run", "--once", who="ada").code == 0

    job, events = job_of(home, job_id)
    assert job.state.value == "failed"
    assert job.reason.startswith(
        f"the code of python step(s) '{STEP}' was changed after the job was submitted, "
        "so the job was not run"
    )
    assert f"code/{STEP}.pkl has sha256" in job.reason
    assert "Fix (the TRE administrators)" in job.reason
    failed = [e for e in events if e.action == "job.failed"]
    assert failed and failed[0].details["reason"] == job.reason
    assert "was changed after the job was submitted" in cli("logs", job_id, who="rita").out
    assert not marker.exists()
    assert not (job_dir / "input.json").exists()  # no grant was issued for it


class SwapsCodeOnSubmit(LocalBackend):
    """The local backend, except that the job's pickle is replaced just before its process
    starts: after the dispatcher's check, before the job's process loads the code."""

    def __init__(self, marker: Path) -> None:
        super().__init__()
        self.marker = marker

    def submit(self, submission: Submission) -> dict:
        replace_code(submission.job_dir, self.marker)
        return super().submit(submission)


def test_code_replaced_after_dispatch_is_refused_by_the_jobs_process(cli, home, tmp_path):
    job_id = submit_python_job(tmp_path, cli)
    marker = tmp_path / "someone-elses-code-ran"
    s = Session.open(home, "ada")
    try:
        Dispatcher(s, SwapsCodeOnSubmit(marker)).run(once=True)
    finally:
        s.close()

    job, _ = job_of(home, job_id)
    assert job.state.value == "failed"
    # The job process refused it (its own words are held: in a sandboxed home nothing a
    # job says is taken as it is); the dispatcher checked again and says why.
    assert job.reason.startswith(f"the code of python step(s) '{STEP}' was changed after")
    assert "so the job was not run" in job.reason
    error = json.loads((home / "jobs" / f"{job_id:06d}" / "error.json").read_text())
    assert error["type"] == "CodeChanged"
    # (The swapped file is root's 0600, so the job user cannot even open it.)
    assert error["reason"].startswith(f"the code of python step '{STEP}' ")
    assert "so the job was not run" in error["reason"]
    assert not marker.exists()
    assert not (home / "jobs" / f"{job_id:06d}" / "result").exists()
