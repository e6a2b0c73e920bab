"""Protection by the cell key method: a count table whose data carries record keys is
published with noise (`disclosure.cellkey`) instead of suppressed.

Every cell and total is published as its true count plus the noise its cell key picks
from the policy's perturbation table: the same records, the same number, in every job
and release, so differencing two tables shows a small group plus noise and never its
size. Zeros stay zero; counts from 1 to `cell_key_smallest` are never published. Nothing
is suppressed: a cell that fails the threshold is published perturbed, and the table
goes to the checkers ("review"), who see the true counts beside the published ones.

Only count tables with a `cell_key` column take this path (`applies`); any other table
under a cell-key policy is suppressed as usual, and its summary says why.
"""

from __future__ import annotations

import polars as pl

from disclosure.cellkey import perturb
from disclosure.outcome import ProtectionOutcome
from disclosure.protection import Protection
from disclosure.validate import CELL_KEY, MARGIN

__all__ = ["applies", "perturbed"]


def applies(cells: pl.DataFrame, statistic: str, protection: Protection) -> bool:
    """Whether this table is protected by the cell key method."""
    return protection.cell_key and statistic == "count" and CELL_KEY in cells.columns


def perturbed(
    checked: pl.DataFrame, protection: Protection
) -> tuple[pl.DataFrame, ProtectionOutcome]:
    """`checked` (with its rules applied) with `suppressed` (none), `published` (the
    perturbed counts) and `published_n`, and what was done."""
    table = protection.perturbation()
    counts = checked.get_column("value").fill_null(0).cast(pl.Int64).to_numpy()
    keys = checked.get_column(CELL_KEY).fill_null(0.0).to_numpy()
    published = perturb(counts, keys, table)
    frame = checked.with_columns(
        pl.lit("").alias("suppressed"),
        pl.lit(None, pl.Float64).alias("interval_low"),
        pl.lit(None, pl.Float64).alias("interval_high"),
        pl.Series("published", published, dtype=pl.Float64),
        pl.lit(None, pl.Int64).alias("published_n"),
    )
    inner = frame.filter(pl.col(MARGIN) == "")
    outcome = ProtectionOutcome(
        primary=0,
        redacted=0,
        secondary=0,
        rounded_to=0,
        totals="published" if protection.totals else "not published",
        complete=True,
        published_cells=inner.height,
        cells=inner.height,
        audit="not needed: nothing is suppressed (the cell key method)",
        cell_key=True,
        perturbed=int((published != counts).sum()),
    )
    return frame, outcome
