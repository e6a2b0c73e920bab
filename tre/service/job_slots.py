"""Which job slot (slurm/job_users.py) a starting job runs in: one no running job holds.

A slot is held by a job from its start until it leaves `running` (its processes have
ended by then: the backend said so, or cancelled them), recorded in its handle
(`JobHandle.slot`), so a restarted dispatcher sees the same leases. Only the
dispatcher starts jobs, one pass at a time under its lock, so reading the leases and
recording one cannot race. One host serves one TRE home's jobs: the pool is the host's.
"""

from __future__ import annotations

import sqlite3

from slurm.job_users import Slot, pool
from tre.models import JobState
from tre.store import repo


def held(conn: sqlite3.Connection) -> set[int]:
    """The slots of the jobs running now."""
    return {
        int(job.handle["slot"])
        for job in repo.list_jobs(conn, states={JobState.RUNNING})
        if isinstance(job.handle.get("slot"), int)
    }


def free_slot(conn: sqlite3.Connection) -> Slot | None:
    """The lowest slot no running job holds, or None while every one is held (the job
    waits in the queue). NoJobUsers if the host has no pool at all."""
    taken = held(conn)
    return next((s for s in pool() if s.index not in taken), None)
