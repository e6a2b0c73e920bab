"""Registering people and their roles (admins only), and the first admin of a home."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from policies.access import raise_if, role_refusals
from slurm.backend import BACKENDS
from slurm.profiles import load_profile
from tre import audit
from tre.errors import InputError, StateError
from tre.home import Home
from tre.models import Person, Role
from tre.service.session import Session
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
        {"name": admin, "full_name": full_name, "roles": [Role.ADMIN], "registered_by": admin},
        "the first admin",
    )
    home = Home.create(
        root, created_by=admin, demo=demo, backend=backend, slurm_profile=slurm_profile
    )
    db = Database.create(home.db_path, home.audit_head)
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
                details={"roles": ["admin"]},
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
    """Register someone new with their roles (admin only)."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, "registering people"),
        "you cannot register people",
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
        data = person.model_dump()
        if roles is not None:
            data["roles"] = roles
        if accredited_until is not None:
            data["accreditation_expires"] = accredited_until
        if active is not None:
            data["active"] = active
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
