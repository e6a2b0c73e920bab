"""The API's request and response bodies.

Requests forbid unknown fields, so a misspelt field is a 422 naming it rather than
silently ignored. Responses are built from the service layer's models and leave out
what a client has no use for (a running job's backend handle, dataset file lists).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
)

from tre.errors import TreError
from tre.models import Dataset, Decision, Job, OutputRecord, Person, ProjectState, Review, Role

# -- path parameters -----------------------------------------------------------------

#: A job's number in a path. Any whole number is taken: one that names no job (0, or one
#: past what the store can hold) is a 404, as `tre job show` says "no such job" for it.
JobId = Annotated[int, Path(description="A job's number.", examples=[1])]
#: A project's name in a path (one that names no project is a 404).
ProjectName = Annotated[str, Path(description="A project's name.", examples=["lcr-health-fire"])]
#: A registered person's name in a path (one that names nobody is a 404).
PersonPath = Annotated[str, Path(description="A registered person's name.", examples=["rita"])]

# -- requests --------------------------------------------------------------------------

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date_as_written(value: Any) -> Any:
    # Pydantic would read 0 or "0" as 1 January 1970: a date is only ever YYYY-MM-DD.
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("write the date as YYYY-MM-DD, e.g. 2027-12-31")


#: A date in a request body: text, YYYY-MM-DD.
DateText = Annotated[date, BeforeValidator(_date_as_written)]


def _each_once(roles: list[Role]) -> list[Role]:
    twice = sorted({role.value for role in roles if roles.count(role) > 1})
    if twice:
        raise ValueError(f"each role may be listed once; listed twice: {', '.join(twice)}")
    return roles


#: A person's roles in a request body: at least one, each once (as `Person` keeps them).
Roles = Annotated[
    list[Role],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_each_once),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitBody(Body):
    """A job to submit: the spec (as `tre schema job` describes it) and, for each python
    step, its pickled function (base64), as `tre submit` prepares them."""

    spec: dict[str, Any] = Field(description="The job spec as JSON (the YAML file's content).")
    code: dict[str, str] = Field(
        default_factory=dict,
        description="Per python step name: the cloudpickled function, base64-encoded.",
    )


class VoteBody(Body):
    """An output checker's decision on some or all outputs of a request."""

    decision: Decision
    comment: str = Field(min_length=1, max_length=5000, description="Why (required).")
    outputs: list[str] | None = Field(
        default=None, min_length=1, description="Outputs to vote on (default: all of them)."
    )


class ProjectRequestBody(Body):
    """A project request: the mapping of `jobs/examples/project.yaml`, as JSON.

    The fields' values are only shaped here; the service checks them with the same code
    as `tre project request` (names, columns against the catalog, quota units, members).
    """

    name: str
    title: str
    purpose: str
    lead: str = Field(description="A registered researcher; a member of the project.")
    members: list[str] = Field(default_factory=list)
    datasets: list[dict[str, Any]] = Field(
        description='Each {"dataset": NAME, "columns": [COLUMN, ...]}.'
    )
    quota: dict[str, Any] = Field(
        default_factory=dict,
        description='The most a job may ask for, e.g. {"workers": 2, "memory": "2GiB"}.',
    )
    expires: DateText
    slurm: dict[str, Any] = Field(
        default_factory=dict, description="Slurm account, partition and qos (all optional)."
    )

    def request(self) -> dict[str, Any]:
        """The request as `tre.service.projects.request_project` takes it from YAML:
        only what the caller gave, so the service's own defaults apply."""
        return self.model_dump(exclude_unset=True)


class ApproveBody(Body):
    """Approving (or renewing) a project; the body may be left out."""

    expires: DateText | None = Field(default=None, description="A new expiry date (renewal).")


#: The states an admin may put a project in by hand (the CLI's reject, suspend, close).
AdminProjectState = Literal["suspended", "closed", "rejected"]


class ProjectStateBody(Body):
    """Suspending, closing or rejecting a project, and why (kept in the audit log)."""

    state: AdminProjectState
    reason: str = Field(max_length=5000, description="Why (required).")

    @field_validator("reason")
    @classmethod
    def _reason_given(cls, value: str) -> str:
        # The service refuses a blank reason too, but this says so before any lookup.
        if not value.strip():
            raise ValueError("a reason is required: say why the project changes state")
        return value

    def new_state(self) -> ProjectState:
        return ProjectState(self.state)


class RegisterBody(Body):
    """Registering someone new, as `tre admin register`."""

    name: str
    full_name: str
    roles: Roles
    email: str = ""
    accredited_until: DateText | None = Field(
        default=None, description="Researchers: the date their accreditation lapses."
    )


