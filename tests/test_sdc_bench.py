"""The τ-Argus comparison (bench/sdc_compare.py) still runs our side, offline.

τ-Argus itself needs its own venv and the network on first use, so it is not run here:
its input is checked as text and its output read back from a file written by hand in its
format. No timing is asserted (timings live in bench/results and docs/performance.md).
"""

import json

import numpy as np
import polars as pl

from bench import sdc_compare, sdc_tauargus
from bench.sdc_tables import (
    exposure,
    leverage_exposed,
    synthetic_counts,
    table_cells,
)
from disclosure import Rules, check_aggregated, check_table
from disclosure.secondary import exposed_two_way


def test_our_side_of_the_comparison_reports_every_figure(tmp_path):
    arguments = ["--sizes", "6", "8", "--repeat", "1", "--no-tauargus", "--out", str(tmp_path)]
    assert sdc_compare.main(arguments) == 0
    (result,) = tmp_path.glob("sdc-*.json")
    figures = json.loads(result.read_text())
    assert figures["methods"] == []
    assert set(figures["cases"]) == {"6", "8"}
    case = figures["cases"]["8"]
    assert (case["cells"], case["with_totals"]) == (64, 81)
    ours = case["ours"]
    assert ours["primary"] == case["below_threshold"] > 0
    assert ours["complete"] is True
    assert ours["exposed"] == {"graph": 0, "rank": 0}  # nothing left to work out
    assert ours["suppressed"] == ours["primary"] + ours["secondary"]
    assert ours["ranges"]["exact"] == 0  # and the linear programs agree: no point ranges
    assert case["tauargus"] == {}


def test_the_counts_as_cells_are_what_check_table_makes_of_records():
    counts = synthetic_counts(5, seed=3)
    rows, columns = np.nonzero(counts)
    records = pl.DataFrame({"row": rows, "col": columns}).select(
        pl.all().repeat_by(pl.lit(counts[rows, columns])).explode()
    )
    arguments = {"name": "t", "rows": ["row"], "columns": ["col"], "rules": Rules()}
    from_records = check_table(records.cast(pl.Int64), statistic="count", **arguments)
    from_counts = check_aggregated(table_cells(counts), value=None, statistic="count", **arguments)
    key = ["margin", "row", "col"]
    picked = ["margin", "row", "col", "value", "n", "suppressed"]
    assert (
        from_counts.cells.select(picked)
        .sort(key, nulls_last=True)
        .equals(from_records.cells.select(picked).sort(key, nulls_last=True))
    )


def test_the_two_exposure_tests_agree():
    rng = np.random.default_rng(0)
    for _ in range(100):
        pattern = rng.random((7, 6)) < rng.uniform(0.05, 0.5)
        assert (leverage_exposed(pattern) == exposed_two_way(pattern)).all()
    lone = np.zeros((4, 4), dtype=bool)
    lone[0, 0] = lone[0, 3] = True  # a cell and its row total: the total gives it away
    assert exposure(lone) == {"graph": 2, "rank": 2}


def test_tauargus_gets_the_table_with_its_totals_and_is_read_back(tmp_path):
    counts = np.array([[3, 20], [15, 40]])
    sdc_tauargus.write_tau_table(counts, tmp_path)
    lines = (tmp_path / "table.tab").read_text().splitlines()
    assert lines[0] == "r0000;c0000;3;3"
    assert lines[2] == "r0000;Total;23;23"
    assert lines[-1] == "Total;Total;78;78"
    batch = sdc_tauargus.write_batch(tmp_path, "OPT", safety_range=30, minutes=5)
    assert "<SAFETYRULE> FREQ(10,30)" in batch.read_text()
    assert "<SUPPRESS> OPT(1,5)" in batch.read_text()
    # τ-Argus' SO+ output: codes; value; frequency; cost; status; lower; upper
    (tmp_path / "opt-out.tab").write_text(
        '"Total";"Total";78;78;78;S;1;1\n'
        '"r0000";"c0000";3;3;3;U;1;1\n'
        '"r0000";"c0001";20;20;20;M;1;1\n'
        '"r0001";"c0000";15;15;15;M;1;1\n'
        '"r0001";"c0001";40;40;40;M;1;1\n'
    )
    primary, secondary = sdc_tauargus.read_tau_statuses(tmp_path / "opt-out.tab", 2, 2)
    assert primary.sum() == 1 and primary[0, 0]
    assert secondary[:2, :2].sum() == 3 and not secondary[2, 2]
    assert exposure(primary | secondary) == {"graph": 0, "rank": 0}
