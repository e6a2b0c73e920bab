"""Submitting jobs: a refusal's fix is found by its codes, never by its words."""

from __future__ import annotations

import pytest

from jobs.spec import JobSpec
from policies.refusals import Refusal, RefusalCode
from tests.conftest import PROJECT
from tre import audit
from tre.errors import PermissionDenied
from tre.models import Job, JobState, ProjectState
from tre.service import jobs, projects
from tre.service.jobs import refusal_fix

JOB = Job(
    id=7, project="p", submitter="rita", title="t", state=JobState.SUBMITTED, spec={}, spec_hash="h"
)

RENEW_ACCREDITATION = (
    "ask an admin to renew your accreditation (tre admin update rita --accredited-until YYYY-MM-DD)"
)
APPROVED_ONLY = (
    "change the job spec to use only what p is approved for, or ask an admin to amend the project"
)
DECLARED_COLUMNS = (
    "declare only columns the dataset has and the project is approved for "
    "('tre project show p' lists them)"
)


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        (
            RefusalCode.NOT_REGISTERED,
            "ask an admin to register you with this TRE ('tre admin register')",
        ),
        (
            RefusalCode.DEACTIVATED,
            "ask an admin to reactivate your registration (tre admin update rita --activate)",
        ),
        (RefusalCode.LACKS_ROLE, "ask an admin to give you the researcher role"),
        (RefusalCode.NO_ACCREDITATION, RENEW_ACCREDITATION),
        (RefusalCode.ACCREDITATION_EXPIRED, RENEW_ACCREDITATION),
        (RefusalCode.NOT_A_MEMBER, "ask the project's lead to have you added as a member of p"),
        (
            RefusalCode.PROJECT_REQUESTED,
            "wait until an admin approves the project, then submit again",
        ),
        (RefusalCode.PROJECT_REJECTED, "the project was rejected: request a new project"),
        (
            RefusalCode.PROJECT_SUSPENDED,
            "nothing runs while the project is suspended; the TRE's admins reinstate it when "
            "their review ends, and the job can be submitted again then",
        ),
        (RefusalCode.PROJECT_CLOSED, "the project is closed: request a new project for new work"),
        (
            RefusalCode.PROJECT_EXPIRED,
            "ask an admin to renew the project (tre project approve p --expires YYYY-MM-DD)",
        ),
        (RefusalCode.UNKNOWN_DATASET, "use a dataset from the catalog ('tre dataset list')"),
        (RefusalCode.UNKNOWN_COLUMN, DECLARED_COLUMNS),
        (RefusalCode.DATASET_NOT_APPROVED, APPROVED_ONLY),
        (RefusalCode.COLUMN_NOT_APPROVED, f"{APPROVED_ONLY}; {DECLARED_COLUMNS}"),
        (
            RefusalCode.OVER_QUOTA,
            "ask for less (resources: in the job spec) or ask an admin to raise the quota",
        ),
        (RefusalCode.FILTER_TYPE, "correct the filter values to the column's type"),
        (
            RefusalCode.NOT_NUMERIC,
            "use numeric columns, or list text predictors under categorical",
        ),
        (
            RefusalCode.IDENTIFIER_KEY,
            "key tables by attributes or quasi-identifiers (an age band, a ward), and pass "
            "an identifier column as unit: to count each person once",
        ),
    ],
)
def test_each_code_has_its_fix(code, fix):
    assert refusal_fix([Refusal(code, "whatever the words")], JOB) == fix


def test_one_hint_per_kind_in_a_fixed_order():
    refused = [
        Refusal(RefusalCode.OVER_QUOTA, "workers 8 is over the project's quota of 2"),
        Refusal(RefusalCode.OVER_QUOTA, "memory 64GiB is over the project's quota of 2GiB"),
        Refusal(RefusalCode.NOT_A_MEMBER, "rita is not a member of project 'p'"),
        Refusal(RefusalCode.PROJECT_SUSPENDED, "project 'p' is suspended, not approved"),
    ]
    assert refusal_fix(refused, JOB) == (
        "nothing runs while the project is suspended; the TRE's admins reinstate it when "
        "their review ends, and the job can be submitted again then; "
        "ask the project's lead to have you added as a member of p; "
        "ask for less (resources: in the job spec) or ask an admin to raise the quota"
    )


