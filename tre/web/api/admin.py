"""/api changes to projects and people: requesting a project, the admins' approvals and
state changes, registering people and changing their registrations.

Each endpoint calls the service function `tre project ...` or `tre admin ...` calls, so
who may do what (admins only; never approving a project one requested or leads, nor
before a second admin confirmed one's admin role) is decided there, by
`policies.access`, and every change lands in the audit log. Tokens,
dataset ingest and keys are not here: they need the TRE host's files or issue
credentials, so they stay with the CLI on the host.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Body as BodyParam

from tre.errors import InputError, NotFound, PermissionDenied, StateError
from tre.models import Project
from tre.service import people, projects
from tre.web.auth import ApiAuth
from tre.web.routes import Routes
from tre.web.schemas import (
    ApproveBody,
    PersonOut,
    PersonPath,
    PersonUpdateBody,
    ProjectName,
    ProjectRequestBody,
    ProjectStateBody,
    RegisterBody,
)

router = Routes(prefix="/api", tags=["people, projects, datasets, audit"])
#: Every change here is checked by the service: a bad value, an unknown name, a policy
#: refusal, or a change the object's state does not allow.
CHANGE = (InputError, NotFound, PermissionDenied, StateError)


@router.post("/projects", status_code=201, errors=CHANGE)
def request_project(body: ProjectRequestBody, auth: ApiAuth) -> Project:
    """Request a project (researchers, admins); an admin other than you approves it."""
    with auth.session(writes=True) as s:
        return projects.request_project(s, body.request())


@router.post("/projects/{name}/approve", errors=CHANGE)
def approve_project(
    name: ProjectName, auth: ApiAuth, body: Annotated[ApproveBody | None, BodyParam()] = None
) -> Project:
    """Approve a requested project, or renew an expired or suspended one (admins who
    neither requested nor lead it)."""
    expires = body.expires if body is not None else None
    with auth.session(writes=True) as s:
        return projects.approve_project(s, name, expires=expires)


@router.post("/projects/{name}/state", errors=CHANGE)
def change_project_state(name: ProjectName, body: ProjectStateBody, auth: ApiAuth) -> Project:
    """Suspend, close or reject a project, with a reason (admins). Its running jobs
    fail at their next read: their key grants are revoked with it."""
    with auth.session(writes=True) as s:
        return projects.change_project_state(s, name, body.new_state(), body.reason)


@router.post("/people", status_code=201, errors=CHANGE)
def register_person(body: RegisterBody, auth: ApiAuth) -> PersonOut:
    """Register someone new with their roles (admins)."""
    with auth.session(writes=True) as s:
        person = people.register_person(
            s,
            name=body.name,
            full_name=body.full_name,
            email=body.email,
            roles=[r.value for r in body.roles],
            accredited_until=body.accredited_until,
        )
    return PersonOut.of(person)


@router.patch("/people/{name}", errors=CHANGE)
def update_person(name: PersonPath, body: PersonUpdateBody, auth: ApiAuth) -> PersonOut:
    """Change someone's roles, accreditation or whether they may act (admins)."""
    roles = [r.value for r in body.roles] if body.roles is not None else None
    with auth.session(writes=True) as s:
        person = people.update_person(
            s, name, roles=roles, accredited_until=body.accredited_until, active=body.active
        )
    return PersonOut.of(person)


@router.post("/people/{name}/confirm-admin", errors=CHANGE)
def confirm_admin(name: PersonPath, auth: ApiAuth) -> PersonOut:
    """Confirm someone's admin role (a confirmed admin other than the one who gave it);
    until then they approve nothing."""
    with auth.session(writes=True) as s:
        person = people.confirm_admin(s, name)
    return PersonOut.of(person)
