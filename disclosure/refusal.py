"""Outputs refused whatever their cells say, because their form discloses.

A table keyed by a person's identifier publishes one row per person: each of its cells
can pass every rule (the person's record repeated ten times) and still be one person.
No rule on cells sees that, so the caller, which knows which columns identify people,
marks such an output "fail" with its reason, and no checker can approve it.
"""

from __future__ import annotations

from disclosure.check import TableResult
from disclosure.other_outputs import RegressionResult


def mark_refused(
    result: TableResult | RegressionResult, why: str
) -> TableResult | RegressionResult:
    """Label `result` "fail" as computed and as released, its summary saying why first."""
    result.status = "fail"
    result.check_status = "fail"
    result.summary = f"Refused, {why}. {result.summary}"
    return result
