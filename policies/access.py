"""Who may do what. Each function returns every reason for refusing, or [] to allow.

A job's refusals (`submit_refusals`) carry a code each (`policies.refusals`), so the fix a
person is shown is found by code; the others are the words alone.

These look only at people, projects, jobs and the catalog; "what a state allows" is the
state table's business (`tre.states`), not this module's.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from datetime import date

from policies.refusals import PROJECT_STATE_CODES, Refusal, RefusalCode, texts
from tre.errors import PermissionDenied
from tre.models import Dataset, Job, Person, Project, ProjectState, Resources, Role


def role_refusals(person: Person | None, role: Role, action: str) -> list[str]:
    """Reasons `person` may not act in `role` (unknown, inactive, or lacking the role)."""
    return texts(_role_refusals(person, role, action))


def _role_refusals(person: Person | None, role: Role, action: str) -> list[Refusal]:
    if person is None:
        return [
            Refusal(
                RefusalCode.NOT_REGISTERED,
                f"you are not registered with this TRE, and {action} needs a registered person",
            )
        ]
    reasons = []
    if not person.active:
        reasons.append(
            Refusal(RefusalCode.DEACTIVATED, f"{person.name}'s registration is deactivated")
        )
    if role not in person.roles:
        held = ", ".join(r.value for r in person.roles)
        reasons.append(
            Refusal(
                RefusalCode.LACKS_ROLE,
                f"{action} needs the {role.value} role; {person.name} holds: {held}",
            )
        )
    return reasons


def confirmed_admin_refusals(person: Person | None, action: str) -> list[str]:
    """Reasons `person` may not act as a confirmed admin: approving, confirming other
    admins and giving the admin role need an admin role that a second admin confirmed."""
    reasons = role_refusals(person, Role.ADMIN, action)
    if person is not None and Role.ADMIN in person.roles and not person.confirmed_admin:
        by = person.admin_granted_by or "another admin"
        reasons.append(
            f"{action} needs a confirmed admin: {person.name}'s admin role, given by {by}, "
            f"has not been confirmed (a confirmed admin other than {by} runs "
            f"'tre admin confirm {person.name}')"
        )
    return reasons


def confirm_admin_refusals(
    confirmer: Person | None, person: Person, *, bootstrap: bool = False
) -> list[str]:
    """Every reason `confirmer` may not confirm `person`'s admin role. `bootstrap` is
    true while the home has never had a second confirmed admin: its only one may then
    confirm an admin it registered (no one else could)."""
    reasons = confirmed_admin_refusals(confirmer, "confirming an admin")
    if Role.ADMIN not in person.roles:
        reasons.append(f"{person.name} does not hold the admin role")
    elif person.confirmed_admin:
        reasons.append(f"{person.name}'s admin role is already confirmed")
    if not person.active:
        reasons.append(f"{person.name}'s registration is deactivated")
    if confirmer is not None:
        if confirmer.name == person.name:
            reasons.append("an admin may not confirm their own admin role")
        elif confirmer.name == person.admin_granted_by and not bootstrap:
            reasons.append(
                f"you gave {person.name} the admin role, so another confirmed admin must confirm it"
            )
    return reasons


def accreditation_refusals(person: Person, today: date) -> list[Refusal]:
    if person.accreditation_expires is None:
        return [
            Refusal(
                RefusalCode.NO_ACCREDITATION,
                f"{person.name} has no researcher accreditation on record",
            )
        ]
    if today > person.accreditation_expires:
        return [
            Refusal(
                RefusalCode.ACCREDITATION_EXPIRED,
                f"{person.name}'s accreditation expired on {person.accreditation_expires}",
            )
        ]
    return []


def dataset_column_refusals(
    project: Project | None,
    wanted: Mapping[str, Collection[str]],
    catalog: Mapping[str, Dataset],
) -> list[Refusal]:
    """Every dataset or column in `wanted` that is unknown or not approved for `project`.

    With `project=None` only existence in the catalog is checked (a project request).
    """
    reasons = []
    for name, columns in wanted.items():
        dataset = catalog.get(name)
        if dataset is None:
            known = ", ".join(sorted(catalog)) or "none yet"
            reasons.append(
                Refusal(
                    RefusalCode.UNKNOWN_DATASET,
                    f"dataset {name!r} is not in the catalog (datasets: {known})",
                )
            )
            continue
        unknown = sorted(set(columns) - set(dataset.column_names))
        granted = project.granted_columns(name) if project is not None else None
        if unknown:
            reasons.append(
                Refusal(
                    RefusalCode.UNKNOWN_COLUMN,
                    _unknown_columns(name, unknown, dataset.column_names, project, granted),
                )
            )
        if project is None:
            continue
        if granted is None:
            reasons.append(
                Refusal(
                    RefusalCode.DATASET_NOT_APPROVED,
                    f"project {project.name!r} is not approved to use dataset {name!r}",
                )
            )
            continue
        refused = sorted(set(columns) - set(granted) - set(unknown))
        if refused:
            reasons.append(
                Refusal(
                    RefusalCode.COLUMN_NOT_APPROVED,
                    f"column(s) {', '.join(refused)} of {name!r} are not approved for project "
                    f"{project.name!r} (approved: {', '.join(granted)})",
                )
            )
    return reasons


def _unknown_columns(
    dataset: str,
    unknown: list[str],
    columns: list[str],
    project: Project | None,
    granted: Collection[str] | None,
) -> str:
    """Columns a dataset does not have, each with the closest one the person may use. A
    job is shown only what its project is approved for (a typo is answered with the
    columns it could have meant, not with every column the dataset holds); a project
    request, or a dataset the project may not use, with the dataset's columns."""
    offered = list(granted) if granted is not None else list(columns)
    named = []
    for column in unknown:
        close = difflib.get_close_matches(column, offered, n=1, cutoff=0.6)
        named.append(f"{column} (did you mean {close[0]}?)" if close else column)
    if granted is not None and project is not None:
        scope = f"project {project.name!r} is approved for: {', '.join(offered)}"
    else:
        scope = f"its columns: {', '.join(offered)}"
    return f"dataset {dataset!r} has no column(s) {', '.join(named)} ({scope})"


