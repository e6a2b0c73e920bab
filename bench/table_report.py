"""Printing the `table_job` benchmark's figures as tables (kept apart from measuring)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

NAME = "table_job"


STAGES = (
    ("read_decrypt_s", "read + decrypt (pyarrow), both steps"),
    ("arrow_to_polars_s", "Arrow to polars, both steps"),
    ("partial_count_s", "partial aggregates, count"),
    ("partial_mean_s", "partial aggregates, mean (with top-k)"),
    ("merge_s", "merge partials"),
    ("finalize_s", "finalize (grid completed)"),
    ("check_s", "disclosure rules (check_aggregated)"),
    ("engine_serial_s", "all of the above"),
    ("read_plain_s", "for comparison: pyarrow read of plaintext"),
)


def render(figures: dict[str, Any], console: Console) -> None:
    """Print the figures: the ratio first, then where the job path's time goes."""
    rows = figures["rows"]
    ingest = figures["ingest"]
    console.print(
        f"\n[bold]{NAME}[/]: {rows:,} rows; ingest {ingest['seconds']:.2f}s "
        f"({ingest['rows_per_s']:,} rows/s); best of {figures['repeat']}"
    )
    ratios = Table(title="job path against plain polars group_by (same data, same run)")
    for column in ("table", "cells", "polars s", "job s", "ratio", "engine s", "agree"):
        ratios.add_column(column, justify="left" if column == "table" else "right")
    for name, shape in figures["shapes"].items():
        ratios.add_row(
            name,
            f"{shape['grid_cells']:,}",
            f"{shape['polars_s']:.3f}",
            f"{shape['job_best_s']:.2f}",
            f"[bold]{shape['ratio_job_path']:g}x[/]",
            f"{shape['engine_best_s']:.2f}",
            "yes" if shape["results_agree"] else "[red]NO[/]",
        )
    console.print(ratios)
    for name, shape in figures["shapes"].items():
        console.print(
            f"  {name}: {escape(shape['label'])}, {shape['grid_cells']:,} cells in the grid, "
            f"{shape['observed_cells']:,} non-empty; engine s = result.json seconds "
            f"(cluster start to results), {shape['ratio_engine']:g}x polars"
        )

    timeline = Table(title="where the job path's time goes (best run, seconds)")
    timeline.add_column("segment")
    for name in figures["shapes"]:
        timeline.add_column(name, justify="right")
    segments = (
        ("submit_s", "submit_job"),
        ("dispatch_s", "dispatcher picks it up, writes input, spawns"),
        ("process_start_s", "job process: interpreter + imports"),
        ("cluster_up_s", "LocalCluster start"),
        ("steps_s", "steps + cluster shutdown + results"),
        ("exit_detect_s", "process exit, dispatcher notices"),
        ("checking_s", "disclosure checking + reports"),
        ("total_s", "submit to awaiting_review"),
    )
    best = {
        name: min(shape["job_runs"], key=lambda r: r["total_s"])
        for name, shape in figures["shapes"].items()
    }
    for key, label in segments:
        timeline.add_row(label, *(f"{best[name][key]:.2f}" for name in best))
    console.print(timeline)

    stages = Table(title="engine stages, serial in one process, both steps (seconds)")
    stages.add_column("stage")
    for name in figures["stages"]:
        stages.add_column(name, justify="right")
    for key, label in STAGES:
        stages.add_row(label, *(f"{s[key]:.3f}" for s in figures["stages"].values()))
    console.print(stages)
    cluster = figures["cluster"]
    console.print(
        f"LocalCluster alone (2 workers x 1 core): up {cluster['up_s']:.2f}s, "
        f"down {cluster['down_s']:.2f}s; fresh interpreter importing slurm.launch: "
        f"{figures['interpreter_start_s']:.2f}s"
    )
    for name, shape in figures["shapes"].items():
        console.print(
            f"[bold]ratio {name}:[/] job path / polars = [bold]{shape['ratio_job_path']:g}x[/] "
            f"({shape['job_best_s']:.2f}s / {shape['polars_s']:.3f}s)"
        )


# --- helpers ------------------------------------------------------------------------------
