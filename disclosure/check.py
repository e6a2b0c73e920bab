"""Check one output (a table, a regression or a file) and say what a checker must know.

Each check returns a result with a `status` ("pass", "review" or "fail") and a one-line
`summary` a checker reads first. For a table, `check_status` is the worst of its cells
as computed, and `status` is that of the table as it would be released: after
suppression and rounding (`disclosure.protect`), a table whose failing cells are all
suppressed is "review" (a person confirms the protected table), and "fail" only if it
still cannot be released. Nothing here prints or logs row-level values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from disclosure import aggregate, perturbation
from disclosure.errors import DisclosureInputError
from disclosure.other_outputs import (
    FileResult,
    RegressionResult,
    check_file,
    check_regression,
    format_size,
)
from disclosure.protect import ProtectionOutcome, protect
from disclosure.protection import Protection
from disclosure.rules import STATUSES, Rules, apply_rules
from disclosure.table_summary import rule_counts, table_summary
from disclosure.validate import MARGIN, check_quantile, check_unit

__all__ = [
    "DEFAULT_PROTECTION",
    "DEFAULT_RULES",
    "STATUS_ORDER",
    "FileResult",
    "RegressionResult",
    "Result",
    "TableResult",
    "check_aggregated",
    "check_file",
    "check_regression",
    "check_table",
    "format_size",
    "worst",
]

STATUS_ORDER = STATUSES
DEFAULT_RULES = Rules()
DEFAULT_PROTECTION = Protection()


def worst(statuses: Iterable[str]) -> str:
    """The worst of `statuses` ("fail" > "review" > "pass"); "pass" when there are none."""
    found = list(statuses)
    unknown = sorted({s for s in found if s not in STATUS_ORDER})
    if unknown:
        raise DisclosureInputError(
            f"unknown status(es) {', '.join(map(repr, unknown))}",
            fix=f"use one of: {', '.join(STATUS_ORDER)}",
        )
    return max(found, key=STATUS_ORDER.index, default="pass")


@dataclass
class TableResult:
    """A checked and protected table: its cells and totals, and the verdict."""

    kind: ClassVar[str] = "table"
    name: str
    rows: list[str]
    columns: list[str]
    value: str | None
    statistic: str
    quantile: float | None
    # Cells then totals (column `margin`): evidence, rule outcomes (disclosure.rules)
    # and how each is published (disclosure.protect).
    cells: pl.DataFrame
    status: str  # of the table as released (after protection and cross-output checks)
    summary: str
    counts: dict[str, int]  # inner cells caught by each rule, and failing totals
    check_status: str = ""  # the worst cell or total before protection
    protection: ProtectionOutcome | None = None
    rules: Rules = DEFAULT_RULES
    protection_policy: Protection = DEFAULT_PROTECTION
    unit: str | None = None
    population: dict[str, Any] | None = None  # what rows it counts (for differencing)
    findings: list[Any] = field(default_factory=list)  # disclosure.differencing.Finding
    advisory: str = ""  # why its evidence is not tre's own (disclosure.advisory), if so
    provenance: str = ""  # who computed its evidence, when a checker should be told

    @property
    def keys(self) -> list[str]:
        """The row keys, then the column keys."""
        return [*self.rows, *self.columns]

    @property
    def inner_cells(self) -> pl.DataFrame:
        """The table's cells alone, without its totals: one row per combination of the
        keys, with its evidence, rule flags, status, reason and protection."""
        return self.cells.filter(pl.col(MARGIN) == "")

    @property
    def totals(self) -> pl.DataFrame:
        """The row, column and grand totals alone (`margin` says which; the keys a total
        sums over are null). Empty when the table has no totals."""
        return self.cells.filter(pl.col(MARGIN) != "")

    def inner(self) -> pl.DataFrame:
        """The table's cells without its totals (the same as `inner_cells`)."""
        return self.inner_cells

    def cell(self, **levels: object) -> dict[str, Any]:
        """One inner cell as a dict, found by the level of every key, e.g.
        ``result.cell(ward="a", sex="f")``; a level of None finds a missing level."""
        unknown = sorted(set(levels) - set(self.keys))
        absent = [key for key in self.keys if key not in levels]
        if unknown or absent:
            raise DisclosureInputError(
                f"a cell of table {self.name!r} is found by the level of each of its keys "
                f"({', '.join(self.keys)})",
                reasons=[f"{key!r} is not a key of the table" for key in unknown]
                + [f"no level given for {key!r}" for key in absent],
                fix="name every key once, e.g. result.cell("
                + ", ".join(f"{key}=..." for key in self.keys)
                + ")",
            )
        found = self.inner_cells.filter(
            *(
                pl.col(key).is_null() if level is None else pl.col(key) == level
                for key, level in levels.items()
            )
        )
        if found.height != 1:
            raise DisclosureInputError(
                f"table {self.name!r} has no cell "
                + ", ".join(f"{key}={level!r}" for key, level in levels.items()),
                fix="use levels that appear in result.inner_cells",
            )
        return found.row(0, named=True)


Result = TableResult | RegressionResult | FileResult


def table_grid(rows: Sequence[str], columns: Sequence[str]) -> list[list[str]]:
    """Complete rows x columns, as a cross-tabulation does: combinations within the row
    keys (a ward within its authority) are kept as observed, never invented."""
    return [list(rows), list(columns)] if columns else [list(rows)]


