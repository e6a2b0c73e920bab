"""Key grants: issued to each job at dispatch, revoked when its approval or the job ends.

A job's grant covers the master keys of exactly the columns its spec declares (each
approved for its project, checked at submission and again at dispatch) plus the footer
keys of those datasets. It expires when the job's walltime is over (plus an allowance
for queueing on Slurm), and never later than the end of the project's expiry date.
It is revoked, with a reason the job's failure will show, when:
- the project is suspended, closed, rejected or expires (`revoke_project_grants`,
  called by `tre.service.projects` in the same transaction as the state change);
- the job leaves `running` (`retire_finished_grants`, each dispatcher pass);
- an admin revokes it by hand (`revoke`).

Every grant is a row in `key_grants` and an audit event; the token itself is stored only
in the job's input. See docs/keys.md.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from jobs.spec import JobSpec
from policies.access import raise_if, role_refusals
from tre.keys.grants import Revocations, make_grant, peek, sign_grant
from tre.keys.keyclient import ServiceMasterKeys
from tre.keys.keysystems import open_master_keys
from tre.keys.kms import keys_for
from tre.keys.masterkeys import KmsSettings, MasterKeys
from tre.keyservice.process import ensure_running
from tre.models import Dataset, Job, JobState, Role, utcnow
from tre.secured.reader import SecuredSource
from tre.service.session import SYSTEM, Session
from tre.store import grants as store
from tre.store import repo
from tre.store.grants import GrantRecord

__all__ = [
    "QUEUE_ALLOWANCE",
    "RUN_ALLOWANCE",
    "admin_source",
    "approval_end",
    "grant_job",
    "kms_settings",
    "list_grants",
    "master_keys",
    "record_refusals",
    "retire_finished_grants",
    "revoke",
    "revoke_project_grants",
]

#: Beyond the walltime: process and cluster start-up, and the last reads' retries.
RUN_ALLOWANCE = timedelta(minutes=10)
#: Slurm jobs may wait in the queue after dispatch; the grant must still be valid then.
QUEUE_ALLOWANCE = timedelta(hours=24)


def kms_settings(session: Session) -> KmsSettings:
    """How this home reaches its master keys: its key service in a sandboxed home
    (started if it is not answering), else HomeConfig.kms and its settings."""
    if session.home.config.isolation == "sandbox":
        ensure_running(session.home)
    return session.home.kms_settings()


def master_keys(session: Session) -> MasterKeys:
    """This home's master keys (the process's one instance)."""
    return open_master_keys(kms_settings(session))


def approval_end(expires: date) -> datetime:
    """The end of a project's expiry day, in UTC: the latest any of its grants may last."""
    return datetime.combine(expires, time.min, UTC) + timedelta(days=1)


def grant_job(
    session: Session, job: Job, spec: JobSpec, *, queues: bool
) -> dict[str, SecuredSource]:
    """Issue `job`'s grant and return its sources, each carrying the signed token.

    Called by the dispatcher as it starts the job; the grant row and its audit event
    commit together.
    """
    conn = session.conn
    project = repo.get_project(conn, job.project)
    catalog = {n: repo.get_dataset(conn, n, v) for n, v in job.dataset_versions.items()}
    key_ids = sorted({k for n in catalog for k in keys_for(n, spec.datasets[n])})
    # A job that may wait in its backend's queue before it runs (Backend.queues) has
    # that wait added to its grant's life.
    allowance = RUN_ALLOWANCE + (QUEUE_ALLOWANCE if queues else timedelta(0))
    lifetime = timedelta(seconds=spec.resources.walltime) + allowance
    not_after = approval_end(project.expires)
    grant = make_grant(
        holder=f"job {job.id}",
        keys=key_ids,
        lifetime=lifetime.total_seconds(),
        project=project.name,
        job=job.id,
        not_after=not_after.timestamp(),
    )
    settings = kms_settings(session)
    token = sign_grant(grant, open_master_keys(settings))
    record = _record(token, catalog, spec, key_ids)
    record = record.model_copy(update={"job_id": job.id, "project": project.name})
    with session.write() as conn:
        store.put_grant(conn, record)
        session.record(
            conn,
            "keys.grant",
            f"job:{job.id}",
            "system",
            {
                "grant": grant.id,
                "project": project.name,
                "datasets": record.datasets,
                "keys": len(key_ids),
                "expires": record.expires_at.isoformat(),
            },
            actor=SYSTEM,
        )
    return {
        name: SecuredSource.from_dataset(
            data_root=session.home.data,
            keys_root=session.home.keys,
            dataset=dataset,
            granted=spec.datasets[name],
            token=token,
            kms=settings,
        )
        for name, dataset in catalog.items()
    }


