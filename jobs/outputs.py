"""What a job produces: tables, regressions and files, each with the evidence that
disclosure control needs (never row-level data, except in files a person must review)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass(kw_only=True)
class Planned:
    """Who computed an output's evidence, and the plan tre's engine can run again.

    `evidence` is "engine" (tre's engine: a declarative step, or a python step's plan it
    ran again: jobs/plans.py) or "code" (researcher code)."""

    evidence: str = "engine"
    plan: str | None = None  # a python step's LazyFrame plan (polars JSON), if it had one
    plan_files: dict[str, list[str]] = field(default_factory=dict)  # file -> columns
    plan_refused: str = ""  # why the engine did not run the plan (tre's words)


@dataclass
class TableOutput(Planned):
    """A finalized table: key columns, `value`, and the evidence columns of
    `disclosure.aggregate.finalize` (n, records, sum, top, negative, missing)."""

    name: str
    step: str
    description: str
    datasets: list[str]
    rows: list[str]
    columns: list[str]
    value: str | None
    statistic: str
    quantile: float | None
    cells: pl.DataFrame
    kind: str = "table"
    unit: str | None = None  # the unit-id column: contributors are units, not records


@dataclass
class RegressionOutput(Planned):
    """Coefficients with their standard errors, and the sizes disclosure control checks."""

    name: str
    step: str
    description: str
    datasets: list[str]
    model: str
    outcome: str
    n_obs: int
    df_resid: int
    coefficients: pl.DataFrame  # term, estimate, std_error, statistic, p_value
    level_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Observations at each value of a numeric predictor with few distinct values.
    value_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    fit: dict[str, Any] = field(default_factory=dict)  # r_squared / deviance, iterations...
    kind: str = "regression"
    #: A python step's model as it asked for it (predictors, categorical, intercept), so
    #: the engine can fit it again from the plan.
    request: dict[str, Any] = field(default_factory=dict)


@dataclass
class FileOutput:
    """A free-form file from a python step: always reviewed by a person."""

    name: str
    step: str
    description: str
    filename: str
    content: bytes
    kind: str = "file"


Output = TableOutput | RegressionOutput | FileOutput
