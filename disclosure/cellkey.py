"""The cell key method (ONS, ABS): noise on published counts that differencing cannot
remove, because the same cell always gets the same noise.

Each record carries a random **record key**, a whole number in [0, 2**32), given once
(at ingest) and kept with the data. A cell's key is the sum of its records' keys modulo
2**32, so it depends only on which records the cell holds: not on their order, nor on
how the data was split into fragments and merged (whole-number sums are exact). Divided
by 2**32 it is a uniform number in [0, 1) that looks up the noise in a **perturbation
table** (`PTable`): for each true count n, a distribution of the noise v. The published
count is n + v. Two jobs, or two releases, that count the same records publish the same
number; two tables that differ by a small group differ by that group plus noise, which
never says how large the group is.

The perturbation table (the design the ONS used for the 2021 Census, after Fraser and
Wooton 2005 and Marley and Leaver 2011), with parameters from the policy:

- `max_noise` (D): no count moves by more than D, except small counts (below).
- `variance` (V): the variance of the noise on a large count; the distribution is a
  discrete Gaussian shape on -D..D with `p_stay` on 0, scaled to reach V (the most it
  can be with D is reported if V is more).
- `smallest` (js): no count from 1 to js is ever published: such a count goes to 0 or
  to at least js + 1, unbiased (its expected published value is its true value).
- Zeros stay zero (an empty cell is structural, and noise would invent people).

Every row is unbiased: the mass of an outcome that may not be published (below 0, or 1
to js) is moved to 0, and the mean put back by moving mass between 0 and the largest
outcome (at least js + 1). Counts above js + D can reach no such outcome, so they all
take the large-count noise; the table keeps rows for 0 to js + D only.

Checkers see the true counts (the evidence); only the published numbers are perturbed.
Totals are cells too: their key is the sum over all their records, so a total is
perturbed consistently wherever it appears (it is not the sum of its perturbed cells).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from disclosure.errors import DisclosureInputError

__all__ = ["KEY_SPACE", "PTable", "cell_keys", "perturb", "record_keys"]

#: Record keys are whole numbers below this; a cell key is a sum modulo it.
KEY_SPACE = 2**32


@dataclass(frozen=True)
class PTable:
    """A perturbation table. A count n from 0 to `js + D` is published as outcome o with
    probability small[n][o] (o from 0 to js + 2D); a larger count as n + v, v from -D to
    D, with probability large[v + D]. Build one with `PTable.design`."""

    max_noise: int
    variance: float
    smallest: int
    p_stay: float
    small: np.ndarray = field(repr=False)  # (js + D + 1) x (js + 2D + 1)
    large: np.ndarray = field(repr=False)  # 2D + 1

    @classmethod
    def design(
        cls, max_noise: int = 3, variance: float = 2.0, smallest: int = 0, p_stay: float = 0.5
    ) -> PTable:
        """The table for these parameters (see the module docstring); DisclosureInputError
        for parameters no table satisfies."""
        problems = []
        if not isinstance(max_noise, int) or not 1 <= max_noise <= 50:
            problems.append(f"max_noise {max_noise!r} must be a whole number from 1 to 50")
        if not isinstance(smallest, int) or not 0 <= smallest <= 50:
            problems.append(f"smallest {smallest!r} must be a whole number from 0 to 50")
        if not 0 < variance <= 1000:
            problems.append(f"variance {variance!r} must be above 0 (and at most 1000)")
        if not 0 <= p_stay < 1:
            problems.append(f"p_stay {p_stay!r} must be at least 0 and below 1")
        if problems:
            raise DisclosureInputError(
                "cannot design the perturbation table",
                reasons=problems,
                fix="choose parameters as in the ONS design, e.g. max_noise 3, variance 2, "
                "smallest 0, p_stay 0.5",
            )
        large = _large_count_noise(max_noise, variance, p_stay)
        reached = float(large @ np.arange(-max_noise, max_noise + 1) ** 2)
        if reached < variance * (1 - 1e-6):
            raise DisclosureInputError(
                f"a noise of at most {max_noise} that leaves {p_stay:g} of counts as they "
                f"are has a variance of at most {reached:.3g}, not {variance:g}",
                fix="raise max_noise, lower p_stay, or ask for less variance",
            )
        small = np.array(
            [_small_row(n, large, max_noise, smallest) for n in range(smallest + max_noise + 1)]
        )
        return cls(max_noise, variance, smallest, p_stay, small, large)

    @property
    def reached_variance(self) -> float:
        """The variance of the noise on a large count (`variance`, or the most -D..D and
        p_stay allow)."""
        offsets = np.arange(-self.max_noise, self.max_noise + 1)
        return float(self.large @ offsets**2)

    def outcomes(self, n: int) -> dict[int, float]:
        """The published values of a true count n, with their probabilities."""
        if n < len(self.small):
            return {o: float(p) for o, p in enumerate(self.small[n]) if p > 0}
        return {
            n + v: float(p)
            for v, p in zip(range(-self.max_noise, self.max_noise + 1), self.large, strict=True)
            if p > 0
        }

    def noise(self, counts: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """The noise for each count, by its cell key (uniform in [0, 1))."""
        counts = np.asarray(counts, dtype=np.int64)
        keys = np.asarray(keys, dtype=float)
        noise = np.zeros(counts.shape, dtype=np.int64)
        few = counts < len(self.small)
        if few.any():
            outcome = _pick(self.small[counts[few]], keys[few])
            noise[few] = outcome - counts[few]
        if (~few).any():
            rows = np.broadcast_to(self.large, (int((~few).sum()), len(self.large)))
            noise[~few] = _pick(rows, keys[~few]) - self.max_noise
        return noise


def _pick(rows: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each row (a distribution), the index its key falls in."""
    cumulative = np.cumsum(rows, axis=1)
    cumulative[:, -1] = 1.0  # rounding must never leave a key with no outcome
    return np.minimum((keys[:, None] >= cumulative).sum(axis=1), rows.shape[1] - 1)


