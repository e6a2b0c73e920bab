"""The job users' pool: a running job holds its slot; a job with no free slot waits."""

from __future__ import annotations

import pytest

from slurm import job_users
from tests.conftest import EXAMPLES
from tre.models import JobState
from tre.service import job_slots
from tre.service.dispatcher import Dispatcher
from tre.store import repo


def _submit(cli, times: int) -> list[int]:
    ids = []
    for _ in range(times):
        submitted = cli("submit", EXAMPLES / "health_by_area.yaml", who="rita")
        assert submitted.code == 0, submitted.err
        ids.append(int(submitted.out.split()[1]))
    return ids


def _hold(session, job_id: int, slot: int | None) -> None:
    """Mark a job running in `slot`, as the dispatcher records it (no process behind)."""
    with session.write() as conn:
        job = repo.get_job(conn, job_id)
        handle = {"pid": 0} if slot is None else {"pid": 0, "slot": slot}
        repo.put_job(conn, job.model_copy(update={"state": JobState.RUNNING, "handle": handle}))


def test_the_lowest_slot_no_running_job_holds_is_leased(cli, session_as):
    pool = job_users.pool()
    assert len(pool) >= 3, "make sandbox-setup makes the pool"
    ids = _submit(cli, 3)
    s = session_as("ada")
    assert job_slots.free_slot(s.conn).index == 0
    _hold(s, ids[0], 0)
    _hold(s, ids[1], 2)
    _hold(s, ids[2], None)  # a job of an unsandboxed backend holds none
    assert job_slots.held(s.conn) == {0, 2}
    assert job_slots.free_slot(s.conn).index == 1
    with s.write() as conn:  # a job that stopped running gives its slot back
        job = repo.get_job(conn, ids[1])
        repo.put_job(conn, job.model_copy(update={"state": JobState.FAILED}))
    assert job_slots.held(s.conn) == {0}


def test_a_job_with_no_free_slot_waits_in_the_queue(cli, session_as):
    pool = job_users.pool()
    ids = _submit(cli, len(pool) + 1)
    s = session_as("ada")
    for job_id, slot in zip(ids, pool, strict=False):
        _hold(s, job_id, slot.index)
    assert job_slots.free_slot(s.conn) is None
    waiting = ids[-1]
    Dispatcher(s, max_running=len(pool) + 1)._start(repo.get_job(s.conn, waiting))
    job = repo.get_job(s.conn, waiting)
    assert job.state is JobState.QUEUED and not job.handle  # not failed, not started


def test_a_host_without_the_pool_says_how_to_make_it(monkeypatch):
    monkeypatch.setattr(job_users, "JOB_PREFIX", "tre-nosuchuser-")
    with pytest.raises(job_users.NoJobUsers) as raised:
        job_users.pool()
    assert "tre-nosuchuser-0" in raised.value.message
    assert "useradd --system --user-group --groups tre-job" in raised.value.fix
