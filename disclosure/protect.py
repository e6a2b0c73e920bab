"""Protection of a checked table: suppression, rounding and totals, cell by cell.

`protect` takes a table whose cells (and totals) have been through `apply_rules` and
adds how each is published:

    suppressed    "" | "primary" (fails a rule, or a count at or below the redaction
                  limit) | "secondary" (hidden so a suppressed cell cannot be worked
                  out from the totals, `disclosure.secondary`, and no line's suppressed
                  cells add up to a small group, `disclosure.line_sums`)
    published     the value released (null when suppressed; counts rounded if asked)
    published_n   magnitude tables: the contributor count released with the value
    interval_low, interval_high
                  a suppressed cell's (or total's) count could be anything in this
                  range, given what is published (`disclosure.intervals`); null when
                  not suppressed or not audited, interval_high inf when unbounded

With rounding, the published totals are recomputed from the published (rounded) cells,
as OpenSAFELY does, so a total never reveals more than the cells it adds up; without
rounding the true totals are published and secondary suppression protects against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from disclosure.intervals import (
    INFO_MAX_AUDITED,
    INFO_TIME_LIMIT,
    MAX_AUDITED,
    TIME_LIMIT,
    Intervals,
    below_protection_level,
    feasible_intervals,
)
from disclosure.line_sums import protect_line_sums, table_lines
from disclosure.outcome import ProtectionOutcome
from disclosure.protection import Protection
from disclosure.rules import Rules
from disclosure.secondary import protect_one_way, protect_two_way
from disclosure.validate import MARGIN, is_magnitude

__all__ = ["ADDITIVE", "ProtectionOutcome", "protect", "rounded"]

#: Statistics whose totals are sums (or weighted sums) of their cells' published values.
ADDITIVE = ("count", "sum", "mean")
DEFAULT_RULES = Rules()


def _small_sum_limit(protection: Protection, rules: Rules) -> float | None:
    """The largest sum of a line's suppressed cells that is still a small group, or None
    when no line gives such a sum: totals not published, or recomputed from rounded
    cells (they then say nothing of the suppressed cells)."""
    if not protection.totals or protection.rounds:
        return None
    return float(max(rules.threshold - 1, protection.redact_at_or_below))


def rounded(expr: pl.Expr, base: int) -> pl.Expr:
    """`expr` rounded to the nearest multiple of `base`, halves up (12.5 -> 15 for 5)."""
    return ((expr / base + 0.5).floor() * base).cast(pl.Float64)


def protect(
    checked: pl.DataFrame,
    rows: list[str],
    columns: list[str],
    statistic: str,
    protection: Protection,
    rules: Rules = DEFAULT_RULES,
) -> tuple[pl.DataFrame, ProtectionOutcome]:
    """`checked` with `suppressed`, `published` and `published_n`, and what was done.
    `rules` say how small a group of people is (the threshold) for the sums that
    published totals give of suppressed cells (`disclosure.line_sums`)."""
    if MARGIN not in checked.columns:
        checked = checked.with_columns(pl.lit("").alias(MARGIN))
    count = pl.col("value") if statistic == "count" else pl.col("n")
    failing = pl.col("status") == "fail"
    redact = (count <= protection.redact_at_or_below) & pl.lit(protection.redact_at_or_below > 0)
    primary = (failing & pl.lit(protection.suppress)) | redact
    frame = checked.with_columns(
        primary.fill_null(False).alias("_primary"),
        (redact & ~failing).fill_null(False).alias("_redacted"),
    )
    if protection.suppress and protection.secondary and frame.height:
        done = _suppressed_and_audited(frame, rows, columns, statistic, protection, rules)
    else:
        done = _Suppression(frame.get_column("_primary"), complete=True)
    frame = frame.with_columns(
        done.suppressed.alias("_suppressed"),
        (pl.lit(None, pl.Float64) if done.low is None else done.low).alias("interval_low"),
        (pl.lit(None, pl.Float64) if done.high is None else done.high).alias("interval_high"),
    ).with_columns(
        pl.when(pl.col("_primary"))
        .then(pl.lit("primary"))
        .when(pl.col("_suppressed"))
        .then(pl.lit("secondary"))
        .otherwise(pl.lit(""))
        .alias("suppressed")
    )
    frame = _published(frame, rows, columns, statistic, protection)
    inner = frame.filter(pl.col(MARGIN) == "")
    outcome = ProtectionOutcome(
        primary=int(frame.get_column("_primary").sum()),
        redacted=int(frame.get_column("_redacted").sum()),
        secondary=int((frame.get_column("suppressed") == "secondary").sum()),
        rounded_to=protection.round_to,
        totals=(
            "not published"
            if not protection.totals
            else "recomputed"
            if protection.rounds
            else "published"
        ),
        complete=done.complete,
        published_cells=int((inner.get_column("suppressed") == "").sum()),
        cells=inner.height,
        audit=done.audit,
        narrow=done.narrow,
    )
    return frame.drop("_primary", "_redacted", "_suppressed"), outcome


# --- secondary suppression: the table as a matrix ---------------------------------------


@dataclass(frozen=True)
class _Suppression:
    """Which entries are suppressed (frame order), and what the interval audit found."""

    suppressed: pl.Series
    complete: bool
    low: pl.Series | None = None  # None: no interval for any entry
    high: pl.Series | None = None
    audit: str = ""
    narrow: int = 0


def _suppressed_and_audited(
    frame: pl.DataFrame,
    rows: list[str],
    columns: list[str],
    statistic: str,
    protection: Protection,
    rules: Rules,
) -> _Suppression:
    """Primary and secondary suppression, then the interval audit and protection level."""
    matrix = _matrix(frame, rows, columns, statistic)
    limit = _small_sum_limit(protection, rules)
    done, complete = _secondary(matrix, limit)
    suppressed = pl.Series(done[matrix.position])
    if not done.any():
        return _Suppression(suppressed, complete)
    # A table without totals (check_aggregated with no margin) bounds nothing either.
    if limit is None or not (frame.get_column(MARGIN) != "").any():
        return _Suppression(suppressed, complete, audit="not needed: no true totals are published")
    # Only informative without a protection level: then it gets a shorter budget.
    required = bool(protection.protection_level)
    intervals = feasible_intervals(
        matrix.counts,
        done,
        table_lines(matrix.height, matrix.width),
        time_limit=TIME_LIMIT if required else INFO_TIME_LIMIT,
        max_audited=MAX_AUDITED if required else INFO_MAX_AUDITED,
    )
    audit, narrow, met = _protection_level(intervals, matrix, protection)
    if not required and audit.startswith("not audited"):
        audit += " (it only informs the checkers here; a protection_level runs it on more)"
    return _Suppression(
        suppressed,
        complete and met,
        pl.Series(intervals.low[matrix.position]).fill_nan(None),
        pl.Series(intervals.high[matrix.position]).fill_nan(None),
        audit,
        narrow,
    )


@dataclass(frozen=True)
class _Matrix:
    """The table as a flat augmented matrix: a 1-way table's cells then its total, or a
    2-way table's (height+1) x (width+1) cells and totals, row-major."""

    position: np.ndarray  # each frame row's flat position
    height: int
    width: int  # 0: a 1-way table
    primary: np.ndarray
    counts: np.ndarray  # NaN where the table has no entry
    cost: np.ndarray  # inf where the table has no entry

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.height + 1,) if self.width == 0 else (self.height + 1, self.width + 1)


