"""Key grants and master keys through the service layer, on a real home.

Grants are issued as the dispatcher issues them (`grant_job`) and read with the real
reader; revocations come from the real project and job state changes.
"""

from __future__ import annotations

import dataclasses
import types
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from jobs.spec import JobSpec
from tests.conftest import PROJECT
from tre import audit
from tre.errors import InputError, PermissionDenied, PlatformError, StateError
from tre.keys import grants as grant_tokens
from tre.keys.grants import GrantRevoked, KeyNotGranted, peek
from tre.keys.kms import column_key_id, keys_for
from tre.models import Job, ProjectState
from tre.secured.reader import SecuredSource, fragments, read_fragment, read_table
from tre.service import datasets, grants, jobs, keys, projects
from tre.store import repo

COLUMNS = ["local_authority", "age_band", "has_copd"]


def _spec(columns: list[str] = COLUMNS, walltime: str = "10m") -> JobSpec:
    return JobSpec.model_validate(
        {
            "project": PROJECT,
            "title": "COPD by area",
            "datasets": {"residents": columns},
            "resources": {"workers": 1, "walltime": walltime},
            "steps": [
                {
                    "kind": "table",
                    "name": "by_area",
                    "dataset": "residents",
                    "rows": ["local_authority"],
                    "columns": ["age_band"],
                }
            ],
        }
    )


def _granted(session_as, queues: bool = False) -> tuple[Job, SecuredSource]:
    """Submit a job as rita and grant it as the dispatcher does."""
    spec = _spec()
    job = jobs.submit_job(session_as("rita"), spec)
    sources = grants.grant_job(session_as("ada"), job, spec, queues=queues)
    return job, sources["residents"]


def test_a_job_grant_covers_exactly_its_declared_columns(session_as) -> None:
    job, source = _granted(session_as)
    grant = peek(source.token)
    assert grant.keys == tuple(sorted(keys_for("residents", COLUMNS)))
    assert (grant.holder, grant.project, grant.job) == (f"job {job.id}", PROJECT, job.id)
    assert read_table(source, ["has_copd"]).num_rows == 10_000
    # The project is approved for ltc_count too, but this job did not declare it.
    wider = dataclasses.replace(source, granted=(*source.granted, "ltc_count"))
    with pytest.raises(KeyNotGranted, match="column 'ltc_count' of dataset 'residents'"):
        read_table(wider, ["ltc_count"])
    record = grants.list_grants(session_as("ada"))[0]
    assert record.id == grant.id and record.job_id == job.id
    assert record.datasets == {"residents": {"version": 1, "columns": COLUMNS}}
    event = audit.events(session_as("ada").conn, obj=f"job:{job.id}")[-1]
    assert event.action == "keys.grant" and event.details["grant"] == grant.id
    assert source.token not in str(event.details)  # the credential is never audited


def test_a_grant_lasts_the_walltime_and_never_past_the_approval(
    session_as, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, source = _granted(session_as)
    grant = peek(source.token)
    assert grant.expires - grant.issued == 10 * 60 + grants.RUN_ALLOWANCE.total_seconds()
    # Ten minutes before the project's last day ends, a Slurm grant (which allows a day
    # in the queue) is cut at midnight.
    last = datetime(2027, 12, 31, 23, 50, tzinfo=UTC).timestamp()
    monkeypatch.setattr(grant_tokens, "time", types.SimpleNamespace(time=lambda: last))
    _, late = _granted(session_as, queues=True)  # slurm-runner's
    assert peek(late.token).expires_at == datetime(2028, 1, 1, tzinfo=UTC)


def test_suspending_the_project_stops_its_jobs_at_their_next_read(session_as) -> None:
    job, source = _granted(session_as)
    parts = fragments(source, target_rows=500)
    read_fragment(source, parts[0], ["local_authority"])
    projects.change_project_state(
        session_as("ada"), PROJECT, ProjectState.SUSPENDED, "data sharing agreement under review"
    )
    with pytest.raises(GrantRevoked) as info:
        read_fragment(source, parts[1], ["local_authority"])
    assert (
        f"the key grant of job {job.id} (project '{PROJECT}') was revoked: project "
        f"'{PROJECT}' was suspended by ada: data sharing agreement under review"
    ) in str(info.value)
    (record,) = grants.list_grants(session_as("ada"))
    assert record.revoked_reason is not None and "suspended by ada" in record.revoked_reason
    assert grants.list_grants(session_as("ada"), active=True) == []


def test_an_expired_project_revokes_its_grants(session_as) -> None:
    _, source = _granted(session_as)
    s = session_as("ada")
    s.today = lambda: date(2028, 1, 1)
    assert projects.expire_due_projects(s) == [PROJECT]
    with pytest.raises(GrantRevoked, match=f"project '{PROJECT}' expired on 2027-12-31"):
        read_table(source, ["age_band"])
    actions = [e.action for e in audit.events(s.conn) if e.action.startswith("keys.")]
    assert actions == ["keys.grant", "keys.revoke"]


def test_a_grant_ends_when_its_job_stops_running(session_as) -> None:
    job, source = _granted(session_as)
    assert grants.retire_finished_grants(session_as("ada")) == 1  # queued: never started
    with pytest.raises(GrantRevoked, match=f"revoked: job {job.id} is queued"):
        read_table(source, ["age_band"])
    assert grants.retire_finished_grants(session_as("ada")) == 0


def test_only_admins_list_or_revoke_grants(session_as) -> None:
    _, source = _granted(session_as)
    with pytest.raises(PermissionDenied):
        grants.list_grants(session_as("rita"))
    grant_id = peek(source.token).id
    with pytest.raises(PermissionDenied):
        grants.revoke(session_as("rita"), grant_id, "mine")
    record = grants.revoke(session_as("bob"), grant_id, "token copied to a laptop")
    assert record.revoked_reason == "revoked by bob: token copied to a laptop"
    with pytest.raises(GrantRevoked, match="token copied to a laptop"):
        read_table(source, ["age_band"])


def _data_files(home: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(home)): p.read_bytes()
        for p in sorted((home / "data").rglob("part-*.parquet"))
    }


