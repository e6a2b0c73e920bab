"""Registering people and their roles (admins only), and the first admin of a home.

A new admin role (registered as admin, or granted later) approves nothing until a
second, confirmed admin confirms it (`confirm_admin`): one admin cannot make an account
that approves their own requests. The rule, and its one-time bootstrap, are in
docs/threat-model.md ("People and admins").
"""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Literal

from policies.access import (
    confirm_admin_refusals,
    confirmed_admin_refusals,
    raise_if,
    role_refusals,
)
from slurm import sandbox
from slurm.backends import BACKENDS
from slurm.profiles import load_profile
from tre import audit
from tre.errors import InputError, PlatformError, StateError
from tre.home import Home
from tre.keyservice.process import ensure_running
from tre.models import Person, Role, utcnow
from tre.service.session import SYSTEM, Session
from tre.service.validation import validate
from tre.store import Database, repo


def init_home(
    root: Path,
    *,
    admin: str,
    full_name: str,
    demo: bool = False,
    backend: str = "local",
    slurm_profile: str | None = None,
    isolation: Literal["sandbox", "none"] = "sandbox",
) -> Home:
    """Create a home and register its first admin (the person who made it).

    A Slurm backend needs a site profile; it is loaded here so a wrong one is refused
    before anything is created.
    """
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}", fix=f"use one of: {', '.join(BACKENDS)}")
    if backend != "local":
        if not slurm_profile:
            raise InputError(
                f"the {backend} backend needs a site profile",
                fix="add --slurm-profile NAME_OR_FILE (e.g. local-test)",
            )
        load_profile(slurm_profile)
    person = validate(
        Person,
        {
            "name": admin,
            "full_name": full_name,
            "roles": [Role.ADMIN],
            "registered_by": admin,
            # The first admin is confirmed by construction: nobody else exists to do it.
            "admin_confirmed_by": SYSTEM,
            "admin_confirmed_at": utcnow(),
        },
        "the first admin",
    )
    if isolation == "sandbox" and (missing := sandbox.check()):
        raise PlatformError(
            "this machine cannot run jobs in the sandbox a sandboxed home needs",
            reasons=missing,
            fix="run 'make sandbox-setup' as root (users tre-job and tre-keys, bubblewrap), "
            "or make a home whose researcher code is trusted with --isolation none "
            "(development only: never for real data)",
        )
    home = Home.create(
        root,
        created_by=admin,
        demo=demo,
        backend=backend,
        slurm_profile=slurm_profile,
        isolation=isolation,
    )
    if isolation == "sandbox":
        ensure_running(home)  # the first audit event is keyed by it
    db = Database.for_home(home, create=True)
    try:
        with db.write() as conn:
            repo.put_person(conn, person)
            audit.append(
                conn,
                actor=admin,
                role="admin",
                action="home.init",
                obj=f"home:{home.root}",
                details={"demo": demo, "backend": backend, "slurm_profile": slurm_profile},
            )
            audit.append(
                conn,
                actor=admin,
                role="admin",
                action="person.register",
                obj=f"person:{admin}",
                details={"roles": ["admin"], "admin_confirmed": "the home's first admin"},
            )
    finally:
        db.close()
    return home


