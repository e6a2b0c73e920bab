"""The job spec: what a researcher asks to run, validated before anything runs.

A spec names its project, the datasets and columns it needs (checked against the
project's approval), its steps and its resources. It is written in YAML (or built
in Python by `tre.submit`), validated by pydantic, and exported as JSON Schema
(`tre schema job`) so editors can autocomplete it.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from jobs.errors import SpecError
from jobs.spec_parts import FILTER_OPS, Filter, Filters, Link, Scalar, Spec
from tre import yamlfile
from tre.field_errors import Problem, problems
from tre.models import Resources
from tre.names import ColumnName, ObjectName
from tre.written import AS_WRITTEN, Prose, Title

__all__ = [
    "FILTER_OPS",
    "MAX_BIN_EDGES",
    "STATISTICS",
    "Filter",
    "Filters",
    "JobSpec",
    "Link",
    "PythonStep",
    "RegressionStep",
    "Scalar",
    "Step",
    "TableStep",
    "json_schema",
    "load_spec",
    "parse_spec",
]

#: The most edges one binned column may have: a histogram of more bins than this is
#: row-level data by another name, and the bin labels are built as one expression.
MAX_BIN_EDGES = 200
STATISTICS = ("count", "sum", "mean", "median", "std", "min", "max", "quantile", "mode")


class _Step(Spec):
    name: ObjectName = Field(description="Names the output; unique within the job.")
    description: Prose = Field(default="", description="What this output shows, for checkers.")


class TableStep(_Step):
    """A frequency (count) or magnitude (sum, mean, ...) table."""

    kind: Literal["table"]
    dataset: ObjectName
    rows: list[ColumnName] = Field(min_length=1)
    columns: list[ColumnName] = Field(default_factory=list)
    value: ColumnName | None = Field(
        default=None,
        description="The column summarised; with statistic count, the records with a value "
        "of it are counted (how many had the test, not how many there are).",
    )
    statistic: Literal[
        "count", "sum", "mean", "median", "std", "min", "max", "quantile", "mode"
    ] = "count"
    quantile: float | None = Field(default=None, gt=0, lt=1)
    unit: ColumnName | None = Field(
        default=None,
        description="Column identifying each contributor (a person, a business): several "
        "records of one unit count once for disclosure control.",
    )
    filter: Filters = Field(
        default_factory=list, description="Keep the rows where every filter holds."
    )
    link: Link | None = None
    bins: dict[ColumnName, list[float]] = Field(
        default_factory=dict,
        description="Numeric key columns counted in bins (a histogram): the edges, in "
        "increasing order, e.g. {age: [0, 16, 30, 50, 65, 85]}. Each bin holds its lower "
        "edge and not its upper ('[16, 30)'); values below the first edge or from the "
        "last one on have bins of their own ('< 0', '>= 85').",
    )

    @field_validator("filter", mode="before")
    @classmethod
    def _one_filter(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | dict) else value

    @field_validator("bins")
    @classmethod
    def _edges(cls, bins: dict[str, list[float]]) -> dict[str, list[float]]:
        for column, edges in bins.items():
            if not 1 <= len(edges) <= MAX_BIN_EDGES:
                raise ValueError(
                    f"bins of {column!r}: give between 1 and {MAX_BIN_EDGES} edges, "
                    f"not {len(edges)}"
                )
            if any(not math.isfinite(e) for e in edges):
                raise ValueError(f"bins of {column!r}: every edge must be a finite number")
            if any(b <= a for a, b in itertools.pairwise(edges)):
                raise ValueError(
                    f"bins of {column!r}: the edges must increase, e.g. [0, 16, 30, 50]"
                )
        return bins

    @model_validator(mode="after")
    def _statistic_needs(self) -> TableStep:
        if loose := sorted(set(self.bins) - set(self.rows + self.columns)):
            raise ValueError(
                f"bins are given for {', '.join(loose)}, which is not among the table's rows "
                "or columns; bin a key column (rows: [age], bins: {age: [0, 16, 65]})"
            )
        if self.statistic != "count" and self.value is None:
            raise ValueError(f"statistic '{self.statistic}' needs a 'value' column")
        if (self.statistic == "quantile") != (self.quantile is not None):
            raise ValueError(
                "give 'quantile' (between 0 and 1) exactly when statistic is 'quantile'"
            )
        keys = self.rows + self.columns
        if twice := _repeated(keys):
            raise ValueError(
                f"a column may appear once among rows and columns; repeated: {', '.join(twice)}"
            )
        if self.unit is not None and self.unit in [*keys, self.value]:
            raise ValueError(f"the unit column {self.unit!r} cannot also be a key or the value")
        return self

    @property
    def keys(self) -> list[str]:
        return self.rows + self.columns

    def named_columns(self) -> set[str]:
        extra = [c for c in (self.value, self.unit) if c]
        return {*self.keys, *extra, *(f.column for f in self.filter)}


class RegressionStep(_Step):
    """Ordinary least squares or logistic regression."""

    kind: Literal["regression"]
    dataset: ObjectName
    model: Literal["ols", "logistic"] = "ols"
    outcome: ColumnName
    predictors: list[ColumnName] = Field(min_length=1)
    categorical: list[ColumnName] = Field(
        default_factory=list, description="Predictors to expand into one indicator per level."
    )
    intercept: bool = True
    filter: Filters = Field(
        default_factory=list, description="Keep the rows where every filter holds."
    )
    link: Link | None = None

    _one_filter = field_validator("filter", mode="before")(TableStep._one_filter.__func__)  # type: ignore[attr-defined]

    @model_validator(mode="after")
    def _categorical_are_predictors(self) -> RegressionStep:
        # A predictor listed twice makes two identical columns of the design matrix,
        # which cannot be fitted: refused here rather than failing when the job runs.
        for field in ("predictors", "categorical"):
            if twice := _repeated(getattr(self, field)):
                raise ValueError(
                    f"each of {field} may be listed once; repeated: {', '.join(twice)}"
                )
        extra = sorted(set(self.categorical) - set(self.predictors))
        if extra:
            raise ValueError(f"categorical column(s) {', '.join(extra)} are not among predictors")
        if self.outcome in self.predictors:
            raise ValueError(f"the outcome {self.outcome!r} cannot also be a predictor")
        return self

    def named_columns(self) -> set[str]:
        return {self.outcome, *self.predictors, *(f.column for f in self.filter)}


class PythonStep(_Step):
    """Researcher code: `module.py:function`, called with a context on a Dask worker."""

    kind: Literal["python"]
    function: str = Field(
        pattern=r"^[^:\s]+\.py:[A-Za-z_][A-Za-z0-9_]*$",
        description="Path (relative to the spec file) and function, e.g. 'analysis.py:main'.",
    )
    datasets: list[ObjectName] | None = Field(
        default=None, description="Datasets the function may read (default: all of the job's)."
    )
    outputs: dict[ObjectName, Prose] = Field(
        default_factory=dict,
        description="The outputs the function makes, each with what it shows. Before "
        "review the researcher sees only these names and descriptions; an output the code "
        "makes under any other name is held for the checkers and shown as undeclared.",
    )


Step = Annotated[TableStep | RegressionStep | PythonStep, Field(discriminator="kind")]


class JobSpec(Spec):
    """A job: which project, which data, which steps, how much compute."""

    project: ObjectName
    title: Title
    description: Prose = ""
    datasets: dict[ObjectName, list[ColumnName]] = Field(
        min_length=1, description="Every dataset the job reads and every column it names."
    )
    steps: list[Step] = Field(min_length=1)
    resources: Resources = Field(default_factory=Resources)

    @model_validator(mode="after")
    def _consistent(self) -> JobSpec:
        problems: list[str] = []
        if dupes := _repeated([s.name for s in self.steps]):
            problems.append(f"step names must be unique; repeated: {', '.join(dupes)}")
        for step in self.steps:
            problems += _step_problems(step, self.datasets)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def step_datasets(self, step: TableStep | RegressionStep | PythonStep) -> list[str]:
        if isinstance(step, PythonStep):
            return step.datasets or list(self.datasets)
        return [step.dataset] + ([step.link.dataset] if step.link else [])


def _repeated(items: list[str]) -> list[str]:
    """The items listed more than once, sorted."""
    return sorted({item for item in items if items.count(item) > 1})


def _step_problems(
    step: TableStep | RegressionStep | PythonStep, declared: dict[str, list[str]]
) -> list[str]:
    """Datasets and columns a step names but the spec does not declare."""
    where = f"step {step.name!r}"
    if isinstance(step, PythonStep):
        missing = sorted(set(step.datasets or []) - set(declared))
        return [f"{where} reads dataset(s) {', '.join(missing)} not listed under datasets"] * bool(
            missing
        )
    if step.dataset not in declared:
        return [f"{where} uses dataset {step.dataset!r}, which is not listed under datasets"]
    main = set(declared[step.dataset])
    linked: set[str] = set()
    problems = []
    if step.link is not None:
        if step.link.dataset not in declared:
            return [f"{where} links dataset {step.link.dataset!r}, not listed under datasets"]
        linked = set(step.link.columns)
        right = set(declared[step.link.dataset])
        for column in sorted(({step.link.on} - main) | ({step.link.on, *linked} - right)):
            problems.append(f"{where}: link column {column!r} is not declared for its dataset")
    undeclared = sorted(step.named_columns() - main - linked)
    if undeclared:
        problems.append(
            f"{where} names column(s) {', '.join(undeclared)} not declared under "
            f"datasets.{step.dataset}" + (" or link.columns" if step.link else "")
        )
    return problems


def parse_spec(data: Any, source: str = "job spec", *, as_written: bool = True) -> JobSpec:
    """Validate a spec given as Python data; SpecError lists every problem readably.
    `as_written`: the spec is new input, held to the rules for it (units, plain-text
    titles: `tre.written`); pass False for a spec read back from a job record."""
    if not isinstance(data, dict):
        raise SpecError(
            f"{source} must be a YAML mapping (project:, title:, datasets:, steps:, ...)",
            fix="see 'tre schema job' for the fields, or jobs/examples/ for examples",
        )
    try:
        return JobSpec.model_validate(data, context=AS_WRITTEN if as_written else None)
    except ValidationError as exc:
        raise SpecError(
            f"{source} is not valid",
            reasons=[_describe(problem) for problem in problems(exc)],
            fix="correct the fields above; 'tre schema job' prints every field and its type",
        ) from None


def load_spec(path: Path) -> JobSpec:
    """Read and validate a YAML job spec file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(
            f"cannot read job spec {path}: {exc.strerror}",
            fix="check the path (relative to the current folder); examples are in jobs/examples/",
        ) from exc
    try:
        data = yamlfile.load(raw, str(path))
    except yamlfile.YamlError as exc:
        raise SpecError(
            str(exc), fix="correct the file at the place shown (check indentation and quoting)"
        ) from None
    return parse_spec(data, source=str(path))


def _describe(problem: Problem) -> str:
    """One readable line for one problem: where, and what is wrong."""
    loc = ".".join(str(p) for p in problem.loc if not str(p).startswith("function-"))
    # Discriminated unions put the step kind into the path; people don't write it.
    loc = re.sub(r"\.(table|regression|python)(?=\.|$)", "", loc)
    message = problem.message
    if problem.type == "extra_forbidden":
        message = "unknown field (check the spelling; 'tre schema job' lists the fields)"
    elif problem.type == "union_tag_invalid":
        message = "unknown step kind: use table, regression or python"
    elif problem.type == "union_tag_not_found":
        message = "each step needs a 'kind': table, regression or python"
    return f"{loc}: {message}" if loc else message


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a job spec, for editors."""
    schema = JobSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tre job spec"
    return schema