def _record(
    token: str,
    catalog: dict[str, Dataset],
    columns: JobSpec | dict[str, Sequence[str]],
    key_ids: list[str],
) -> GrantRecord:
    """The record of the grant `token` carries (as signed: with its signing key's version)."""
    grant = peek(token)
    wanted = columns.datasets if isinstance(columns, JobSpec) else columns
    return GrantRecord(
        id=grant.id,
        holder=grant.holder,
        issued_at=datetime.fromtimestamp(grant.issued, UTC),
        expires_at=datetime.fromtimestamp(grant.expires, UTC),
        signed_with=grant.signed_with,
        datasets={
            n: {"version": d.version, "columns": list(wanted[n])} for n, d in catalog.items()
        },
        keys=key_ids,
    )


def admin_source(
    session: Session, dataset: Dataset, columns: Sequence[str], purpose: str, hours: float = 1
) -> SecuredSource:
    """A source an admin may read in this process (benchmarks, checks), under a grant
    of its own: audited like a job's, and expiring after `hours`."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "reading secured data directly"),
        "you cannot read secured data directly",
    )
    key_ids = sorted(keys_for(dataset.name, columns))
    grant = make_grant(holder=f"{session.actor} ({purpose})", keys=key_ids, lifetime=hours * 3600)
    settings = kms_settings(session)
    token = sign_grant(grant, open_master_keys(settings))
    record = _record(token, {dataset.name: dataset}, {dataset.name: list(columns)}, key_ids)
    with session.write() as conn:
        store.put_grant(conn, record)
        session.record(
            conn,
            "keys.grant",
            f"dataset:{dataset.name}:v{dataset.version}",
            Role.ADMIN,
            {"grant": grant.id, "purpose": purpose, "columns": list(columns)},
        )
    return SecuredSource.from_dataset(
        data_root=session.home.data,
        keys_root=session.home.keys,
        dataset=dataset,
        granted=columns,
        token=token,
        kms=settings,
    )


def _revoke(
    session: Session,
    conn: sqlite3.Connection,
    record: GrantRecord,
    reason: str,
    *,
    actor: str,
    role: str,
) -> None:
    """Revoke one grant inside the caller's transaction: the file workers check first
    (a revocation that outlives a rolled-back transaction errs on the safe side)."""
    Revocations(session.home.keys).revoke(record.id, reason)
    store.mark_revoked(conn, record.id, utcnow(), reason)
    session.record(
        conn,
        "keys.revoke",
        f"grant:{record.id}",
        role,
        {"job": record.job_id, "project": record.project, "reason": reason},
        actor=actor,
    )


def revoke_project_grants(
    session: Session, conn: sqlite3.Connection, project: str, reason: str, *, actor: str
) -> int:
    """Revoke every live grant of `project`'s jobs (inside the caller's transaction)."""
    now = utcnow()
    live = store.list_grants(conn, project=project, unrevoked=True, live_at=now)
    role = "system" if actor == SYSTEM else "admin"
    for record in live:
        _revoke(session, conn, record, reason, actor=actor, role=role)
    return len(live)


def retire_finished_grants(session: Session) -> int:
    """Revoke the grants of jobs no longer running (and of a job's earlier attempts).

    The dispatcher calls this each pass, so a token copied from a finished job's input
    unwraps nothing even before it expires.
    """
    now = utcnow()
    live = store.list_grants(session.conn, unrevoked=True, live_at=now)
    newest: dict[int, str] = {}
    for record in live:  # oldest first: the last one per job is its current attempt's
        if record.job_id is not None:
            newest[record.job_id] = record.id
    done = 0
    for record in live:
        if record.job_id is None:
            continue
        job = repo.get_job(session.conn, record.job_id)
        if job.state is JobState.RUNNING and newest[record.job_id] == record.id:
            continue
        why = (
            f"job {job.id} is {job.state.value}"
            if job.state is not JobState.RUNNING
            else f"job {job.id} was started again with a new grant"
        )
        usage = _usage(session, record.id)
        with session.write() as conn:
            _revoke(session, conn, record, why, actor=SYSTEM, role="system")
            if usage is not None:
                details = {"job": record.job_id, "project": record.project, **usage}
                session.record(
                    conn, "keys.usage", f"grant:{record.id}", "system", details, actor=SYSTEM
                )
        done += 1
    return done


def _usage(session: Session, grant_id: str) -> dict[str, object] | None:
    """What the key service unwrapped under a grant (counts per key), if it keeps count."""
    keys = master_keys(session)
    if not isinstance(keys, ServiceMasterKeys):
        return None
    found = keys.usage(grant_id)
    return {
        "unwraps": sum(found.get("unwraps", {}).values()),
        "keys": len(found.get("unwraps", {})),
        "refused": int(found.get("refused", 0)),
    }


REFUSAL_FIELDS = (
    "op",
    "reason",
    "message",
    "grant",
    "project",
    "uid",
    "pid",
    "key",
    "count",
    "node",
)


def record_refusals(session: Session) -> int:
    """Put what the key service refused since the last call in the audit log: a forged,
    widened, replayed or revoked grant, or a job asking for what only the TRE may do."""
    keys = master_keys(session)
    if not isinstance(keys, ServiceMasterKeys):
        return 0
    refusals = keys.drain_refusals()
    if not refusals:
        return 0
    with session.write() as conn:
        for refusal in refusals:
            # The job whose sandbox asked (from its cgroup, which it cannot choose), or on
            # another node the job its gateway certificate names, counts over the job its
            # grant claims to be (which a replayed grant would lie about).
            sandbox = str(refusal.get("sandbox") or "")
            prefix = f"tre-{session.home.tag}-"
            asked = int(sandbox.removeprefix(prefix)) if sandbox.startswith(prefix) else 0
            asked = asked or int(refusal.get("via_job") or 0)
            job = asked or int(refusal.get("job") or 0)
            if job:
                target = f"job:{job}"
            elif refusal.get("op") == "connect":  # cut off by the transport, in no job
                target = f"uid:{refusal.get('uid')}"
            else:
                target = f"grant:{refusal.get('grant') or 'unreadable'}"
            details = {k: refusal.get(k) for k in REFUSAL_FIELDS}
            details["grant_claims_job"] = refusal.get("job")
            session.record(conn, "keys.refused", target, "system", details, actor=SYSTEM)
    return len(refusals)


def revoke(session: Session, grant_id: str, reason: str) -> GrantRecord:
    """Revoke a grant by hand (admins), with a reason."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "revoking key grants"),
        "you cannot revoke key grants",
    )
    with session.write() as conn:
        record = store.get_grant(conn, grant_id)
        if record.revoked_at is None:
            _revoke(
                session,
                conn,
                record,
                f"revoked by {session.actor}: {reason}",
                actor=session.actor,
                role="admin",
            )
        return store.get_grant(conn, grant_id)


def list_grants(
    session: Session, *, project: str | None = None, active: bool = False
) -> list[GrantRecord]:
    """Grants issued (admins), oldest first; `active`: only those still usable."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "listing key grants"),
        "you cannot list key grants",
    )
    found = store.list_grants(session.conn, project=project)
    now = utcnow()
    return [g for g in found if g.active(now)] if active else found
