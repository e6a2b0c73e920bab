"""Benchmark `interval_audit`: the LP interval audit of a protected table
(`disclosure.intervals`), against checking the same table (`check_table`, which includes
it) in the same run.

Two count tables of synthetic residents, cells drawn at random with a share of small
ones, so protection suppresses about 500 cells of a 100 x 100 table and about 3,400 of
a 126 x 90 table with many small cells (the size of the ACRO comparison's tables). The
audit is timed alone on each protected table's suppression pattern; the ratio is the
audit's share of checking the table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from disclosure import check_table
from disclosure.intervals import feasible_intervals
from disclosure.line_sums import table_lines

NAME = "interval_audit"
#: (name, rows, columns, share of small cells)
TABLES = [("100x100", 100, 100, 0.048), ("126x90, a third small", 126, 90, 0.3)]


def _microdata(height: int, width: int, small: float, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.integers(10, 80, (height, width))
    chosen = rng.random((height, width)) < small
    counts[chosen] = rng.integers(1, 10, int(chosen.sum()))
    cells = pl.DataFrame(
        {
            "ward": np.repeat(np.arange(height), width),
            "band": np.tile(np.arange(width), height),
            "n": counts.ravel(),
        }
    )
    return cells.select(
        pl.col("ward").repeat_by("n").explode(), pl.col("band").repeat_by("n").explode()
    )


def _pattern(result: Any, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The protected table as the audit takes it: flat counts and suppressed flags."""
    counts = np.zeros((height + 1, width + 1))
    suppressed = np.zeros((height + 1, width + 1), dtype=bool)
    for cell in result.cells.iter_rows(named=True):
        r = height if cell["margin"] in ("column", "total") else cell["ward"]
        c = width if cell["margin"] in ("row", "total") else cell["band"]
        counts[r, c] = cell["value"]
        suppressed[r, c] = cell["suppressed"] != ""
    return counts.ravel(), suppressed.ravel()


def run(*, rows: int, repeat: int, seed: int, work: Path, console: Console) -> dict[str, Any]:
    """Time checking each table, and its audit alone; every figure in seconds."""
    figures: dict[str, Any] = {"benchmark": NAME, "tables": {}}
    for name, height, width, small in TABLES:
        data = _microdata(height, width, small, seed)
        check, audit, result, found = float("inf"), float("inf"), None, None
        for _ in range(repeat):
            started = time.perf_counter()
            result = check_table(data, name=name, rows=["ward"], columns=["band"])
            check = min(check, time.perf_counter() - started)
        counts, suppressed = _pattern(result, height, width)
        for _ in range(repeat):
            started = time.perf_counter()
            found = feasible_intervals(counts, suppressed, table_lines(height, width))
            audit = min(audit, time.perf_counter() - started)
        assert found is not None
        figures["tables"][name] = {
            "rows": data.height,
            "suppressed": int(suppressed.sum()),
            "status": found.status,
            "check_table_s": round(check, 3),
            "audit_s": round(audit, 3),
            "audit_share_of_check": round(audit / check, 3),
        }
    return figures


def render(figures: dict[str, Any], console: Console) -> None:
    table = Table(title="interval audit: LP bounds of every suppressed cell")
    for column in ("table", "suppressed", "audit", "check_table", "audit share", "status"):
        table.add_column(column)
    for name, got in figures["tables"].items():
        table.add_row(
            name,
            f"{got['suppressed']:,}",
            f"{got['audit_s']:.2f}s",
            f"{got['check_table_s']:.2f}s",
            f"{got['audit_share_of_check']:.0%}",
            got["status"],
        )
    console.print(table)
