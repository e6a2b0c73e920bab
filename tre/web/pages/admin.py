"""The admins' pages: people, projects and their approvals, datasets, and the audit log
with its verification."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from policies.access import raise_if, role_refusals
from tre import audit
from tre.models import Role
from tre.service import datasets, people, projects, tokens
from tre.service.session import Session
from tre.web.auth import PageAuth
from tre.web.render import render
from tre.web.routes import Routes

router = Routes(include_in_schema=False)
AUDIT_EVENTS_SHOWN = 200


def _admin_only(s: Session, what: str) -> None:
    raise_if(role_refusals(s.person(), Role.ADMIN, what), f"you cannot see {what}")


@router.get("/admin")
def admin_page(request: Request, auth: PageAuth) -> Response:
    """People (with their tokens), projects and their approvals, and the datasets."""
    with auth.session() as s:
        _admin_only(s, "the admin pages")
        issued: dict[str, list[dict[str, Any]]] = {}
        for t in tokens.list_tokens(s):
            issued.setdefault(t.person, []).append(
                {"id": t.id, "state": tokens.token_state(t), "expires_at": t.expires_at}
            )
        context: dict[str, Any] = {
            "me": s.person(),
            "people": people.list_people(s),
            "projects": projects.list_projects(s),
            "datasets": datasets.list_datasets(s),
            "tokens": issued,
            "today": s.today(),
        }
    return render(request, "admin.html", title="Administration", csrf=auth.csrf, **context)


@router.get("/admin/audit")
def audit_page(request: Request, auth: PageAuth, object: str = "") -> Response:
    """The newest audit events, and whether the whole log verifies."""
    with auth.session() as s:
        _admin_only(s, "the audit log")
        events = audit.events(s.conn, obj=object or None, limit=AUDIT_EVENTS_SHOWN)
        verification = audit.verify(s.conn, s.home.audit_head)
        me = s.person()
    return render(
        request,
        "audit.html",
        title="Audit log",
        me=me,
        csrf=auth.csrf,
        events=list(reversed(events)),
        verification=verification,
        obj=object,
    )