def _large_count_noise(max_noise: int, variance: float, p_stay: float) -> np.ndarray:
    """Symmetric on -D..D, `p_stay` at 0, a discrete Gaussian shape elsewhere whose width
    is found (by bisection) to give `variance`, or the widest it may be."""
    offsets = np.arange(-max_noise, max_noise + 1)

    def shaped(width: float) -> np.ndarray:
        weights = np.exp(-(offsets**2) / (2 * width**2))
        weights[max_noise] = 0.0
        return np.where(offsets == 0, p_stay, (1 - p_stay) * weights / weights.sum())

    low, high = 1e-3, 1e3
    if shaped(high) @ offsets**2 <= variance:
        return shaped(high)
    for _ in range(200):
        middle = math.sqrt(low * high)
        if shaped(middle) @ offsets**2 < variance:
            low = middle
        else:
            high = middle
    return shaped(low)


def _small_row(n: int, large: np.ndarray, max_noise: int, smallest: int) -> np.ndarray:
    """The outcomes (0 to js + 2D) of a true count n: the large-count noise, with any
    outcome that may not be published (below 0, or 1 to js) moved to 0, and the mean put
    back to n by moving mass between 0 and the largest outcome (at least js + 1)."""
    size = smallest + 2 * max_noise + 1
    row = np.zeros(size)
    if n == 0:
        row[0] = 1.0
        return row
    for v, p in zip(range(-max_noise, max_noise + 1), large, strict=True):
        o = n + v
        row[0 if o < 0 or 1 <= o <= smallest else o] += p
    mean = float(np.arange(size) @ row)
    if mean < n:
        top = max(int(np.nonzero(row)[0].max()), smallest + 1)
        shift = (n - mean) / top
        row[0] -= shift
        row[top] += shift
    else:
        for o in range(size - 1, 0, -1):
            if mean - n <= 1e-15:
                break
            shift = min(row[o], (mean - n) / o)
            row[o] -= shift
            row[0] += shift
            mean -= shift * o
    return np.clip(row, 0.0, None) / np.clip(row, 0.0, None).sum()


def record_keys(rows: int, seed: int | None = None) -> np.ndarray:
    """Fresh random record keys (as ingest gives them), whole numbers in [0, 2**32)."""
    return np.random.default_rng(seed).integers(0, KEY_SPACE, size=rows, dtype=np.uint64)


def cell_keys(frame: pl.DataFrame, keys: Sequence[str], record_key: str) -> pl.DataFrame:
    """Per cell of `keys`: `cell_key` in [0, 1) (the sum of its records' keys modulo
    2**32, over 2**32) and `n`, its records; with `keys` empty, the one total."""
    if record_key not in frame.columns:
        raise DisclosureInputError(
            f"the data has no record-key column {record_key!r}",
            fix="give each record a key once (record_keys) and keep it with the data",
        )
    summed = (pl.col(record_key).cast(pl.UInt64).sum() % KEY_SPACE).alias("_sum")
    if keys:
        grouped = frame.group_by(list(keys)).agg(summed, pl.len().alias("n"))
    else:
        grouped = frame.select(summed, pl.len().alias("n"))
    return grouped.with_columns(
        (pl.col("_sum").cast(pl.Float64) / KEY_SPACE).alias("cell_key")
    ).drop("_sum")


def perturb(
    counts: Sequence[int] | np.ndarray, keys: Sequence[float] | np.ndarray, table: PTable
) -> np.ndarray:
    """The published counts: each true count plus its noise."""
    counts = np.asarray(counts, dtype=np.int64)
    return counts + table.noise(counts, np.asarray(keys, dtype=float))
