"""Outputs whose evidence tre cannot vouch for, because researcher code computed it.

A python step's `ctx.table(...)` and `ctx.regression(...)` compute cells and evidence
(`n`, `records`, `top`, degrees of freedom) inside the researcher's own process, which
can edit them before they are handed over. Checks on such evidence say what the
evidence claims, not what is true, so such an output is labelled to the checkers and
can never pass on its evidence alone: a checker confirms it by name (tre/service/review.py).
"""

from __future__ import annotations

from disclosure.check import TableResult
from disclosure.other_outputs import RegressionResult

ADVISORY = "computed by researcher code: these checks are advisory"


def mark_advisory(
    result: TableResult | RegressionResult, why: str = ADVISORY
) -> TableResult | RegressionResult:
    """Label `result` advisory: at best "review", its summary saying why first."""
    result.advisory = why
    if result.status == "pass":
        result.status = "review"
    if result.check_status == "pass":
        result.check_status = "review"
    result.summary = f"Advisory, {why}. {result.summary}"
    return result
