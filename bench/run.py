"""Run the benchmarks: `python -m bench.run [--rows N] [--repeat R] [--only NAME]`.

Each benchmark measures its own baseline in the same run and reports ratios against
it; the figures, the machine and the library versions go to bench/results/<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import (
    cli_start,
    differencing,
    interval_audit,
    isolation,
    key_path,
    secured_read,
    service_load,
    slurm_job,
    table_job,
)

RESULTS = Path(__file__).resolve().parent / "results"
BENCHMARKS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[..., None]]] = {
    table_job.NAME: (table_job.run, table_job.render),
    slurm_job.NAME: (slurm_job.run, slurm_job.render),
    service_load.NAME: (service_load.run, service_load.render),
    secured_read.NAME: (secured_read.run, secured_read.render),
    isolation.NAME: (isolation.run, isolation.render),
    differencing.NAME: (differencing.run, differencing.render),
    interval_audit.NAME: (interval_audit.run, interval_audit.render),
    cli_start.NAME: (cli_start.run, cli_start.render),
    key_path.NAME: (key_path.run, key_path.render),
}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory / 1024**3, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            name: version(name) for name in ("polars", "pyarrow", "dask", "distributed", "tre")
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000, help="synthetic residents")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timing (best kept)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    parser.add_argument(
        "--only", choices=sorted(BENCHMARKS), action="append", help="run only this benchmark"
    )
    parser.add_argument(
        "--work", type=Path, help="scratch folder (default: a new temporary folder)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    if args.work is not None and args.work.exists() and any(args.work.iterdir()):
        parser.error(f"--work {args.work} is not empty")

    console = Console(highlight=False)
    when = datetime.now()
    document: dict[str, Any] = {
        "started": when.isoformat(timespec="seconds"),
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": machine(),
        "benchmarks": {},
    }
    console.print(
        "machine: {nproc} CPUs, {memory_gib} GiB, Python {python}, ".format(**document["machine"])
        + ", ".join(f"{k} {v}" for k, v in document["machine"]["versions"].items())
    )
    for name in args.only or sorted(BENCHMARKS):
        run, render = BENCHMARKS[name]
        if args.work is not None:
            work = args.work.absolute() / name
            work.mkdir(parents=True)
        else:
            work = Path(tempfile.mkdtemp(prefix=f"tre-bench-{name}-"))
        try:
            figures = run(
                rows=args.rows, repeat=args.repeat, seed=args.seed, work=work, console=console
            )
        finally:
            if args.keep:
                console.print(f"[dim]kept {work}[/]")
            else:
                shutil.rmtree(work, ignore_errors=True)
        document["benchmarks"][name] = figures
        render(figures, console)

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{when:%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    console.print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