def project_usable_refusals(project: Project, today: date) -> list[Refusal]:
    """Reasons jobs may not run under `project` today."""
    if project.state is not ProjectState.APPROVED:
        return [
            Refusal(
                PROJECT_STATE_CODES[project.state],
                f"project {project.name!r} is {project.state.value}, not approved",
            )
        ]
    if today > project.expires:
        return [
            Refusal(
                RefusalCode.PROJECT_EXPIRED,
                f"project {project.name!r} expired on {project.expires}",
            )
        ]
    return []


def submit_refusals(
    person: Person | None,
    project: Project,
    wanted: Mapping[str, Collection[str]],
    resources: Resources,
    catalog: Mapping[str, Dataset],
    today: date,
) -> list[Refusal]:
    """Every reason `person` may not submit this job to `project`, each with its code."""
    reasons = _role_refusals(person, Role.RESEARCHER, "submitting a job")
    if person is not None and Role.RESEARCHER in person.roles:
        reasons += accreditation_refusals(person, today)
    reasons += project_usable_refusals(project, today)
    if person is not None and person.name not in project.members:
        reasons.append(
            Refusal(
                RefusalCode.NOT_A_MEMBER,
                f"{person.name} is not a member of project {project.name!r}",
            )
        )
    reasons += dataset_column_refusals(project, wanted, catalog)
    reasons += [
        Refusal(RefusalCode.OVER_QUOTA, excess) for excess in resources.excess_over(project.quota)
    ]
    return reasons


def check_can_submit(
    person: Person | None,
    project: Project,
    wanted: Mapping[str, Collection[str]],
    resources: Resources,
    catalog: Mapping[str, Dataset],
    today: date,
) -> None:
    reasons = texts(submit_refusals(person, project, wanted, resources, catalog, today))
    if reasons:
        raise PermissionDenied(
            "this job cannot be submitted",
            reasons=reasons,
            fix="change the job spec to stay within the project's approval, or ask an admin "
            "to amend the project",
        )


def project_request_refusals(
    requester: Person | None,
    project: Project,
    people: Mapping[str, Person],
    catalog: Mapping[str, Dataset],
    today: date,
) -> list[str]:
    reasons = []
    if requester is None:
        reasons.append("you are not registered with this TRE, so you cannot request a project")
    elif not ({Role.RESEARCHER, Role.ADMIN} & set(requester.roles)):
        reasons.append("requesting a project needs the researcher or admin role")
    for member in project.members:
        person = people.get(member)
        if person is None:
            reasons.append(f"member {member!r} is not registered with this TRE")
        elif Role.RESEARCHER not in person.roles:
            reasons.append(f"member {member!r} does not hold the researcher role")
    if project.expires <= today:
        reasons.append(f"the expiry date {project.expires} is not in the future")
    wanted = {d.dataset: d.columns for d in project.datasets}
    reasons += texts(dataset_column_refusals(None, wanted, catalog))
    return reasons


def approve_project_refusals(approver: Person | None, project: Project, today: date) -> list[str]:
    """Every reason `approver` may not approve `project`: only a confirmed admin who did
    not request or lead it, and who was not made an admin by whoever did."""
    reasons = confirmed_admin_refusals(approver, "approving a project")
    if approver is not None:
        if approver.name == project.requested_by:
            reasons.append("an admin may not approve a project they requested themselves")
        if approver.name == project.lead:
            reasons.append("an admin may not approve a project they lead")
        maker = approver.admin_granted_by
        if maker and maker != approver.name and maker in (project.requested_by, project.lead):
            did = "requested" if maker == project.requested_by else "leads"
            reasons.append(
                f"{maker} {did} the project and gave {approver.name} the admin role; an "
                "admin may not approve a project of the admin who made them one"
            )
    if project.expires < today:
        reasons.append(f"the project's expiry date {project.expires} has passed; set a new one")
    return reasons


def review_refusals(checker: Person | None, job: Job) -> list[str]:
    """Reasons `checker` may not review (or release) the outputs of `job`."""
    reasons = role_refusals(checker, Role.CHECKER, "reviewing outputs")
    if checker is not None and checker.name == job.submitter:
        reasons.append("an output checker may not review the outputs of a job they submitted")
    return reasons


def view_job_refusals(person: Person | None, job: Job, project: Project | None) -> list[str]:
    """Admins and checkers see every job; a researcher sees their projects' jobs."""
    if person is None:
        return ["you are not registered with this TRE"]
    if {Role.ADMIN, Role.CHECKER} & set(person.roles):
        return []
    if person.name == job.submitter or (project is not None and person.name in project.members):
        return []
    return [f"job {job.id} belongs to project {job.project!r}, of which you are not a member"]


def cancel_job_refusals(person: Person | None, job: Job) -> list[str]:
    if person is None:
        return ["you are not registered with this TRE"]
    if person.name == job.submitter or Role.ADMIN in person.roles:
        return []
    return [f"only the job's submitter ({job.submitter}) or an admin may cancel job {job.id}"]


def raise_if(reasons: list[str], message: str, fix: str | None = None) -> None:
    """Raise PermissionDenied with every reason if there are any."""
    if reasons:
        raise PermissionDenied(message, reasons=reasons, fix=fix)
