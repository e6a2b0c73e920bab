"""Differencing: outputs that are safe alone but disclose together.

Checked for every pair of tables within one output request, and between each new table
and the tables the project has already released (a ledger the service keeps). Two
tables are compared only when they count the same thing (`measure`: records, or
contributors with a value of the same column) over related populations (`population`:
the same datasets, link and filters, or filters one of which contains the other's):

- recoverable: same population, one table's keys within the other's (nested tables, a
  table and its margins elsewhere, the same table twice with different suppression).
  A suppressed cell that the published cells of both determine exactly, and neither
  alone, is a finding with status "fail" (`disclosure.recovery`). A pair too large for
  that check (`disclosure.pairs.MAX_RECOVERY_*`) is an "unchecked" finding of the same
  status: the check is bounded before it allocates, and a checker decides.
- difference: one population inside the other (a filter more, or a wider condition:
  `disclosure.populations` reads filters as intervals and sets, so "ltc_count <= 7" is
  inside "ltc_count not null"), or the same table over two versions of a dataset: on
  their common keys, a cell whose counts differ by between 1 and threshold - 1 shows a
  small group. "fail" when the nesting is proven by the filters; "review" when it is
  only likely (filters unknown, as in a python step, with every count of one at most
  the other's), across dataset versions, or for overlapping populations (each with rows
  the other lacks: the difference is one group less another, which is the first group
  to anyone who knows the other is empty).

Rounded tables are left out: the exact arithmetic above does not hold for them, and
rounding is itself the protection against differencing that OpenSAFELY relies on.
- combination: three or more tables that together give a small group's count, which
  no two of them do (`disclosure.combinations`, solved over each group of tables after
  the pairs, when the budget is not spent). Status "fail".

`check_request` attaches findings to the tables of a request: within one request its
outputs become "review" (the checkers must not approve them all: `tre.service.review`
enforces it for "fail" findings); against released tables the new one takes the status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from disclosure.check import Result, TableResult, worst
from disclosure.combinations import Combination, find_combinations
from disclosure.findings import EXAMPLES, Finding
from disclosure.pairs import Counts, counts, pair, values_text
from disclosure.populations import relation
from disclosure.published import (
    PublishedTable,
    measure_of,
    published_from_report,
    published_view,
)

__all__ = [
    "Budget",
    "Finding",
    "PublishedTable",
    "check_request",
    "find_differencing",
    "measure_of",
    "published_from_report",
    "published_view",
    "relation",
]


def check_request(
    results: Sequence[Result],
    released: Sequence[PublishedTable] = (),
    budget: Budget | None = None,
) -> list[Finding]:
    """Find differencing among the request's tables and against `released`, within
    `budget`; attach each finding to its tables and raise their status (see the module
    docstring)."""
    tables = {r.name: r for r in results if isinstance(r, TableResult)}
    views = [published_view(r) for r in tables.values()]
    findings = find_differencing(views, released, budget)
    for finding in findings:
        named = [tables[name] for name in finding.new_outputs]
        for table in named:
            table.findings.append(finding)
            # Within a request the checkers choose which to release (never all of them:
            # tre.service.review); against released tables the new one takes the status.
            status = "review" if finding.within_request else finding.status
            table.status = worst([table.status, status])
    return findings


@dataclass(frozen=True)
class Budget:
    """How much differencing one request may cost (the TRE's limits, `policies.limits`):
    pairs of tables compared, and seconds. Past either, the check stops and every table
    with a pair left uncompared gets an "unchecked" finding for a checker."""

    pairs: int = 20_000
    seconds: float = 60.0


def find_differencing(
    new: Sequence[PublishedTable],
    released: Sequence[PublishedTable] = (),
    budget: Budget | None = None,
) -> list[Finding]:
    """Every finding among the `new` tables, and between each and the `released` ones,
    within `budget`.

    Only candidate pairs are compared: tables of the same measure over the same datasets
    and link (the only ones `relation` can relate), neither rounded. Two tables that
    publish exactly the same cells over the same population reveal nothing together, and
    are passed over without a comparison (a job of 200 alike steps costs nothing)."""
    budget = budget or Budget()
    started = time.monotonic()
    groups: dict[str, tuple[list[PublishedTable], list[PublishedTable]]] = {}
    for table in new:
        if (group := _group(table)) is not None:
            groups.setdefault(group, ([], []))[0].append(table)
    for table in released:
        if (group := _group(table)) is not None and group in groups:
            groups[group][1].append(table)
    findings: list[Finding] = []
    compared = 0
    left: dict[str, int] = {}  # new table -> pairs not compared when the budget ran out
    cache: Counts = {}
    for fresh, old in groups.values():
        alike = _classes([*fresh, *old])
        for index, first in enumerate(fresh):
            for second in [*fresh[index + 1 :], *old]:
                if alike[id(first)] == alike[id(second)]:
                    continue  # the same cells over the same population: nothing new
                if left or compared >= budget.pairs or time.monotonic() - started > budget.seconds:
                    left[first.name] = left.get(first.name, 0) + 1
                    if second.job_id is None:
                        left[second.name] = left.get(second.name, 0) + 1
                    continue
                compared += 1
                findings += pair(first, second, cache)
        if not left:  # three or more tables together: solved over the group at once
            found = find_combinations([*fresh, *old], lambda t, keys: counts(t, keys, cache))
            findings += [_combination(c) for c in found]
    findings += [_over_budget(name, count, budget) for name, count in left.items()]
    return findings


def _combination(found: Combination) -> Finding:
    tables = sorted(found.tables, key=lambda t: t.job_id is not None)  # the new first
    threshold = max(t.threshold for t in tables)
    labels = [values_text(list(found.keys), values) for values in found.cells]
    names = ", ".join(t.label for t in tables[:-1]) + f" and {tables[-1].label}"
    message = (
        f"{names} together give the count of a group no table publishes ({found.group}): "
        f"between 1 and {threshold - 1} in {len(labels)} cell{'s' * (len(labels) != 1)}"
    )
    return Finding(
        kind="combination",
        status="fail",
        outputs=tuple(t.name for t in tables),
        jobs=tuple(t.job_id for t in tables),
        message=message,
        cells=tuple(labels[:EXAMPLES]),
        count=len(labels),
    )


def _group(table: PublishedTable) -> str | None:
    """Tables that `_pair` could relate share a group (None: related to no table)."""
    if table.rounded_to or table.perturbed or table.population is None:
        return None
    population = table.population
    datasets = sorted(dict(population.get("datasets") or {}))
    return json.dumps([table.measure, datasets, population.get("link")], default=str)


def _classes(tables: list[PublishedTable]) -> dict[int, int]:
    """For each table (by object id), the number of its class of tables that publish
    exactly the same cells over the same population. A hash finds the candidates; each
    is confirmed against its class's first table (a collision must not hide a pair)."""
    found: dict[int, int] = {}
    firsts: dict[int, list[tuple[int, PublishedTable]]] = {}
    for table in tables:
        ordered = table.cells.select(sorted(table.cells.columns))
        cells = sorted(ordered.hash_rows(seed=0).to_list())
        population = json.dumps(table.population, sort_keys=True, default=str)
        print_ = hash((repr(table.keys), population, table.threshold, tuple(cells)))
        candidates = firsts.setdefault(print_, [])
        number = next((n for n, first in candidates if _same(first, table)), None)
        if number is None:
            number = len(found) + 1
            candidates.append((number, table))
        found[id(table)] = number
    return found


def _same(first: PublishedTable, second: PublishedTable) -> bool:
    """Whether two tables with equal fingerprints publish exactly the same (a hash match
    is confirmed, never trusted: a collision must not hide a pair)."""
    if first.keys != second.keys or first.population != second.population:
        return False
    columns = sorted(first.cells.columns)
    if columns != sorted(second.cells.columns):
        return False
    a = first.cells.select(columns).sort(columns, nulls_last=True)
    b = second.cells.select(columns).sort(columns, nulls_last=True)
    return a.equals(b)


def _over_budget(name: str, count: int, budget: Budget) -> Finding:
    message = (
        f"{name} was not compared with {count:,} other table{'s' * (count != 1)} of this job "
        "or of the project's releases: the differencing check stopped at the TRE's limit "
        f"({budget.pairs:,} pairs of tables or {budget.seconds:g} seconds per job). A checker "
        "must decide whether together they disclose, or the job can be split into smaller "
        "jobs"
    )
    return Finding("unchecked", "review", (name, ""), (None, None), message, (), count)
