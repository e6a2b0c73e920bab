"""Checks of a spec against the catalog's column types and sensitivities, made at
submission so a job does not fail halfway (or run, reading data, only to be refused) for
a mistake that could be seen up front. Each is a refusal with its code
(`policies.refusals`), beside the approval's own.

A declarative table keyed by an identifier column, or summarising one, is refused here
(IDENTIFIER_KEY) by the rule of jobs/contributors.py, which checking applies again to
every table whatever made it (defence in depth: tre/service/checking.py)."""

from __future__ import annotations

from collections.abc import Mapping

from jobs.contributors import identifier_uses
from jobs.spec import Filter, JobSpec, Link, PythonStep, RegressionStep, TableStep
from policies.refusals import Refusal, RefusalCode
from tre.models import Dataset, Sensitivity

_NUMERIC = ("int", "uint", "float", "double", "decimal", "halffloat")
_TEXT = ("string", "large_string", "utf8", "large_utf8", "dictionary")


def _kind(arrow_type: str) -> str:
    if arrow_type.startswith(_NUMERIC):
        return "number"
    if arrow_type.startswith(_TEXT):
        return "text"
    if arrow_type in ("bool", "boolean"):
        return "boolean"
    if arrow_type.startswith(("date", "timestamp")):
        return "date"
    return "other"


def _value_kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    return "other"


def spec_catalog_problems(spec: JobSpec, catalog: Mapping[str, Dataset]) -> list[Refusal]:
    """Type mistakes in filters, values and predictors, and tables keyed by (or
    summarising) an identifier column, each a sentence with its code."""
    problems: list[Refusal] = []
    for step in spec.steps:
        if isinstance(step, PythonStep) or step.dataset not in catalog:
            continue
        types = _types(step.dataset, step.link, catalog)
        where = f"step {step.name!r}"
        problems += _filter_problems(where, step.filter, types)
        if isinstance(step, TableStep):
            problems += _identifier_problems(where, step, catalog)
        if isinstance(step, TableStep):
            for column in step.bins:
                if _kind(types.get(column, "")) != "number":
                    problems.append(
                        Refusal(
                            RefusalCode.NOT_NUMERIC,
                            f"{where}: {column!r} is binned, which needs a numeric column, "
                            f"and it is {types.get(column)}",
                        )
                    )
        if isinstance(step, TableStep) and step.value and step.statistic != "count":
            kind = _kind(types.get(step.value, ""))
            if kind not in ("number", "boolean"):
                problems.append(
                    Refusal(
                        RefusalCode.NOT_NUMERIC,
                        f"{where}: the {step.statistic} of {step.value!r} needs a numeric "
                        f"column, and it is {types.get(step.value)}",
                    )
                )
        if isinstance(step, RegressionStep):
            for column in [step.outcome, *step.predictors]:
                if column in step.categorical:
                    continue
                if _kind(types.get(column, "")) not in ("number", "boolean"):
                    hint = " (list it under categorical)" if column != step.outcome else ""
                    problems.append(
                        Refusal(
                            RefusalCode.NOT_NUMERIC,
                            f"{where}: {column!r} is {types.get(column)}, not a number" + hint,
                        )
                    )
    return problems


def _types(dataset: str, link: Link | None, catalog: Mapping[str, Dataset]) -> dict[str, str]:
    types = {c.name: c.type for c in catalog[dataset].columns}
    if link is not None and link.dataset in catalog:
        linked = {c.name: c.type for c in catalog[link.dataset].columns}
        types.update({c: linked[c] for c in link.columns if c in linked})
    return types


def _identifier_problems(
    where: str, step: TableStep, catalog: Mapping[str, Dataset]
) -> list[Refusal]:
    """IDENTIFIER_KEY for each identifier column among the table's keys or as its value,
    naming the column, its dataset and the fix."""
    value = step.value if step.statistic != "count" else None
    uses = identifier_uses([*step.rows, *step.columns], value, _identifier_owners(step, catalog))
    refusals = []
    for column, _dataset, said in uses:
        fix = (
            "summarise an attribute instead, or count people with statistic count and "
            f"unit: {column}"
            if column == value
            else "key it by attributes or quasi-identifiers (an age band, a ward) and "
            f"pass {column} as unit: to count each person once"
        )
        refusals.append(Refusal(RefusalCode.IDENTIFIER_KEY, f"{where}: {said}; {fix}"))
    return refusals


def _identifier_owners(step: TableStep, catalog: Mapping[str, Dataset]) -> dict[str, str]:
    """Each identifier column of the job's datasets -> the dataset it is said to be of:
    the step's own first, then its link's, then the others by name. Checking refuses a
    key named as any of them (names are compared, never values), so submission does."""
    first = [step.dataset] + ([step.link.dataset] if step.link else [])
    order = [d for d in first if d in catalog] + sorted(d for d in catalog if d not in first)
    owner: dict[str, str] = {}
    for name in order:
        for column in catalog[name].columns:
            if column.sensitivity is Sensitivity.IDENTIFIER:
                owner.setdefault(column.name, name)
    return owner


def _filter_problems(where: str, filters: list[Filter], types: dict[str, str]) -> list[Refusal]:
    problems = []
    for f in filters:
        if f.value is None or f.column not in types:
            continue
        column_kind = _kind(types[f.column])
        values = f.value if isinstance(f.value, list) else [f.value]
        for value in values:
            kind = _value_kind(value)
            if column_kind in ("number", "text", "boolean") and kind != column_kind:
                problems.append(
                    Refusal(
                        RefusalCode.FILTER_TYPE,
                        f"{where}: filter on {f.column!r} ({types[f.column]}) compares it "
                        f"with {value!r} ({kind}); write a {column_kind} value"
                        + (" (quote text values)" if column_kind == "text" else ""),
                    )
                )
                break
    return problems
