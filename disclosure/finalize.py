"""The finished table, its totals, and the evidence contract the rules read.

`finalize` output (and `margins`, with the `margin` column added):

    <keys>      the cell; with 2+ key groups every combination of observed levels is present
    value       Float64: the statistic ("count": the number of records, or of records
                with a value when a value column is counted)
    n           Int64: contributors: units with a value when the table has a unit-id
                column, else records with a value ("count" with no value column:
                records, or units)
    records     Int64: rows in the cell
    sum         Float64: total of the values (null for "count")
    top         List[Float64]: the largest contributions, descending (unit totals with a
                unit-id column, else single values): at most top_k; fewer if n < top_k
    negative    Boolean: the cell has a negative value
    missing     Int64: rows whose value is null
    same_value  Boolean: every contribution in the cell is the same (magnitude tables:
                values, or unit totals with a unit-id column)
    below       Int64: values at or below the statistic (median, quantile, mode; else null)
    above       Int64: values at or above the statistic (median, quantile, mode; else null)

Totals (`margins`): one row per observed row (the row's total over every column, the
column keys null, margin "row"), one per observed column (margin "column"), and the
grand total (every key null, margin "total"), each computed from the same merged
aggregate as the cells, so they hold the same evidence: a person with records in two
cells of a row is one contributor to the row's total.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import polars as pl

from disclosure.combine import (
    KEY_SPACE,
    KEYSUM,
    VALUE,
    combine,
    partial_columns,
    split_tops,
    with_top_levels,
)
from disclosure.errors import DisclosureInputError
from disclosure.validate import (
    CELL_KEY,
    EVIDENCE_COLUMNS,
    MARGIN,
    POSITIONAL,
    check_grid,
    check_keys,
    check_partial,
    check_quantile,
    check_statistic,
    check_top_k,
    check_unit,
    is_magnitude,
)

__all__ = ["MAX_GRID_CELLS", "finalize", "margins", "with_margins"]

#: `finalize` refuses to build a full grid larger than this: a table of millions of
#: cells can be neither checked by a person nor released, and would exhaust memory.
MAX_GRID_CELLS = 2_000_000

_TOP = re.compile(r"^_top(\d+)$")


def finalize(
    merged: pl.DataFrame,
    keys: list[str],
    statistic: str,
    quantile: float | None = None,
    *,
    grid: Sequence[Sequence[str]] | None = None,
    unit: str | None = None,
    top_k: int = 2,
) -> pl.DataFrame:
    """The finished table: keys, the statistic as `value`, and the evidence columns.

    With two or more keys the grid is completed: every combination of the observed levels
    appears, absent ones as empty cells (n = 0), since an empty cell can be disclosive.
    `grid` groups the keys whose observed combinations are crossed instead (default: each
    key alone). ``grid=[rows, columns]`` completes only rows x columns, as pandas.crosstab
    and ACRO do, so nested keys (ward within district) do not invent impossible cells.
    `top_k` counts the largest unit totals kept when the table has a unit (without one,
    the merged aggregate says how many it holds).
    """
    groups = _check(merged, keys, statistic, quantile, grid, unit, top_k)
    cells = _cells(merged, keys, keys, statistic, quantile, unit, top_k)
    if len(groups) >= 2:
        cells = _complete_grid(cells, groups, statistic)
    return cells.select(*keys, *_evidence_columns(cells)).sort(keys, nulls_last=True)


def margins(
    merged: pl.DataFrame,
    keys: list[str],
    statistic: str,
    quantile: float | None = None,
    *,
    grid: Sequence[Sequence[str]] | None = None,
    unit: str | None = None,
    top_k: int = 2,
) -> pl.DataFrame:
    """The totals of the table `finalize` gives: a row total per observed row, a column
    total per observed column (when there are columns), and the grand total.

    The rows are the first grid group, the columns every other key. Keys a total sums
    over are null; the `margin` column says which total a row is.
    """
    groups = _check(merged, keys, statistic, quantile, grid, unit, top_k)
    rows = list(groups[0])
    columns = [key for group in groups[1:] for key in group]
    parts = [(rows, "row"), (columns, "column")] if columns else []
    parts.append(([], "total"))
    schema = merged.select(keys).schema
    # When no unit has records in two cells (each person in one cell: the usual case),
    # the per-(cell, unit) rows are already per (total, unit): no regrouping is needed.
    single = unit is not None and merged.get_column(unit).n_unique() == merged.height
    frames = []
    for kept, label in parts:
        cells = _cells(merged, keys, kept, statistic, quantile, unit, top_k, single=single)
        missing = [pl.lit(None, schema[k]).alias(k) for k in keys if k not in kept]
        frames.append(
            cells.with_columns(*missing, pl.lit(label).alias(MARGIN))
            .select(*keys, *_evidence_columns(cells), MARGIN)
            .sort(keys, nulls_last=True)
        )
    return pl.concat(frames, how="vertical")


def with_margins(
    merged: pl.DataFrame,
    keys: list[str],
    statistic: str,
    quantile: float | None = None,
    *,
    grid: Sequence[Sequence[str]] | None = None,
    unit: str | None = None,
    top_k: int = 2,
) -> pl.DataFrame:
    """`finalize` and `margins` in one frame: the cells (margin "") then the totals."""
    arguments = {"grid": grid, "unit": unit, "top_k": top_k}
    cells = finalize(merged, keys, statistic, quantile, **arguments)  # type: ignore[arg-type]
    totals = margins(merged, keys, statistic, quantile, **arguments)  # type: ignore[arg-type]
    if cells.height == 0:
        totals = totals.clear()
    return pl.concat([cells.with_columns(pl.lit("").alias(MARGIN)), totals], how="vertical")


# --- one level of cells -----------------------------------------------------------------


def _check(
    merged: pl.DataFrame,
    keys: list[str],
    statistic: str,
    quantile: float | None,
    grid: Sequence[Sequence[str]] | None,
    unit: str | None,
    top_k: int,
) -> list[list[str]]:
    check_statistic(statistic)
    check_keys(keys)
    check_quantile(statistic, quantile)
    check_unit(keys, unit)
    check_top_k(top_k)
    groups = [[key] for key in keys] if grid is None else [list(group) for group in grid]
    check_grid(keys, groups)
    keyed = KEYSUM in merged.columns
    if unit is not None:
        columns = partial_columns(keys, statistic, 0, unit, keyed=keyed)
        check_partial(merged, columns, "the merged aggregate")
    else:
        # A magnitude aggregate has at least _top1; expecting it makes a wrong input say so.
        kept = max(_top_k_of(merged), 1) if is_magnitude(statistic) else 0
        columns = partial_columns(keys, statistic, kept, keyed=keyed)
        check_partial(merged, columns, "the merged aggregate")
    return groups


def _cells(
    merged: pl.DataFrame,
    keys: list[str],
    kept: list[str],
    statistic: str,
    quantile: float | None,
    unit: str | None,
    top_k: int,
    *,
    single: bool = False,
) -> pl.DataFrame:
    """The evidence of the cells of `kept` (the keys, or fewer for a total); `single`
    says that every unit has rows in one cell only."""
    magnitude = is_magnitude(statistic)
    if unit is None:
        kept_top = _top_k_of(merged) if magnitude else 0
        level = merged if kept == keys else combine(merged, kept, statistic, kept_top)
        return _evidence(level.drop("_all", strict=False), kept, statistic, quantile, "_n")
    # Per (cell, unit) first, so a unit with records in several cells of a total counts
    # once there; then per cell: units with a value, and the largest unit totals.
    regroup = kept != keys and not single
    per_unit = combine(merged, [*kept, unit], statistic, 0) if regroup else merged
    lazy = per_unit.lazy().drop(unit)
    if not magnitude:
        # Units with a value: every unit with records, when no value column is counted.
        extra = [(pl.col("_n") > 0).sum().cast(pl.Int64).alias("_units")]
        return _evidence(
            _drop_all(combine(lazy, kept, statistic, 0, extra=extra)),
            kept,
            statistic,
            quantile,
            "_units",
        )
    # A contributor's value is its total (null for a unit without a value).
    group = kept or ["_all"]
    lazy = lazy.with_columns(
        pl.when(pl.col("_n") > 0).then(pl.col("_sum")).alias(VALUE), pl.lit(0).alias("_all")
    )
    lazy, tops = with_top_levels(lazy, group, top_k)
    extra = [
        (pl.col("_n") > 0).sum().cast(pl.Int64).alias("_units"),
        # "All alike" compares the units' totals.
        (pl.col(VALUE).min() == pl.col(VALUE).max()).alias("_same"),
        *tops,
    ]
    combined = combine(lazy, group, statistic, 0, extra=extra)
    level = split_tops(combined.lazy(), top_k).collect()
    return _evidence(_drop_all(level), kept, statistic, quantile, "_units")


def _drop_all(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("_all", strict=False)


def _evidence(
    level: pl.DataFrame, keys: list[str], statistic: str, quantile: float | None, n: str
) -> pl.DataFrame:
    magnitude = is_magnitude(statistic)
    top_k = _top_k_of(level)
    if magnitude and top_k:
        top = pl.concat_list(f"_top{i}" for i in range(1, top_k + 1)).list.drop_nulls()
    else:
        top = pl.lit([], dtype=pl.List(pl.Float64))
    if not magnitude:
        same = pl.lit(False)
    elif "_same" in level.columns:  # unit tables: the units' totals
        same = (pl.col("_n") > 0) & pl.col("_same").fill_null(False)
    else:
        same = (pl.col("_n") > 0) & (pl.col("_min") == pl.col("_max"))
    cells = level.select(
        *keys,
        _statistic(statistic, quantile).cast(pl.Float64).alias("value"),
        pl.col(n).cast(pl.Int64).alias("n"),
        pl.col("_records").cast(pl.Int64).alias("records"),
        (pl.col("_sum").cast(pl.Float64) if magnitude else pl.lit(None, pl.Float64)).alias("sum"),
        top.cast(pl.List(pl.Float64)).alias("top"),
        pl.col("_neg").cast(pl.Boolean).alias("negative"),
        pl.col("_missing").cast(pl.Int64).alias("missing"),
        same.cast(pl.Boolean).alias("same_value"),
        *([pl.col("_values")] if statistic in POSITIONAL else []),
        # The cell key method's key: the records' keys summed modulo 2**32, over 2**32.
        *(
            [(pl.col(KEYSUM).cast(pl.Float64) / KEY_SPACE).alias(CELL_KEY)]
            if KEYSUM in level.columns
            else []
        ),
    )
    if statistic not in POSITIONAL:
        nothing = pl.lit(None, pl.Int64)
        return cells.with_columns(nothing.alias("below"), nothing.alias("above"))
    # How many values sit at or below / at or above the statistic: list arithmetic
    # broadcasts the cell's value over its list, one vectorised pass.
    offsets = pl.col("_values") - pl.col("value")
    return cells.with_columns(
        offsets.list.eval((pl.element() <= 0).sum()).list.first().cast(pl.Int64).alias("below"),
        offsets.list.eval((pl.element() >= 0).sum()).list.first().cast(pl.Int64).alias("above"),
    ).drop("_values")


def _statistic(statistic: str, quantile: float | None) -> pl.Expr:
    """The finalized value of `statistic` from the merged internal columns."""
    n = pl.col("_n")
    match statistic:
        case "count":
            # Records with a value; every record when no value column is counted.
            return n
        case "sum":
            return pl.when(n > 0).then(pl.col("_sum"))
        case "mean":
            return pl.when(n > 0).then(pl.col("_sum") / n)
        case "std":
            # Sample standard deviation (ddof=1), as pandas and R report it.
            return pl.when(n >= 2).then((pl.col("_m2").clip(lower_bound=0.0) / (n - 1)).sqrt())
        case "min":
            return pl.when(n > 0).then(pl.col("_min"))
        case "max":
            return pl.when(n > 0).then(pl.col("_max"))
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
        case "mode":
            # The smallest of tied modes, so the same data always give the same table
            # (ACRO picks one of them at random).
            return pl.col("_values").list.eval(pl.element().mode().min()).list.first()
        case _:  # pragma: no cover - check_statistic refuses anything else
            raise AssertionError(f"unexpected statistic {statistic!r}")


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
    magnitude = is_magnitude(statistic)
    return full.with_columns(
        pl.col("value") if magnitude else pl.col("value").fill_null(0.0),
        pl.col("n").fill_null(0),
        pl.col("records").fill_null(0),
        pl.col("sum").fill_null(0.0) if magnitude else pl.col("sum"),
        pl.col("top").fill_null(pl.lit([], dtype=pl.List(pl.Float64))),
        pl.col("negative").fill_null(False),
        pl.col("missing").fill_null(0),
        pl.col("same_value").fill_null(False),
        *([pl.col(CELL_KEY).fill_null(0.0)] if CELL_KEY in full.columns else []),
    ).select(*keys, *_evidence_columns(full))


def _evidence_columns(frame: pl.DataFrame) -> list[str]:
    """The evidence columns, with the cell key when the table has record keys."""
    return [*EVIDENCE_COLUMNS, *([CELL_KEY] if CELL_KEY in frame.columns else [])]


def _top_k_of(merged: pl.DataFrame) -> int:
    """How many top values a merged aggregate carries (from its _topN columns)."""
    found = [int(m.group(1)) for c in merged.columns if (m := _TOP.match(c))]
    return max(found, default=0)
