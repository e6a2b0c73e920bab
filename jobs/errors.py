"""Errors of the job engine.

TreError (tre.errors)
├── InputError
│   └── SpecError        the job spec is malformed or inconsistent  (the researcher's fix)
├── PlatformError
│   └── CodeChanged      a job's code differs from what was submitted; nothing runs
└── StepFailed            a step failed while running; the job ends `failed`
    ├── ColumnRefused     a python step asked for a column its spec does not declare
    ├── KeyedByIdentifier a python step's table is keyed by an identifier column
    └── UnitRefused       a python step's table names no unit tre can count it by
"""

from __future__ import annotations

from tre.errors import InputError, PlatformError, TreError


class SpecError(InputError):
    """The job spec cannot be used as written."""


class StepFailed(TreError):
    """A step raised while running; `message` is safe to show (no row-level data)."""

    exit_code = 7


class ColumnRefused(StepFailed):
    """A python step asked `ctx.dataset` for a column its spec does not declare. Its
    dataset and column travel as fields, so the researcher can be told which (only when
    it is a real column of a dataset of the job: tre/service/researcher_view.py)."""

    def __init__(self, message: str, *, dataset: str, column: str, fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.dataset = dataset
        self.column = column

    def __reduce__(self) -> tuple[object, ...]:
        # It travels back from a Dask worker pickled: its fields travel with it.
        return (*super().__reduce__(), {"dataset": self.dataset, "column": self.column})


class KeyedByIdentifier(StepFailed):
    """A python step's table has an identifier column (resident_id) among its keys or as
    its value: it would publish one row per person (jobs/contributors.py). Its dataset
    and column travel as fields, as ColumnRefused's do, so the researcher can be told
    which (only when it is a real column of a dataset of the job)."""

    def __init__(self, message: str, *, dataset: str, column: str, fix: str = "") -> None:
        super().__init__(message, fix=fix)
        self.dataset = dataset
        self.column = column

    def __reduce__(self) -> tuple[object, ...]:
        return (*super().__reduce__(), {"dataset": self.dataset, "column": self.column})


class UnitRefused(StepFailed):
    """A python step's table cannot be counted by unit as asked: its `unit=` is not an
    identifier column of the step's datasets, or its frame carries several identifier
    columns and no `unit=` says which one a contributor is (jobs/contributors.py)."""


class CodeChanged(PlatformError):
    """A python step's pickle is not the one submitted: the job folder was changed behind
    tre's back (tre never rewrites a submitted job's code), so the job must not run."""
