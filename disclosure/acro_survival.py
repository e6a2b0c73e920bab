"""A Kaplan–Meier table (statsmodels' `SurvfuncRight`) checked as ACRO's `surv_func` checks
it, on the engine: each row of the table is a step of the survival curve, and the people
who left the risk set since the previous step (events and censorings) are what the step
reveals. A step with fewer than `rules.threshold` of them fails the threshold; with
suppression its row (probability, standard error, at risk, events) is withheld.

The step of each record is counted by `check_table` over a `step` column, so the rule,
its reason and the verdict are the engine's. The first row is not checked, as in ACRO:
its number at risk is the whole population less those censored before any event.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from disclosure.acro_results import empty_sdc
from disclosure.check import TableResult, check_table
from disclosure.errors import DisclosureInputError
from disclosure.protection import Protection
from disclosure.rules import Rules

__all__ = ["SurvivalTable", "survival_table"]

STEP = "step"


@dataclass
class SurvivalTable:
    """The Kaplan–Meier table as shown, its check, and results.json's entries."""

    frame: Any  # pandas.DataFrame, indexed by Time
    result: TableResult
    sdc: dict[str, Any]
    outcome: dict[str, dict[str, str]]
    failing: int  # rows failing the threshold


def survival_table(
    sm: Any, time: Any, status: Any, *, name: str, rules: Rules, suppress: bool
) -> SurvivalTable:
    """Fit the Kaplan–Meier estimate of `time` and `status` (1: the event, 0: censored)
    and check each of its steps."""
    times = np.asarray(time, dtype=float)
    events = np.asarray(status, dtype=float)
    if times.ndim != 1 or times.shape != events.shape or np.isnan(times).any():
        raise DisclosureInputError(
            "surv_func needs one time and one status per record, with no missing time",
            fix="pass two columns of equal length, e.g. acro.surv_func(df.futime, df.death, "
            "output='table'); drop records with no time first",
        )
    frame = sm.SurvfuncRight(times, events).summary()
    steps = frame.index.to_numpy(dtype=float)
    # A record left the risk set between the step before its time and the next one.
    step = np.searchsorted(steps, times, side="right")
    # Those of step 0 left before the first row; those past the last row, after it.
    leavers = pl.DataFrame({STEP: step[(step > 0) & (step < len(steps))]})
    result = check_table(
        leavers,
        name=name,
        rows=[STEP],
        rules=rules,
        # Rows are withheld whole; no totals are shown, so nothing else needs hiding.
        protection=Protection(suppress=suppress, secondary=False, totals=False),
    )
    failing_steps = result.inner_cells.filter(pl.col("fails_threshold"))[STEP].to_list()
    rows = sorted(int(s) for s in failing_steps)
    if suppress:
        frame = frame.astype(float)  # counts become NaN where withheld
        frame.iloc[rows, :] = np.nan
    sdc = empty_sdc(suppress)
    sdc["cells"]["threshold"] = [[r, c] for r in rows for c in range(frame.shape[1])]
    sdc["summary"]["threshold"] = len(sdc["cells"]["threshold"])
    outcome = {
        str(column): {
            str(label): "threshold; " if r in rows else "ok" for r, label in enumerate(frame.index)
        }
        for column in frame.columns
    }
    return SurvivalTable(frame=frame, result=result, sdc=sdc, outcome=outcome, failing=len(rows))