def register_person(
    session: Session,
    *,
    name: str,
    full_name: str,
    roles: list[str],
    email: str = "",
    accredited_until: date | None = None,
) -> Person:
    """Register someone new with their roles (admin only; a confirmed admin to register
    an admin, whose role then awaits another admin's confirmation)."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "registering people"),
        "you cannot register people",
    )
    if Role.ADMIN.value in roles:
        raise_if(
            confirmed_admin_refusals(session.person(), "giving the admin role"),
            f"you cannot register {name!r} as an admin",
        )
    person = validate(
        Person,
        {
            "name": name,
            "full_name": full_name,
            "email": email,
            "roles": roles,
            "accreditation_expires": accredited_until,
            "registered_by": session.actor,
            "admin_granted_by": session.actor if Role.ADMIN.value in roles else "",
        },
        f"the registration of {name!r}",
    )
    with session.write() as conn:
        if repo.find_person(conn, name) is not None:
            raise InputError(
                f"{name!r} is already registered",
                fix=f"change their roles or accreditation with 'tre admin update {name}'",
            )
        repo.put_person(conn, person)
        session.record(
            conn,
            "person.register",
            f"person:{name}",
            Role.ADMIN,
            {
                "roles": [r.value for r in person.roles],
                "accreditation_expires": str(person.accreditation_expires or ""),
                **({"admin_confirmed": False} if Role.ADMIN in person.roles else {}),
            },
        )
    return person


def update_person(
    session: Session,
    name: str,
    *,
    roles: list[str] | None = None,
    accredited_until: date | None = None,
    active: bool | None = None,
) -> Person:
    """Change someone's roles, accreditation or active flag (admin only)."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "changing registrations"),
        "you cannot change registrations",
    )
    with session.write() as conn:
        person = repo.get_person(conn, name)
        changes_an_admin = Role.ADMIN in person.roles and (
            (roles is not None and set(roles) != {r.value for r in person.roles})
            or (active is not None and active != person.active)
        )
        if changes_an_admin:  # an unconfirmed admin must not unseat the confirmed ones
            raise_if(
                confirmed_admin_refusals(session.person(), "changing an admin's registration"),
                f"you cannot change the registration of {name!r}",
            )
        data = person.model_dump()
        if roles is not None:
            data["roles"] = roles
        if accredited_until is not None:
            data["accreditation_expires"] = accredited_until
        if active is not None:
            data["active"] = active
        if Role.ADMIN in (roles or []) and Role.ADMIN not in person.roles:
            raise_if(
                confirmed_admin_refusals(session.person(), "giving the admin role"),
                f"you cannot give {name!r} the admin role",
            )
            # A new grant, however it was before: it needs its own confirmation.
            data.update(admin_granted_by=session.actor, admin_confirmed_by="")
            data.update(admin_confirmed_at=None)
        updated = validate(Person, data, f"the registration of {name!r}")
        _keep_an_admin(conn, person, updated)
        repo.put_person(conn, updated)
        session.record(
            conn,
            "person.update",
            f"person:{name}",
            Role.ADMIN,
            {
                "roles": [r.value for r in updated.roles],
                "active": updated.active,
                "accreditation_expires": str(updated.accreditation_expires or ""),
            },
        )
    return updated


def confirm_admin(session: Session, name: str) -> Person:
    """Confirm `name`'s admin role (a confirmed admin other than the one who gave it);
    until then they approve nothing. Audited."""
    with session.write() as conn:
        me = repo.find_person(conn, session.actor)
        person = repo.get_person(conn, name)
        bootstrap = _bootstrapping(conn, me)
        raise_if(
            confirm_admin_refusals(me, person, bootstrap=bootstrap),
            f"you cannot confirm {name}'s admin role",
            fix=f"ask a confirmed admin who did not give {name} the admin role to run: "
            f"tre admin confirm {name}",
        )
        data = person.model_dump()
        data.update(admin_confirmed_by=session.actor, admin_confirmed_at=utcnow())
        confirmed = validate(Person, data, f"the registration of {name!r}")
        repo.put_person(conn, confirmed)
        session.record(
            conn,
            "person.confirm_admin",
            f"person:{name}",
            Role.ADMIN,
            {"granted_by": person.admin_granted_by, "bootstrap": bootstrap},
        )
    return confirmed


def _bootstrapping(conn: sqlite3.Connection, me: Person | None) -> bool:
    """True while `me` is the only admin the home has ever confirmed: the second admin
    can then only be confirmed by the one who registered them."""
    if me is None or not me.confirmed_admin or repo.admin_confirmations_recorded(conn):
        return False
    return not any(p.admin_confirmed_by and p.name != me.name for p in repo.list_people(conn))


def _is_admin(person: Person) -> bool:
    return person.active and Role.ADMIN in person.roles


def _keep_an_admin(conn: sqlite3.Connection, before: Person, after: Person) -> None:
    """Refuse a change that would leave the TRE with no active admin: nobody could then
    register people, approve projects or ingest data (tests/tre/service/test_registry)."""
    if not _is_admin(before) or _is_admin(after):
        return
    others = [p for p in repo.list_people(conn) if p.name != before.name and _is_admin(p)]
    if not others:
        raise StateError(
            f"{before.name} is the only active admin; this change would leave the TRE with none",
            fix="register (or reactivate) another admin first, then make this change",
        )


def list_people(session: Session) -> list[Person]:
    """Everyone registered (admins and checkers; researchers see only themselves)."""
    me = session.person()
    people = repo.list_people(session.conn)
    if me is not None and ({Role.ADMIN, Role.CHECKER} & set(me.roles)):
        return people
    return [p for p in people if p.name == session.actor]
