"""The API's request and response bodies.

Requests forbid unknown fields, so a misspelt field is a 422 naming it rather than
silently ignored. Responses are built from the service layer's models and leave out
what a client has no use for (a running job's backend handle, dataset file lists).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tre.models import Dataset, Decision, Job, OutputRecord, Person, Review

# -- requests --------------------------------------------------------------------------


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


# -- responses -------------------------------------------------------------------------


class PersonOut(BaseModel):
    name: str
    full_name: str
    roles: list[str]
    accreditation_expires: date | None
    active: bool

    @classmethod
    def of(cls, person: Person) -> PersonOut:
        return cls(
            name=person.name,
            full_name=person.full_name,
            roles=[r.value for r in person.roles],
            accreditation_expires=person.accreditation_expires,
            active=person.active,
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
