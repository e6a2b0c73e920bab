"""Outputs refused for their form (disclosure/refusal.py): "fail" whatever their cells say."""

from __future__ import annotations

import polars as pl

from disclosure import Rules, build_report, check_table, render_markdown
from disclosure.refusal import mark_refused


def test_a_table_whose_every_cell_passes_is_failed_when_refused_saying_why_first():
    # Each of four "people" ten times over: every cell passes on records.
    frame = pl.DataFrame({"who": [f"R{i}" for i in range(4)] * 10})
    table = check_table(frame, name="per_person", rows=["who"])
    assert table.status == "pass"
    mark_refused(table, "keyed by an identifier column")
    assert table.status == "fail" and table.check_status == "fail"
    assert table.summary.startswith("Refused, keyed by an identifier column. ")
    report = build_report([table], rules=Rules(), policy={}, context={})
    (entry,) = report["outputs"]
    assert entry["status"] == "fail" and entry["check_status"] == "fail"
    assert "Refused, keyed by an identifier column." in render_markdown(report)
