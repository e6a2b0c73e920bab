"""Benchmark `differencing`: the differencing check of one job's 200 tables (the default
`steps_per_job`), against checking those tables one by one in the same run.

Three requests of 200 tables each, over the same synthetic residents:

- alike: 200 copies of one ward x age table (the shape of the job that once held the
  dispatcher for hours): passed over without a comparison;
- unrelated: 200 tables over 200 different datasets: never paired;
- related: 200 tables over one population whose filter sets nest in ten chains (all
  19,900 pairs are candidates, 1,900 of them related, each a real comparison), with
  the default budget.

Each is reported in seconds, with the pairs compared or left to a checker, and as a
ratio against checking the 200 tables alone (`check_table`, the baseline).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from disclosure import check_table, published_view
from disclosure.differencing import Budget, find_differencing

NAME = "differencing"
TABLES = 200


def _residents(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "ward": rng.choice([f"w{i}" for i in range(30)], rows),
            "age": rng.choice(["0-15", "16-39", "40-64", "65+"], rows),
            "sex": rng.choice(["f", "m"], rows),
            "decile": rng.integers(1, 11, rows),
        }
    )


def _population(filters: list[str], dataset: str = "residents") -> dict[str, Any]:
    return {"datasets": {dataset: 1}, "link": None, "filters": filters}


def run(*, rows: int, repeat: int, seed: int, work: Path, console: Console) -> dict[str, Any]:
    """Time the three requests; every figure in seconds."""
    data = _residents(min(rows, 1_000_000), seed)
    started = time.perf_counter()
    base = [
        check_table(
            data.filter(pl.col("decile") <= 1 + i % 10),
            name=f"t{i}",
            rows=["ward"],
            columns=["age"],
            population=_population([f"decile <= {1 + i % 10}", *[f"f{j}" for j in range(i)]]),
        )
        for i in range(TABLES)
    ]
    baseline = time.perf_counter() - started
    one = published_view(base[0])
    requests = {
        "alike": [type(one)(**{**one.__dict__, "name": f"t{i}"}) for i in range(TABLES)],
        "unrelated": [
            type(one)(**{**one.__dict__, "name": f"t{i}", "population": _population([], f"d{i}")})
            for i in range(TABLES)
        ],
        "related": [published_view(t) for t in base],
    }
    figures: dict[str, Any] = {
        "benchmark": NAME,
        "rows": data.height,
        "tables": TABLES,
        "baseline_check_tables_s": round(baseline, 3),
        "requests": {},
    }
    budget = Budget()
    for name, tables in requests.items():
        best, findings = float("inf"), []
        for _ in range(repeat):
            started = time.perf_counter()
            findings = find_differencing(tables, budget=budget)
            best = min(best, time.perf_counter() - started)
        unchecked = [f for f in findings if f.kind == "unchecked"]
        figures["requests"][name] = {
            "seconds": round(best, 3),
            "ratio_to_baseline": round(best / baseline, 3),
            "findings": len(findings) - len(unchecked),
            "tables_left_unchecked": len(unchecked),
        }
    return figures


def render(figures: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"differencing: {figures['tables']} tables of one job, "
        f"{figures['rows']:,} rows; checking them alone took "
        f"{figures['baseline_check_tables_s']:.2f}s"
    )
    for column in ("request", "seconds", "x checking alone", "findings", "left unchecked"):
        table.add_column(column)
    for name, got in figures["requests"].items():
        table.add_row(
            name,
            f"{got['seconds']:.3f}",
            f"{got['ratio_to_baseline']:.2f}x",
            str(got["findings"]),
            str(got["tables_left_unchecked"]),
        )
    console.print(table)
