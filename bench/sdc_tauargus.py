"""τ-Argus for `sdc_compare`, behind one door: its environment, its input files, one
batch run in a subprocess, and its protected table read back.

τ-Argus is `pytauargus` (PyPI: the τ-Argus engine with the open-source HiGHS solver, and
a Python driver for its batch files). It lives in its own virtual environment,
`bench/.venv-tauargus`, created on first use (`python -m venv`, `pip install
pytauargus`) and reused after, so tre's own dependencies are untouched. The table goes
in as τ-Argus' tabular input (a `.tab` file with the totals and `.rda` metadata), since
its microdata path would need every record written out as fixed-width text.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.sdc_tables import THRESHOLD, augmented

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-tauargus"
METHODS = ("OPT", "MOD")
TOTAL = "Total"

#: Runs in τ-Argus' environment: one batch, timed; its figures as JSON on stdout.
TAU_SCRIPT = r"""
import json, logging, sys, time
logging.disable(logging.CRITICAL)
import pytauargus
from pytauargus.engine import Engine
engine = Engine()
spent = []
suppress = engine.suppress
def timed(command):
    started = time.perf_counter()
    suppress(command)
    spent.append(time.perf_counter() - started)
engine.suppress = timed
started = time.perf_counter()
engine.run_batch(sys.argv[1])
seconds = time.perf_counter() - started
print(json.dumps({"version": pytauargus.__version__, "engine": engine.version,
                  "seconds": seconds, "suppress_s": sum(spent)}))
"""

RDA = """<SEPARATOR> ";"
Row
  <RECODABLE>
  <TOTCODE> "Total"
Col
  <RECODABLE>
  <TOTCODE> "Total"
Count
  <NUMERIC>
Freq
  <FREQUENCY>
"""


def tau_python() -> Path:
    """τ-Argus' interpreter, creating its environment on first use."""
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import pytauargus.engine"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "pytauargus"], check=True)
    return python


def write_tau_table(counts: np.ndarray, folder: Path) -> None:
    """The table as τ-Argus' tabular input: `table.tab` (cells, then row, column and
    grand totals: codes, count, frequency) and its metadata `table.rda`."""
    folder.mkdir(parents=True, exist_ok=True)
    table = augmented(counts)
    height, width = counts.shape
    lines = []
    for r in range(height + 1):
        row = _code("r", r, height)
        for c in range(width + 1):
            count = int(table[r, c])
            lines.append(f"{row};{_code('c', c, width)};{count};{count}\n")
    (folder / "table.tab").write_text("".join(lines))
    (folder / "table.rda").write_text(RDA)


def _code(prefix: str, index: int, size: int) -> str:
    return TOTAL if index == size else f"{prefix}{index:04d}"


def write_batch(folder: Path, method: str, safety_range: int, minutes: int) -> Path:
    """A τ-Argus batch: read the table, the frequency rule, one suppression method, and
    the protected table written with each cell's status."""
    suppress = f"OPT(1,{minutes})" if method == "OPT" else f"MOD(1,{minutes},1,1,1)"
    batch = folder / f"{method.lower()}.arb"
    batch.write_text(
        '<OPENTABLEDATA> "table.tab"\n'
        '<OPENMETADATA> "table.rda"\n'
        '<SPECIFYTABLE> "Row""Col"|"Count"||\n'
        f"<SAFETYRULE> FREQ({THRESHOLD},{safety_range})\n"
        "<READTABLE> 1\n"
        f"<SUPPRESS> {suppress}\n"
        f'<WRITETABLE> (1,5,"SO+","{method.lower()}-out.tab")\n'
    )
    return batch


def read_tau_statuses(path: Path, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """τ-Argus' protected table (its `SO+` intermediate file: codes, value, frequency,
    cost, status, lower, upper) as the augmented primary and secondary patterns."""
    primary = np.zeros((height + 1, width + 1), dtype=bool)
    secondary = np.zeros_like(primary)
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        fields = [field.strip().strip('"').strip() for field in line.split(";")]
        r = height if fields[0] == TOTAL else int(fields[0][1:])
        c = width if fields[1] == TOTAL else int(fields[1][1:])
        status = fields[-3]
        primary[r, c] = status == "U"
        secondary[r, c] = status == "M"
    return primary, secondary


def run_tau(
    python: Path, folder: Path, method: str, shape: tuple[int, int], timeout: float, **batch: int
) -> dict[str, Any]:
    """One τ-Argus batch in its own process: its figures and its pattern, or
    `{"timed_out": True}` when it takes longer than `timeout` seconds."""
    arb = write_batch(folder, method, minutes=max(1, math.ceil(timeout / 60)), **batch)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [str(python), "-c", TAU_SCRIPT, str(arb)],
            cwd=folder,  # τ-Argus writes its solver logs to the working folder
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"timed_out": True, "timeout_s": timeout}
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"τ-Argus {method} failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    primary, secondary = read_tau_statuses(folder / f"{method.lower()}-out.tab", *shape)
    return {**figures, "timed_out": False, "process_s": wall, "_patterns": (primary, secondary)}
