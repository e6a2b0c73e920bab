"""Check one output (a table, a regression or a file) and say what a checker must know.

Each check returns a result with a `status` ("pass", "review" or "fail": the worst of
its parts) and a one-line `summary` a checker reads first. Nothing here prints or logs
row-level values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import polars as pl

from disclosure import aggregate
from disclosure.errors import DisclosureInputError
from disclosure.rules import STATUSES, Rules, apply_rules
from disclosure.validate import check_quantile

__all__ = [
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
    "worst",
]

STATUS_ORDER = STATUSES
DEFAULT_RULES = Rules()
COEFFICIENT_COLUMNS = ("term", "estimate", "std_error", "statistic", "p_value")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


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
    """A checked table: its cells with the rule outcomes, and the verdict."""

    kind: ClassVar[str] = "table"
    name: str
    rows: list[str]
    columns: list[str]
    value: str | None
    statistic: str
    quantile: float | None
    cells: pl.DataFrame  # finalized table + rule columns (see disclosure.rules.RULE_COLUMNS)
    status: str
    summary: str
    counts: dict[str, int]  # cells failing (or, for negative_values, needing review) per rule


@dataclass
class RegressionResult:
    """A checked regression: enough residual degrees of freedom, or not."""

    kind: ClassVar[str] = "regression"
    name: str
    model: str
    n_obs: int
    df_resid: int
    coefficients: pl.DataFrame  # term, estimate, std_error, statistic, p_value
    status: str
    summary: str
    reasons: list[str] = field(default_factory=list)
    min_dof: int = DEFAULT_RULES.min_dof


@dataclass
class FileResult:
    """A free-form file: never checked automatically, always reviewed by a person."""

    kind: ClassVar[str] = "file"
    name: str
    filename: str
    size: int
    sha256: str
    description: str = ""
    status: str = "review"
    summary: str = ""


Result = TableResult | RegressionResult | FileResult


def check_table(
    microdata: pl.DataFrame | pl.LazyFrame,
    *,
    name: str,
    rows: Sequence[str],
    columns: Sequence[str] = (),
    value: str | None = None,
    statistic: str = "count",
    quantile: float | None = None,
    rules: Rules = DEFAULT_RULES,
) -> TableResult:
    """Tabulate row-level data and check the table: `finalize(partial(...))`, then the rules."""
    keys = _table_keys(rows, columns)
    # The evidence must hold the dominance rule's n largest values (at least 2, the default).
    top_k = max(2, rules.dominance_n)
    merged = aggregate.partial(microdata, keys, value, statistic, top_k=top_k)
    cells = aggregate.finalize(merged, keys, statistic, quantile)
    return check_aggregated(
        cells,
        name=name,
        rows=list(rows),
        columns=list(columns),
        value=value,
        statistic=statistic,
        quantile=quantile,
        rules=rules,
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
) -> TableResult:
    """Check a table already finalized by `aggregate.finalize` (as the job engine has it)."""
    keys = _table_keys(rows, columns)
    check_quantile(statistic, quantile)
    absent = [key for key in keys if key not in cells.columns]
    if absent:
        raise DisclosureInputError(
            f"table {name!r} has no column(s) {', '.join(absent)} for its rows and columns",
            fix="pass the same rows and columns the table was computed with",
        )
    checked = apply_rules(cells, statistic, rules)
    counts = _rule_counts(checked)
    if checked.height == 0:
        status = "review"
    else:
        status = worst(checked.get_column("status").unique().to_list())
    return TableResult(
        name=name,
        rows=list(rows),
        columns=list(columns),
        value=value,
        statistic=statistic,
        quantile=quantile,
        cells=checked,
        status=status,
        summary=_table_summary(
            checked, counts, list(rows), list(columns), value, statistic, quantile
        ),
        counts=counts,
    )


def check_regression(
    *,
    name: str,
    model: str,
    n_obs: int,
    df_resid: int,
    coefficients: pl.DataFrame,
    rules: Rules,
) -> RegressionResult:
    """Check a fitted regression: it fails with fewer than `rules.min_dof` residual
    degrees of freedom (a saturated model can give back individual records)."""
    problems = [
        f"{what} is {number!r}; it must be a whole number of at least 0"
        for what, number in (("n_obs", n_obs), ("df_resid", df_resid))
        if isinstance(number, bool) or not isinstance(number, int) or number < 0
    ]
    if not problems and df_resid > n_obs:
        problems.append(f"df_resid {df_resid} is more than n_obs {n_obs}")
    absent = [c for c in COEFFICIENT_COLUMNS if c not in coefficients.columns]
    if absent:
        problems.append(f"the coefficients lack column(s) {', '.join(absent)}")
    if problems:
        raise DisclosureInputError(
            f"regression {name!r} cannot be checked",
            reasons=problems,
            fix="pass the fitted model's observation count, residual degrees of freedom and "
            f"coefficients ({', '.join(COEFFICIENT_COLUMNS)})",
        )
    reasons = []
    if df_resid < rules.min_dof:
        reasons.append(
            f"{df_resid} residual degrees of freedom, below the minimum of {rules.min_dof}"
        )
    verdict = "below" if reasons else "at least"
    terms = coefficients.height
    return RegressionResult(
        name=name,
        model=model,
        n_obs=n_obs,
        df_resid=df_resid,
        coefficients=coefficients.select(COEFFICIENT_COLUMNS),
        status="fail" if reasons else "pass",
        summary=(
            f"regression {model} ({n_obs} observations, {terms} term{'s' * (terms != 1)}): "
            f"{df_resid} residual degrees of freedom, {verdict} the minimum of {rules.min_dof}"
        ),
        reasons=reasons,
        min_dof=rules.min_dof,
    )


def check_file(
    *, name: str, filename: str, size: int, sha256: str, description: str = ""
) -> FileResult:
    """Record a free-form file (a figure, a text): always "review", since no rule can
    tell what a file reveals; a person must look at it."""
    problems = []
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        problems.append(f"size is {size!r}; it must be a number of bytes, at least 0")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        problems.append(f"sha256 is {sha256!r}; it must be 64 lower-case hex digits")
    if problems:
        raise DisclosureInputError(
            f"file output {name!r} cannot be recorded",
            reasons=problems,
            fix="pass the file's size in bytes and hashlib.sha256(content).hexdigest()",
        )
    return FileResult(
        name=name,
        filename=filename,
        size=size,
        sha256=sha256,
        description=description,
        status="review",
        summary=f"file {filename} ({format_size(size)}): a person must review any free-form file",
    )


def format_size(size: int) -> str:
    """Bytes as a person reads them: 512 B, 12.3 KiB, 4.0 MiB."""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


# --- helpers ----------------------------------------------------------------------------


def _table_keys(rows: Sequence[str], columns: Sequence[str]) -> list[str]:
    if isinstance(rows, str) or isinstance(columns, str) or not rows:
        raise DisclosureInputError(
            f"a table needs a list of row keys (and optionally column keys); got rows={rows!r}, "
            f"columns={columns!r}",
            fix='e.g. rows=["ward"], columns=["sex"]',
        )
    return [*rows, *columns]


def _rule_counts(checked: pl.DataFrame) -> dict[str, int]:
    """Cells caught by each rule, in one pass over the table."""
    names = {
        "threshold": "fails_threshold",
        "dominance": "fails_dominance",
        "negative_values": "negative_values",
        "min_max": "min_max",
    }
    totals = checked.select(pl.col(column).sum().alias(rule) for rule, column in names.items())
    return {rule: int(totals.get_column(rule)[0] or 0) for rule in names}


def _table_summary(
    checked: pl.DataFrame,
    counts: dict[str, int],
    rows: list[str],
    columns: list[str],
    value: str | None,
    statistic: str,
    quantile: float | None,
) -> str:
    """One line: the table's shape and statistic, and how many cells fail or need review."""
    if columns:
        shape = f"{checked.select(rows).unique().height}x{checked.select(columns).unique().height}"
    else:
        shape = f"of {checked.height} cells,"
    if statistic == "count":
        what = "counts"
    elif statistic == "quantile":
        what = f"quantile {quantile:g} of {value}"
    else:
        what = f"{statistic} of {value}"
    head = f"table {shape} {what}"
    total = checked.height
    if total == 0:
        return f"{head}: no cells (no rows in the data); a person must confirm that is expected"
    statuses = checked.get_column("status")
    failing, reviewing = int((statuses == "fail").sum()), int((statuses == "review").sum())
    labels = {
        "threshold": "below the threshold",
        "dominance": "dominated",
        "min_max": "min/max values",
    }
    parts = []
    if failing:
        detail = ", ".join(f"{counts[r]} {labels[r]}" for r in labels if counts[r])
        parts.append(f"{failing} of {total} cells fail ({detail})")
    if reviewing:
        parts.append(f"{reviewing} of {total} cells need review (negative values)")
    return f"{head}: {'; '.join(parts) or f'all {total} cells pass'}"
