"""Vectorised draws the generators share: categories, exact allocations, labels.

Everything works on whole columns at once; the only Python loops run over the
categories of a table (tens), never over rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["allocate", "dep_factor", "draw", "draw_by_group", "labels", "month_labels"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _cumulative(weights: npt.ArrayLike) -> FloatArray:
    w = np.asarray(weights, dtype=np.float64)
    cum = np.cumsum(w / w.sum(axis=-1, keepdims=True), axis=-1)
    cum[..., -1] = 1.0  # rounding must never leave a draw past the last category
    return cum


def draw(rng: np.random.Generator, n: int, weights: Sequence[float]) -> IntArray:
    """`n` category codes drawn with the given (unnormalised) weights."""
    return np.searchsorted(_cumulative(weights), rng.random(n), side="right").astype(np.int64)


def draw_by_group(rng: np.random.Generator, groups: IntArray, table: npt.ArrayLike) -> IntArray:
    """One category per row, drawn from the weights in row `groups[i]` of `table`."""
    cum = _cumulative(table)
    u = rng.random(len(groups))
    out = np.empty(len(groups), dtype=np.int64)
    for g in range(cum.shape[0]):
        rows = groups == g
        out[rows] = np.searchsorted(cum[g], u[rows], side="right")
    return out


def allocate(n: int, weights: FloatArray) -> IntArray:
    """Split `n` into whole counts proportional to `weights` (largest remainder)."""
    exact = n * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    short = n - int(counts.sum())
    # Stable sort so ties go to the earlier category, the same on every machine.
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


def dep_factor(decile: IntArray, strength: float) -> FloatArray:
    """A multiplier that is 1 + strength in decile 1 (most deprived), 1 - strength in 10."""
    return (1.0 + strength * (5.5 - decile) / 4.5).astype(np.float64, copy=False)


def labels(names: Sequence[str], codes: IntArray) -> pa.StringArray:
    """Arrow strings for category `codes` (a C++ take, not a Python loop)."""
    return pc.take(pa.array(names, type=pa.string()), pa.array(codes))


def month_labels(year: int) -> tuple[str, ...]:
    """The twelve months of `year` as 'YYYY-MM', the form the month columns use."""
    return tuple(f"{year}-{m:02d}" for m in range(1, 13))
