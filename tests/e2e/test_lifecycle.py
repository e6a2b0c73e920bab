"""Jobs that are cancelled, run out of time, or lose their dispatcher or their process.

These run a real dispatcher in a separate process and a real job process with its own
Dask cluster, and kill them the way a crash would (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT, write_spec
from tre import audit
from tre.models import Job, JobState
from tre.service.session import Session
from tre.store import repo

pytestmark = pytest.mark.slow

SLOW_STEP = textwrap.dedent("""
    import time

    def slow(ctx):
        time.sleep(SECONDS)
        ctx.table("by_area", ctx.dataset("residents"), rows=["local_authority"])
""")


def slow_job(
    folder: Path, cli, seconds: float = 60, walltime: str = "10m", workers: int = 1
) -> int:
    """Submit a python-step job that sleeps on its worker before producing a table."""
    # Written into the code: the job sees none of the test's folders.
    (folder / "slow.py").write_text(SLOW_STEP.replace("SECONDS", repr(float(seconds))))
    spec = write_spec(
        folder,
        {
            "project": PROJECT,
            "title": "A slow job",
            "datasets": {"residents": ["local_authority"]},
            "resources": {"workers": workers, "walltime": walltime},
            "steps": [{"kind": "python", "name": "slow", "function": "slow.py:slow"}],
        },
    )
    result = cli("submit", spec, who="rita")
    assert result.code == 0, result.err
    return int(result.out.split()[1])


def job(home: Path, job_id: int) -> Job:
    s = Session.open(home, "ada")
    try:
        return repo.get_job(s.conn, job_id)
    finally:
        s.close()


def start_dispatcher(home: Path, interval: float = 0.2) -> subprocess.Popen[bytes]:
    """`tre run` as ada in its own process group (so a test can kill it and its jobs)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tre.cli.main",
            "--home",
            str(home),
            "--as",
            "ada",
            "run",
            "--interval",
            str(interval),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def running_pid(home: Path, job_id: int) -> int:
    def pid():
        current = job(home, job_id)
        return current.state is JobState.RUNNING and current.handle.get("pid")

    return int(wait_for(pid, what="the job to start"))


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def test_a_crash_mid_job_ends_it_failed_after_restart_and_nothing_is_released(home, cli, tmp_path):
    job_id = slow_job(tmp_path, cli)
    dispatcher = start_dispatcher(home)
    try:
        pid = running_pid(home, job_id)
        # Once its program is up (a job that dies before that "could not start"):
        folder = home / "jobs" / f"{job_id:06d}"
        wait_for(
            lambda: any(
                (folder / sub / "progress.json").exists() for sub in ("out", "handover", ".")
            ),
            what="the job's program to start",
        )
        # The machine "crashes": the dispatcher and the job's whole process group die at once.
        os.killpg(dispatcher.pid, signal.SIGKILL)
        os.killpg(pid, signal.SIGKILL)
        wait_for(lambda: not group_alive(pid), what="the job's processes to die")
    finally:
        stop(dispatcher)
    assert job(home, job_id).state is JobState.RUNNING  # nobody has noticed yet

    assert cli("run", "--once", who="ada").code == 0
    ended = job(home, job_id)
    assert ended.state is JobState.FAILED
    assert "ended without a result" in ended.reason
    assert not (home / "releases" / f"{job_id:06d}").exists()
    assert not (home / "jobs" / f"{job_id:06d}" / "outputs").exists()
    status = cli("status", str(job_id), who="rita")
    assert "failed" in status.out and "without a result" in status.out
    s = Session.open(home, "ada")
    assert audit.verify(s.conn, s.home.audit_head).ok
    s.close()


def test_a_restarted_dispatcher_finds_its_running_job_and_does_not_start_it_twice(
    home, cli, tmp_path
):
    job_id = slow_job(tmp_path, cli, seconds=4)
    dispatcher = start_dispatcher(home)
    try:
        pid = running_pid(home, job_id)
        os.killpg(dispatcher.pid, signal.SIGKILL)  # only the dispatcher dies
    finally:
        stop(dispatcher)
    assert group_alive(pid)
    assert cli("run", "--once", who="ada").code == 0
    finished = job(home, job_id)
    assert finished.state is JobState.AWAITING_REVIEW, finished.reason
    assert finished.handle["pid"] == pid  # the same process, adopted, not a second start
    s = Session.open(home, "ada")
    started = [e for e in audit.events(s.conn, obj=f"job:{job_id}") if e.action == "job.started"]
    s.close()
    assert len(started) == 1


def test_cancelling_a_running_job_stops_its_processes(home, cli, tmp_path):
    job_id = slow_job(tmp_path, cli)
    dispatcher = start_dispatcher(home)
    try:
        pid = running_pid(home, job_id)
        result = cli("cancel", str(job_id), who="rita")
        assert result.code == 0, result.err
        assert "cancelled" in result.out
        wait_for(lambda: not group_alive(pid), timeout=30, what="the job's processes to stop")
    finally:
        stop(dispatcher)
    assert job(home, job_id).state is JobState.CANCELLED
    assert not (home / "jobs" / f"{job_id:06d}" / "outputs").exists()


def test_only_the_submitter_or_an_admin_may_cancel(home, cli, tmp_path):
    job_id = slow_job(tmp_path, cli)
    refused = cli("cancel", str(job_id), who="sam")
    assert refused.code == 4
    assert "only the job's submitter" in refused.err
    assert cli("cancel", str(job_id), who="bob").code == 0
    assert job(home, job_id).state is JobState.CANCELLED


def test_a_job_past_its_walltime_is_stopped_and_fails_saying_so(home, cli, tmp_path):
    job_id = slow_job(tmp_path, cli, seconds=120, walltime="4s")
    assert cli("run", "--once", "--interval", "0.2", who="ada").code == 0
    ended = job(home, job_id)
    assert ended.state is JobState.FAILED
    assert "walltime of 00:00:04 exceeded" in ended.reason
    assert not (home / "jobs" / f"{job_id:06d}" / "scratch").exists()


def test_a_second_dispatcher_on_the_same_home_is_refused(home, cli, tmp_path):
    dispatcher = start_dispatcher(home)
    try:
        wait_for(
            lambda: (
                (home / "dispatcher.lock").exists()
                and (home / "dispatcher.lock").read_text().strip()
            ),
            what="the lock",
        )
        second = cli("run", "--once", who="ada")
    finally:
        stop(dispatcher)
    assert second.code == 6
    assert "already running" in second.err


def test_sigterm_ends_tre_run_at_once_and_a_restart_adopts_the_running_job(home, cli, tmp_path):
    job_id = slow_job(tmp_path, cli, seconds=8)
    dispatcher = start_dispatcher(home)
    try:
        running_pid(home, job_id)
        os.kill(dispatcher.pid, signal.SIGTERM)
        dispatcher.wait(timeout=10)  # asked to end within 5 s: a hang fails here
    finally:
        stop(dispatcher)
    assert dispatcher.returncode == 0
    assert job(home, job_id).state is JobState.RUNNING  # left running, to be adopted
    assert cli("run", "--once", who="ada").code == 0
    assert job(home, job_id).state is JobState.AWAITING_REVIEW