def test_rotation_rewraps_every_file_and_old_versions_can_then_be_destroyed(
    session_as, home: Path
) -> None:
    ada = session_as("ada")
    before = _data_files(home)
    age_key = column_key_id("residents", "age_band")
    with pytest.raises(StateError) as info:
        keys.destroy_version(ada, age_key, 1)  # the newest: nothing to fall back on
    assert "still wraps the key material of" in str(info.value)
    assert "residents/v1/part-00000.parquet" in str(info.value)
    done = keys.rotate_keys(ada, dataset="residents")
    assert done.versions[age_key] == (1, 2)
    assert done.files == len(repo.get_dataset(ada.conn, "residents").files)
    listed = {k.key_id: k for k in keys.list_keys(ada)}
    assert listed[age_key].protects == "residents: column age_band"
    assert listed[age_key].versions == [1, 2] and listed[age_key].in_use == {2: done.files}
    assert listed[column_key_id("early_help", "outcome")].in_use == {1: 1}  # not rotated
    keys.destroy_version(ada, age_key, 1)
    assert _data_files(home) == before  # no data file was rewritten
    _, source = _granted(session_as)
    assert read_table(source, ["age_band"]).num_rows == 10_000
    actions = [e.action for e in audit.events(ada.conn) if e.action.startswith("keys.")]
    assert actions[:2] == ["keys.rotate", "keys.destroy"]
    with pytest.raises(PermissionDenied):
        keys.rotate_keys(session_as("rita"))
    signing = keys.rotate_keys(ada, key_id="tre.grant-signing")
    assert signing.versions == {"tre.grant-signing": (1, 2)} and signing.files == 0
    with pytest.raises(InputError, match="no master key 'care\\.nope'"):
        keys.rotate_keys(ada, key_id="care.nope")


def test_key_management_cannot_change_once_data_is_ingested(session_as) -> None:
    with pytest.raises(StateError, match="whose keys are in its local key store"):
        keys.configure_kms(
            session_as("ada"), "pkcs11", module="x.so", token="t", pin_file=Path("pin")
        )


def test_verify_names_a_corrupted_file_and_audits_the_result(session_as, home: Path) -> None:
    ada = session_as("ada")
    assert [r.checked for r in datasets.verify_dataset(ada, "fire_incidents")] == [1]
    path = home / "data" / "fire_incidents" / "v1" / "part-00000.parquet"
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PlatformError) as info:
        datasets.verify_dataset(ada, "fire_incidents")
    assert "dataset 'fire_incidents' failed verification: 1 problem(s)" in str(info.value)
    assert "fire_incidents/v1/part-00000.parquet: sha256 is" in str(info.value)
    event = audit.events(ada.conn, obj="dataset:fire_incidents")[-1]
    assert event.details["ok"] is False
    assert event.details["bad_files"] == ["fire_incidents/v1/part-00000.parquet"]


def test_a_second_ingest_is_a_new_version_read_by_new_jobs(
    session_as, sources: dict[str, Path], home: Path
) -> None:
    ada = session_as("ada")
    again = datasets.ingest_dataset(
        ada, "early_help", sources["early_help"], descriptor=None, rows_per_group=1000
    )
    assert again.version == 2
    spec = JobSpec.model_validate(
        {
            "project": PROJECT,
            "title": "Needs",
            "datasets": {"early_help": ["primary_need"]},
            "steps": [
                {
                    "kind": "table",
                    "name": "needs",
                    "dataset": "early_help",
                    "rows": ["primary_need"],
                }
            ],
        }
    )
    job = jobs.submit_job(session_as("rita"), spec)
    assert job.dataset_versions == {"early_help": 2}
    source = grants.grant_job(ada, job, spec, queues=False)["early_help"]
    assert source.version == 2 and read_table(source, ["primary_need"]).num_rows > 0


def test_grants_outlive_nothing_after_a_project_is_renewed(session_as) -> None:
    # A revoked grant stays revoked: a renewed project's jobs get new grants.
    _, source = _granted(session_as)
    ada = session_as("ada")
    projects.change_project_state(ada, PROJECT, ProjectState.SUSPENDED, "audit")
    projects.approve_project(session_as("bob"), PROJECT, expires=date.today() + timedelta(days=30))
    with pytest.raises(GrantRevoked):
        read_table(source, ["age_band"])
    _, fresh = _granted(session_as)
    assert read_table(fresh, ["age_band"]).num_rows == 10_000
