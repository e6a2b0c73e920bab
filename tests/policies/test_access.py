from datetime import date, timedelta

import pytest

from policies.access import (
    approve_project_refusals,
    check_can_submit,
    confirm_admin_refusals,
    review_refusals,
    submit_refusals,
    view_job_refusals,
)
from policies.refusals import RefusalCode, texts
from tre.errors import PermissionDenied
from tre.models import (
    ColumnInfo,
    Dataset,
    Job,
    JobState,
    Person,
    Project,
    ProjectState,
    Resources,
)

TODAY = date(2026, 11, 21)


def person(
    name, *roles, until=TODAY + timedelta(days=365), active=True, made_by="", confirmed_by="tre"
):
    """A registered person; an admin's role confirmed (by construction) unless told."""
    return Person(
        name=name,
        full_name=name.title(),
        roles=list(roles),
        accreditation_expires=until if "researcher" in roles else None,
        active=active,
        admin_granted_by=made_by if "admin" in roles else "",
        admin_confirmed_by=confirmed_by if "admin" in roles else "",
    )


def project(**kw):
    base = dict(
        name="lcr-health",
        title="t",
        purpose="p",
        lead="rita",
        members=["sam"],
        datasets=[{"dataset": "residents", "columns": ["age_band", "ward"]}],
        quota={"workers": 2, "cores": 2, "memory": "4GiB", "walltime": "1h"},
        expires=TODAY + timedelta(days=90),
        state=ProjectState.APPROVED,
        requested_by="rita",
    )
    return Project.model_validate({**base, **kw})


CATALOG = {
    "residents": Dataset(
        name="residents",
        version=1,
        row_count=10,
        files=[],
        checksum="x",
        columns=[ColumnInfo(name=c, type="string") for c in ("age_band", "ward", "resident_id")],
    )
}


def coded(who=None, proj=None, wanted=None, resources=None):
    return submit_refusals(
        who or person("rita", "researcher"),
        proj or project(),
        wanted or {"residents": ["age_band"]},
        resources or Resources(),
        CATALOG,
        TODAY,
    )


def refusals(who=None, proj=None, wanted=None, resources=None):
    """The words a person reads."""
    return texts(coded(who, proj, wanted, resources))


def test_a_member_within_the_approval_may_submit():
    assert refusals() == []


def test_every_reason_is_given_at_once():
    reasons = refusals(
        who=person("eve", "researcher", until=TODAY - timedelta(days=1)),
        proj=project(expires=TODAY - timedelta(days=3)),
        wanted={"residents": ["resident_id", "salary"], "prisons": ["x"]},
        resources=Resources(workers=8, memory="64GiB"),
    )
    text = "\n".join(reasons)
    assert "accreditation expired" in text
    assert "expired on" in text
    assert "eve is not a member" in text
    assert "resident_id" in text and "not approved" in text
    assert "salary" in text and "no column" in text
    assert "'prisons' is not in the catalog" in text
    assert "workers 8 is over" in text and "memory 64GiB is over" in text


def test_each_reason_carries_the_code_of_its_kind():
    found = coded(
        who=person("eve", "researcher", until=TODAY - timedelta(days=1)),
        proj=project(expires=TODAY - timedelta(days=3)),
        wanted={"residents": ["resident_id", "salary"], "prisons": ["x"]},
        resources=Resources(workers=8, memory="64GiB"),
    )
    assert [r.code for r in found] == [
        RefusalCode.ACCREDITATION_EXPIRED,
        RefusalCode.PROJECT_EXPIRED,
        RefusalCode.NOT_A_MEMBER,
        RefusalCode.UNKNOWN_COLUMN,
        RefusalCode.COLUMN_NOT_APPROVED,
        RefusalCode.UNKNOWN_DATASET,
        RefusalCode.OVER_QUOTA,
        RefusalCode.OVER_QUOTA,
    ]
    unapproved = project(datasets=[{"dataset": "other", "columns": ["x"]}])
    assert [r.code for r in coded(proj=unapproved)] == [RefusalCode.DATASET_NOT_APPROVED]
    nobody = [r.code for r in coded(who=person("rita", "checker", active=False))]
    assert nobody == [RefusalCode.DEACTIVATED, RefusalCode.LACKS_ROLE]
    # A record from before accreditation dates were required (the model now refuses one).
    unaccredited = person("rita", "researcher").model_copy(update={"accreditation_expires": None})
    assert [r.code for r in coded(who=unaccredited)] == [RefusalCode.NO_ACCREDITATION]


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (ProjectState.REQUESTED, RefusalCode.PROJECT_REQUESTED),
        (ProjectState.REJECTED, RefusalCode.PROJECT_REJECTED),
        (ProjectState.SUSPENDED, RefusalCode.PROJECT_SUSPENDED),
        (ProjectState.CLOSED, RefusalCode.PROJECT_CLOSED),
        (ProjectState.EXPIRED, RefusalCode.PROJECT_EXPIRED),
    ],
)
def test_a_project_not_approved_is_refused_with_its_states_code(state, code):
    (refused,) = coded(proj=project(state=state))
    assert refused.code is code
    assert refused.text == f"project 'lcr-health' is {state.value}, not approved"


