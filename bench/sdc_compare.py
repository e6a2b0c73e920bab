"""Benchmark `sdc_compare`: secondary suppression against τ-Argus, on the same tables, in
the same run, on the same machine.

    python -m bench.sdc_compare                          # 10x10 to 316x316 (10^5 cells)
    python -m bench.sdc_compare --sizes 10 30 --timeout 60 --keep --work /tmp/sdc-bench
    python -m bench.sdc_compare --sizes 8 --no-tauargus  # our side alone, offline

τ-Argus runs as `pytauargus` (PyPI: the τ-Argus engine with the open-source HiGHS
solver) in its own virtual environment, `bench/.venv-tauargus` (created on first use
with `python -m venv` and `pip install pytauargus`, then reused), in a subprocess per
table and method, so tre's own dependencies are untouched (`bench.sdc_tauargus`).

What runs, per size (a side x side 2-way frequency table, `bench.sdc_tables`):

1. Seeded synthetic counts, every cell at least 1, 9-18% of them below 10.
2. Ours: `disclosure.check_aggregated` on the counts with their row, column and grand
   totals, `Rules(threshold=10)` and the default protection (primary suppression of the
   cells below 10, then secondary suppression so none can be worked out from the
   totals). Best of `--repeat`.
3. τ-Argus: the same table as tabular input (a `.tab` file with the totals, `.rda`
   metadata), safety rule `FREQ(10, --safety-range)`, then `<SUPPRESS>` with each of its
   methods that runs with HiGHS (`OPT`: optimal, one mixed-integer program for the
   table; `MOD`: modular, HiTaS; its hypercube `GH` needs an external program and is
   refused by pytauargus), and the protected table written back with each cell's status
   (`U` primary, `M` secondary). Timed inside its process, whole batch and suppression
   alone; a call that exceeds `--timeout` is stopped and reported as "over N s".
4. Both patterns are judged by the same checks: the primary cells must agree; the
   information lost is the secondary cells (inner cells and totals) and the sum of the
   inner ones' counts; whether any suppressed cell is exactly recoverable from the
   published totals is tested twice (`bench.sdc_tables.exposure`: the graph test of
   `disclosure.secondary` and an independent leverage test).

The figures go to bench/results/sdc-<time>.json and are printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.sdc_tables import (
    THRESHOLD,
    augmented,
    exposure,
    loss,
    protection_levels,
    run_ours,
    synthetic_counts,
)
from bench.sdc_tauargus import METHODS, VENV, run_tau, tau_python, write_tau_table

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SIZES = (10, 30, 100, 178, 316)


def judge(
    table: np.ndarray, primary: np.ndarray, secondary: np.ndarray, percent: int | None
) -> dict[str, Any]:
    """One side's pattern, by the checks both sides share (with the primary cells'
    ranges when `percent` is given: two linear programs per primary cell)."""
    suppressed = primary | secondary
    figures = {**loss(table, primary, suppressed), "exposed": exposure(suppressed)}
    if percent is not None:
        figures["ranges"] = protection_levels(table, primary, suppressed, percent)
    return figures


def run_case(
    side: int,
    *,
    seed: int,
    repeat: int,
    methods: list[str],
    python: Path | None,
    folder: Path,
    timeout: float,
    safety_range: int,
    ranges: bool,
) -> dict[str, Any]:
    """Every figure of one table size."""
    counts = synthetic_counts(side, seed)
    table = augmented(counts)
    ours = run_ours(counts, repeat)
    percent = (safety_range or 30) if ranges else None
    case: dict[str, Any] = {
        "side": side,
        "cells": int(counts.size),
        "with_totals": int(table.size),
        "below_threshold": int((counts < THRESHOLD).sum()),
        "total_count": int(counts.sum()),
        "ours": {
            "seconds": round(ours["seconds"], 4),
            "runs_s": [round(run, 4) for run in ours["runs_s"]],
            "complete": ours["complete"],
            **judge(table, ours["primary"], ours["secondary"], percent),
        },
        "tauargus": {},
    }
    if methods:
        assert python is not None
        write_tau_table(counts, folder)
    for method in methods:
        assert python is not None
        theirs = run_tau(python, folder, method, counts.shape, timeout, safety_range=safety_range)
        patterns = theirs.pop("_patterns", None)
        if patterns is not None:
            primary, secondary = patterns
            theirs.update(judge(table, primary, secondary, percent))
            theirs["primary_agrees"] = bool((primary == ours["primary"]).all())
            for key in ("seconds", "suppress_s", "process_s"):
                theirs[key] = round(theirs[key], 4)
        case["tauargus"][method] = theirs
    return case


def run(
    *,
    sizes: list[int],
    seed: int,
    repeat: int,
    methods: list[str],
    timeout: float,
    safety_range: int,
    work: Path,
    console: Console,
    ranges_up_to: int = 0,
) -> dict[str, Any]:
    """Every figure of the benchmark (τ-Argus' only for `methods`, none if empty)."""
    python = tau_python() if methods else None
    figures: dict[str, Any] = {
        "benchmark": "sdc_compare",
        "threshold": THRESHOLD,
        "safety_range": safety_range,
        "methods": methods,
        "timeout_s": timeout,
        "ranges_up_to": ranges_up_to,
        "seed": seed,
        "repeat": repeat,
        "machine": {
            "usable_cpus": len(os.sched_getaffinity(0)),
            "load_average": [round(load, 2) for load in os.getloadavg()],
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "cases": {},
    }
    started = time.perf_counter()
    for side in sizes:
        console.print(
            f"[dim]{time.perf_counter() - started:6.1f}s[/] {side}x{side}: ours"
            + (f", then τ-Argus {', '.join(methods)}" if methods else "")
        )
        case = run_case(
            side,
            seed=seed,
            repeat=repeat,
            methods=methods,
            python=python,
            folder=work / f"side-{side}",
            timeout=timeout,
            safety_range=safety_range,
            ranges=side <= ranges_up_to,
        )
        figures["cases"][str(side)] = case
        for theirs in case["tauargus"].values():
            figures.setdefault("tauargus_version", theirs.get("version"))
    return figures


def render(figures: dict[str, Any], console: Console) -> None:
    """The table of results: one line per size and side."""
    table = Table(
        "table",
        "cells",
        "side",
        "primary",
        "secondary (of which totals)",
        "secondary sum",
        "seconds",
        "exposed",
        "narrow ranges",
    )
    for case in figures["cases"].values():
        label, cells = f"{case['side']}x{case['side']}", f"{case['cells']:,}"
        sides = [("ours", case["ours"])] + [
            (f"τ-Argus {method}", theirs) for method, theirs in case["tauargus"].items()
        ]
        for name, side in sides:
            if side.get("timed_out"):
                table.add_row(
                    label, cells, name, "", "", "", f"over {side['timeout_s']:.0f}", "", ""
                )
                continue
            agrees = "" if name == "ours" else (" =" if side["primary_agrees"] else " DIFFERS")
            seconds = (
                f"{side['seconds']:.3f}"
                if name == "ours"
                else f"{side['seconds']:.3f} / {side['suppress_s']:.3f}"
            )
            table.add_row(
                label,
                cells,
                name,
                f"{side['primary']:,}{agrees}",
                f"{side['secondary']:,} ({side['secondary_totals']})",
                f"{side['secondary_sum']:,}",
                seconds,
                f"{side['exposed']['graph']} / {side['exposed']['rank']}",
                _narrow(side.get("ranges")),
            )
    console.print(table)
    version = figures.get("tauargus_version")
    console.print(
        f"threshold {figures['threshold']}; ours = check_aggregated, default protection; "
        + (
            f"τ-Argus = pytauargus {version} (HiGHS), FREQ({figures['threshold']},"
            f"{figures['safety_range']}), in {VENV.relative_to(HERE.parent)}, seconds in its "
            "process: whole batch / its suppression alone. "
            if version
            else ""
        )
        + "primary '=': the same cells as ours; exposed: suppressed cells the totals give "
        "away, by the graph / the rank test (0 / 0 is safe); narrow ranges: primary cells "
        f"whose feasible range reaches less than {figures['safety_range'] or 30}% of their "
        f"value on a side (sides up to {figures['ranges_up_to']})."
    )


def _narrow(ranges: dict[str, Any] | None) -> str:
    if not ranges:
        return ""
    return str(next(value for key, value in ranges.items() if key.startswith("within_")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sdc_compare", description=__doc__)
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(SIZES), help="table sides (side x side)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (best kept)")
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="τ-Argus methods"
    )
    parser.add_argument(
        "--no-tauargus", action="store_true", help="our side alone (no venv, no network)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds per τ-Argus call before giving up"
    )
    parser.add_argument(
        "--safety-range",
        type=int,
        default=30,
        help="τ-Argus' FREQ safety range: the protection interval it requires, in percent",
    )
    parser.add_argument(
        "--ranges-up-to",
        type=int,
        default=30,
        help="also compute each primary cell's range (2 LPs per cell) for sides up to this",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic tables")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    args = parser.parse_args(argv)
    if args.repeat < 1 or min(args.sizes) < 2:
        parser.error("--repeat must be 1 or more and every size at least 2")
    console = Console(highlight=False, width=max(Console().width, 120))
    work = args.work or Path(tempfile.mkdtemp(prefix="tre-sdc-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        figures = run(
            sizes=args.sizes,
            seed=args.seed,
            repeat=args.repeat,
            methods=[] if args.no_tauargus else args.methods,
            timeout=args.timeout,
            safety_range=args.safety_range,
            work=work,
            console=console,
            ranges_up_to=args.ranges_up_to,
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures["started"] = datetime.now().isoformat(timespec="seconds")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"sdc-{datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(figures, indent=2))
    render(figures, console)
    console.print(f"figures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
