"""Lines whose suppressed cells add up to a small number, and more suppression for them.

Bridge-based secondary suppression (`disclosure.secondary`) makes sure no suppressed cell
can be worked out alone. A line whose total is published still gives the SUM of its
suppressed entries: the total minus the line's published entries. Wirral's 7- and
8-condition cells, 2 and 4 people, each on a cycle, still add up to 6 for anyone who
subtracts; 6 people is a small group. So a line is *small* when its total is published,
it has suppressed entries, and what they add up to lies in [0, limit], where

- limit = max(threshold - 1, redact_at_or_below): a sum the rules would have failed (or
  redacted) as a cell of its own;
- 0 is always small, whatever `zeros_disclosive` says: counts are never negative, so
  suppressed entries that add up to 0 are each known to be 0, exactly.

`protect_line_sums` suppresses, in each small line, its cheapest unsuppressed entries
(by the same costs as the cycles) until the line's hidden sum leaves [0, limit], or
its total itself is suppressed (the most expensive choice, and then the line gives no
sum); then it completes the cycles again so that no new suppressed cell is a bridge,
and repeats until no line is small. Only single lines are examined: the sum of the
suppressed cells of several lines together (two rows) is not; the interval audit
(`disclosure.intervals`) reports what all the lines together leave each single cell.

The table is flat here: `lines` lists, for each line, the positions of its entries and of
its total, so a 1-way table (one line) and a 2-way table (its rows and columns, the line
of column totals and the line of row totals) are handled alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["Line", "protect_line_sums", "small_lines", "table_lines"]

#: A line: the flat positions of its entries, and the flat position of its total.
Line = tuple[np.ndarray, int]

#: Completes the cycles of a flat suppressed vector: (suppressed, every cell protected).
Close = Callable[[np.ndarray], tuple[np.ndarray, bool]]

_TOLERANCE = 1e-9  # counts are whole numbers held as floats


def table_lines(height: int, width: int) -> list[Line]:
    """The lines of an augmented table, flat: a 1-way table (`width` 0) of `height` cells
    and its total, or a 2-way (height+1) x (width+1) matrix whose last row and column
    are the totals (row-major positions)."""
    if width == 0:
        return [(np.arange(height), height)]
    stride = width + 1
    rows = [(i * stride + np.arange(width), i * stride + width) for i in range(height + 1)]
    columns = [(np.arange(height) * stride + j, height * stride + j) for j in range(width + 1)]
    return rows + columns


def hidden_sum(line: Line, suppressed: np.ndarray, counts: np.ndarray) -> float | None:
    """What a line's published total minus its published entries gives, or None when the
    line gives nothing (its total is suppressed or absent, or nothing in it is)."""
    members, total = line
    if suppressed[total] or not np.isfinite(counts[total]):
        return None
    hidden = suppressed[members]
    if not hidden.any():
        return None
    shown = members[~hidden]
    return float(counts[total] - np.nansum(counts[shown]))


def small_lines(
    suppressed: np.ndarray, counts: np.ndarray, lines: list[Line], limit: float
) -> list[int]:
    """The lines whose published total shows their suppressed entries to add up to a
    number from 0 to `limit`. `counts` is NaN where the table has no entry."""
    found = []
    for index, line in enumerate(lines):
        value = hidden_sum(line, suppressed, counts)
        if value is not None and -_TOLERANCE <= value <= limit + _TOLERANCE:
            found.append(index)
    return found


def protect_line_sums(
    suppressed: np.ndarray,
    counts: np.ndarray,
    cost: np.ndarray,
    lines: list[Line],
    limit: float,
    close: Close,
) -> tuple[np.ndarray, bool]:
    """More suppression until no line's suppressed entries add up to [0, `limit`]
    (module docstring). `cost` is inf for an entry that may not be used (absent from the
    table). Returns the suppressed entries and whether every cell is protected."""
    suppressed = suppressed.copy()
    # Each round suppresses at least one more entry, so this bound is never the one hit.
    for _ in range(int(suppressed.size) + 1):
        small = small_lines(suppressed, counts, lines, limit)
        if not small:
            return suppressed, True
        added = 0
        for index in small:
            added += _widen(suppressed, counts, cost, lines[index], limit)
        if not added:
            return suppressed, False
        suppressed, complete = close(suppressed)
        if not complete:
            return suppressed, False
    return suppressed, False  # pragma: no cover - see the bound above


def _widen(
    suppressed: np.ndarray, counts: np.ndarray, cost: np.ndarray, line: Line, limit: float
) -> int:
    """Suppress a small line's cheapest entries until its hidden sum is above `limit` or
    its total is suppressed; returns how many were suppressed."""
    value = hidden_sum(line, suppressed, counts)
    if value is None or value > limit + _TOLERANCE:  # an earlier line's choice did it
        return 0
    members, total = line
    candidates = np.append(members, total)
    candidates = candidates[~suppressed[candidates] & np.isfinite(cost[candidates])]
    added = 0
    for position in candidates[np.argsort(cost[candidates], kind="stable")]:
        suppressed[position] = True
        added += 1
        if position == total:
            break
        value += float(counts[position])
        if value > limit + _TOLERANCE:
            break
    return added
