"""Statistical disclosure control (SDC): check tables, regressions and files before release.

Stands alone (polars, numpy, HiGHS's `highspy` for the interval audit, and the standard
library), so it works on any table:

    from pathlib import Path

    import polars as pl
    from disclosure import Protection, Rules, build_report, check_table, write_report

    visits = pl.read_parquet("visits.parquet")
    result = check_table(visits, name="visits", rows=["ward"], columns=["sex"],
                         value="cost", statistic="mean", unit="patient_id",
                         rules=Rules(), protection=Protection(round_to=5))
    print(result.status, result.summary)
    # e.g. "review table 6x2 mean of cost: 3 of 12 cells fail (3 below the threshold);
    #       protected: 3 suppressed, 3 more so they cannot be worked out from the totals"
    result.cells                       # every cell and total: evidence, rules, protection
    result.inner_cells                 # the cells alone (result.totals: the totals alone)
    result.cell(ward="W01", sex="F")   # one cell as a dict: flags, status, reason
    released_table(result)             # what would leave: the protected table only
    print(researcher_summary(result))  # what the researcher is told, no evidence values
    write_report(build_report([result], rules=Rules(), policy={}, context={}), Path("out"))

    # Per ward, the records with an HbA1c result; its contributors, the patients with one.
    tested = check_table(visits, name="tested", rows=["ward"], value="hba1c",
                         statistic="count", unit="patient_id")

A regression fitted by statsmodels (or a lifelines CoxPHFitter, with `data=`) is read
from the fitted object, which disclosure never imports:

    import statsmodels.formula.api as smf
    from disclosure import check_fitted

    fitted = smf.ols("gp_visits ~ age + has_diabetes", visits.to_pandas()).fit()
    check_fitted("visits model", fitted, rules=Rules()).reasons
    # ["value 1 of has_diabetes has 1 observation, below the threshold of 10: ..."]

Several tables of one request: `check_request(results, released)` finds the pairs (and
larger sets) that disclose together (`differencing`), against each other and against
tables released before (`PublishedTable`, kept by the caller in a ledger).

Modules: `aggregate` / `combine` / `finalize` (mergeable per-cell aggregates with their
evidence, for a cluster), `rules` / `rules_text` (the rules and each cell's outcome),
`protection` / `protect` / `secondary` / `line_sums` (suppression, rounding, totals),
`intervals` (the interval audit: the range the release leaves each suppressed cell, and
the protection level), `cellkey` / `perturbation` (the cell key method's noise),
`outcome`, `check` and
`table_summary` (one output's verdict), `other_outputs` (regressions, files), `fitted`
(a regression read from a statsmodels or lifelines fit), `differencing` / `findings` /
`pairs` / `published` / `populations` / `combinations` / `recovery` (outputs that
disclose together; `populations` reads filters as sets of values, `combinations` solves
over three or more tables), `release` (the released table, the researcher's summary),
`report` and `render*` (the checker's report, as JSON, Markdown and HTML), `parameters`
and `validate` (argument checks), `errors`; `acro` / `acro_arguments` / `acro_tables` /
`acro_survival` / `acro_results` (an ACRO-compatible session for TREs switching from
ACRO: its methods on pandas objects, checked here, and its results.json; pandas and
statsmodels imported only when called).
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
from disclosure.differencing import (
    Budget,
    Finding,
    PublishedTable,
    check_request,
    published_view,
)
from disclosure.errors import DisclosureError, DisclosureInputError
from disclosure.fitted import check_fitted
from disclosure.protection import Protection
from disclosure.release import released_table, researcher_summary
from disclosure.report import build_report, render_html, render_markdown, write_report
from disclosure.rules import Rules, apply_rules

__all__ = [
    "STATUS_ORDER",
    "Budget",
    "DisclosureError",
    "DisclosureInputError",
    "FileResult",
    "Finding",
    "Protection",
    "PublishedTable",
    "RegressionResult",
    "Result",
    "Rules",
    "TableResult",
    "aggregate",
    "apply_rules",
    "build_report",
    "check_aggregated",
    "check_file",
    "check_fitted",
    "check_regression",
    "check_request",
    "check_table",
    "published_view",
    "released_table",
    "render_html",
    "render_markdown",
    "researcher_summary",
    "worst",
    "write_report",
]
