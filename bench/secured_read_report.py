"""Printing the `secured_read` benchmark's figures as tables (kept apart from measuring)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

NAME = "secured_read"
GOAL = 1.2  # the goal: within 1.2x of polars on plaintext


VARIANTS = (
    ("polars", "polars (plaintext)"),
    ("engine", "engine as is"),
    ("polars_read", "polars read"),
    ("batched", "a task per worker"),
    ("file_tasks", "a task per file"),
    ("no_cluster", "no cluster"),
)
READERS = (
    ("pyarrow_secured_s", "pyarrow secured"),
    ("polars_secured_s", "polars secured"),
    ("polars_secured_files_s", "polars secured, whole files"),
    ("pyarrow_plain_s", "pyarrow plain"),
    ("polars_plain_s", "polars plain"),
)


def render(figures: dict[str, Any], console: Console) -> None:
    """Print the seconds and ratios of each variant, then each reader on its own."""
    console.print(
        f"\n[bold]{NAME}[/]: {figures['rows']:,} rows in {figures['files']} secured files, "
        f"{figures['fragments']} fragments; {figures['cluster']}; best of {figures['repeat']}"
    )
    queries = figures["queries"]
    seconds = Table(title="read + aggregate, seconds")
    ratios = Table(title=f"ratio to polars on plaintext (goal: {GOAL}x or less)")
    for table in (seconds, ratios):
        table.add_column("query")
        for _, label in VARIANTS[table is ratios :]:
            table.add_column(label, justify="right")
    for name, q in queries.items():
        seconds.add_row(name, *(f"{q[f'{key}_s']:.3f}" for key, _ in VARIANTS))
        ratios.add_row(name, *(_ratio(q[f"ratio_{key}"]) for key, _ in VARIANTS[1:]))
    console.print(seconds)
    console.print(ratios)
    agree = all(q["agree"] for q in queries.values())
    console.print(
        f"  results agree with polars: {'yes' if agree else '[red]NO[/]'}. engine as is: "
        "the engine's read (pyarrow with grouping keys as dictionaries, or with a filter "
        "polars with the filter pushed into the read); polars read: polars reads with the "
        "data keys, filter or not; a task per worker / per "
        "file: the polars reads, fewer and bigger tasks; no cluster: the polars reads in "
        "this process on as many threads as workers."
    )
    readers = Table(title="each reader alone, serially in one process (seconds)")
    readers.add_column("query")
    for _, label in READERS:
        readers.add_column(label, justify="right")
    for name, q in queries.items():
        readers.add_row(name, *(f"{q['readers'][key]:.3f}" for key, _ in READERS))
    console.print(readers)
    console.print(
        f"  {figures['fragments']} empty tasks on the cluster: {figures['empty_tasks_s']:.3f} s; "
        f"ingest {figures['ingest']['seconds']:.2f} s ({figures['ingest']['rows_per_s']:,} rows/s)"
    )


def _ratio(value: float) -> str:
    return f"[bold {'green' if value <= GOAL else 'red'}]{value:g}x[/]"
