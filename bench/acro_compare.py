"""Benchmark `acro_compare`: the disclosure engine against ACRO on the same tables, in the
same run, on the same machine.

    python -m bench.acro_compare                      # 1M and 10M rows, best of 3
    python -m bench.acro_compare --rows 1000000 --repeat 5 --keep --work /tmp/acro-bench

ACRO (the SACRO project's reference tool, `pip install acro`) pins an older pandas than
this project can live with, so it runs in its own virtual environment,
`bench/.venv-acro` (created on first use with `python -m venv` and `pip install acro`,
then reused), in a subprocess that this script drives.

What runs, per row count:

1. `tre.demo.synth.generate` writes synthetic residents; the columns the tables use go
   to one plain Parquet file (our side) and the same rows to a CSV file (ACRO's side:
   its environment has no Parquet reader). Loading is not timed on either side, and
   each side gets its text keys dictionary-encoded: polars Categorical as the job engine
   reads Parquet, pandas "category" for ACRO (measured faster for ACRO than object
   strings: 8.8 s against 13.8 s for the 1M-row count table).
2. The tables, each a cross-tabulation of about 10,000 cells: rows local_authority x
   ward (126 wards), columns age_band x deprivation_decile (90), counts and the mean of
   gp_visits_last_year.
3. Ours: `disclosure.check_table` on the in-memory polars frame, with everything a
   checker gets: totals, every rule, primary and secondary suppression. Best of
   `--repeat`.
4. ACRO: `ACRO(suppress=False).crosstab(index, columns[, values, aggfunc="mean"])` on
   the in-memory pandas frame: its table and every check it makes (threshold, p%,
   (n, k), negative values, its risk summary). Best of `--acro-repeat` (default 1).
   Without suppression, because ACRO 1.0's suppression recomputes the table from the
   records left after removing the disclosive cells, one pandas `query` per cell and
   mask: on this table it takes minutes at 20,000 rows and is out of reach at 1M. So
   ACRO does less than we do here (we also suppress, and protect the totals), and
   `--acro-suppress-rows N` measures its suppression on the first N rows for the record.
5. The cost of unit-level contributors: the same tables with `unit="resident_id"` (one
   record per resident, the worst case: a partial row per record), in one piece and in
   1M-row fragments partialled and merged as the cluster does.

The figures go to bench/results/acro-<time>.json and are printed as a table with the
ratio ACRO seconds / our seconds (the goal: at least 20 on every case).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from disclosure import aggregate, check_table
from disclosure.check import table_grid
from tre.demo.synth import generate

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-acro"
RESULTS = HERE / "results"
ROWS = ("local_authority", "ward")
COLUMNS = ("age_band", "deprivation_decile")
VALUE = "gp_visits_last_year"
UNIT = "resident_id"
FRAGMENT_ROWS = 1_000_000

#: Runs in ACRO's environment: read the CSV, time each crosstab, print JSON.
ACRO_SCRIPT = r"""
import json, logging, os, sys, time
os.chdir(sys.argv[2])  # ACRO writes its artefacts next to the working folder
import pandas as pd
from acro import ACRO
logging.disable(logging.CRITICAL)  # ACRO logs every table at DEBUG
text_keys = ["local_authority", "ward", "age_band"]
kinds = {"deprivation_decile": "int64", **{key: "category" for key in text_keys}}
frame = pd.read_csv(sys.argv[1], dtype=kinds)
repeat, suppress, limit = int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5])
if limit:
    frame = frame.head(limit)
index = [frame.local_authority, frame.ward]
columns = [frame.age_band, frame.deprivation_decile]
from importlib.metadata import version
out = {"version": version("acro"), "pandas": pd.__version__}
tables = [("count", {}), ("mean", {"values": frame.gp_visits_last_year, "aggfunc": "mean"})]
for name, kwargs in tables[: 1 if suppress else 2]:
    runs = []
    for _ in range(repeat):
        acro = ACRO(suppress=suppress)
        started = time.perf_counter()
        table = acro.crosstab(index, columns, **kwargs)
        runs.append(time.perf_counter() - started)
    out[name] = {"runs_s": runs, "cells": int(table.size)}
print(json.dumps(out))
"""


def acro_python() -> Path:
    """The ACRO environment's interpreter, creating the environment on first use."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import acro, pandas"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "acro"], check=True)
    return python


