"""The domain: people, projects, datasets, jobs, outputs and reviews.

Plain pydantic v2 models shared by every package. This module imports no engine
(jobs, policies, slurm, disclosure) so any of them may import it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs it on Python 3.11

from tre.names import ColumnName, ObjectName, PersonName, SlurmName
from tre.outcomes import Outcome
from tre.states import JobState, ProjectState
from tre.units import format_duration, format_memory, parse_duration, parse_memory
from tre.written import Prose, Title, as_written

__all__ = [
    "MIN_WORKER_MEMORY",
    "ColumnInfo",
    "DataFile",
    "Dataset",
    "DatasetDescriptor",
    "Decision",
    "Job",
    "JobState",
    "OutputRecord",
    "OutputRequest",
    "Person",
    "Project",
    "ProjectDataset",
    "ProjectState",
    "Resources",
    "Review",
    "Role",
    "SdcStatus",
    "Sensitivity",
    "SlurmPlacement",
    "utcnow",
]


def utcnow() -> datetime:
    """Now, in UTC, to the second: every timestamp `tre` stores is one of these."""
    return datetime.now(UTC).replace(microsecond=0)


class Strict(BaseModel):
    """Base for every model: unknown fields are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True)


class Role(StrEnum):
    ADMIN = "admin"
    RESEARCHER = "researcher"
    CHECKER = "checker"  # an output checker


class Person(Strict):
    """Someone registered with the TRE, holding one or more roles."""

    name: PersonName
    full_name: Annotated[Title, Field(max_length=200)]
    email: str = Field(default="", max_length=254)
    roles: list[Role] = Field(min_length=1)
    accreditation_expires: date | None = Field(
        default=None, description="Researchers must be accredited; the date it lapses."
    )
    active: bool = True
    registered_at: datetime = Field(default_factory=utcnow)
    registered_by: str = ""
    admin_granted_by: str = Field(
        default="", description="The admin who gave this person the admin role."
    )
    admin_confirmed_by: str = Field(
        default="",
        description="The second admin who confirmed the admin role ('tre': by construction, "
        "for a home's first admin); empty until then, and an admin approves nothing.",
    )
    admin_confirmed_at: datetime | None = None

    @field_validator("roles")
    @classmethod
    def _roles_once(cls, roles: list[Role], info: ValidationInfo) -> list[Role]:
        # Refused as written; a record stored twice-over by an older tre is read once each.
        twice = sorted({r.value for r in roles if roles.count(r) > 1})
        if twice and as_written(info):
            raise ValueError(f"each role may be listed once; listed twice: {', '.join(twice)}")
        return list(dict.fromkeys(roles))

    @property
    def confirmed_admin(self) -> bool:
        """Holds the admin role, and a second admin has confirmed it."""
        return Role.ADMIN in self.roles and bool(self.admin_confirmed_by)

    @model_validator(mode="after")
    def _researchers_are_accredited(self) -> Person:
        if Role.RESEARCHER in self.roles and self.accreditation_expires is None:
            raise ValueError(
                "a researcher needs an accreditation expiry date (--accredited-until YYYY-MM-DD)"
            )
        return self

    def accredited_on(self, day: date) -> bool:
        return self.accreditation_expires is not None and day <= self.accreditation_expires


class Sensitivity(StrEnum):
    """How sensitive a column is; each class has its own encryption key."""

    IDENTIFIER = "identifier"  # pseudonymous keys and direct identifiers
    QUASI_IDENTIFIER = "quasi_identifier"  # age, ward, sex: identifying in combination
    ATTRIBUTE = "attribute"  # everything else


class ColumnInfo(Strict):
    name: ColumnName
    type: str = Field(description="Arrow type, e.g. 'int64', 'string', 'double'.")
    sensitivity: Sensitivity = Sensitivity.ATTRIBUTE
    description: str = ""