def _matrix(frame: pl.DataFrame, rows: list[str], columns: list[str], statistic: str) -> _Matrix:
    indexed, height, width = _matrix_index(frame, rows, columns)
    r = indexed.get_column("_r").to_numpy()
    c = indexed.get_column("_c").to_numpy()
    counts = (
        indexed.get_column("value" if statistic == "count" else "n")
        .fill_null(0)
        .to_numpy()
        .astype(float)
    )
    margin = indexed.get_column(MARGIN).to_numpy()
    position = r if width == 0 else r * (width + 1) + c
    size = (height + 1) * (width + 1)
    primary = np.zeros(size, dtype=bool)
    flat_counts = np.full(size, np.nan)
    cost = np.full(size, np.inf)
    primary[position] = indexed.get_column("_primary").to_numpy()
    flat_counts[position] = counts
    cost[position] = _costs(counts, margin)
    return _Matrix(position, height, width, primary, flat_counts, cost)


def _secondary(matrix: _Matrix, limit: float | None) -> tuple[np.ndarray, bool]:
    """Primary plus secondary suppression of every cell and total of the table (flat):
    cycles so no suppressed cell is determined, then, when `limit` is given (the totals
    are published as they are), no line whose suppressed cells add up to [0, limit]."""
    shape, cost = matrix.shape, matrix.cost

    def close(suppressed: np.ndarray) -> tuple[np.ndarray, bool]:
        if matrix.width == 0:  # a 1-way table: its cells and the grand total, one line
            return protect_one_way(suppressed, cost), True
        done, complete = protect_two_way(suppressed.reshape(shape), cost.reshape(shape))
        return done.ravel(), complete

    suppressed, complete = close(matrix.primary)
    if complete and limit is not None:
        lines = table_lines(matrix.height, matrix.width)
        suppressed, complete = protect_line_sums(
            suppressed, matrix.counts, cost, lines, limit, close
        )
    return suppressed, complete


