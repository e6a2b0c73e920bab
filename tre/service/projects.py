"""Project requests, approvals and the project lifecycle."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from policies.access import (
    approve_project_refusals,
    project_request_refusals,
    raise_if,
    role_refusals,
)
from tre import audit, yamlfile
from tre.errors import InputError, PermissionDenied
from tre.models import Project, ProjectState, Role, utcnow
from tre.service.grants import revoke_project_grants
from tre.service.session import Session
from tre.service.state import set_project_state
from tre.service.validation import validate
from tre.store import repo

REQUEST_FIELDS = {
    "name",
    "title",
    "purpose",
    "lead",
    "members",
    "datasets",
    "quota",
    "expires",
    "slurm",
}


def read_request(path: Path) -> dict[str, Any]:
    """A project request file (YAML) as the mapping `request_project` takes; InputError
    if it cannot be read or is not a mapping. Its fields are checked there."""
    try:
        data = yamlfile.load(path.read_bytes(), str(path))
    except yamlfile.YamlError as exc:
        raise InputError(str(exc), fix="correct the file at the place shown") from None
    except OSError as exc:
        raise InputError(
            f"cannot read the project request {path}: {exc.strerror}", fix="check the path"
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path} must hold a mapping of field: value", fix="see jobs/examples/project.yaml"
        )
    return data


def request_project(session: Session, data: dict[str, Any]) -> Project:
    """Record a project request (by a researcher or an admin), to be approved by an admin."""
    if isinstance(data, dict):
        unknown = sorted(set(data) - REQUEST_FIELDS)
        if unknown:
            raise InputError(
                f"unknown field(s) in the project request: {', '.join(unknown)}",
                fix=f"a request has: {', '.join(sorted(REQUEST_FIELDS))}",
            )
    project = validate(
        Project,
        {**data, "requested_by": session.actor, "state": ProjectState.REQUESTED},
        "the project request",
        fix="see docs/projects.md for an example",
    )
    conn = session.conn
    people = {p.name: p for p in repo.list_people(conn)}
    catalog = {d.name: d for d in repo.list_datasets(conn)}
    raise_if(
        project_request_refusals(session.person(), project, people, catalog, session.today()),
        f"project {project.name!r} cannot be requested",
        fix="correct the request and submit it again",
    )
    with session.write() as conn:
        if repo.find_project(conn, project.name) is not None:
            raise InputError(
                f"a project called {project.name!r} already exists", fix="choose another name"
            )
        repo.put_project(conn, project)
        session.record(
            conn,
            "project.request",
            f"project:{project.name}",
            _role(session),
            {
                "lead": project.lead,
                "members": project.members,
                "expires": str(project.expires),
                "datasets": {d.dataset: d.columns for d in project.datasets},
            },
        )
    return project


def approve_project(session: Session, name: str, *, expires: date | None = None) -> Project:
    """Approve a requested project, or renew an expired or suspended one (admin only).

    The approving admin must be neither the project's requester nor its lead.
    """
    project = repo.get_project(session.conn, name)
    if expires is not None:
        project = project.model_copy(update={"expires": expires})
    raise_if(
        approve_project_refusals(session.person(), project, session.today()),
        f"you cannot approve project {name!r}",
        fix="ask another admin, who did not request the project, to approve it",
    )
    with session.write() as conn:
        return set_project_state(
            conn,
            project,
            ProjectState.APPROVED,
            actor=session.actor,
            role="admin",
            approved_by=session.actor,
            approved_at=utcnow(),
            expires=project.expires,
        )


def change_project_state(session: Session, name: str, new: ProjectState, reason: str) -> Project:
    """Reject, suspend, expire or close a project (admin only), with a reason."""
    raise_if(
        role_refusals(session.person(), Role.ADMIN, f"making a project {new.value}"),
        f"you cannot make project {name!r} {new.value}",
    )
    if not reason.strip():
        raise InputError("a reason is required", fix="add --reason '...'")
    with session.write() as conn:
        project = repo.get_project(conn, name)
        changed = set_project_state(
            conn, project, new, actor=session.actor, role="admin", reason=reason
        )
        # Its running jobs fail at their next read: their key grants are revoked with it.
        revoke_project_grants(
            session,
            conn,
            name,
            f"project {name!r} was {new.value} by {session.actor}: {reason}",
            actor=session.actor,
        )
        return changed


def expire_due_projects(session: Session) -> list[str]:
    """Mark approved projects past their expiry date as expired (the dispatcher calls this)."""
    expired = []
    with session.write() as conn:
        for project in repo.list_projects(conn):
            if project.state is ProjectState.APPROVED and project.expires < session.today():
                set_project_state(
                    conn,
                    project,
                    ProjectState.EXPIRED,
                    actor="tre",
                    role="system",
                    reason=f"expiry date {project.expires} passed",
                )
                revoke_project_grants(
                    session,
                    conn,
                    project.name,
                    f"project {project.name!r} expired on {project.expires}",
                    actor="tre",
                )
                expired.append(project.name)
    return expired


def list_projects(session: Session) -> list[Project]:
    """Admins and checkers see every project; others see those they lead or belong to."""
    me = session.person()
    projects = repo.list_projects(session.conn)
    if me is not None and ({Role.ADMIN, Role.CHECKER} & set(me.roles)):
        return projects
    return [p for p in projects if session.actor in p.members or session.actor == p.requested_by]


def show_project(session: Session, name: str) -> Project:
    project = repo.get_project(session.conn, name)
    if project not in list_projects(session):
        raise PermissionDenied(f"you are not a member of project {name!r}")
    return project


def _role(session: Session) -> str:
    me = session.person()
    return "researcher" if me is not None and Role.RESEARCHER in me.roles else "admin"


def state_reason(session: Session, project: Project) -> str:
    """The reason given when `project` was last put in its present state (an admin's
    words for a suspension or a closure; tre's for an expiry), or ''."""
    for event in reversed(audit.events(session.conn, obj=f"project:{project.name}")):
        if event.action == f"project.{project.state.value}":
            return str(event.details.get("reason") or "")
    return ""


#: What may leave a project in each state (docs/projects.md, "When a project stops").
#: Releasing outputs needs an approved project: while its data-sharing agreement is
#: under review (suspended), or once it is closed, nothing is released. Fetching what
#: was released needs it approved or expired: expiry ends new work, not access to
#: outputs that passed every check while the approval held.
RELEASES = frozenset({ProjectState.APPROVED})
FETCHES = frozenset({ProjectState.APPROVED, ProjectState.EXPIRED})


def stopped_refusal(session: Session, project: Project, action: str) -> PermissionDenied:
    """The refusal of `action` for a project in a state that allows it not."""
    why = state_reason(session, project)
    return PermissionDenied(
        f"{action}: project {project.name!r} is {project.state.value}"
        + (f" ({why})" if why else ""),
        fix=_STOPPED_FIX.get(project.state, "see docs/projects.md").format(name=project.name),
    )


_STOPPED_FIX = {
    ProjectState.SUSPENDED: "nothing leaves a suspended project; an admin reinstates it once "
    "its review ends ('tre project approve {name}'); the checkers' votes are kept",
    ProjectState.EXPIRED: "an admin renews it ('tre project approve {name} --expires DATE'); "
    "the checkers' votes are kept",
    ProjectState.CLOSED: "nothing leaves a closed project (docs/projects.md)",
}