class DataFile(Strict):
    """One encrypted Parquet file of a dataset version."""

    path: str = Field(description="Relative to the TRE data root.")
    sha256: str
    rows: int
    row_groups: list[int] = Field(description="Rows in each row group, in order.")


class Dataset(Strict):
    """One version of an ingested, secured dataset."""

    name: ObjectName
    version: int = Field(ge=1)
    description: str = ""
    columns: list[ColumnInfo]
    row_count: int = Field(ge=0)
    files: list[DataFile]
    checksum: str = Field(description="sha256 over the files' sha256 values, in order.")
    ingested_at: datetime = Field(default_factory=utcnow)
    ingested_by: str = ""
    #: Who each row is about, as its descriptor declared (DatasetDescriptor.unit).
    unit: ColumnName | None = None

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


#: The least memory per worker a person may ask for. A Dask worker's own process (the
#: interpreter with distributed, pyarrow and polars imported) holds about 200 MiB before
#: it reads any data; given less, its nanny kills it as it starts and starts it again, in
#: a loop, until the walltime, and nothing points at memory. Refused at submission instead.
MIN_WORKER_MEMORY = 256 * 1024**2
DEFAULT_MEMORY = 2 * 1024**3  # per worker, when neither the spec nor the quota says less
DEFAULT_WALLTIME = 3600


