"""Admins and their confirmation: a new admin role approves nothing until a second,
confirmed admin (never the one who gave it) confirms it, so one admin cannot approve
their own request through an account they made."""

from __future__ import annotations

import sqlite3
from datetime import date

import pytest
import yaml

from tests.conftest import EXAMPLES
from tre import audit
from tre.errors import PermissionDenied
from tre.home import Home
from tre.models import Person, ProjectState
from tre.service import people, projects, tokens
from tre.service.session import Session
from tre.store import Database


def request(name: str, **changes: object) -> dict:
    data = yaml.safe_load((EXAMPLES / "project.yaml").read_text())
    return {**data, "name": name, **changes}


def confirm_events(home) -> list[tuple[str, str, dict]]:
    s = Session.open(home, "ada")
    try:
        return [
            (e.actor, e.object, e.details)
            for e in audit.events(s.conn)
            if e.action == "person.confirm_admin"
        ]
    finally:
        s.close()


def test_a_second_account_cannot_approve_its_makers_request(home, session_as):
    ada = session_as("ada")
    projects.request_project(ada, request("ada-own"))
    people.register_person(ada, name="ada2", full_name="Ada Again", roles=["admin"])
    tokens.issue_token(ada, "ada2")  # as the attack went: a token for the new account

    with pytest.raises(PermissionDenied) as refused:
        projects.approve_project(session_as("ada2"), "ada-own")
    reasons = refused.value.reasons
    assert reasons == [
        "approving a project needs a confirmed admin: ada2's admin role, given by ada, has "
        "not been confirmed (a confirmed admin other than ada runs 'tre admin confirm ada2')",
        "ada requested the project and gave ada2 the admin role; an admin may not approve "
        "a project of the admin who made them one",
    ]
    with pytest.raises(PermissionDenied) as own:
        people.confirm_admin(ada, "ada2")  # the registering admin cannot confirm
    assert own.value.reasons == [
        "you gave ada2 the admin role, so another confirmed admin must confirm it"
    ]
    assert "tre admin confirm ada2" in str(own.value)

    people.confirm_admin(session_as("bob"), "ada2")
    with pytest.raises(PermissionDenied, match="the admin who made them one"):
        projects.approve_project(session_as("ada2"), "ada-own")  # confirmed, still not this
    rita = session_as("rita")
    projects.request_project(rita, request("rita-next"))
    approved = projects.approve_project(session_as("ada2"), "rita-next")  # others' requests: yes
    assert approved.state is ProjectState.APPROVED and approved.approved_by == "ada2"
    assert confirm_events(home)[-1] == (
        "bob",
        "person:ada2",
        {"granted_by": "ada", "bootstrap": False},
    )


def test_an_unconfirmed_admin_neither_confirms_nor_makes_admins(session_as):
    ada = session_as("ada")
    people.register_person(ada, name="ada2", full_name="Ada Again", roles=["admin"])
    ada2 = session_as("ada2")
    with pytest.raises(PermissionDenied, match="you cannot register 'ada3' as an admin"):
        people.register_person(ada2, name="ada3", full_name="A3", roles=["admin"])
    with pytest.raises(PermissionDenied, match="you cannot give 'carl' the admin role"):
        people.update_person(ada2, "carl", roles=["checker", "admin"])
    people.register_person(ada2, name="ada3", full_name="A3", roles=["checker"])  # not admin
    people.update_person(ada, "ada3", roles=["admin"])  # a grant, like a registration
    with pytest.raises(PermissionDenied) as refused:
        people.confirm_admin(ada2, "ada3")
    assert any("confirming an admin needs a confirmed admin" in r for r in refused.value.reasons)
    granted = people.confirm_admin(session_as("bob"), "ada3")
    assert granted.confirmed_admin and granted.admin_granted_by == "ada"


def test_a_regranted_admin_role_needs_confirming_again(session_as):
    ada = session_as("ada")
    people.update_person(ada, "bob", roles=["checker"])
    bob = people.update_person(ada, "bob", roles=["admin"])
    assert not bob.confirmed_admin and bob.admin_granted_by == "ada"
    with pytest.raises(PermissionDenied, match="you gave bob the admin role"):
        people.confirm_admin(ada, "bob")  # the bootstrap is spent: no second time


def test_the_first_admin_confirms_the_second_once(tmp_path):
    root = tmp_path / "new"
    people.init_home(root, admin="ada", full_name="Ada", demo=True)
    s = Session.open(root, "ada")
    try:
        assert s.person() is not None and s.person().confirmed_admin  # by construction
        for name in ("bob", "cy"):
            people.register_person(s, name=name, full_name=name, roles=["admin"])
        assert people.confirm_admin(s, "bob").admin_confirmed_by == "ada"  # no one else could
        with pytest.raises(PermissionDenied, match="you gave cy the admin role"):
            people.confirm_admin(s, "cy")
        s.actor = "bob"
        people.confirm_admin(s, "cy")
    finally:
        s.close()
    assert [(actor, details["bootstrap"]) for actor, _, details in confirm_events(root)] == [
        ("ada", True),
        ("bob", False),
    ]


def test_admins_of_a_home_made_before_the_rule_are_confirmed(tmp_path):
    root = tmp_path / "old"
    people.init_home(root, admin="ada", full_name="Ada", demo=True)
    s = Session.open(root, "ada")
    people.register_person(s, name="bob", full_name="Bob", roles=["admin"])
    people.register_person(
        s, name="rita", full_name="R", roles=["researcher"], accredited_until=date(2099, 1, 1)
    )
    s.close()
    # Make it as an older tre left it: no confirmation fields, the migration not applied.
    conn = sqlite3.connect(Home.open(root).db_path)
    with conn:
        for field in ("admin_granted_by", "admin_confirmed_by", "admin_confirmed_at"):
            conn.execute(f"UPDATE people SET body = json_remove(body, '$.{field}')")
        conn.execute("DELETE FROM schema_migrations WHERE name = '007_admin_confirmation'")
    conn.close()
    home = Home.open(root)
    Database.open(home.db_path, home.audit_head).close()  # migrates
    s = Session.open(root, "ada")
    try:
        found = {p.name: p for p in people.list_people(s)}
    finally:
        s.close()
    assert found["ada"].confirmed_admin and found["bob"].confirmed_admin
    assert found["rita"].admin_confirmed_by == ""
    assert isinstance(found["bob"], Person)


def test_an_unconfirmed_admin_cannot_deactivate_or_demote_the_confirmed_ones(session_as):
    ada = session_as("ada")
    people.register_person(ada, name="ada2", full_name="Ada Again", roles=["admin"])
    ada2 = session_as("ada2")
    for change in ({"active": False}, {"roles": ["checker"]}):
        with pytest.raises(PermissionDenied) as refused:
            people.update_person(ada2, "bob", **change)
        assert "you cannot change the registration of 'bob'" in refused.value.message
        assert any(
            "changing an admin's registration needs a confirmed admin" in r
            for r in refused.value.reasons
        )
    assert people.update_person(ada2, "carl", active=False).active is False  # not an admin
    assert people.update_person(ada, "ada2", active=False).active is False  # confirmed: may
