"""Projects and people through the API: a researcher's request, the admins' approvals,
state changes and registrations, each with the refusals a person would read (the route
walk covers every role's status on every endpoint)."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import EXAMPLES, PROJECT
from tests.web.conftest import SPEC, World
from tests.web.test_api import error_of
from tre import audit
from tre.service import projects, tokens
from tre.service.session import Session
from tre.web.schemas import ProjectRequestBody

pytestmark = pytest.mark.slow

NEW = "lcr-fire-followup"


def project_request(name: str = NEW, **changes: object) -> dict:
    """jobs/examples/project.yaml under another name, as a client sends it (JSON)."""
    data = yaml.safe_load((EXAMPLES / "project.yaml").read_text())
    return {**data, "name": name, "expires": str(data["expires"]), **changes}


def events_of(world: World, obj: str) -> list[tuple[str, str]]:
    s = Session.open(world.home, "ada")
    try:
        return [(e.actor, e.action) for e in audit.events(s.conn, obj=obj)]
    finally:
        s.close()


def request(client, world: World, who: str = "rita", **changes: object):
    return client.post("/api/projects", json=project_request(**changes), headers=world.bearer(who))


# -- requesting a project -----------------------------------------------------------------


def test_the_request_body_has_the_fields_the_service_takes():
    assert set(ProjectRequestBody.model_fields) == projects.REQUEST_FIELDS


def test_a_researcher_requests_a_project(client, world: World):
    response = request(client, world)
    assert response.status_code == 201, response.text
    project = response.json()
    assert (project["name"], project["state"]) == (NEW, "requested")
    assert project["requested_by"] == "rita" and project["approved_by"] is None
    assert project["members"] == ["rita", "sam"]
    assert project["quota"]["workers"] == 2
    shown = client.get(f"/api/projects/{NEW}", headers=world.bearer("sam"))
    assert shown.json()["purpose"] == project["purpose"]
    assert events_of(world, f"project:{NEW}") == [("rita", "project.request")]


def test_a_misspelt_field_is_422_and_nothing_is_requested(client, world: World):
    body = project_request()
    body["expiry"] = body.pop("expires")
    response = client.post("/api/projects", json=body, headers=world.bearer("rita"))
    assert response.status_code == 422
    reasons = error_of(response)["reasons"]
    assert "body.expiry: unknown field (check the spelling)" in reasons
    assert "body.expires: Field required" in reasons
    assert client.get(f"/api/projects/{NEW}", headers=world.bearer("ada")).status_code == 404


def test_a_request_is_checked_as_the_cli_checks_it(client, world: World):
    bad_name = request(client, world, name="Not A Name")
    assert bad_name.status_code == 400
    error = error_of(bad_name)
    assert error["message"] == "the project request is not valid"
    assert any(r.startswith("name: ") for r in error["reasons"])
    datasets = [{"dataset": "residents", "columns": ["local_authority", "salary"]}]
    unknown_column = request(client, world, datasets=datasets, members=["carl"])
    assert unknown_column.status_code == 403
    error = error_of(unknown_column)
    assert error["message"] == f"project {NEW!r} cannot be requested"
    assert "member 'carl' does not hold the researcher role" in error["reasons"]
    assert any("has no column(s) salary" in r for r in error["reasons"])
    taken = request(client, world, name=PROJECT)
    assert taken.status_code == 400
    assert error_of(taken)["message"] == f"a project called {PROJECT!r} already exists"


def test_a_checker_cannot_request_a_project(client, world: World):
    response = request(client, world, who="carl")
    assert response.status_code == 403
    assert (
        "requesting a project needs the researcher or admin role" in error_of(response)["reasons"]
    )


def test_a_write_with_a_bad_token_is_401_and_changes_nothing(client, world: World):
    forged = {"Authorization": "Bearer tre_0123456789ab_" + "A" * 43}
    response = client.post("/api/projects", json=project_request(), headers=forged)
    assert response.status_code == 401
    assert "does not know that API token" in error_of(response)["message"]
    people = client.patch("/api/people/rita", json={"active": False}, headers=forged)
    assert people.status_code == 401
    assert client.get("/api/whoami", headers=world.bearer("rita")).status_code == 200
    assert events_of(world, f"project:{NEW}") == []


# -- approving ----------------------------------------------------------------------------


def test_an_admin_approves_and_the_researcher_can_then_submit(client, world: World):
    assert request(client, world).status_code == 201
    spec = {**SPEC, "project": NEW}
    early = client.post("/api/jobs", json={"spec": spec}, headers=world.bearer("rita"))
    assert early.status_code == 403
    assert f"project {NEW!r} is requested, not approved" in error_of(early)["reasons"]
    approved = client.post(f"/api/projects/{NEW}/approve", headers=world.bearer("ada"))
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and approved.json()["approved_by"] == "ada"
    submitted = client.post("/api/jobs", json={"spec": spec}, headers=world.bearer("rita"))
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["state"] == "queued"
    assert events_of(world, f"project:{NEW}")[-1] == ("ada", "project.approved")


def test_a_researcher_cannot_approve(client, world: World):
    assert request(client, world).status_code == 201
    response = client.post(f"/api/projects/{NEW}/approve", headers=world.bearer("rita"))
    assert response.status_code == 403
    error = error_of(response)
    assert error["message"] == f"you cannot approve project {NEW!r}"
    assert "approving a project needs the admin role; rita holds: researcher" in error["reasons"]
    assert "an admin may not approve a project they requested themselves" in error["reasons"]
    shown = client.get(f"/api/projects/{NEW}", headers=world.bearer("rita")).json()
    assert shown["state"] == "requested"


def test_an_admin_cannot_approve_a_project_they_requested(client, world: World):
    assert request(client, world, who="ada").status_code == 201
    response = client.post(f"/api/projects/{NEW}/approve", headers=world.bearer("ada"))
    assert response.status_code == 403
    error = error_of(response)
    assert error["reasons"] == ["an admin may not approve a project they requested themselves"]
    assert error["fix"] == "ask another admin, who did not request the project, to approve it"


def test_approving_renews_with_a_new_expiry(client, world: World):
    assert request(client, world).status_code == 201
    response = client.post(
        f"/api/projects/{NEW}/approve",
        json={"expires": "2030-06-30"},
        headers=world.bearer("ada"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["expires"] == "2030-06-30"


def test_an_unknown_project_is_404(client, world: World):
    for path, body in (("approve", None), ("state", {"state": "closed", "reason": "done"})):
        response = client.post(
            f"/api/projects/no-such/{path}", json=body, headers=world.bearer("ada")
        )
        assert response.status_code == 404, path
        error = error_of(response)
        assert error["message"] == "there is no project called 'no-such'"
        assert error["fix"] == "check the name with 'tre project list'"


# -- suspending, closing, rejecting -------------------------------------------------------


def test_an_admin_suspends_a_project_and_its_jobs_are_refused(client, world: World):
    response = client.post(
        f"/api/projects/{PROJECT}/state",
        json={"state": "suspended", "reason": "ethics review"},
        headers=world.bearer("ada"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "suspended"
    refused = client.post("/api/jobs", json={"spec": SPEC}, headers=world.bearer("rita"))
    assert refused.status_code == 403
    assert f"project {PROJECT!r} is suspended, not approved" in error_of(refused)["reasons"]
    s = Session.open(world.home, "ada")
    event = audit.events(s.conn, obj=f"project:{PROJECT}")[-1]
    s.close()
    assert (event.actor, event.action) == ("ada", "project.suspended")
    assert event.details["reason"] == "ethics review"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"state": "expired", "reason": "x"}, "body.state: Input should be 'suspended', "),
        ({"state": "approved", "reason": "x"}, "body.state: Input should be 'suspended', "),
        ({"state": "closed"}, "body.reason: Field required"),
        ({"state": "closed", "reason": "  "}, "body.reason: a reason is required"),
        ({"state": "closed", "reason": "x", "why": "y"}, "body.why: unknown field"),
    ],
)
def test_a_bad_state_change_is_422_and_changes_nothing(client, world: World, body, reason):
    response = client.post(f"/api/projects/{PROJECT}/state", json=body, headers=world.bearer("ada"))
    assert response.status_code == 422
    assert any(r.startswith(reason) for r in error_of(response)["reasons"]), response.json()
    shown = client.get(f"/api/projects/{PROJECT}", headers=world.bearer("ada")).json()
    assert shown["state"] == "approved"


def test_only_admins_change_a_projects_state(client, world: World):
    body = {"state": "closed", "reason": "finished"}
    response = client.post(
        f"/api/projects/{PROJECT}/state", json=body, headers=world.bearer("carl")
    )
    assert response.status_code == 403
    error = error_of(response)
    assert error["message"] == f"you cannot make project {PROJECT!r} closed"
    assert "making a project closed needs the admin role; carl holds: checker" in error["reasons"]


def test_a_change_the_state_table_forbids_is_409(client, world: World):
    body = {"state": "rejected", "reason": "too late"}
    response = client.post(f"/api/projects/{PROJECT}/state", json=body, headers=world.bearer("ada"))
    assert response.status_code == 409
    error = error_of(response)
    assert error["message"] == "a project in state 'approved' cannot become 'rejected'"
    assert "closed" in error["fix"] and "suspended" in error["fix"]


# -- people -------------------------------------------------------------------------------


def register(client, world: World, who: str = "ada", **changes: object):
    body = {
        "name": "nina",
        "full_name": "Nina Newcomer",
        "roles": ["researcher"],
        "accredited_until": "2099-01-01",
        **changes,
    }
    return client.post("/api/people", json=body, headers=world.bearer(who))


def test_an_admin_registers_someone(client, world: World):
    response = register(client, world)
    assert response.status_code == 201, response.text
    assert response.json() == {
        "name": "nina",
        "full_name": "Nina Newcomer",
        "roles": ["researcher"],
        "accreditation_expires": "2099-01-01",
        "active": True,
        "admin_confirmed_by": "",
    }
    everyone = client.get("/api/people", headers=world.bearer("carl")).json()
    assert "nina" in [p["name"] for p in everyone]
    assert events_of(world, "person:nina") == [("ada", "person.register")]


def test_registrations_are_checked_by_the_service(client, world: World):
    unaccredited = register(client, world, accredited_until=None)
    assert unaccredited.status_code == 400
    error = error_of(unaccredited)
    assert error["message"] == "the registration of 'nina' is not valid"
    assert any("a researcher needs an accreditation expiry date" in r for r in error["reasons"])
    again = register(client, world, name="rita")
    assert again.status_code == 400
    assert error_of(again)["message"] == "'rita' is already registered"
    by_researcher = register(client, world, who="rita")
    assert by_researcher.status_code == 403
    error = error_of(by_researcher)
    assert error["message"] == "you cannot register people"
    assert error["reasons"] == ["registering people needs the admin role; rita holds: researcher"]
    bad_role = register(client, world, roles=["superuser"])
    assert bad_role.status_code == 422
    assert any(r.startswith("body.roles.0: Input should be") for r in error_of(bad_role)["reasons"])
    assert events_of(world, "person:nina") == []


def test_an_admin_deactivates_someone_and_their_token_stops_working(client, world: World):
    response = client.patch("/api/people/carl", json={"active": False}, headers=world.bearer("ada"))
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False and response.json()["roles"] == ["checker"]
    refused = client.get("/api/reviews", headers=world.bearer("carl"))
    assert refused.status_code == 401
    assert "deactivated" in error_of(refused)["message"]


def test_an_admin_changes_roles_and_accreditation(client, world: World):
    response = client.patch(
        "/api/people/olga",
        json={"roles": ["researcher", "checker"], "accredited_until": "2031-01-31"},
        headers=world.bearer("ada"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["researcher", "checker"]
    assert response.json()["accreditation_expires"] == "2031-01-31"
    queue = client.get("/api/reviews", headers=world.bearer("olga"))
    assert queue.status_code == 200  # a checker now


def test_changing_a_registration_is_refused_with_reasons(client, world: World):
    by_checker = client.patch(
        "/api/people/rita", json={"active": False}, headers=world.bearer("carl")
    )
    assert by_checker.status_code == 403
    assert error_of(by_checker)["message"] == "you cannot change registrations"
    unknown = client.patch(
        "/api/people/nobody", json={"active": False}, headers=world.bearer("ada")
    )
    assert unknown.status_code == 404
    assert error_of(unknown)["message"] == "nobody called 'nobody' is registered with this TRE"
    misspelt = client.patch(
        "/api/people/rita", json={"role": ["checker"]}, headers=world.bearer("ada")
    )
    assert misspelt.status_code == 422
    assert "body.role: unknown field (check the spelling)" in error_of(misspelt)["reasons"]
    assert client.get("/api/whoami", headers=world.bearer("rita")).json()["active"] is True


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        # Found by Schemathesis (tests/web/test_api_fuzz.py): each was taken.
        (
            {"roles": ["checker", "admin", "admin"]},
            "body.roles: each role may be listed once; listed twice: admin",
        ),
        ({"active": 0}, "body.active: Input should be a valid boolean"),
        ({"accredited_until": 0}, "body.accredited_until: write the date as YYYY-MM-DD"),
        ({"accredited_until": "0"}, "body.accredited_until: write the date as YYYY-MM-DD"),
    ],
)
def test_a_change_that_is_not_what_the_schema_says_is_422(client, world: World, body, reason):
    response = client.patch("/api/people/rita", json=body, headers=world.bearer("ada"))
    assert response.status_code == 422
    assert any(r.startswith(reason) for r in error_of(response)["reasons"]), response.text
    rita = client.get("/api/whoami", headers=world.bearer("rita")).json()
    assert rita["roles"] == ["researcher"] and rita["active"] is True
    assert rita["accreditation_expires"] == "2099-01-01"


def test_the_description_says_each_role_is_listed_once(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["RegisterBody"]["properties"]["roles"]["uniqueItems"] is True
    assert schemas["PersonOut"]["properties"]["roles"]["uniqueItems"] is True


def test_a_second_admin_account_approves_nothing_until_another_admin_confirms_it(
    client, world: World
):
    assert request(client, world, who="ada").status_code == 201
    body = {"name": "ada2", "full_name": "Ada Again", "roles": ["admin"]}
    made = client.post("/api/people", json=body, headers=world.bearer("ada"))
    assert made.status_code == 201 and made.json()["admin_confirmed_by"] == ""
    s = Session.open(world.home, "ada")
    try:
        second = {"Authorization": f"Bearer {tokens.issue_token(s, 'ada2')[1]}"}
        s.actor = "bob"
        bob = {"Authorization": f"Bearer {tokens.issue_token(s, 'bob')[1]}"}
    finally:
        s.close()
    refused = client.post(f"/api/projects/{NEW}/approve", headers=second)
    assert refused.status_code == 403
    assert any("ada2's admin role, given by ada, has not been confirmed" in r
               for r in error_of(refused)["reasons"])  # fmt: skip
    by_maker = client.post("/api/people/ada2/confirm-admin", headers=world.bearer("ada"))
    assert by_maker.status_code == 403
    assert error_of(by_maker)["reasons"] == [
        "you gave ada2 the admin role, so another confirmed admin must confirm it"
    ]
    confirmed = client.post("/api/people/ada2/confirm-admin", headers=bob)
    assert confirmed.status_code == 200 and confirmed.json()["admin_confirmed_by"] == "bob"
    still = client.post(f"/api/projects/{NEW}/approve", headers=second)
    assert still.status_code == 403  # ada made ada2 an admin: never ada's projects
    assert error_of(still)["reasons"] == [
        "ada requested the project and gave ada2 the admin role; an admin may not approve "
        "a project of the admin who made them one"
    ]
    assert events_of(world, "person:ada2") == [
        ("ada", "person.register"),
        ("ada", "token.issue"),
        ("bob", "person.confirm_admin"),
    ]