def _protection_level(
    intervals: Intervals, matrix: _Matrix, protection: Protection
) -> tuple[str, int, bool]:
    """The audit's status, how many primary cells are below the protection level, and
    whether the level is met: a level that could not be checked is not met."""
    level = protection.protection_level
    narrow = int(below_protection_level(intervals, matrix.counts, matrix.primary, level).sum())
    unchecked = level > 0 and not intervals.audited
    return intervals.status, narrow, not narrow and not unchecked


def _matrix_index(
    frame: pl.DataFrame, rows: list[str], columns: list[str]
) -> tuple[pl.DataFrame, int, int]:
    """Each cell's (row, column) in the augmented matrix; totals take the last row or
    column. Joins match null levels (a missing level is a level) but totals never take a
    null level's index: their position comes from the `margin` column alone."""
    inner = frame.filter(pl.col(MARGIN) == "")
    row_levels = inner.select(rows).unique(maintain_order=True).with_row_index("_r")
    height = row_levels.height
    indexed = frame.join(row_levels, on=rows, how="left", nulls_equal=True)
    margin = pl.col(MARGIN)
    if columns:
        column_levels = inner.select(columns).unique(maintain_order=True).with_row_index("_c")
        width = column_levels.height
        indexed = indexed.join(column_levels, on=columns, how="left", nulls_equal=True)
        column_index = pl.when(margin.is_in(["row", "total"])).then(width).otherwise(pl.col("_c"))
    else:
        width = 0
        column_index = pl.lit(0)
    row_index = pl.when(margin.is_in(["column", "total"])).then(height).otherwise(pl.col("_r"))
    indexed = indexed.with_columns(
        row_index.cast(pl.Int64).alias("_r"), column_index.cast(pl.Int64).alias("_c")
    )
    return indexed, height, width


def _costs(counts: np.ndarray, margin: np.ndarray) -> np.ndarray:
    """What suppressing each entry loses: a cell its count (plus one); an empty cell more
    than any other cell, since hiding a known zero protects little; a total far more,
    and the grand total most, so cycles use inner cells whenever they can."""
    inner = margin == ""
    largest = float(counts[inner].max()) if inner.any() else 0.0
    grand = float(counts.max()) if counts.size else 0.0
    cost = np.where(counts > 0, counts + 1.0, largest + 2.0)
    cost = np.where(margin == "total", 100.0 * (grand + 1.0), cost)
    return np.where(np.isin(margin, ["row", "column"]), 10.0 * (grand + 1.0), cost)


