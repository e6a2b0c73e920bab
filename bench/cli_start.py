"""Benchmark `cli_start`: how long `tre --version`, `tre --help` and `tre status` take, as
whole processes, against starting Python and doing nothing (`python -c pass`).

Each command runs as the `tre` console script runs it (`from tre.cli.main import main`),
in a fresh interpreter; `tre status` lists the jobs of a new demo home (unsandboxed, so
no key service starts). The commands take turns, run by run, so load from elsewhere on
the machine falls on all of them alike; the best of at least 5 runs is reported, and the
median beside it. The goal (issue 27): under 0.3 s for --version and --help here.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tre.service.people import init_home

NAME = "cli_start"
ROOT = Path(__file__).resolve().parent.parent
TRE = "import sys; from tre.cli.main import main; sys.exit(main())"


def _commands(home: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "tre --version": [sys.executable, "-c", TRE, "--version"],
        "tre --help": [sys.executable, "-c", TRE, "--help"],
        "tre status": [sys.executable, "-c", TRE, "--home", str(home), "--as", "ada", "status"],
    }


def _seconds(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    return time.perf_counter() - started


def run(*, rows: int, repeat: int, seed: int, work: Path, console: Console) -> dict[str, Any]:
    """Time each command (seconds); `rows` and `seed` are not used."""
    home = init_home(work / "home", admin="ada", full_name="Ada", demo=True, isolation="none")
    env = {k: v for k, v in os.environ.items() if k not in ("TRE_HOME", "TRE_SERVER")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    commands = _commands(home.root)
    for command in commands.values():  # once unmeasured: the file cache warm for all alike
        _seconds(command, env)
    runs: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(max(repeat, 5)):
        for name, command in commands.items():
            runs[name].append(_seconds(command, env))
    baseline = min(runs["python -c pass"])
    return {
        "benchmark": NAME,
        "baseline": "python -c pass",
        "baseline_s": round(baseline, 4),
        "commands": {
            name: {
                "seconds": round(min(times), 4),
                "median_s": round(statistics.median(times), 4),
                "ratio_to_baseline": round(min(times) / baseline, 2),
                "runs": [round(t, 4) for t in times],
            }
            for name, times in runs.items()
            if name != "python -c pass"
        },
    }


def render(figures: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"cli_start: whole processes; {figures['baseline']} took {figures['baseline_s']:.3f}s"
    )
    for column in ("command", "best s", "median s", "x python -c pass"):
        table.add_column(column)
    for name, got in figures["commands"].items():
        table.add_row(
            name,
            f"{got['seconds']:.3f}",
            f"{got['median_s']:.3f}",
            f"{got['ratio_to_baseline']:.1f}x",
        )
    console.print(table)
