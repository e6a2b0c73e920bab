"""Interval audit: how far the published table pins down each suppressed cell.

Secondary suppression (`disclosure.secondary`, `disclosure.line_sums`) makes sure no
suppressed cell is determined exactly by the published cells and totals. But counts are
never negative, so a suppressed cell can still be narrowed to a range (between 3 and 5,
say). This module computes that range exactly, by linear programming: for every
suppressed entry, the smallest and the largest value it can take while

    every entry is >= 0, and
    every line whose total is in the table adds up to that total
    (a line: the entries of a row or a column, or the 1-way table's single line),

with the published entries fixed at their values (Hundepool et al. 2012, §4.3 on the
"feasibility interval"; the audit τ-ARGUS runs after suppression). The constraint matrix
of a 2-way table with its totals is totally unimodular, so the LP bounds are whole
numbers and equal the bounds over whole-number tables.

`feasible_intervals` solves two LPs per suppressed entry with HiGHS (`highspy`), reusing
one model and its basis. The work is bounded: more than `MAX_AUDITED` suppressed
entries, or more than `TIME_LIMIT` seconds, and the table is reported "not audited"
rather than audited partly.

`below_protection_level` applies the protection level (τ-ARGUS's, as one width): a
suppressed primary cell of true value v must have an interval at least p% of v wide.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np

from disclosure.line_sums import Line

__all__ = [
    "AUDITED",
    "INFO_MAX_AUDITED",
    "INFO_TIME_LIMIT",
    "MAX_AUDITED",
    "TIME_LIMIT",
    "Intervals",
    "below_protection_level",
    "feasible_intervals",
]

#: Suppressed entries above which a table is not audited (two LPs each).
MAX_AUDITED = 20_000
#: Seconds the audit of one table may take before it is reported "not audited", when a
#: protection level depends on it.
TIME_LIMIT = 60.0
#: When the audit only informs the checkers (no protection level), it runs on tables of
#: at most `INFO_MAX_AUDITED` suppressed entries and for at most `INFO_TIME_LIMIT`
#: seconds: on a 126 x 90 table with 4,959 suppressed cells it would take minutes, where
#: the rest of the check takes 0.07 s, and every table of every job would pay it.
INFO_MAX_AUDITED = 1_000
INFO_TIME_LIMIT = 2.0
#: The status of an audit that ran to the end.
AUDITED = "audited"

_TOLERANCE = 1e-6
_UNBOUNDED = (
    highspy.HighsModelStatus.kUnbounded,
    highspy.HighsModelStatus.kUnboundedOrInfeasible,
)


class _QuietHighs(highspy.Highs):
    """HiGHS without its banner: the solver prints it on stdout when its constructor
    enables callbacks with logging still on, and stdout may be a command's JSON output."""

    def enableCallbacks(self) -> None:
        self.setOptionValue("output_flag", False)
        super().enableCallbacks()


@dataclass(frozen=True)
class Intervals:
    """Each entry's feasible interval (flat, as the table given): NaN where the entry is
    published or the audit did not run; `high` is inf when nothing bounds the entry."""

    low: np.ndarray
    high: np.ndarray
    status: str  # AUDITED, or "not audited: <why>"

    @property
    def audited(self) -> bool:
        """True when every suppressed entry has its interval."""
        return self.status == AUDITED


def feasible_intervals(
    counts: np.ndarray,
    suppressed: np.ndarray,
    lines: list[Line],
    *,
    max_audited: int = MAX_AUDITED,
    time_limit: float = TIME_LIMIT,
) -> Intervals:
    """The smallest and largest value of each suppressed entry that agrees with every
    published entry and total (module docstring). `counts` holds the true values (NaN
    where the table has no entry); `lines` lists each line's entries and its total."""
    low = np.full(counts.shape, np.nan)
    high = np.full(counts.shape, np.nan)
    unknown = np.flatnonzero(suppressed & np.isfinite(counts))
    if unknown.size > max_audited:
        return Intervals(
            low, high, f"not audited: {unknown.size:,} suppressed cells (at most {max_audited:,})"
        )
    if unknown.size == 0:
        return Intervals(low, high, AUDITED)
    solver, cap = _model(counts, suppressed, unknown, lines)
    bounds, status = _solve(solver, cap, time_limit)
    if bounds is None:
        return Intervals(low, high, status)
    # Bounds are whole numbers (total unimodularity): drop the solver's float noise.
    low[unknown], high[unknown] = _whole(bounds[0]), _whole(bounds[1])
    return Intervals(low, high, AUDITED)


