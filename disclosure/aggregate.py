"""Mergeable per-cell aggregates, with the evidence disclosure control needs.

A table over many Parquet fragments is computed in three steps, so that row-level data
never leaves the workers that read it:

1. `partial(frame, keys, value, statistic, unit=...)` on each fragment: one row per cell
   (per cell and unit when the table has a unit-id column).
2. `merge(partials, keys, statistic, unit=...)` in a tree: associative and
   order-independent, with the same schema as a partial, so merges nest in any shape.
3. `finalize(merged, keys, statistic, quantile, unit=...)` once: the statistic and its
   evidence (`disclosure.finalize`); `margins(...)` the row, column and grand totals
   with the same evidence, from the same merged aggregate.

On a single table: ``finalize(partial(frame, keys, value, statistic), keys, statistic)``.

Partial columns (internal; the names start with ``_`` so they cannot clash with keys):

    <unit>              only with a unit-id column: one row per (cell, unit)
    _records            rows
    _n                  rows with a non-null value (= _records for a "count" with no
                        value column)
    _missing            rows whose value is null (NaN counts as null)
    _neg                any value < 0
    _sum, _min, _max    magnitude tables: the total, the smallest and the largest value
    _top1.._topK        magnitude tables without a unit: the K largest values (null if
                        fewer), the evidence of the dominance and p% rules. With a unit,
                        the largest *unit totals* are taken in `finalize`, since one
                        person's records may sit in several fragments.
    _m2                 "std": sum of squared deviations from the mean
    _values             "median" / "quantile" / "mode": every non-null value, so the
                        statistic is exact. These lists hold the values in worker memory
                        until `finalize`; they never leave the cluster, but a big table
                        needs memory in proportion to its rows.

Why per-(cell, unit) rows with a unit: the threshold counts distinct people and the
dominance rule needs each person's total, and neither merges from per-fragment
summaries when a person's records are split across fragments. The cost is a partial
as large as the number of (cell, person) pairs (see bench/README.md for the figures).

Why ``_m2`` and not a sum of squares: the textbook ``(sumsq - sum**2 / n) / (n - 1)``
cancels catastrophically when the mean is large against the spread (ages in days, costs
in pence); partial sums of squared deviations merge exactly (Chan et al., 1979).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from disclosure.combine import (
    KEY_SPACE,
    KEYSUM,
    LISTS,
    VALUE,
    collect,
    combine,
    partial_columns,
    split_tops,
    with_top_levels,
)
from disclosure.errors import DisclosureInputError
from disclosure.finalize import MAX_GRID_CELLS, finalize, margins, with_margins
from disclosure.validate import (
    EVIDENCE_COLUMNS,
    MAX_TOP_K,
    RESERVED_NAMES,
    STATISTICS,
    check_columns,
    check_keys,
    check_partial,
    check_record_key,
    check_statistic,
    check_top_k,
    check_unit,
    is_magnitude,
)

__all__ = [
    "EVIDENCE_COLUMNS",
    "MAX_GRID_CELLS",
    "MAX_TOP_K",
    "RESERVED_NAMES",
    "STATISTICS",
    "combine",
    "finalize",
    "is_magnitude",
    "margins",
    "merge",
    "partial",
    "partial_columns",
    "with_margins",
]


def partial(
    frame: pl.DataFrame | pl.LazyFrame,
    keys: list[str],
    value: str | None,
    statistic: str,
    top_k: int = 2,
    *,
    unit: str | None = None,
    record_key: str | None = None,
) -> pl.DataFrame:
    """Aggregate one piece of a table: one row per cell (per cell and unit with `unit`).

    `value` names a numeric column for every statistic but "count". A "count" without
    one counts records (a frequency table); with one, the records whose value is not
    null (NaN counts as null), of a column of any type. `top_k` largest values are kept
    per cell for the dominance and p% rules: it must be at least the dominance rule's n
    (and 2 for the p% rule).
    `unit` names a column identifying the contributor (a person or business): several
    records of one unit are then one contributor. `record_key` names a column of record
    keys (whole numbers below 2**32, `disclosure.cellkey`): each cell then carries the
    sum of its records' keys, from which `finalize` gives its `cell_key`.
    """
    check_statistic(statistic)
    check_keys(keys)
    check_top_k(top_k)
    check_unit(keys, unit)
    lazy = frame.lazy()
    check_columns(lazy.collect_schema(), keys, value, statistic, unit)
    check_record_key(lazy.collect_schema(), keys, value, unit, record_key)
    group = [*keys, *([unit] if unit else [])]
    keyed = record_key is not None
    columns = partial_columns(keys, statistic, top_k, unit, keyed=keyed)
    keysum = (
        [(pl.col(record_key).cast(pl.UInt64).sum() % KEY_SPACE).alias(KEYSUM)]
        if record_key is not None
        else []
    )

    if not is_magnitude(statistic):
        return collect(_counted(lazy, group, value, keysum).select(columns))

    assert value is not None  # check_columns refuses a magnitude table without one
    # NaN is not a number anyone contributed: treat it as missing so sums stay finite.
    values = pl.col(value).cast(pl.Float64).fill_nan(None).alias(VALUE)
    lazy = lazy.select(*group, values, *([pl.col(record_key)] if record_key else []))
    top_exprs: list[pl.Expr] = []
    if unit is None:
        lazy, top_exprs = with_top_levels(lazy, keys, top_k)
    v = pl.col(VALUE)
    aggs = [
        pl.len().cast(pl.Int64).alias("_records"),
        v.count().cast(pl.Int64).alias("_n"),
        v.null_count().cast(pl.Int64).alias("_missing"),
        (v < 0).any().alias("_neg"),
        v.sum().alias("_sum"),
        *top_exprs,
        v.min().alias("_min"),
        v.max().alias("_max"),
        *keysum,
    ]
    if statistic == "std":
        # var(ddof=0) * n is the cell's sum of squared deviations, computed stably by polars.
        aggs.append((v.var(ddof=0) * v.count()).fill_null(0.0).alias("_m2"))
    elif statistic in LISTS:
        aggs.append(v.drop_nulls().alias("_values"))
    aggregated = lazy.group_by(group).agg(aggs)
    if unit is None:
        aggregated = split_tops(aggregated, top_k)
    return collect(aggregated.select(columns))


def _counted(
    lazy: pl.LazyFrame, group: list[str], value: str | None, keysum: list[pl.Expr]
) -> pl.LazyFrame:
    """A count's partial: rows, and rows with a value when a value column is counted."""
    records = pl.len().cast(pl.Int64).alias("_records")
    if value is None:
        counted = lazy.group_by(group).agg(records, *keysum)
        with_value, missing = pl.col("_records"), pl.lit(0, pl.Int64)
    else:
        column = pl.col(value)
        if lazy.collect_schema()[value].is_float():
            column = column.fill_nan(None)  # NaN is missing, as in the magnitude tables
        counted = lazy.group_by(group).agg(
            records,
            column.count().cast(pl.Int64).alias("_n"),
            column.null_count().cast(pl.Int64).alias("_missing"),
            *keysum,
        )
        with_value, missing = pl.col("_n"), pl.col("_missing")
    return counted.with_columns(
        with_value.alias("_n"), missing.alias("_missing"), pl.lit(False).alias("_neg")
    )


def merge(
    partials: Sequence[pl.DataFrame],
    keys: list[str],
    statistic: str,
    top_k: int = 2,
    *,
    unit: str | None = None,
) -> pl.DataFrame:
    """Combine partials (or earlier merges) of the same table into one, cell by cell.

    Associative and order-independent: merge in any tree shape and get the same cells.
    """
    check_statistic(statistic)
    check_keys(keys)
    check_top_k(top_k)
    check_unit(keys, unit)
    if not partials:
        raise DisclosureInputError(
            "merge() needs at least one partial aggregate, and got none",
            fix="pass the list of partial() results for the table's fragments",
        )
    keyed = KEYSUM in partials[0].columns
    columns = partial_columns(keys, statistic, top_k, unit, keyed=keyed)
    for index, part in enumerate(partials):
        check_partial(part, columns, f"partial number {index + 1}")
    stacked = pl.concat([p.select(columns) for p in partials], how="vertical_relaxed")
    group = [*keys, *([unit] if unit else [])]
    return combine(stacked, group, statistic, top_k=0 if unit else top_k).select(columns)
