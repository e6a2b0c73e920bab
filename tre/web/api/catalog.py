"""/api/whoami, people, projects, datasets and (admins) the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from policies.access import raise_if, role_refusals
from tre import audit
from tre.errors import InputError, NotFound, PermissionDenied
from tre.models import Project, Role
from tre.service import datasets, people, projects
from tre.web.auth import ApiAuth
from tre.web.routes import Routes
from tre.web.schemas import AuditEventOut, DatasetOut, PersonOut, ProjectName, VerificationOut

router = Routes(prefix="/api", tags=["people, projects, datasets, audit"])


@router.get("/whoami")
def whoami(auth: ApiAuth) -> PersonOut:
    """The person your token belongs to, and their roles."""
    with auth.session() as s:
        me = s.person()
    if me is None:  # pragma: no cover - authentication already checked the registration
        raise PermissionDenied("you are not registered with this TRE")
    return PersonOut.of(me)


@router.get("/people")
def list_people(auth: ApiAuth) -> list[PersonOut]:
    """Registered people (admins and checkers see everyone; researchers themselves)."""
    with auth.session() as s:
        return [PersonOut.of(p) for p in people.list_people(s)]


@router.get("/projects")
def list_projects(auth: ApiAuth) -> list[Project]:
    """Projects you may see: all (admins, checkers) or those you belong to."""
    with auth.session() as s:
        return projects.list_projects(s)


@router.get("/projects/{name}", errors=(InputError, NotFound, PermissionDenied))
def show_project(name: ProjectName, auth: ApiAuth) -> Project:
    """One project: purpose, members, approved datasets and columns, quota, approval."""
    with auth.session() as s:
        return projects.show_project(s, name)


@router.get("/datasets")
def list_datasets(auth: ApiAuth) -> list[DatasetOut]:
    """The catalog: names, versions and columns (never data)."""
    with auth.session() as s:
        return [DatasetOut.of(d) for d in datasets.list_datasets(s)]


@router.get("/audit", errors=(PermissionDenied,))
def audit_log(
    auth: ApiAuth,
    last: Annotated[int, Query(ge=1, le=10_000)] = 100,
    obj: Annotated[str | None, Query(alias="object", description="e.g. job:3")] = None,
) -> list[AuditEventOut]:
    """The newest audit events (admins)."""
    with auth.session() as s:
        raise_if(
            role_refusals(s.person(), Role.ADMIN, "reading the audit log"),
            "you cannot read the audit log",
        )
        events = audit.events(s.conn, obj=obj, limit=last)
    return [
        AuditEventOut(
            seq=e.seq,
            at=e.at,
            actor=e.actor,
            role=e.role,
            action=e.action,
            object=e.object,
            details=e.details,
            hash=e.hash,
        )
        for e in events
    ]


@router.get("/audit/verify", errors=(PermissionDenied,))
def audit_verify(auth: ApiAuth) -> VerificationOut:
    """Check every event's hash, the chain and the anchor (admins)."""
    with auth.session() as s:
        raise_if(
            role_refusals(s.person(), Role.ADMIN, "verifying the audit log"),
            "you cannot verify the audit log",
        )
        result = audit.verify(s.conn, s.home.audit_head)
    return VerificationOut(
        ok=result.ok, events=result.events, problems=result.problems, notes=result.notes
    )