class Resources(Strict):
    """Compute for one job, or the most a project may ask for (its quota).

    Memory is held in bytes and walltime in seconds, but both are written with units
    ('4GiB', '30m') and stored that way; a bare number is refused in what a person
    writes (`tre.written.AS_WRITTEN`), where `memory: 4` would mean 4 bytes."""

    workers: int = Field(default=1, ge=1, le=1024, description="Dask workers.")
    cores: int = Field(default=1, ge=1, le=256, description="Cores per worker.")
    # Held as bytes and seconds, described as what people write: text with a unit.
    memory: Annotated[
        int,
        WithJsonSchema({"type": "string", "examples": ["4GiB", "512MiB", "8GB"]}),
        Field(
            description="Memory per worker, with a unit: '4GiB', '512MiB', '8GB'; at least "
            f"{format_memory(MIN_WORKER_MEMORY)}.",
            json_schema_extra={"default": format_memory(DEFAULT_MEMORY)},
        ),
    ] = DEFAULT_MEMORY
    walltime: Annotated[
        int,
        WithJsonSchema({"type": "string", "examples": ["30m", "2h", "01:30:00"]}),
        Field(
            description="Longest run, with a unit or as HH:MM:SS: '30m', '2h', '01:30:00'.",
            json_schema_extra={"default": format_duration(DEFAULT_WALLTIME)},
        ),
    ] = DEFAULT_WALLTIME

    @field_validator("workers", "cores", mode="before")
    @classmethod
    def _whole_number(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic would take `cores: true` as 1 and "2" as 2: a count is a plain integer.
        if isinstance(value, bool) or not isinstance(value, int):
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            raise ValueError(f"{info.field_name} must be a whole number such as 2, not {shown}")
        return value

    @field_validator("memory", mode="before")
    @classmethod
    def _memory(cls, value: Any, info: ValidationInfo) -> int:
        memory = parse_memory(value, bare_numbers=not as_written(info))
        # Only new input: a record stored before the floor still loads.
        if as_written(info) and memory < MIN_WORKER_MEMORY:
            floor = format_memory(MIN_WORKER_MEMORY)
            raise ValueError(
                f"memory {value!r} per worker is below the {floor} a Dask worker needs to "
                f"start: ask for at least {floor}, e.g. '1GiB' (it is memory per worker)"
            )
        return memory

    @field_validator("walltime", mode="before")
    @classmethod
    def _walltime(cls, value: Any, info: ValidationInfo) -> int:
        return parse_duration(value, bare_numbers=not as_written(info))

    @field_serializer("memory", when_used="json")
    def _memory_text(self, memory: int) -> str:
        return format_memory(memory)

    @field_serializer("walltime", when_used="json")
    def _walltime_text(self, walltime: int) -> str:
        return format_duration(walltime)

    def describe(self) -> str:
        return (
            f"{self.workers} worker(s) x {self.cores} core(s), "
            f"{format_memory(self.memory)} each, walltime {format_duration(self.walltime)}"
        )

    def excess_over(self, quota: Resources) -> list[str]:
        """Every way these resources exceed `quota`, as sentences; empty if within."""
        out = []
        for field, fmt in (
            ("workers", str),
            ("cores", str),
            ("memory", format_memory),
            ("walltime", format_duration),
        ):
            asked, allowed = getattr(self, field), getattr(quota, field)
            if asked > allowed:
                out.append(f"{field} {fmt(asked)} is over the project's quota of {fmt(allowed)}")
        return out


class ProjectDataset(Strict):
    """A dataset a project may use and the columns approved for it."""

    dataset: ObjectName
    columns: list[ColumnName] = Field(min_length=1)


class SlurmPlacement(Strict):
    """Where a project's jobs go on a Slurm cluster (each optional: the site profile's
    defaults apply)."""

    account: SlurmName | None = None
    partition: SlurmName | None = None
    qos: SlurmName | None = None


class Project(Strict):
    name: ObjectName
    title: Title
    purpose: Prose = Field(min_length=1, description="Why the project needs the data.")
    lead: PersonName
    members: list[PersonName] = Field(default_factory=list)
    datasets: list[ProjectDataset] = Field(min_length=1)
    quota: Resources = Field(default_factory=Resources)
    slurm: SlurmPlacement = Field(default_factory=SlurmPlacement)
    expires: date
    state: ProjectState = ProjectState.REQUESTED
    requested_by: str = ""
    requested_at: datetime = Field(default_factory=utcnow)
    approved_by: str | None = None
    approved_at: datetime | None = None

    @field_validator("members")
    @classmethod
    def _members_once(cls, members: list[str], info: ValidationInfo) -> list[str]:
        twice = sorted({m for m in members if members.count(m) > 1})
        if twice and as_written(info):
            raise ValueError(f"each member may be listed once; listed twice: {', '.join(twice)}")
        return list(dict.fromkeys(members))

    @model_validator(mode="after")
    def _lead_is_member(self) -> Project:
        if self.lead not in self.members:
            self.members = [self.lead, *self.members]
        names = [d.dataset for d in self.datasets]
        if len(names) != len(set(names)):
            raise ValueError("each dataset may be listed once in a project")
        return self

    def granted_columns(self, dataset: str) -> list[str] | None:
        """Approved columns of `dataset`, or None if the project may not use it."""
        return next((d.columns for d in self.datasets if d.dataset == dataset), None)


class SdcStatus(StrEnum):
    """Outcome of the disclosure checks on one output (the worst of its cells)."""

    PASS = "pass"  # noqa: S105 - a status, not a password
    REVIEW = "review"  # needs a person's judgement (e.g. any file from a python step)
    FAIL = "fail"


class Decision(StrEnum):
    """An output checker's vote on one output."""

    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"  # request changes: the researcher revises and resubmits


class OutputRecord(Strict):
    """One output of a job, as the review process sees it."""

    name: ObjectName
    kind: str  # table | regression | file
    step: str
    sdc_status: SdcStatus
    summary: str = Field(description="One line a checker reads first.")
    files: list[str] = Field(default_factory=list, description="Relative to the job folder.")
    advisory: bool = Field(
        default=False,
        description="Its evidence was computed by researcher code: a checker approves it by "
        "name, never with the rest of the request.",
    )


class OutputRequest(Strict):
    """The outputs of one finished job, awaiting or after review."""

    job_id: int
    project: str
    author: str
    outputs: list[OutputRecord]
    report_json: str
    report_html: str
    report_markdown: str
    created_at: datetime = Field(default_factory=utcnow)


class Review(Strict):
    job_id: int
    output: str
    checker: PersonName
    decision: Decision
    comment: str = Field(min_length=1)
    at: datetime = Field(default_factory=utcnow)


@with_config(ConfigDict(extra="allow"))  # a job stored by another version keeps its keys
class JobHandle(TypedDict, total=False):
    """How a backend finds a job it started again: its own keys, stored with the job
    (`Job.handle`), so a restarted dispatcher can watch, cancel and collect it."""

    starting: bool  # recorded before the backend starts anything: a crash in between fails it
    submitted: float  # when the backend took it (unix seconds)
    pid: int  # local, slurm-cluster: the job's process
    start: int | None  # its start time in clock ticks: a reused pid is never taken for it
    slurm_job_id: int  # slurm-runner: its allocation
    slurm_user: str  # slurm-runner: the job user it was submitted as (sudo -u), who cancels it
    worker_jobs: str  # slurm-cluster: the name its workers' Slurm jobs carry
    sandbox: bool  # it runs in the sandbox (slurm/sandbox.py)
    slot: int  # the job users' slot it runs as (slurm/job_users.py), held while running
    keys_pid: int  # the key service it began with (a job's outcome asks if it went away)
    cgroups: list[str]  # cgroup folders emptied when it ends
    split: bool  # its python steps ran in a sandbox of their own (jobs/handover.py)
    parts: dict[str, int]  # per step, the parts tre planned: all the progress shown


class Job(Strict):
    id: int
    project: str
    submitter: str
    title: str
    state: JobState
    spec: dict[str, Any]
    spec_hash: str
    code_hash: str | None = None
    code_sha256: dict[str, str] = Field(
        default_factory=dict,
        description="Per python step: the sha256 of its pickle at submission (checked at run).",
    )
    dataset_versions: dict[str, int] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    reason: str = ""
    outcome: Outcome | None = Field(
        default=None,
        description="Why the dispatcher last moved it, as a code (docs/states.md); the "
        "words are in reason.",
    )
    backend: str = ""
    handle: JobHandle = Field(default_factory=lambda: JobHandle())
    cancel_requested: bool = False
    attempts: int = Field(default=0, description="Times the job was started on a backend.")

    def provenance(self) -> dict[str, Any]:
        """What a disclosure report and a release manifest say a job was: who, for which
        project, which spec and code (by hash), which dataset versions."""
        return {
            "job_id": self.id,
            "project": self.project,
            "author": self.submitter,
            "title": self.title,
            "spec_hash": self.spec_hash,
            "code_hash": self.code_hash,
            "datasets": self.dataset_versions,
        }


class DatasetDescriptor(Strict):
    """What an admin declares about a dataset before ingest (a YAML file)."""

    name: ObjectName | None = None
    description: str = ""
    columns: list[ColumnInfo] = Field(min_length=1)
    unit: ColumnName | None = Field(
        default=None,
        description="The identifier column naming who each row is about (a person, a "
        "household, a business): disclosure control counts contributors by it, so several "
        "rows of one unit count once. One of the columns, with sensitivity identifier.",
    )

    @model_validator(mode="after")
    def _unique_columns(self) -> DatasetDescriptor:
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"columns listed more than once: {', '.join(dupes)}")
        check_unit_column(self.unit, self.columns)
        return self


def check_unit_column(unit: str | None, columns: list[ColumnInfo]) -> None:
    """ValueError unless `unit` is None or one of `columns` with sensitivity identifier."""
    if unit is None:
        return
    column = next((c for c in columns if c.name == unit), None)
    if column is None:
        raise ValueError(
            f"unit {unit!r} is not one of the columns ({', '.join(c.name for c in columns)}): "
            "name the identifier column each row is about"
        )
    if column.sensitivity != Sensitivity.IDENTIFIER:
        raise ValueError(
            f"unit {unit!r} has sensitivity {column.sensitivity.value}; a unit identifies "
            "who a row is about, so give the column sensitivity identifier"
        )
