"""Why a job may not be submitted, or may no longer run: a code per kind of refusal, for
tools, tests and the fix a person is shown; the words for people are the refusal's text.

As `tre.outcomes` does for a job's state changes (and OpenSAFELY's job-runner for its
failures): a code does not change when the wording does, so the fix is found by the
code, never by matching text. `policies.access.submit_refusals` and
`jobs.catalog_checks` make refusals; `tre.service.jobs.refusal_fix` words the fix from
`FIXES`. The table is listed in docs/states.md (generated: `python -m tre.docs`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from tre.models import ProjectState


class RefusalCode(StrEnum):
    # the person
    NOT_REGISTERED = "not_registered"
    DEACTIVATED = "deactivated"
    LACKS_ROLE = "lacks_role"
    NO_ACCREDITATION = "no_accreditation"
    ACCREDITATION_EXPIRED = "accreditation_expired"
    NOT_A_MEMBER = "not_a_member"
    # the project
    PROJECT_REQUESTED = "project_requested"
    PROJECT_REJECTED = "project_rejected"
    PROJECT_SUSPENDED = "project_suspended"
    PROJECT_CLOSED = "project_closed"
    PROJECT_EXPIRED = "project_expired"
    # the job spec, against the project's approval and the catalog
    UNKNOWN_DATASET = "unknown_dataset"
    UNKNOWN_COLUMN = "unknown_column"
    DATASET_NOT_APPROVED = "dataset_not_approved"
    COLUMN_NOT_APPROVED = "column_not_approved"
    OVER_QUOTA = "over_quota"
    FILTER_TYPE = "filter_type"
    NOT_NUMERIC = "not_numeric"
    IDENTIFIER_KEY = "identifier_key"


@dataclass(frozen=True)
class Refusal:
    """One reason a job is refused: its code, and the words a person reads."""

    code: RefusalCode
    text: str

    def __str__(self) -> str:
        return self.text


def texts(refusals: Iterable[Refusal]) -> list[str]:
    """The words of each refusal, in order (what PermissionDenied and job reasons carry)."""
    return [r.text for r in refusals]


#: The code of a project's state when it is not approved (approved refuses nothing).
PROJECT_STATE_CODES: dict[ProjectState, RefusalCode] = {
    ProjectState.REQUESTED: RefusalCode.PROJECT_REQUESTED,
    ProjectState.REJECTED: RefusalCode.PROJECT_REJECTED,
    ProjectState.SUSPENDED: RefusalCode.PROJECT_SUSPENDED,
    ProjectState.CLOSED: RefusalCode.PROJECT_CLOSED,
    ProjectState.EXPIRED: RefusalCode.PROJECT_EXPIRED,
}


#: What each code means, and whose it is to act on (the generated table of docs/states.md).
MEANINGS: dict[RefusalCode, str] = {
    RefusalCode.NOT_REGISTERED: "the submitter is not registered with this TRE",
    RefusalCode.DEACTIVATED: "the submitter's registration is deactivated",
    RefusalCode.LACKS_ROLE: "the submitter does not hold the researcher role",
    RefusalCode.NO_ACCREDITATION: "the submitter has no researcher accreditation on record",
    RefusalCode.ACCREDITATION_EXPIRED: "the submitter's accreditation has expired",
    RefusalCode.NOT_A_MEMBER: "the submitter is not a member of the job's project",
    RefusalCode.PROJECT_REQUESTED: "the project is requested and not yet approved",
    RefusalCode.PROJECT_REJECTED: "the project was rejected",
    RefusalCode.PROJECT_SUSPENDED: "the TRE's admins suspended the project (with their reason)",
    RefusalCode.PROJECT_CLOSED: "the TRE's admins closed the project (with their reason)",
    RefusalCode.PROJECT_EXPIRED: "the project's expiry date has passed",
    RefusalCode.UNKNOWN_DATASET: "the job names a dataset that is not in the catalog",
    RefusalCode.UNKNOWN_COLUMN: "the job names a column its dataset does not have",
    RefusalCode.DATASET_NOT_APPROVED: "the project is not approved to use a dataset the job names",
    RefusalCode.COLUMN_NOT_APPROVED: "the project is not approved to use a column the job names",
    RefusalCode.OVER_QUOTA: "the job asks for more resources (workers, cores, memory, "
    "walltime) than the project's quota",
    RefusalCode.FILTER_TYPE: "a filter compares a column with a value of another type",
    RefusalCode.NOT_NUMERIC: "a step needs a numeric column (a statistic's value, a "
    "regression's outcome or predictor) and names one that is not",
    RefusalCode.IDENTIFIER_KEY: "a table step is keyed by a column the catalog marks "
    "identifier (such as resident_id), or summarises one: it would publish one row per "
    "person",
}


#: The hints a person is shown, in the order they are shown, each with the codes it
#: answers; {submitter} and {project} are the refused job's.
FIXES: tuple[tuple[str, frozenset[RefusalCode]], ...] = tuple(
    (hint, frozenset(codes))
    for hint, codes in (
        # A project's own state, not the spec, is why: no change to the job would help.
        (
            "nothing runs while the project is suspended; the TRE's admins reinstate it "
            "when their review ends, and the job can be submitted again then",
            {RefusalCode.PROJECT_SUSPENDED},
        ),
        (
            "the project is closed: request a new project for new work",
            {RefusalCode.PROJECT_CLOSED},
        ),
        (
            "wait until an admin approves the project, then submit again",
            {RefusalCode.PROJECT_REQUESTED},
        ),
        (
            "the project was rejected: request a new project",
            {RefusalCode.PROJECT_REJECTED},
        ),
        (
            "ask an admin to register you with this TRE ('tre admin register')",
            {RefusalCode.NOT_REGISTERED},
        ),
        (
            "ask an admin to reactivate your registration "
            "(tre admin update {submitter} --activate)",
            {RefusalCode.DEACTIVATED},
        ),
        ("ask an admin to give you the researcher role", {RefusalCode.LACKS_ROLE}),
        (
            "ask an admin to renew your accreditation "
            "(tre admin update {submitter} --accredited-until YYYY-MM-DD)",
            {RefusalCode.NO_ACCREDITATION, RefusalCode.ACCREDITATION_EXPIRED},
        ),
        (
            "ask the project's lead to have you added as a member of {project}",
            {RefusalCode.NOT_A_MEMBER},
        ),
        (
            "ask an admin to renew the project "
            "(tre project approve {project} --expires YYYY-MM-DD)",
            {RefusalCode.PROJECT_EXPIRED},
        ),
        (
            "change the job spec to use only what {project} is approved for, or ask "
            "an admin to amend the project",
            {RefusalCode.DATASET_NOT_APPROVED, RefusalCode.COLUMN_NOT_APPROVED},
        ),
        (
            "declare only columns the dataset has and the project is approved for "
            "('tre project show {project}' lists them)",
            {RefusalCode.UNKNOWN_COLUMN, RefusalCode.COLUMN_NOT_APPROVED},
        ),
        (
            "use a dataset from the catalog ('tre dataset list')",
            {RefusalCode.UNKNOWN_DATASET},
        ),
        (
            "ask for less (resources: in the job spec) or ask an admin to raise the quota",
            {RefusalCode.OVER_QUOTA},
        ),
        ("correct the filter values to the column's type", {RefusalCode.FILTER_TYPE}),
        (
            "use numeric columns, or list text predictors under categorical",
            {RefusalCode.NOT_NUMERIC},
        ),
        (
            "key tables by attributes or quasi-identifiers (an age band, a ward), and pass "
            "an identifier column as unit: to count each person once",
            {RefusalCode.IDENTIFIER_KEY},
        ),
    )
)

#: The fix when no refusal has a hint of its own (none today: every code has one).
DEFAULT_FIX = "correct the job spec and submit again"


def hints(codes: Iterable[RefusalCode], *, submitter: str, project: str) -> list[str]:
    """The hints for these codes: one per kind, in the order of `FIXES`."""
    present = set(codes)
    return [
        hint.format(submitter=submitter, project=project)
        for hint, answers in FIXES
        if answers & present
    ]


def table() -> str:
    """The codes as a Markdown table (docs/states.md)."""
    rows = ["| code | meaning | fix |", "|---|---|---|"]
    for code in RefusalCode:
        fix = "; ".join(hints([code], submitter="NAME", project="PROJECT"))
        rows.append(f"| `{code.value}` | {MEANINGS[code]} | {fix} |")
    return "\n".join(rows) + "\n"