def run(
    *,
    rows: list[int],
    repeat: int,
    acro_repeat: int,
    seed: int,
    work: Path,
    console: Console,
    suppress_rows: int = 0,
) -> dict[str, Any]:
    """Every figure of the benchmark, for each row count (and ACRO's suppression on the
    first `suppress_rows` rows of the first, if not 0)."""
    python = acro_python()
    figures: dict[str, Any] = {"benchmark": "acro_compare", "repeat": repeat, "cases": {}}
    for count in rows:
        say = _say(console, f"{count:,} rows")
        folder = work / f"rows-{count}"
        say("generating synthetic residents")
        plain, text = prepare(folder, count, seed)
        frame = load(plain)
        say("our engine: count and mean tables with totals, rules and suppression")
        ours = {name: time_ours(frame, name, repeat) for name in ("count", "mean")}
        say("unit-level contributors (unit = resident_id)")
        units = {name: time_units(frame, name, repeat) for name in ("count", "mean")}
        say(f"ACRO in {VENV.name} (best of {acro_repeat})")
        theirs = time_acro(python, text, folder, acro_repeat)
        case = {"rows": count, "ours": ours, "units": units, "acro": theirs, "ratios": {}}
        for name in ("count", "mean"):
            best_acro = min(theirs[name]["runs_s"])
            case["ratios"][name] = round(best_acro / ours[name]["best_s"], 1)
        figures["cases"][str(count)] = case
        figures["acro_version"] = theirs["version"]
        figures["acro_pandas"] = theirs["pandas"]
        if suppress_rows and "suppression" not in figures:
            say(f"ACRO with suppression on the first {suppress_rows:,} rows (slow)")
            small = frame.head(suppress_rows)
            figures["suppression"] = {
                "rows": suppress_rows,
                "ours": time_ours(small, "count", repeat),
                "acro": time_acro(python, text, folder, 1, suppress=True, limit=suppress_rows),
            }
    return figures


def prepare(folder: Path, rows: int, seed: int) -> tuple[Path, Path]:
    """The benchmark's columns as Parquet (ours) and CSV (ACRO's), the same rows."""
    sources = generate(folder / "sources", rows=rows, seed=seed)
    columns = [*ROWS, *COLUMNS, VALUE, UNIT]
    frame = pl.read_parquet(sources["residents"], columns=columns)
    plain, text = folder / "residents.parquet", folder / "residents.csv"
    frame.write_parquet(plain)
    frame.drop(UNIT).write_csv(text)
    shutil.rmtree(folder / "sources")
    return plain, text


def load(plain: Path) -> pl.DataFrame:
    """Our side's frame, with the text keys dictionary-encoded (polars Categorical), as
    the job engine reads every grouping key from Parquet (`jobs.frames`)."""
    text_keys = ["local_authority", "ward", "age_band"]
    frame = pl.from_arrow(pq.read_table(plain, read_dictionary=text_keys))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _arguments(statistic: str) -> dict[str, Any]:
    return {
        "name": statistic,
        "rows": list(ROWS),
        "columns": list(COLUMNS),
        "statistic": statistic,
        "value": VALUE if statistic == "mean" else None,
    }


