"""The `table` step: one partial aggregate per Parquet fragment, merged on the workers.

Consecutive table steps over the same dataset, link and filters share their reads: each
fragment is read (and decrypted) once, and every step aggregates it.

Only the finalized table (one row per cell, with its disclosure evidence) comes back
to the process that runs the job; row-level data stays on the workers.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
from distributed import Client

from disclosure import aggregate
from jobs.dasktools import ProgressFn, track, tree_reduce
from jobs.frames import (
    apply_filters,
    apply_link,
    binned,
    main_columns,
    read_fragment_frame,
    split_filters,
    submit_link,
)
from jobs.outputs import TableOutput
from jobs.spec import TableStep
from tre.secured.reader import Fragment, SecuredSource, fragments


def read_together(a: TableStep, b: TableStep) -> bool:
    """Whether two table steps can share one read of each fragment: the same dataset,
    link and filters (their columns are read together; each gets its own aggregate)."""
    return a.dataset == b.dataset and a.link == b.link and a.filter == b.filter


def table_partials(
    source: SecuredSource,
    fragment: Fragment,
    steps: Sequence[TableStep],
    right: pl.DataFrame | None,
    top_k: int,
) -> list[pl.DataFrame]:
    """Runs on a worker: read one fragment once for `steps` (see `read_together`), link,
    filter, then one partial aggregate per step."""
    first = steps[0]
    columns = main_columns(set().union(*(s.named_columns() for s in steps)), first.link)
    # Grouping keys are low-cardinality text: read them as categoricals (much faster), but
    # never the link key, which must join with the linked side's plain strings.
    # Binned columns are numbers until binned.
    keys = sorted(
        {
            k
            for s in steps
            for k in s.keys
            if (first.link is None or k != first.link.on) and not any(k in t.bins for t in steps)
        }
    )
    where, late = split_filters(first.filter, first.link)
    frame = read_fragment_frame(source, fragment, sorted(columns), categorical=keys, where=where)
    frame = apply_filters(apply_link(frame, first.link, right), late)
    return [
        aggregate.partial(
            binned(frame, s.bins), s.keys, s.value, s.statistic, top_k=top_k, unit=s.unit
        ).with_columns(pl.col(pl.Categorical).cast(pl.String))
        for s in steps
    ]


def merge_partial_lists(
    parts: list[list[pl.DataFrame]], steps: Sequence[TableStep], top_k: int
) -> list[pl.DataFrame]:
    """Merge, step by step, lists of partials (one list per fragment or earlier merge)."""
    return [merge_partials([p[i] for p in parts], step, top_k) for i, step in enumerate(steps)]


def finalize_tables(
    merged: list[pl.DataFrame], steps: Sequence[TableStep], top_k: int
) -> list[pl.DataFrame]:
    return [finalize_table(m, s, top_k, margins=True) for m, s in zip(merged, steps, strict=True)]


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


def run_tables(
    steps: Sequence[TableStep],
    sources: dict[str, SecuredSource],
    client: Client,
    *,
    top_k: int,
    progress: ProgressFn | None = None,
    target_rows: int = 1_000_000,
) -> list[TableOutput]:
    """Compute table steps that read together (`read_together`) on the cluster, reading
    each fragment once for all of them; bring back only the finalized tables."""
    first = steps[0]
    if any(not read_together(first, s) for s in steps):
        raise ValueError("run_tables needs steps with the same dataset, link and filters")
    source = sources[first.dataset]
    right = submit_link(client, first.link, sources)
    parts = [
        client.submit(table_partials, source, fragment, steps, right, top_k, pure=False)
        for fragment in fragments(source, target_rows)
    ]

    def each_step(_: str, done: int, total: int) -> None:
        for step in steps:  # the steps advance together: one read serves them all
            if progress:
                progress(step.name, done, total)

    track(parts, first.name, each_step if progress else None)
    merged = tree_reduce(client, parts, merge_partial_lists, steps, top_k)
    tables = client.submit(finalize_tables, merged, steps, top_k, pure=False).result()
    return [_output(step, cells) for step, cells in zip(steps, tables, strict=True)]


def _output(step: TableStep, cells: pl.DataFrame) -> TableOutput:
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