class PersonUpdateBody(Body):
    """Changing a registration, as `tre admin update`; what is left out stays as it is."""

    roles: Roles | None = Field(default=None, description="Replaces the roles.")
    accredited_until: DateText | None = None
    # Strict: `"active": 0` is not a yes or no, and would stop someone acting.
    active: StrictBool | None = Field(
        default=None, description="false: stop them acting at all (their tokens stop working)."
    )


# -- responses -------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    """A refusal as a person reads it: the same TreError the CLI prints."""

    kind: str = Field(description="The error's class, e.g. PermissionDenied or NotFound.")
    message: str
    reasons: list[str] = Field(description="Every reason, not only the first found.")
    fix: str | None = Field(description="What to do about it.")
    owner: str = Field(description="Whose fix it is: 'you' or 'the TRE administrators'.")
    exit_code: int = Field(description="The exit code the CLI gives the same error.")


class ErrorOut(BaseModel):
    """The body of every error response."""

    error: ErrorDetail

    @classmethod
    def of(cls, error: TreError) -> ErrorOut:
        return cls(
            error=ErrorDetail(
                kind=type(error).__name__,
                message=error.message,
                reasons=list(error.reasons),
                fix=error.fix,
                owner=error.owner,
                exit_code=error.exit_code,
            )
        )


class PersonOut(BaseModel):
    name: str
    full_name: str
    roles: list[Role] = Field(json_schema_extra={"uniqueItems": True}, description="Each once.")
    accreditation_expires: date | None
    active: bool
    admin_confirmed_by: str = Field(
        description="Who confirmed an admin's role ('tre': by construction); empty if "
        "unconfirmed (an unconfirmed admin approves nothing) or not an admin."
    )

    @classmethod
    def of(cls, person: Person) -> PersonOut:
        return cls(
            name=person.name,
            full_name=person.full_name,
            roles=list(person.roles),
            accreditation_expires=person.accreditation_expires,
            active=person.active,
            admin_confirmed_by=person.admin_confirmed_by if Role.ADMIN in person.roles else "",
        )


class JobOut(BaseModel):
    id: int
    project: str
    submitter: str
    title: str
    state: str
    reason: str
    spec: dict[str, Any]
    spec_hash: str
    code_hash: str | None
    dataset_versions: dict[str, int]
    created_at: datetime
    updated_at: datetime
    backend: str
    attempts: int
    cancel_requested: bool

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls.model_validate(job.model_dump(exclude={"handle"}))


class JobDetailOut(BaseModel):
    job: JobOut
    progress: dict[str, dict[str, int]] = Field(description="Tasks done and total, per step.")
    backend: str = Field(description="What the backend says of a running job, if anything.")


class LogsOut(BaseModel):
    job_id: int
    text: str


class RequestOut(BaseModel):
    """An output request as the caller may see it: other checkers' votes stay hidden
    from a checker until they have voted on the same output."""

    job: JobOut
    outputs: list[OutputRecord]
    reviews: list[Review]
    counts: dict[str, int] = Field(description="Reviews per output, whoever made them.")
    reviews_needed: int
    undeclared: int = Field(
        default=0,
        description="Outputs a python step made under names its spec does not declare: "
        "before release, counted here for the researcher and held for the checkers.",
    )


class RiskOut(BaseModel):
    """What the disclosure report says, in brief."""

    status: str
    outputs: int
    failing_cells: int
    review_cells: int


class QueueItemOut(BaseModel):
    job: JobOut
    outputs: list[OutputRecord]
    counts: dict[str, int]
    risk: RiskOut
    yours: bool = Field(description="You submitted it, so you may not review it.")


class ReviewDetailOut(RequestOut):
    """An output request for a checker who may review it, with the disclosure report."""

    ready_to_release: bool = Field(
        description="Every output has the reviews it needs; the release itself decides."
    )
    report: dict[str, Any] = Field(description="The disclosure report (report.json).")


class DatasetOut(BaseModel):
    name: str
    version: int
    description: str
    columns: list[dict[str, Any]]
    row_count: int
    checksum: str
    ingested_at: datetime
    ingested_by: str

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetOut:
        return cls.model_validate(dataset.model_dump(mode="json", exclude={"files"}))


class AuditEventOut(BaseModel):
    seq: int
    at: str
    actor: str
    role: str
    action: str
    object: str
    details: dict[str, Any]
    hash: str


class VerificationOut(BaseModel):
    ok: bool
    events: int
    problems: list[str]
    notes: list[str]