def time_ours(frame: pl.DataFrame, statistic: str, repeat: int) -> dict[str, Any]:
    """`check_table` end to end: cells, totals, rules, suppression. Best of `repeat`."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = check_table(frame, **_arguments(statistic))
        runs.append(time.perf_counter() - started)
    outcome = result.protection
    assert outcome is not None
    return {
        "best_s": round(min(runs), 4),
        "runs_s": [round(r, 4) for r in runs],
        "cells": outcome.cells,
        "non_empty_cells": int((result.inner()["n"] > 0).sum()),
        "suppressed": outcome.suppressed,
        "status": result.status,
    }


def time_units(frame: pl.DataFrame, statistic: str, repeat: int) -> dict[str, Any]:
    """The unit-level variant: whole, and in fragments merged as on a cluster."""
    whole, fragmented = [], []
    value = VALUE if statistic == "mean" else None
    keys = [*ROWS, *COLUMNS]
    pieces = max(1, math.ceil(frame.height / FRAGMENT_ROWS))
    size = math.ceil(frame.height / pieces)
    for _ in range(repeat):
        started = time.perf_counter()
        check_table(frame, **_arguments(statistic), unit=UNIT)
        whole.append(time.perf_counter() - started)
        started = time.perf_counter()
        parts = [
            aggregate.partial(frame.slice(i * size, size), keys, value, statistic, unit=UNIT)
            for i in range(pieces)
        ]
        merged = aggregate.merge(parts, keys, statistic, unit=UNIT)
        aggregate.with_margins(merged, keys, statistic, grid=table_grid(ROWS, COLUMNS), unit=UNIT)
        fragmented.append(time.perf_counter() - started)
    plain = aggregate.partial(frame, keys, value, statistic)
    per_unit = aggregate.partial(frame, keys, value, statistic, unit=UNIT)
    return {
        "best_s": round(min(whole), 4),
        "fragments": pieces,
        "fragmented_best_s": round(min(fragmented), 4),
        "partial_rows": per_unit.height,
        "partial_rows_without_unit": plain.height,
        "partial_mb": round(per_unit.estimated_size() / 1e6, 1),
        "partial_mb_without_unit": round(plain.estimated_size() / 1e6, 3),
    }


def time_acro(
    python: Path, text: Path, folder: Path, repeat: int, *, suppress: bool = False, limit: int = 0
) -> dict[str, Any]:
    """Run ACRO on the CSV (its first `limit` rows, if given) in its own environment;
    its JSON figures. With `suppress`, only the count table (see the module docstring)."""
    scratch = folder / "acro-cwd"
    scratch.mkdir(exist_ok=True)
    flags = [str(repeat), "1" if suppress else "0", str(limit)]
    done = subprocess.run(
        [str(python), "-c", ACRO_SCRIPT, str(text), str(scratch), *flags],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"ACRO failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def render(figures: dict[str, Any], console: Console) -> None:
    """The table of results, with the ratios."""
    table = Table(
        "rows", "table", "cells", "ours s", "ACRO s", "ACRO / ours", "unit-level s", "unit partial"
    )
    for case in figures["cases"].values():
        for name in ("count", "mean"):
            ours, units = case["ours"][name], case["units"][name]
            table.add_row(
                f"{case['rows']:,}",
                name,
                f"{ours['cells']:,} ({ours['non_empty_cells']:,} non-empty)",
                f"{ours['best_s']:.3f}",
                f"{min(case['acro'][name]['runs_s']):.2f}",
                f"{case['ratios'][name]:.1f}x",
                f"{units['best_s']:.3f} / {units['fragmented_best_s']:.3f} "
                f"({units['fragments']} fragments)",
                f"{units['partial_rows']:,} rows, {units['partial_mb']} MB "
                f"(vs {units['partial_rows_without_unit']:,})",
            )
    console.print(table)
    console.print(
        f"ACRO {figures.get('acro_version')} (pandas {figures.get('acro_pandas')}) in "
        f"{VENV.relative_to(HERE.parent)}, checks without suppression; ours = check_table "
        "with totals, rules, primary and secondary suppression; unit-level = "
        "unit=resident_id, whole / in fragments."
    )
    suppression = figures.get("suppression")
    if suppression:
        acro_s = min(suppression["acro"]["count"]["runs_s"])
        ours_s = suppression["ours"]["best_s"]
        console.print(
            f"With ACRO's suppression, {suppression['rows']:,} rows, count table: ACRO "
            f"{acro_s:.1f} s, ours {ours_s:.3f} s ({acro_s / ours_s:,.0f}x)."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.acro_compare", description=__doc__)
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[1_000_000, 10_000_000], help="row counts"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours (best kept)")
    parser.add_argument("--acro-repeat", type=int, default=1, help="runs of ACRO (best kept)")
    parser.add_argument(
        "--acro-suppress-rows",
        type=int,
        default=0,
        help="also time ACRO's suppression (count table) on this many rows (minutes each)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    args = parser.parse_args(argv)
    if min(args.repeat, args.acro_repeat) < 1:
        parser.error("--repeat and --acro-repeat must be 1 or more")
    console = Console(highlight=False)
    work = args.work or Path(tempfile.mkdtemp(prefix="tre-acro-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        figures = run(
            rows=args.rows,
            repeat=args.repeat,
            acro_repeat=args.acro_repeat,
            seed=args.seed,
            work=work,
            console=console,
            suppress_rows=args.acro_suppress_rows,
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures["started"] = datetime.now().isoformat(timespec="seconds")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"acro-{datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(figures, indent=2))
    render(figures, console)
    console.print(f"figures: {path}")
    return 0


def _say(console: Console, label: str):  # type: ignore[no-untyped-def]
    started = time.perf_counter()

    def say(text: str) -> None:
        console.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {label}: {text}")

    return say


if __name__ == "__main__":
    sys.exit(main())