@pytest.mark.parametrize(
    "state", [ProjectState.SUSPENDED, ProjectState.REQUESTED, ProjectState.CLOSED]
)
def test_jobs_only_run_under_approved_projects(state):
    assert any("not approved" in r for r in refusals(proj=project(state=state)))


def test_a_checker_without_the_researcher_role_cannot_submit():
    assert any("researcher role" in r for r in refusals(who=person("rita", "checker")))


def test_a_deactivated_researcher_cannot_submit():
    assert any("deactivated" in r for r in refusals(who=person("rita", "researcher", active=False)))


def test_check_can_submit_raises_with_the_reasons_and_a_fix():
    with pytest.raises(PermissionDenied) as info:
        check_can_submit(
            person("rita", "researcher"),
            project(),
            {"residents": ["resident_id"]},
            Resources(),
            CATALOG,
            TODAY,
        )
    assert info.value.reasons and info.value.fix


def test_an_admin_cannot_approve_their_own_request_or_a_project_they_lead():
    ada = person("ada", "admin", "researcher")
    reasons = approve_project_refusals(ada, project(requested_by="ada", lead="ada"), TODAY)
    assert any("requested themselves" in r for r in reasons)
    assert any("lead" in r for r in reasons)
    assert (
        approve_project_refusals(person("bob", "admin"), project(requested_by="ada"), TODAY) == []
    )


def test_an_unconfirmed_admin_approves_nothing_and_says_who_may_confirm_them():
    ada2 = person("ada2", "admin", made_by="ada", confirmed_by="")
    reasons = approve_project_refusals(ada2, project(requested_by="rita"), TODAY)
    assert reasons == [
        "approving a project needs a confirmed admin: ada2's admin role, given by ada, has "
        "not been confirmed (a confirmed admin other than ada runs 'tre admin confirm ada2')"
    ]


def test_an_admin_never_approves_a_project_of_the_admin_who_made_them_one():
    bob = person("bob", "admin", made_by="ada")
    for made in (project(requested_by="ada"), project(requested_by="rita", lead="ada")):
        reasons = approve_project_refusals(bob, made, TODAY)
        assert len(reasons) == 1 and "the admin who made them one" in reasons[0]
    assert approve_project_refusals(bob, project(requested_by="rita"), TODAY) == []


def test_who_may_confirm_an_admin():
    ada, carl = person("ada", "admin"), person("carl", "admin", made_by="ada")
    new = person("ada2", "admin", made_by="ada", confirmed_by="")
    assert confirm_admin_refusals(carl, new) == []
    assert confirm_admin_refusals(ada, new) == [
        "you gave ada2 the admin role, so another confirmed admin must confirm it"
    ]
    assert confirm_admin_refusals(ada, new, bootstrap=True) == []  # the home's second admin
    assert "confirm their own admin role" in " ".join(confirm_admin_refusals(new, new))
    unconfirmed = person("dan", "admin", made_by="carl", confirmed_by="")
    assert any("needs a confirmed admin" in r for r in confirm_admin_refusals(unconfirmed, new))
    assert confirm_admin_refusals(carl, person("rita", "researcher")) == [
        "rita does not hold the admin role"
    ]
    assert confirm_admin_refusals(carl, ada) == ["ada's admin role is already confirmed"]


def test_a_researcher_cannot_approve_projects():
    assert approve_project_refusals(person("rita", "researcher"), project(), TODAY)


def job(submitter="rita"):
    return Job(
        id=1,
        project="lcr-health",
        submitter=submitter,
        title="t",
        state=JobState.AWAITING_REVIEW,
        spec={},
        spec_hash="h",
    )


def test_a_checker_never_reviews_their_own_job():
    chen = person("chen", "checker", "researcher")
    assert any("they submitted" in r for r in review_refusals(chen, job(submitter="chen")))
    assert review_refusals(chen, job()) == []


def test_researchers_see_only_their_projects_jobs():
    assert view_job_refusals(person("sam", "researcher"), job(), project()) == []
    outsider = view_job_refusals(person("olga", "researcher"), job(), project())
    assert any("not a member" in r for r in outsider)
    assert view_job_refusals(person("carl", "checker"), job(), project()) == []


def test_a_column_typo_is_answered_with_the_projects_columns_and_a_guess():
    """Issue 27: a job's typo lists what its project may use (not every column the
    dataset holds, such as resident_id here) and the closest of those."""
    (refusal,) = coded(wanted={"residents": ["age_bnd"]})
    assert refusal.code is RefusalCode.UNKNOWN_COLUMN
    assert refusal.text == (
        "dataset 'residents' has no column(s) age_bnd (did you mean age_band?) "
        "(project 'lcr-health' is approved for: age_band, ward)"
    )
    assert "resident_id" not in refusal.text
    (far,) = coded(wanted={"residents": ["shoe_size"]})
    assert "shoe_size (project" in far.text and "did you mean" not in far.text


def test_a_project_request_s_typo_is_answered_with_the_datasets_columns():
    from policies.access import dataset_column_refusals

    (refusal,) = dataset_column_refusals(None, {"residents": ["resident_ids"]}, CATALOG)
    assert refusal.text == (
        "dataset 'residents' has no column(s) resident_ids (did you mean resident_id?) "
        "(its columns: age_band, ward, resident_id)"
    )
