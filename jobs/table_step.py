"""The `table` step: one partial aggregate per Parquet fragment, merged on the workers.

Only the finalized table (one row per cell, with its disclosure evidence) comes back
to the process that runs the job; row-level data stays on the workers.
"""

from __future__ import annotations

import polars as pl
from distributed import Client

from disclosure import aggregate
from jobs.dasktools import ProgressFn, track, tree_reduce
from jobs.frames import (
    apply_filters,
    apply_link,
    main_columns,
    read_fragment_frame,
    split_filters,
    submit_link,
)
from jobs.outputs import TableOutput
from jobs.spec import TableStep
from tre.secured.reader import Fragment, SecuredSource, fragments


def table_partial(
    source: SecuredSource,
    fragment: Fragment,
    step: TableStep,
    right: pl.DataFrame | None,
    top_k: int,
) -> pl.DataFrame:
    """Runs on a worker: read one fragment, link, filter, aggregate."""
    columns = main_columns(step.named_columns(), step.link)
    # Grouping keys are low-cardinality text: read them as categoricals (much faster), but
    # never the link key, which must join with the linked side's plain strings.
    keys = [k for k in step.keys if step.link is None or k != step.link.on]
    where, late = split_filters(step.filter, step.link)
    frame = read_fragment_frame(source, fragment, sorted(columns), categorical=keys, where=where)
    part = aggregate.partial(
        apply_filters(apply_link(frame, step.link, right), late),
        step.keys,
        step.value,
        step.statistic,
        top_k=top_k,
        unit=step.unit,
    )
    return part.with_columns(pl.col(pl.Categorical).cast(pl.String))


def merge_partials(parts: list[pl.DataFrame], step: TableStep, top_k: int) -> pl.DataFrame:
    return aggregate.merge(parts, step.keys, step.statistic, top_k=top_k, unit=step.unit)


def table_grid(rows: list[str], columns: list[str]) -> list[list[str]]:
    """Complete rows x columns, as a cross-tabulation does: combinations within the row
    keys (a ward within its authority) are kept as observed, never invented."""
    return [rows, columns] if columns else [rows]


def finalize_table(
    merged: pl.DataFrame, step: TableStep, top_k: int = 2, *, margins: bool = False
) -> pl.DataFrame:
    """The finished cells (and, with `margins`, the totals disclosure control checks)."""
    grid = table_grid(step.rows, step.columns)
    finish = aggregate.with_margins if margins else aggregate.finalize
    return finish(
        merged, step.keys, step.statistic, step.quantile, grid=grid, unit=step.unit, top_k=top_k
    )


def run_table(
    step: TableStep,
    sources: dict[str, SecuredSource],
    client: Client,
    *,
    top_k: int,
    progress: ProgressFn | None = None,
    target_rows: int = 1_000_000,
) -> TableOutput:
    """Compute one table step on the cluster and bring back only the finalized table."""
    source = sources[step.dataset]
    right = submit_link(client, step.link, sources)
    parts = [
        client.submit(table_partial, source, fragment, step, right, top_k, pure=False)
        for fragment in fragments(source, target_rows)
    ]
    track(parts, step.name, progress)
    merged = tree_reduce(client, parts, merge_partials, step, top_k)
    cells = client.submit(finalize_table, merged, step, top_k, margins=True, pure=False).result()
    datasets = [step.dataset] + ([step.link.dataset] if step.link else [])
    return TableOutput(
        name=step.name,
        step=step.name,
        description=step.description,
        datasets=datasets,
        rows=step.rows,
        columns=step.columns,
        value=step.value,
        statistic=step.statistic,
        quantile=step.quantile,
        cells=cells,
        unit=step.unit,
    )
