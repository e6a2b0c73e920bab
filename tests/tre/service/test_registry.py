"""People and projects through the service layer: roles, approvals, refusals."""

from datetime import date

import pytest
import yaml

from tests.conftest import EXAMPLES, PROJECT
from tre import audit
from tre.errors import InputError, PermissionDenied, StateError
from tre.models import ProjectState
from tre.service import people, projects
from tre.service.session import Session


def request(**overrides):
    data = yaml.safe_load((EXAMPLES / "project.yaml").read_text())
    data.update(name="second", **overrides)
    return data


def test_only_admins_register_people(session_as):
    with pytest.raises(PermissionDenied, match="register"):
        people.register_person(
            session_as("rita"),
            name="eve",
            full_name="Eve",
            roles=["researcher"],
            accredited_until=date(2030, 1, 1),
        )


def test_a_researcher_needs_an_accreditation_date(session_as):
    with pytest.raises(InputError, match="accreditation"):
        people.register_person(session_as("ada"), name="eve", full_name="Eve", roles=["researcher"])


def test_registering_twice_is_refused_with_the_fix(session_as):
    with pytest.raises(InputError, match="already registered") as info:
        people.register_person(session_as("ada"), name="rita", full_name="R", roles=["checker"])
    assert "tre admin update" in (info.value.fix or "")


def test_the_requester_cannot_approve_their_own_project(session_as):
    projects.request_project(session_as("ada"), request(lead="rita"))
    with pytest.raises(PermissionDenied, match="approve") as info:
        projects.approve_project(session_as("ada"), "second")
    assert any("requested themselves" in r for r in info.value.reasons)
    with pytest.raises(PermissionDenied, match="the admin who made them one"):
        projects.approve_project(session_as("bob"), "second")  # ada made bob an admin
    # An admin ada did not make (bob registers dan, ada confirms him) may approve it.
    people.register_person(session_as("bob"), name="dan", full_name="Dan", roles=["admin"])
    people.confirm_admin(session_as("ada"), "dan")
    approved = projects.approve_project(session_as("dan"), "second")
    assert approved.state is ProjectState.APPROVED
    assert approved.approved_by == "dan"


def test_a_request_naming_unknown_people_or_columns_lists_every_problem(session_as):
    data = request(
        members=["nobody"],
        datasets=[
            {"dataset": "residents", "columns": ["shoe_size"]},
            {"dataset": "prisons", "columns": ["x"]},
        ],
    )
    with pytest.raises(PermissionDenied) as info:
        projects.request_project(session_as("rita"), data)
    text = "\n".join(info.value.reasons)
    assert "'nobody' is not registered" in text
    assert "shoe_size" in text
    assert "'prisons' is not in the catalog" in text


def test_a_request_with_unknown_fields_is_refused(session_as):
    with pytest.raises(InputError, match="colour"):
        projects.request_project(session_as("rita"), request(colour="blue"))


def test_project_lifecycle_follows_the_state_table(session_as):
    bob = session_as("bob")
    suspended = projects.change_project_state(bob, PROJECT, ProjectState.SUSPENDED, "audit")
    assert suspended.state is ProjectState.SUSPENDED
    projects.change_project_state(bob, PROJECT, ProjectState.CLOSED, "finished")
    with pytest.raises(StateError, match="final"):
        projects.approve_project(bob, PROJECT)


def test_projects_past_their_expiry_are_expired(session_as):
    s = session_as("ada")
    s.today = lambda: date(2028, 1, 1)
    assert projects.expire_due_projects(s) == [PROJECT]
    assert projects.show_project(s, PROJECT).state is ProjectState.EXPIRED


def test_every_registry_action_is_audited(home):
    s = Session.open(home, "ada")
    actions = [e.action for e in audit.events(s.conn)]
    s.close()
    assert actions[:2] == ["home.init", "person.register"]
    assert "dataset.ingest" in actions
    assert "project.request" in actions and "project.approved" in actions


def test_as_is_refused_outside_a_demo_home(tmp_path):
    people.init_home(tmp_path / "real", admin="ada", full_name="Ada")
    with pytest.raises(PermissionDenied, match="demo home"):
        Session.open(tmp_path / "real", "bob")


def test_the_last_active_admin_cannot_be_removed(session_as):
    ada = session_as("ada")
    people.update_person(ada, "bob", active=False)  # another admin may go
    with pytest.raises(StateError, match="ada is the only active admin"):
        people.update_person(ada, "ada", roles=["checker"])
    with pytest.raises(StateError, match="would leave the TRE with none"):
        people.update_person(ada, "ada", active=False)
    assert people.update_person(ada, "bob", active=True).active
    assert people.update_person(ada, "ada", roles=["admin", "checker"]).roles  # still admin
    assert not people.update_person(ada, "ada", active=False).active  # bob remains


def test_a_role_given_twice_is_refused_naming_it(session_as):
    # Schemathesis stored a person with the roles ["checker", "admin", "admin"].
    ada = session_as("ada")
    with pytest.raises(InputError) as info:
        people.register_person(ada, name="eve", full_name="Eve", roles=["checker", "checker"])
    assert "roles: each role may be listed once; listed twice: checker" in info.value.reasons
    with pytest.raises(InputError) as info:
        people.update_person(ada, "carl", roles=["checker", "admin", "admin"])
    assert "roles: each role may be listed once; listed twice: admin" in info.value.reasons
    assert [p.roles for p in people.list_people(ada) if p.name == "carl"] == [["checker"]]
