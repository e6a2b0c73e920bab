"""Which rows a table counts, as the differencing check is told: datasets (with
versions), link, filters, and what the data says about the filtered columns.

Filters go to `disclosure.populations` in a canonical text ("ltc_count <= 7"), with each
filtered column's kind ("integer" reads `> 7` as `>= 8`). A condition that every value
of its column meets, by the range noted at ingest (`tre.secured.domains`), is recorded
as "not null": "ltc_count >= 0" over counts that are never negative keeps exactly the
rows with a count, and recorded so it holds "ltc_count <= 7", whose difference from it
is then a proven small group. The range itself is never recorded (it can be one
person's value): only the verdict, which says no more than "every count is at least 0".
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from disclosure.populations import Interval, ValueSet, condition_set
from jobs.outputs import Output, TableOutput
from jobs.spec import JobSpec, PythonStep, TableStep
from tre.models import Job
from tre.store import repo
from tre.store.domains import get_domains

__all__ = ["filter_text", "population_of"]


def population_of(
    conn: sqlite3.Connection, output: Output, spec: JobSpec, job: Job
) -> dict[str, Any] | None:
    """The population of a table output (None for other outputs). Filters are unknown
    (None) for a python step's tables."""
    if not isinstance(output, TableOutput):
        return None
    step = next((s for s in spec.steps if s.name == output.step), None)
    versions = {name: job.dataset_versions.get(name) for name in sorted(output.datasets)}
    if isinstance(step, TableStep):
        link = step.link
        columns = sorted({f.column for f in step.filter})
        kinds, ranges = _columns(conn, versions, columns)
        written = sorted(filter_text(f.column, f.op, f.value) for f in step.filter)
        filters = sorted(
            _recorded(f.column, f.op, f.value, kinds.get(f.column), ranges.get(f.column))
            for f in step.filter
        )
        found = {
            "datasets": versions,
            "link": f"{link.dataset} on {link.on} ({link.how})" if link else None,
            "filters": filters,
            "types": kinds,
        }
        # The checkers read the filters as the researcher wrote them too.
        return found | ({"written": written} if written != filters else {})
    if isinstance(step, PythonStep):
        return {"datasets": versions, "link": None, "filters": None}
    return None


def filter_text(column: str, op: str, value: object) -> str:
    """One filter in a canonical form, so the same filter written twice compares equal."""
    if isinstance(value, list):
        value = sorted(value, key=lambda v: (type(v).__name__, v))
    shown = "" if value is None else " " + json.dumps(value, sort_keys=True)
    return f"{column} {op}{shown}"


def _recorded(
    column: str, op: str, value: object, kind: str | None, values: ValueSet | None
) -> str:
    """The filter as recorded: "column not null" where every value noted meets it."""
    if values is not None and op not in ("is null", "not null"):
        kept = condition_set(op, value, kind == "integer")
        integer = kind == "integer"
        if kept is not None and values.intervals and values.within(kept, integer):
            return filter_text(column, "not null", None)
    return filter_text(column, op, value)


def _columns(
    conn: sqlite3.Connection, versions: dict[str, int | None], columns: list[str]
) -> tuple[dict[str, str], dict[str, ValueSet]]:
    """Each filtered column's kind, and the values every dataset version holding it has
    (the union across datasets; a column with no noted range in any of them has none)."""
    kinds: dict[str, str] = {}
    ranges: dict[str, ValueSet] = {}
    unknown: set[str] = set()
    for name, version in versions.items():
        if version is None:
            unknown.update(columns)
            continue
        dataset = repo.find_dataset(conn, name, version)
        if dataset is None:
            unknown.update(columns)
            continue
        noted = (get_domains(conn, name, version) or {}).get("columns", {})
        for column in columns:
            info = dataset.column(column)
            if info is None:
                continue
            kinds[column] = _kind(info.type)
            found = _values(noted.get(column))
            if found is None:
                unknown.add(column)
            else:
                before = ranges.get(column)
                ranges[column] = found if before is None else _union(before, found)
    return kinds, {c: v for c, v in ranges.items() if c not in unknown}


def _kind(arrow_type: str) -> str:
    if arrow_type.startswith(("int", "uint")):
        return "integer"
    if arrow_type in ("float", "double", "halffloat") or arrow_type.startswith("decimal"):
        return "number"
    if arrow_type == "bool":
        return "boolean"
    return "text" if "string" in arrow_type else "other"


def _values(entry: dict[str, Any] | None) -> ValueSet | None:
    """A noted range as a set of values (its nulls aside: every filter but `is null`
    leaves them out anyway)."""
    if not entry:
        return None
    if "min" in entry and "max" in entry:
        return ValueSet((Interval(entry["min"], True, entry["max"], True),), False)
    if "values" in entry:
        points = [Interval(v, True, v, True) for v in entry["values"]]
        return ValueSet(tuple(points), False)
    return None


def _union(one: ValueSet, two: ValueSet) -> ValueSet:
    return ValueSet((*one.intervals, *two.intervals), one.nulls or two.nulls)