# --- what is published ------------------------------------------------------------------


def _published(
    frame: pl.DataFrame,
    rows: list[str],
    columns: list[str],
    statistic: str,
    protection: Protection,
) -> pl.DataFrame:
    hidden = pl.col("suppressed") != ""
    magnitude = is_magnitude(statistic)
    value = pl.when(hidden).then(None).otherwise(pl.col("value"))
    n = pl.when(hidden).then(None).otherwise(pl.col("n"))
    if protection.rounds:
        base = protection.round_to
        value = rounded(value, base) if statistic == "count" else value
        n = rounded(n, base).cast(pl.Int64)
    frame = frame.with_columns(
        value.cast(pl.Float64).alias("published"),
        (n if magnitude else pl.lit(None)).cast(pl.Int64).alias("published_n"),
    )
    if protection.rounds:
        frame = _recomputed_totals(frame, rows, columns, statistic)
    return frame


def _recomputed_totals(
    frame: pl.DataFrame, rows: list[str], columns: list[str], statistic: str
) -> pl.DataFrame:
    """Totals as the sums of the published (rounded) cells: never suppressed, since they
    show nothing the cells do not. Non-additive statistics keep their own total value
    (suppressed if it fails) with a recomputed contributor count."""
    magnitude = is_magnitude(statistic)
    inner = frame.filter(pl.col(MARGIN) == "")
    count = "published_n" if magnitude else "published"
    # A total of nothing published is blank, not zero.
    anything = pl.col(count).count() > 0
    sums = [pl.when(anything).then(pl.col(count).sum()).alias("_count")]
    if statistic == "sum":
        sums.append(pl.when(anything).then(pl.col("published").sum()).alias("_value"))
    elif statistic == "mean":
        weighted = (pl.col("published") * pl.col("published_n")).sum()
        sums.append((weighted / pl.col("published_n").sum()).alias("_value"))
    parts = [(rows, "row"), (columns, "column")] if columns else []
    parts.append(([], "total"))
    recomputed = []
    for kept, label in parts:
        grouped = inner.group_by(kept) if kept else inner.group_by(pl.lit(0).alias("_all"))
        totals = grouped.agg(sums).drop("_all", strict=False)
        recomputed.append(totals.with_columns(pl.lit(label).alias("_label")))
    frame = frame.with_row_index("_order")
    updates = []
    for (kept, label), totals in zip(parts, recomputed, strict=True):
        chosen = frame.filter(pl.col(MARGIN) == label)
        joined = (
            chosen.join(totals, on=kept, how="left", nulls_equal=True)
            if kept
            else (chosen.join(totals, how="cross"))
        )
        updates.append(joined)
    margins = pl.concat(updates, how="diagonal_relaxed")
    additive = statistic in ("count", "sum", "mean")
    margins = margins.with_columns(
        pl.lit("").alias("suppressed") if additive else pl.col("suppressed"),
        (pl.col("_value") if statistic in ("sum", "mean") else pl.col("published"))
        .cast(pl.Float64)
        .alias("published")
        if magnitude
        else pl.col("_count").cast(pl.Float64).alias("published"),
        pl.col("_count").cast(pl.Int64).alias("published_n")
        if magnitude
        else pl.lit(None, pl.Int64).alias("published_n"),
    )
    if not additive:  # a failing total of a median or a max stays hidden
        hidden = pl.col("suppressed") != ""
        margins = margins.with_columns(
            pl.when(hidden).then(None).otherwise(pl.col("published")).alias("published")
        )
    margins = margins.select(frame.columns)
    cells = frame.filter(pl.col(MARGIN) == "")
    return pl.concat([cells, margins], how="vertical_relaxed").sort("_order").drop("_order")
