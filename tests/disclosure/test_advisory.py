"""Outputs computed by researcher code: labelled, never "pass" on their evidence alone."""

from __future__ import annotations

import polars as pl

from disclosure import (
    Rules,
    build_report,
    check_regression,
    check_table,
    render_html,
    render_markdown,
)
from disclosure.advisory import ADVISORY, mark_advisory


def _passing_table():
    frame = pl.DataFrame({"ward": ["A"] * 20 + ["B"] * 20})
    return check_table(frame, name="by_ward", rows=["ward"])


def test_a_passing_table_marked_advisory_needs_review_and_says_why():
    table = _passing_table()
    assert table.status == "pass"
    mark_advisory(table)
    assert table.status == "review" and table.check_status == "review"
    assert table.summary.startswith(f"Advisory, {ADVISORY}.")
    report = build_report([table], rules=Rules(), policy={}, context={})
    (entry,) = report["outputs"]
    assert entry["advisory"] == ADVISORY and entry["status"] == "review"
    assert "<strong>Advisory:</strong>" in render_html(report)
    assert "**Advisory:**" in render_markdown(report)


def test_a_failing_output_stays_failing_when_marked_advisory():
    regression = check_regression(
        name="model",
        model="ols",
        n_obs=4,
        df_resid=1,
        rules=Rules(),
        coefficients=pl.DataFrame(
            {
                "term": ["x"],
                "estimate": [1.0],
                "std_error": [0.1],
                "statistic": [10.0],
                "p_value": [0.01],
            }
        ),
    )
    assert regression.status == "fail"
    mark_advisory(regression)
    assert regression.status == "fail" and regression.advisory == ADVISORY


def test_an_output_tre_computed_is_not_labelled():
    report = build_report([_passing_table()], rules=Rules(), policy={}, context={})
    assert "advisory" not in report["outputs"][0]
    assert "Advisory" not in render_html(report)