def check_table(
    microdata: pl.DataFrame | pl.LazyFrame,
    *,
    name: str,
    rows: Sequence[str],
    columns: Sequence[str] = (),
    value: str | None = None,
    statistic: str = "count",
    quantile: float | None = None,
    unit: str | None = None,
    rules: Rules = DEFAULT_RULES,
    protection: Protection = DEFAULT_PROTECTION,
    population: Mapping[str, Any] | None = None,
    record_key: str | None = None,
) -> TableResult:
    """Tabulate row-level data and check the table: its cells and totals with their
    evidence (`aggregate`), the rules, then protection.

    A "count" counts every record, or with a `value` column (of any type) the records
    whose value is not null: those who had a test, say.
    `unit` names a column identifying each contributor (a person or business): several
    records of one unit count once for the threshold, and the dominance rules use unit
    totals. `population` describes which rows were tabulated (dataset, filters) for
    the cross-output checks of `disclosure.differencing`. `record_key` names the data's
    record keys (`disclosure.cellkey`): with `Protection(cell_key=True)` a count table is
    then published with noise instead of suppressed (`disclosure.perturbation`).
    """
    keys = _table_keys(rows, columns)
    merged = aggregate.partial(
        microdata, keys, value, statistic, top_k=rules.top_k, unit=unit, record_key=record_key
    )
    cells = aggregate.with_margins(
        merged,
        keys,
        statistic,
        quantile,
        grid=table_grid(rows, columns),
        unit=unit,
        top_k=rules.top_k,
    )
    return check_aggregated(
        cells,
        name=name,
        rows=list(rows),
        columns=list(columns),
        value=value,
        statistic=statistic,
        quantile=quantile,
        rules=rules,
        protection=protection,
        unit=unit,
        population=population,
    )


def check_aggregated(
    cells: pl.DataFrame,
    *,
    name: str,
    rows: Sequence[str],
    columns: Sequence[str],
    value: str | None,
    statistic: str,
    quantile: float | None = None,
    rules: Rules,
    protection: Protection = DEFAULT_PROTECTION,
    unit: str | None = None,
    population: Mapping[str, Any] | None = None,
) -> TableResult:
    """Check a table that is already aggregated, with its evidence: the output of
    `aggregate.with_margins` (what the job engine has) or of `aggregate.finalize`, or
    per-cell evidence computed elsewhere (see `disclosure.rules.complete_evidence`).

    Without a `margin` column the table has no published totals; secondary suppression
    still assumes its row and column totals can be known.
    """
    keys = _table_keys(rows, columns)
    check_quantile(statistic, quantile)
    check_unit(keys, unit)
    absent = [key for key in keys if key not in cells.columns]
    if absent:
        raise DisclosureInputError(
            f"table {name!r} has no column(s) {', '.join(absent)} for its rows and columns",
            fix="pass the same rows and columns the table was computed with",
        )
    if MARGIN not in cells.columns:
        cells = cells.with_columns(pl.lit("").alias(MARGIN))
    checked = apply_rules(cells, statistic, rules)
    if perturbation.applies(checked, statistic, protection):
        protected, outcome = perturbation.perturbed(checked, protection)
    else:
        protected, outcome = protect(
            checked, list(rows), list(columns), statistic, protection, rules=rules
        )
    counts = rule_counts(protected)
    statuses = protected.get_column("status").unique().to_list()
    check_status = worst(statuses) if protected.height else "review"
    return TableResult(
        name=name,
        rows=list(rows),
        columns=list(columns),
        value=value,
        statistic=statistic,
        quantile=quantile,
        cells=protected,
        status=released_status(protected, outcome, protection),
        summary=table_summary(
            protected, counts, outcome, list(rows), list(columns), value, statistic, quantile
        ),
        counts=counts,
        check_status=check_status,
        protection=outcome,
        rules=rules,
        protection_policy=protection,
        unit=unit,
        population=dict(population) if population is not None else None,
    )


def released_status(cells: pl.DataFrame, outcome: ProtectionOutcome, protection: Protection) -> str:
    """The status of the table as it would be released.

    "fail" while a failing cell would be published, when every cell is suppressed
    (nothing is left to release) or protection could not be completed; "review" when
    anything was suppressed or a published cell needs review; else "pass". Totals count
    only when published as computed (rounded tables publish sums of published cells).
    """
    inner = pl.col(MARGIN) == ""
    if cells.filter(inner).height == 0:
        return "review"  # no data at all: a person confirms that is expected
    if not outcome.complete or outcome.published_cells == 0:
        return "fail"
    if outcome.cell_key:
        return "review"  # every count is published with noise: a checker looks
    shown = pl.col("suppressed") == ""
    if protection.totals and not protection.rounds:
        visible = cells.filter(shown)
    else:
        visible = cells.filter(shown & inner)
    status = worst(visible.get_column("status").unique().to_list())
    if status == "pass" and outcome.suppressed:
        return "review"
    return status


def _table_keys(rows: Sequence[str], columns: Sequence[str]) -> list[str]:
    if isinstance(rows, str) or isinstance(columns, str) or not rows:
        raise DisclosureInputError(
            f"a table needs a list of row keys (and optionally column keys); got rows={rows!r}, "
            f"columns={columns!r}",
            fix='e.g. rows=["ward"], columns=["sex"]',
        )
    return [*rows, *columns]