def _solve(
    solver: highspy.Highs, cap: np.ndarray, time_limit: float
) -> tuple[tuple[np.ndarray, np.ndarray] | None, str]:
    """The smallest and largest value of each variable, two LPs each, or None and why.

    Every solution found is a feasible table, so it also settles other variables for
    free: one at 0 has its minimum (0 is its bound), one at its cap (the smallest
    published remainder of a line holding it) has its maximum. Their LPs are skipped."""
    size = cap.size
    low, high = np.full(size, np.nan), np.full(size, np.nan)
    started = time.monotonic()
    slow = f"not audited: it took more than {time_limit:g} s"
    # First any feasible table (no objective): there is one unless the counts do not
    # add up, and once there is, a maximum HiGHS cannot bound is unbounded.
    solver.setOptionValue("time_limit", time_limit)
    solver.run()
    status = solver.getModelStatus()
    if status == highspy.HighsModelStatus.kTimeLimit:
        return None, slow
    if status != highspy.HighsModelStatus.kOptimal:
        return None, (
            "not audited: the cells do not add up to the totals (a contributor counted in "
            "several cells)"
        )
    seen_low = np.asarray(solver.getSolution().col_value, dtype=float)
    seen_high = seen_low.copy()
    for variable in range(size):
        solver.changeColCost(variable, 1.0)
        for sense, found in ((highspy.ObjSense.kMinimize, low), (highspy.ObjSense.kMaximize, high)):
            if found is low and seen_low[variable] <= _TOLERANCE:
                low[variable] = 0.0
                continue
            if found is high and seen_high[variable] >= cap[variable] - _TOLERANCE:
                high[variable] = cap[variable]
                continue
            left = time_limit - (time.monotonic() - started)
            if left <= 0:
                return None, slow
            # HiGHS's time limit counts its run time over every run of the model.
            solver.setOptionValue("time_limit", solver.getRunTime() + left)
            solver.changeObjectiveSense(sense)
            solver.run()
            status = solver.getModelStatus()
            if status == highspy.HighsModelStatus.kUnknown:
                # Seen after an unbounded run: the kept basis misleads it; start afresh.
                solver.clearSolver()
                solver.run()
                status = solver.getModelStatus()
            if status == highspy.HighsModelStatus.kOptimal:
                found[variable] = solver.getInfo().objective_function_value
                values = np.asarray(solver.getSolution().col_value)
                np.minimum(seen_low, values, out=seen_low)
                np.maximum(seen_high, values, out=seen_high)
            elif status == highspy.HighsModelStatus.kTimeLimit:
                return None, slow
            elif status in _UNBOUNDED and found is high:
                found[variable] = np.inf
            else:  # pragma: no cover - a feasible model's minimum is at least 0
                return None, f"not audited: the solver stopped ({status.name})"
        solver.changeColCost(variable, 0.0)
    return (low, high), AUDITED


def below_protection_level(
    intervals: Intervals, counts: np.ndarray, primary: np.ndarray, level: float
) -> np.ndarray:
    """The primary cells whose interval is narrower than `level` percent of their value:
    high - low < level / 100 * value (none when the level is 0 or nothing was audited)."""
    if level <= 0 or not intervals.audited:
        return np.zeros(counts.shape, dtype=bool)
    width = intervals.high - intervals.low
    values = np.nan_to_num(counts)
    with np.errstate(invalid="ignore"):
        narrow = width < level / 100.0 * values - _TOLERANCE
    return primary & np.isfinite(intervals.low) & narrow


def _model(
    counts: np.ndarray, suppressed: np.ndarray, unknown: np.ndarray, lines: list[Line]
) -> tuple[highspy.Highs, np.ndarray]:
    """One variable per suppressed entry (>= 0), one equality per line with a total and a
    suppressed entry: its suppressed entries minus its suppressed total equal its
    published total minus its published entries. Also each variable's cap: the least
    right-hand side of a line whose hidden entries all add (inf when there is none)."""
    variable = np.full(counts.shape, -1)
    variable[unknown] = np.arange(unknown.size)
    cap = np.full(unknown.size, np.inf)
    starts, indices, values, bounds = [0], [], [], []
    for members, total in lines:
        if not np.isfinite(counts[total]):  # the table has no such total
            continue
        entries = np.append(members[np.isfinite(counts[members])], total)
        signs = np.append(np.ones(entries.size - 1), -1.0)
        hidden = suppressed[entries]
        if not hidden.any():
            continue
        columns = variable[entries[hidden]]
        remainder = -float(np.dot(signs[~hidden], counts[entries[~hidden]]))
        if (signs[hidden] > 0).all():
            np.minimum.at(cap, columns, remainder)
        indices.extend(columns.tolist())
        values.extend(signs[hidden].tolist())
        starts.append(len(indices))
        bounds.append(remainder)
    solver = _QuietHighs()
    solver.addVars(unknown.size, np.zeros(unknown.size), np.full(unknown.size, highspy.kHighsInf))
    if bounds:
        rhs = np.array(bounds)
        solver.addRows(
            len(bounds),
            rhs,
            rhs,
            len(indices),
            np.array(starts[:-1], dtype=np.int32),
            np.array(indices, dtype=np.int32),
            np.array(values),
        )
    return solver, cap


def _unaudited(counts: np.ndarray, status: str) -> Intervals:
    return Intervals(np.full(counts.shape, np.nan), np.full(counts.shape, np.nan), status)


def _whole(values: np.ndarray) -> np.ndarray:
    nearest = np.round(values)
    with np.errstate(invalid="ignore"):
        close = np.abs(values - nearest) < _TOLERANCE
    return np.where(close, nearest, values)
