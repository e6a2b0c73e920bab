"""Statistical disclosure control (SDC): check tables, regressions and files before release.

Stands alone (polars, numpy and the standard library only), so it works on any table:

    from pathlib import Path

    import polars as pl
    from disclosure import Rules, build_report, check_table, write_report

    result = check_table(pl.read_parquet("visits.parquet"), name="visits", rows=["ward"],
                         columns=["sex"], value="cost", statistic="mean", rules=Rules())
    print(result.status, result.summary)  # e.g. "fail table 6x2 mean of cost: 3 of 12 cells fail"
    write_report(build_report([result], rules=Rules(), policy={}, context={}), Path("out"))

Modules: `aggregate` (mergeable per-cell aggregates with their evidence, for a cluster),
`rules` (the rules and each cell's outcome), `check` (one output's verdict), `report` and
`render*` (the report, as JSON, Markdown and HTML), `validate` (argument checks),
`errors`.
"""

from disclosure import aggregate
from disclosure.check import (
    STATUS_ORDER,
    FileResult,
    RegressionResult,
    Result,
    TableResult,
    check_aggregated,
    check_file,
    check_regression,
    check_table,
    worst,
)
from disclosure.errors import DisclosureError, DisclosureInputError
from disclosure.report import build_report, render_html, render_markdown, write_report
from disclosure.rules import Rules, apply_rules

__all__ = [
    "STATUS_ORDER",
    "DisclosureError",
    "DisclosureInputError",
    "FileResult",
    "RegressionResult",
    "Result",
    "Rules",
    "TableResult",
    "aggregate",
    "apply_rules",
    "build_report",
    "check_aggregated",
    "check_file",
    "check_regression",
    "check_table",
    "render_html",
    "render_markdown",
    "worst",
    "write_report",
]
