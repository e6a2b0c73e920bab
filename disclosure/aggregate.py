"""Mergeable per-cell aggregates, with the evidence disclosure control needs.

A table over many Parquet fragments is computed in three steps, so that row-level data
never leaves the workers that read it:

1. `partial(frame, keys, value, statistic)` on each fragment: one row per cell.
2. `merge(partials, keys, statistic)` in a tree: associative and order-independent,
   with the same schema as a partial, so merges can be nested in any shape.
3. `finalize(merged, keys, statistic, quantile)` once: the statistic and its evidence.

On a single table: ``finalize(partial(frame, keys, value, statistic), keys, statistic)``.

Partial columns (internal; the names start with ``_`` so they cannot clash with keys):

    _records            rows in the cell
    _n                  contributors: rows with a non-null value (= _records for "count")
    _missing            rows whose value is null (NaN counts as null)
    _neg                any value < 0
    _sum, _top1.._topK  magnitude tables: the total and the K largest values (null if fewer),
                        the evidence of the (n, k) dominance rule
    _m2                 "std": sum of squared deviations from the cell mean
    _min / _max         "min" / "max"
    _values             "median" / "quantile": every non-null value of the cell, so the
                        quantile is exact. These lists hold the values in worker memory
                        until `finalize`; they never leave the cluster, but a big table
                        needs memory in proportion to its rows.

`finalize` output, the evidence contract that `disclosure.rules` and the report read:

    <keys>      the cell; with 2+ keys every combination of observed levels is present
    value       Float64: the statistic ("count": the number of records)
    n           Int64: contributors (records with a value; records for "count")
    records     Int64: rows in the cell
    sum         Float64: total of the values (null for "count")
    top         List[Float64]: the largest values, descending (at most top_k; fewer if n < top_k)
    negative    Boolean: the cell has a negative value
    missing     Int64: rows whose value is null

Why ``_m2`` and not a sum of squares: the textbook ``(sumsq - sum**2 / n) / (n - 1)``
cancels catastrophically when the mean is large against the spread (ages in days, costs
in pence); partial sums of squared deviations merge exactly (Chan et al., 1979).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import polars as pl

from disclosure.errors import DisclosureInputError
from disclosure.validate import (
    EVIDENCE_COLUMNS,
    MAX_TOP_K,
    RESERVED_NAMES,
    STATISTICS,
    check_columns,
    check_grid,
    check_keys,
    check_partial,
    check_quantile,
    check_statistic,
    check_top_k,
    is_magnitude,
)

__all__ = [
    "EVIDENCE_COLUMNS",
    "MAX_GRID_CELLS",
    "MAX_TOP_K",
    "RESERVED_NAMES",
    "STATISTICS",
    "finalize",
    "is_magnitude",
    "merge",
    "partial",
    "partial_columns",
]

#: `finalize` refuses to build a full grid larger than this: a table of millions of
#: cells can be neither checked by a person nor released, and would exhaust memory.
MAX_GRID_CELLS = 2_000_000

_VALUE = "_v"  # the value column, cast to Float64, inside `partial`
_TOP = re.compile(r"^_top(\d+)$")


def partial_columns(keys: Sequence[str], statistic: str, top_k: int = 2) -> list[str]:
    """The columns of a partial (and a merge) for this table, in order."""
    columns = [*keys, "_records", "_n", "_missing", "_neg"]
    if not is_magnitude(statistic):
        return columns
    columns += ["_sum", *(f"_top{i}" for i in range(1, top_k + 1))]
    columns += {"std": ["_m2"], "min": ["_min"], "max": ["_max"]}.get(statistic, [])
    if statistic in ("median", "quantile"):
        columns.append("_values")
    return columns


def partial(
    frame: pl.DataFrame | pl.LazyFrame,
    keys: list[str],
    value: str | None,
    statistic: str,
    top_k: int = 2,
) -> pl.DataFrame:
    """Aggregate one piece of a table: one row per cell, with the internal columns.

    `value` is None for "count" (a frequency table) and names a numeric column for every
    other statistic. `top_k` largest values are kept per cell for the dominance rule:
    it must be at least the rule's `dominance_n`.
    """
    check_statistic(statistic)
    check_keys(keys)
    check_top_k(top_k)
    lazy = frame.lazy()
    check_columns(lazy.collect_schema(), keys, value, statistic)

    if not is_magnitude(statistic):
        counted = lazy.group_by(keys).agg(pl.len().cast(pl.Int64).alias("_records"))
        return _collect(
            counted.with_columns(
                pl.col("_records").alias("_n"),
                pl.lit(0, pl.Int64).alias("_missing"),
                pl.lit(False).alias("_neg"),
            ).select(partial_columns(keys, statistic))
        )

    assert value is not None  # check_columns refuses a magnitude table without one
    # NaN is not a number anyone contributed: treat it as missing so sums stay finite.
    values = pl.col(value).cast(pl.Float64).fill_nan(None).alias(_VALUE)
    lazy = lazy.select(*keys, values)
    lazy, top_exprs = _with_top_levels(lazy, keys, top_k)
    v = pl.col(_VALUE)
    aggs = [
        pl.len().cast(pl.Int64).alias("_records"),
        v.count().cast(pl.Int64).alias("_n"),
        v.null_count().cast(pl.Int64).alias("_missing"),
        (v < 0).any().alias("_neg"),
        v.sum().alias("_sum"),
        *top_exprs,
    ]
    if statistic == "std":
        # var(ddof=0) * n is the cell's sum of squared deviations, computed stably by polars.
        aggs.append((v.var(ddof=0) * v.count()).fill_null(0.0).alias("_m2"))
    elif statistic == "min":
        aggs.append(v.min().alias("_min"))
    elif statistic == "max":
        aggs.append(v.max().alias("_max"))
    elif statistic in ("median", "quantile"):
        aggs.append(v.drop_nulls().alias("_values"))
    aggregated = lazy.group_by(keys).agg(aggs)
    return _collect(_split_tops(aggregated, top_k).select(partial_columns(keys, statistic, top_k)))


def merge(
    partials: Sequence[pl.DataFrame], keys: list[str], statistic: str, top_k: int = 2
) -> pl.DataFrame:
    """Combine partials (or earlier merges) of the same table into one, cell by cell.

    Associative and order-independent: merge in any tree shape and get the same cells.
    """
    check_statistic(statistic)
    check_keys(keys)
    check_top_k(top_k)
    if not partials:
        raise DisclosureInputError(
            "merge() needs at least one partial aggregate, and got none",
            fix="pass the list of partial() results for the table's fragments",
        )
    columns = partial_columns(keys, statistic, top_k)
    for index, part in enumerate(partials):
        check_partial(part, columns, f"partial number {index + 1}")
    stacked = pl.concat([p.select(columns) for p in partials], how="vertical_relaxed")

    aggs = [
        pl.col("_records").sum(),
        pl.col("_n").sum(),
        pl.col("_missing").sum(),
        pl.col("_neg").any(),
    ]
    if is_magnitude(statistic):
        tops = [f"_top{i}" for i in range(1, top_k + 1)]
        candidates = pl.concat_list(tops).list.explode(keep_nulls=False, empty_as_null=False)
        # top_k() does not promise an order; the _topN columns must be descending.
        largest = candidates.top_k(top_k).sort(descending=True)
        aggs += [pl.col("_sum").sum(), largest.alias("_tops")]
    if statistic == "std":
        aggs.append(_merged_m2())
    elif statistic == "min":
        aggs.append(pl.col("_min").min())
    elif statistic == "max":
        aggs.append(pl.col("_max").max())
    elif statistic in ("median", "quantile"):
        aggs.append(
            pl.col("_values").list.explode(keep_nulls=False, empty_as_null=False).alias("_values")
        )
    merged = stacked.lazy().group_by(keys).agg(aggs)
    if is_magnitude(statistic):
        merged = merged.with_columns(
            pl.col("_tops").list.get(i - 1, null_on_oob=True).alias(f"_top{i}")
            for i in range(1, top_k + 1)
        )
    return _collect(merged.select(columns))


def finalize(
    merged: pl.DataFrame,
    keys: list[str],
    statistic: str,
    quantile: float | None = None,
    *,
    grid: Sequence[Sequence[str]] | None = None,
) -> pl.DataFrame:
    """The finished table: keys, the statistic as `value`, and the evidence columns.

    With two or more keys the grid is completed: every combination of the observed levels
    appears, absent ones as empty cells (n = 0), since an empty cell can be disclosive.
    `grid` groups the keys whose observed combinations are crossed instead (default: each
    key alone). ``grid=[rows, columns]`` completes only rows x columns, as pandas.crosstab
    and ACRO do, so nested keys (ward within district) do not invent impossible cells.
    """
    check_statistic(statistic)
    check_keys(keys)
    check_quantile(statistic, quantile)
    groups = [[key] for key in keys] if grid is None else [list(group) for group in grid]
    check_grid(keys, groups)
    # A magnitude aggregate has at least _top1; expecting it makes a wrong input say so.
    top_k = max(_top_k_of(merged), 1) if is_magnitude(statistic) else 0
    check_partial(merged, partial_columns(keys, statistic, top_k), "the merged aggregate")

    n = pl.col("_n")
    empty_top = pl.lit([], dtype=pl.List(pl.Float64))
    if is_magnitude(statistic):
        total = pl.col("_sum").cast(pl.Float64)
        top = pl.concat_list(f"_top{i}" for i in range(1, top_k + 1)).list.drop_nulls()
    else:
        total = pl.lit(None, pl.Float64)
        top = empty_top
    cells = merged.select(
        *keys,
        _statistic(statistic, quantile).cast(pl.Float64).alias("value"),
        n.cast(pl.Int64).alias("n"),
        pl.col("_records").cast(pl.Int64).alias("records"),
        total.alias("sum"),
        top.cast(pl.List(pl.Float64)).alias("top"),
        pl.col("_neg").cast(pl.Boolean).alias("negative"),
        pl.col("_missing").cast(pl.Int64).alias("missing"),
    )
    if len(groups) >= 2:
        cells = _complete_grid(cells, groups, statistic)
    return cells.sort(keys, nulls_last=True)


# --- the statistic ----------------------------------------------------------------------


def _statistic(statistic: str, quantile: float | None) -> pl.Expr:
    """The finalized value of `statistic` from the merged internal columns."""
    n = pl.col("_n")
    match statistic:
        case "count":
            return pl.col("_records")
        case "sum":
            return pl.when(n > 0).then(pl.col("_sum"))
        case "mean":
            return pl.when(n > 0).then(pl.col("_sum") / n)
        case "std":
            # Sample standard deviation (ddof=1), as pandas and R report it.
            return pl.when(n >= 2).then((pl.col("_m2").clip(lower_bound=0.0) / (n - 1)).sqrt())
        case "min":
            return pl.col("_min")
        case "max":
            return pl.col("_max")
        case "median":
            return pl.col("_values").list.median()
        case "quantile":
            assert quantile is not None  # check_quantile guarantees it
            # Linear interpolation: numpy's, pandas' and R's type 7 default.
            return (
                pl.col("_values")
                .list.eval(pl.element().quantile(quantile, interpolation="linear"))
                .list.first()
            )
        case _:  # pragma: no cover - check_statistic refuses anything else
            raise AssertionError(f"unexpected statistic {statistic!r}")


def _merged_m2() -> pl.Expr:
    """Sum of squared deviations of a merged cell (Chan et al.): the parts' own, plus
    each part's size times its mean's squared distance from the merged mean."""
    n = pl.col("_n")
    part_mean = pl.when(n > 0).then(pl.col("_sum") / n)
    grand_mean = pl.col("_sum").sum() / n.sum()
    # Parts with no contributors have a null mean; sum() skips them.
    return (pl.col("_m2").sum() + (n * (part_mean - grand_mean) ** 2).sum()).alias("_m2")


# --- top contributors -------------------------------------------------------------------


def _with_top_levels(
    lazy: pl.LazyFrame, keys: list[str], top_k: int
) -> tuple[pl.LazyFrame, list[pl.Expr]]:
    """Add what the top `top_k` values need, and return the aggregations that give them.

    Why not ``top_k()`` in the aggregation: it builds a list per cell and is no longer a
    plain aggregation, so it costs more than the rest of the table (10M rows, 10k cells,
    2 cores, best of 5: a whole partial with ``top_k(2)`` took 0.25-0.35 s, this way
    0.19 s, and count+sum+mean alone 0.06 s with the streaming engine).

    Instead, the distinct levels d1 > d2 > ... come from plain max() aggregations (d_i is
    the largest value below d_(i-1), broadcast to the rows by a window), with c_i, how
    many rows hold d_i, so ties are kept: values 7, 7, 3 give top values 7, 7. Each level
    after the first needs one window, so top_k = 2 costs one.
    """
    v = pl.col(_VALUE)
    below_previous = v  # values below the previous level (all values for the first)
    for i in range(1, top_k):
        level = below_previous.max().over(keys)
        lazy = lazy.with_columns(level.alias(f"_d{i}"))
        below_previous = pl.when(v < pl.col(f"_d{i}")).then(v)
    levels = [v.max().alias("_l1")]
    levels += [pl.col(f"_d{i}").first().alias(f"_l{i}") for i in range(2, top_k)]
    if top_k >= 2:
        levels.append(below_previous.max().alias(f"_l{top_k}"))
    counts = [(v == pl.col(f"_d{i}")).sum().cast(pl.Int64).alias(f"_c{i}") for i in range(1, top_k)]
    return lazy, levels + counts


def _split_tops(aggregated: pl.LazyFrame, top_k: int) -> pl.LazyFrame:
    """Turn the levels and their tie counts into the top values with multiplicity.

    Position j (1-based) holds level i when the rows at levels 1..i-1 are fewer than j and
    those at levels 1..i are at least j; levels are distinct, so i <= j.
    """
    tops = []
    for j in range(1, top_k + 1):
        # Built inside out, so the smallest level i whose running count reaches j wins.
        expr: pl.Expr = pl.col(f"_l{j}")
        for i in range(j - 1, 0, -1):
            reached = pl.sum_horizontal(pl.col(f"_c{h}") for h in range(1, i + 1)) >= j
            expr = pl.when(reached).then(pl.col(f"_l{i}")).otherwise(expr)
        tops.append(expr.cast(pl.Float64).alias(f"_top{j}"))
    return aggregated.with_columns(tops)


# --- grid -------------------------------------------------------------------------------


def _complete_grid(cells: pl.DataFrame, groups: list[list[str]], statistic: str) -> pl.DataFrame:
    """Every combination of the groups' observed levels, absent ones as empty cells."""
    keys = [key for group in groups for key in group]
    levels = [cells.select(group).unique() for group in groups]
    size = math.prod(level.height for level in levels)
    if size > MAX_GRID_CELLS:
        sizes = ", ".join(
            f"{'/'.join(group)}: {level.height}"
            for group, level in zip(groups, levels, strict=True)
        )
        raise DisclosureInputError(
            f"the table's full grid would have {size:,} cells ({sizes} levels), more than "
            f"the limit of {MAX_GRID_CELLS:,}; a table this large cannot be checked or released",
            fix="use fewer keys, or group their levels into coarser bands",
        )
    grid = levels[0]
    for level in levels[1:]:
        grid = grid.join(level, how="cross")
    full = grid.join(cells, on=keys, how="left", nulls_equal=True)
    return full.with_columns(
        pl.col("value").fill_null(0.0) if not is_magnitude(statistic) else pl.col("value"),
        pl.col("n").fill_null(0),
        pl.col("records").fill_null(0),
        pl.col("sum").fill_null(0.0) if is_magnitude(statistic) else pl.col("sum"),
        pl.col("top").fill_null(pl.lit([], dtype=pl.List(pl.Float64))),
        pl.col("negative").fill_null(False),
        pl.col("missing").fill_null(0),
    ).select(*keys, *EVIDENCE_COLUMNS)


def _collect(lazy: pl.LazyFrame) -> pl.DataFrame:
    # The streaming engine runs these group-bys several times faster than the in-memory
    # one (10M rows, 10k cells: count+sum+mean 0.06 s against 0.25 s, best of 5).
    return lazy.collect(engine="streaming")


def _top_k_of(merged: pl.DataFrame) -> int:
    """How many top values a merged aggregate carries (from its _topN columns)."""
    found = [int(m.group(1)) for c in merged.columns if (m := _TOP.match(c))]
    return max(found, default=0)