def test_the_words_never_choose_the_fix():
    # An admin's reason (or a dataset's name) may say anything: only the code counts.
    said = "column catalog quota filter expired not a member accreditation"
    assert refusal_fix([Refusal(RefusalCode.PROJECT_CLOSED, said)], JOB) == (
        "the project is closed: request a new project for new work"
    )
    assert refusal_fix([], JOB) == "correct the job spec and submit again"


def _spec() -> JobSpec:
    return JobSpec.model_validate(
        {
            "project": PROJECT,
            "title": "COPD by area",
            "datasets": {"residents": ["local_authority"]},
            "resources": {"workers": 1, "walltime": "10m"},
            "steps": [
                {
                    "kind": "table",
                    "name": "by_area",
                    "dataset": "residents",
                    "rows": ["local_authority"],
                }
            ],
        }
    )


def test_a_refused_submission_keeps_the_words_and_audits_the_codes(session_as):
    ada = session_as("ada")
    projects.change_project_state(ada, PROJECT, ProjectState.SUSPENDED, "quota and column audit")
    with pytest.raises(PermissionDenied) as refused:
        jobs.submit_job(session_as("olga"), _spec())
    assert refused.value.reasons == [
        f"project '{PROJECT}' is suspended, not approved",
        f"olga is not a member of project '{PROJECT}'",
        "the TRE's admins suspended it: quota and column audit",
    ]
    assert refused.value.fix == (
        "nothing runs while the project is suspended; the TRE's admins reinstate it when "
        "their review ends, and the job can be submitted again then; "
        f"ask the project's lead to have you added as a member of {PROJECT}"
    )
    (event,) = [e for e in audit.events(ada.conn) if e.action == "job.refused"]
    assert event.details["reason"] == "; ".join(refused.value.reasons)
    assert event.details["codes"] == ["project_suspended", "not_a_member"]
    job_id = int(event.object.removeprefix("job:"))
    assert refused.value.message == f"job {job_id} was refused"
    assert jobs.get_job(ada, job_id).state is JobState.REFUSED


def test_a_table_keyed_by_an_identifier_is_refused_at_submission_and_never_queued(session_as):
    rita = session_as("rita")
    spec = JobSpec.model_validate(
        {
            "project": PROJECT,
            "title": "one row per person",
            "datasets": {"residents": ["resident_id", "age_band", "ltc_count"]},
            "resources": {"workers": 1, "walltime": "10m"},
            "steps": [
                {
                    "kind": "table",
                    "name": "each",
                    "dataset": "residents",
                    "rows": ["resident_id", "age_band"],
                    "columns": ["ltc_count"],
                }
            ],
        }
    )
    with pytest.raises(PermissionDenied) as refused:
        jobs.submit_job(rita, spec)
    assert refused.value.reasons == [
        "step 'each': resident_id (an identifier column of residents) is one of its keys, "
        "and a table keyed by an identifier publishes one row per person; key it by "
        "attributes or quasi-identifiers (an age band, a ward) and pass resident_id as "
        "unit: to count each person once"
    ]
    (event,) = [e for e in audit.events(rita.conn) if e.action == "job.refused"]
    assert event.details["codes"] == ["identifier_key"]
    job = jobs.get_job(rita, int(event.object.removeprefix("job:")))
    assert job.state is JobState.REFUSED
    assert [j.state for j in jobs.list_jobs(rita, everything=True)] == [JobState.REFUSED]
    assert not rita.home.job_dir(job.id).exists()  # no folder, no code: nothing to run
