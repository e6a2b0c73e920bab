"""The tables of `sdc_compare` and the checks made on both sides' results.

- `synthetic_counts`: a seeded 2-way frequency table whose small cells cluster in rare
  rows and columns, as in real tables (ward x age band): expected counts are a product of
  lognormal row and column effects, counts negative binomial around them, plus one, so
  no cell is empty (see `bench/README.md`, "sdc_compare", for why).
- `table_cells`: the same table as `disclosure.check_aggregated` takes it, cells and
  totals with their evidence.
- `run_ours`: our check and protection, timed, and its suppression pattern.
- `exposure`: which suppressed cells of a pattern the published totals give away,
  computed twice, by the graph test `disclosure.secondary.exposed_two_way` and by an
  independent rank test (below), so each side's result is judged by the same checks.

A pattern is the augmented (R+1) x (C+1) boolean matrix of suppressed cells, the row
totals in the last column and the column totals in the last row.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl

from disclosure import Rules, check_aggregated
from disclosure.secondary import exposed_two_way

THRESHOLD = 10
MEAN_COUNT = 100.0  # with the spreads below, 9-18% of cells fall below 10
SPREAD = 0.8  # sigma of the lognormal row and column effects
DISPERSION = 4.0  # negative binomial shape: variance = mean + mean**2 / 4
_LEVERAGE_TOLERANCE = 1e-6


def synthetic_counts(side: int, seed: int, columns: int | None = None) -> np.ndarray:
    """A `side` x `columns` (default square) table of counts, every one at least 1."""
    width = side if columns is None else columns
    rng = np.random.default_rng([seed, side, width])
    row_effect = rng.lognormal(0.0, SPREAD, side)
    column_effect = rng.lognormal(0.0, SPREAD, width)
    mean = np.outer(row_effect, column_effect)
    mean *= MEAN_COUNT / mean.mean()
    counts = 1 + rng.negative_binomial(DISPERSION, DISPERSION / (DISPERSION + mean))
    return counts.astype(np.int64)


def augmented(counts: np.ndarray) -> np.ndarray:
    """The counts with their row totals (last column) and column totals and grand total
    (last row)."""
    height, width = counts.shape
    table = np.zeros((height + 1, width + 1), dtype=np.int64)
    table[:height, :width] = counts
    table[:height, width] = counts.sum(axis=1)
    table[height, :width] = counts.sum(axis=0)
    table[height, width] = counts.sum()
    return table


def table_cells(counts: np.ndarray) -> pl.DataFrame:
    """Cells and totals with the evidence a count table needs (value, n and margin, as
    `aggregate.with_margins` gives them; keys `row` and `col` are the indices, null on
    the totals that sum over them)."""
    height, width = counts.shape
    table = augmented(counts)
    grid_r, grid_c = np.meshgrid(np.arange(height + 1), np.arange(width + 1), indexing="ij")
    r, c, n = grid_r.ravel(), grid_c.ravel(), table.ravel()
    margin = np.full(r.size, "", dtype=object)
    margin[(r < height) & (c == width)] = "row"
    margin[(r == height) & (c < width)] = "column"
    margin[(r == height) & (c == width)] = "total"
    return pl.DataFrame(
        {
            "row": pl.Series(np.where(r < height, r, -1)),
            "col": pl.Series(np.where(c < width, c, -1)),
            "value": n.astype(float),
            "n": n,
            "margin": margin.astype(str),
        }
    ).with_columns(
        pl.when(pl.col("row") >= 0).then(pl.col("row")).alias("row"),
        pl.when(pl.col("col") >= 0).then(pl.col("col")).alias("col"),
    )


def run_ours(counts: np.ndarray, repeat: int = 1) -> dict[str, Any]:
    """`check_aggregated` with `Rules(threshold=10)` and the default protection (primary
    and secondary suppression, totals published), best of `repeat`; the pattern too."""
    cells = table_cells(counts)
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = check_aggregated(
            cells,
            name="bench",
            rows=["row"],
            columns=["col"],
            value=None,
            statistic="count",
            rules=Rules(threshold=THRESHOLD),
        )
        runs.append(time.perf_counter() - started)
    outcome = result.protection
    assert outcome is not None
    height, width = counts.shape
    frame = result.cells.select(
        pl.col("row").fill_null(height), pl.col("col").fill_null(width), "suppressed"
    )
    r, c = frame.get_column("row").to_numpy(), frame.get_column("col").to_numpy()
    kind = frame.get_column("suppressed").to_numpy()
    primary = np.zeros((height + 1, width + 1), dtype=bool)
    secondary = np.zeros_like(primary)
    primary[r, c] = kind == "primary"
    secondary[r, c] = kind == "secondary"
    return {
        "seconds": min(runs),
        "runs_s": runs,
        "primary": primary,
        "secondary": secondary,
        "complete": outcome.complete,
    }


def leverage_exposed(suppressed: np.ndarray) -> np.ndarray:
    """The suppressed cells the line sums fix, by linear algebra alone.

    With the totals negated every line of the augmented table sums to zero, so each
    line is one known equation over its suppressed cells (coefficients 1): the matrix E,
    lines x cells. A cell is fixed exactly when its unit vector lies in the row space of
    E, that is when its leverage e' E' (E E')^+ E e is 1. E E' is lines x lines, so one
    symmetric eigendecomposition answers every cell (a 316 x 316 table has 634 lines).
    """
    rows, cols = np.nonzero(suppressed)
    exposed = np.zeros(suppressed.shape, dtype=bool)
    if rows.size == 0:
        return exposed
    lines = np.concatenate([rows, suppressed.shape[0] + cols])
    used, index = np.unique(lines, return_inverse=True)
    u, v = index[: rows.size], index[rows.size :]
    gram = np.zeros((used.size, used.size))
    np.add.at(gram, (u, u), 1.0)
    np.add.at(gram, (v, v), 1.0)
    gram[u, v] += 1.0
    gram[v, u] += 1.0
    values, vectors = np.linalg.eigh(gram)
    keep = values > 1e-9 * max(1.0, float(values.max()))
    pseudo = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    leverage = pseudo[u, u] + pseudo[v, v] + 2.0 * pseudo[u, v]
    fixed = leverage > 1.0 - _LEVERAGE_TOLERANCE
    exposed[rows[fixed], cols[fixed]] = True
    return exposed


def exposure(suppressed: np.ndarray) -> dict[str, int]:
    """How many suppressed cells the totals give away, by each test (0 and 0 is safe)."""
    return {
        "graph": int(exposed_two_way(suppressed).sum()),
        "rank": int(leverage_exposed(suppressed).sum()),
    }


def loss(table: np.ndarray, primary: np.ndarray, suppressed: np.ndarray) -> dict[str, Any]:
    """What a pattern hides beyond the primary cells: cells (inner and totals) and the
    sum of their counts (inner cells only, since a total repeats its cells)."""
    secondary = suppressed & ~primary
    inner = np.zeros_like(secondary)
    inner[:-1, :-1] = True
    return {
        "primary": int(primary.sum()),
        "secondary": int(secondary.sum()),
        "secondary_totals": int((secondary & ~inner).sum()),
        "suppressed": int(suppressed.sum()),
        "secondary_sum": int(table[secondary & inner].sum()),
        "suppressed_sum": int(table[suppressed & inner].sum()),
    }


def intervals(table: np.ndarray, primary: np.ndarray, suppressed: np.ndarray) -> np.ndarray:
    """For each primary cell (in `np.nonzero` order), the range [low, high] its value can
    take given everything published and that counts are not negative: two linear
    programs per cell (scipy's HiGHS), over the suppressed cells as unknowns."""
    from scipy.optimize import linprog  # type: ignore[import-untyped]
    from scipy.sparse import coo_matrix  # type: ignore[import-untyped]

    height, width = table.shape
    rows, cols = np.nonzero(suppressed)
    unknown = np.full(table.shape, -1)
    unknown[rows, cols] = np.arange(rows.size)
    # Row line i: its cells minus its total (last column) = 0; column lines alike.
    coefficient = np.ones(table.shape)
    equations, lines, variables, values, rhs = 0, [], [], [], []
    for axis, count in ((0, height), (1, width)):
        for line in range(count):
            entries = (line, slice(None)) if axis == 0 else (slice(None), line)
            signs = coefficient[entries].copy()
            signs[-1] = -1.0
            ids, known = unknown[entries], table[entries].astype(float)
            hidden = ids >= 0
            if not hidden.any():
                continue
            lines.extend([equations] * int(hidden.sum()))
            variables.extend(ids[hidden].tolist())
            values.extend(signs[hidden].tolist())
            rhs.append(-float((signs[~hidden] * known[~hidden]).sum()))
            equations += 1
    a_eq = coo_matrix((values, (lines, variables)), shape=(equations, rows.size)).tocsr()
    ranges = []
    for r, c in zip(*np.nonzero(primary), strict=True):
        objective = np.zeros(rows.size)
        objective[unknown[r, c]] = 1.0
        low = linprog(objective, A_eq=a_eq, b_eq=rhs, bounds=(0, None), method="highs")
        high = linprog(-objective, A_eq=a_eq, b_eq=rhs, bounds=(0, None), method="highs")
        ranges.append((low.fun, -high.fun))
    return np.array(ranges).reshape(-1, 2)


def protection_levels(
    table: np.ndarray, primary: np.ndarray, suppressed: np.ndarray, percent: int
) -> dict[str, Any]:
    """How far each primary cell's range reaches either side of its value: the number
    whose range is a point (exact), and the number narrower than `percent`% of the value
    on either side (τ-Argus' FREQ safety range asks for at least that)."""
    ranges = intervals(table, primary, suppressed)
    value = table[primary].astype(float)
    below, above = value - ranges[:, 0], ranges[:, 1] - value
    need = value * percent / 100.0
    return {
        "exact": int(((below < 0.5) & (above < 0.5)).sum()),
        f"within_{percent}pct": int(((below < need - 1e-9) | (above < need - 1e-9)).sum()),
        "median_width": float(np.median(ranges[:, 1] - ranges[:, 0])) if value.size else 0.0,
    }
