"""Secondary suppression: which further cells to hide so no suppressed cell can be worked
out from the table's totals. Pure numpy on the table as a matrix.

A 2-way table with its row, column and grand totals is handled as the augmented
(R+1) x (C+1) matrix (the totals in the last row and column). Negating the totals makes
every row and every column of it sum to zero, so each line's sum is known. Suppressed
cells are then the unknowns of one equation per line, which is the bipartite graph whose
nodes are the lines and whose edges are the suppressed cells. The unknowns that these
equations fix exactly are the edges on no cycle: the bridges of that graph. So:

- `exposed_two_way` finds the bridges, vectorised: an edge is a bridge exactly when its
  effective resistance in the graph (unit resistances) is 1, and the resistances of all
  edges come from one pseudo-inverse of the graph's Laplacian (lines x lines, small).
- `protect_two_way` repeats: take the exposed cells (one per column per round), and for
  each add the cheapest 4-cycle through it, (r, c) (r, c') (r', c') (r', c), where
  already suppressed cells cost nothing. It stops when nothing is exposed; every
  suppressed cell then lies on a cycle, so none is determined by the totals.

A 1-way table (cells and their grand total) is one line: its suppressed entries must
number 0 or at least 2 (`protect_one_way`).

What this does not promise (docs/disclosure.md says so too): a cell on a cycle is not
determined, but the non-negativity of counts can still bound it (a cell known to lie in
[3, 12]), and a line's published total still gives the sum of its suppressed cells.
`disclosure.line_sums` then suppresses more so that no such sum is a small group (which
also rules out a line hiding 0, which would pin each of its cells), and
`disclosure.intervals` computes every suppressed cell's exact range by linear programming
and applies the protection level; neither chooses cells to make ranges wide, so with no
protection level a range can still be narrow, and is reported. Sub-totals that the table
itself does not publish (ward within district) are checked across outputs by
`disclosure.differencing`, not here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["exposed_one_way", "exposed_two_way", "protect_one_way", "protect_two_way"]

_CHUNK_ELEMENTS = 4_000_000  # bound on the candidate arrays of one batch (32 MB of float64)
_RESISTANCE_TOLERANCE = 1e-6


def exposed_two_way(suppressed: np.ndarray) -> np.ndarray:
    """The suppressed cells of an augmented table that its line sums determine exactly."""
    rows, cols = np.nonzero(suppressed)
    exposed = np.zeros(suppressed.shape, dtype=bool)
    if rows.size == 0:
        return exposed
    height = suppressed.shape[0]
    ends = np.concatenate([rows, height + cols])
    nodes, inverse = np.unique(ends, return_inverse=True)
    u, v = inverse[: rows.size], inverse[rows.size :]
    laplacian = np.zeros((nodes.size, nodes.size))
    np.add.at(laplacian, (u, u), 1.0)
    np.add.at(laplacian, (v, v), 1.0)
    laplacian[u, v] -= 1.0  # each (row, column) pair is one cell: no repeated edges
    laplacian[v, u] -= 1.0
    values, vectors = np.linalg.eigh(laplacian)
    limit = 1e-9 * max(1.0, float(values.max()))
    inverse_values = np.where(values > limit, 1.0 / np.where(values > limit, values, 1.0), 0.0)
    resistance = np.empty(rows.size)
    step = max(1, _CHUNK_ELEMENTS // max(1, nodes.size))
    for start in range(0, rows.size, step):
        part = slice(start, start + step)
        difference = vectors[u[part]] - vectors[v[part]]
        resistance[part] = (difference**2) @ inverse_values
    bridge = resistance > 1.0 - _RESISTANCE_TOLERANCE
    exposed[rows[bridge], cols[bridge]] = True
    return exposed


def protect_two_way(primary: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, bool]:
    """Primary plus secondary suppression of an augmented (R+1) x (C+1) table.

    `cost` is what suppressing each cell loses (inf for a cell that may not be used, such
    as one absent from the table); already suppressed cells cost nothing. Returns the
    suppressed cells, and whether every one is protected (False only when some exposed
    cell has no usable cycle, which a complete grid with its totals always has).
    """
    suppressed = primary.copy()
    height, width = suppressed.shape
    # Each round protects at least one more cell, so this bound is never the one hit.
    for _ in range(int(suppressed.size) + 1):
        exposed = exposed_two_way(suppressed)
        if not exposed.any():
            return suppressed, True
        rows, cols = np.nonzero(exposed)
        # One exposed cell per column per round: cells of one column would pick
        # competing cycles, while cells of one row share theirs (cost 0 for each other).
        _, first = np.unique(cols, return_index=True)
        rows, cols = rows[first], cols[first]
        weights = np.where(suppressed, 0.0, cost)
        batch = max(1, _CHUNK_ELEMENTS // (height * width))
        closed = 0
        for start in range(0, rows.size, batch):
            r, c = rows[start : start + batch], cols[start : start + batch]
            closed += _close_cycles(suppressed, weights, r, c)
        if not closed:
            return suppressed, False
    return suppressed, False  # pragma: no cover - see the bound above


def _close_cycles(suppressed: np.ndarray, weights: np.ndarray, r: np.ndarray, c: np.ndarray) -> int:
    """For each (r, c), suppress the cheapest other corners of a 4-cycle through it;
    returns how many cycles were closed."""
    k = r.size
    height, width = weights.shape
    # candidates[i, r', c'] = cost of (r_i, c') + (r', c_i) + (r', c')
    candidates = weights[None, :, :] + weights[r][:, None, :] + weights[:, c].T[:, :, None]
    index = np.arange(k)
    candidates[index, r, :] = np.inf
    candidates[index, :, c] = np.inf
    best = candidates.reshape(k, height * width).argmin(axis=1)
    other_rows, other_cols = np.divmod(best, width)
    usable = np.isfinite(candidates[index, other_rows, other_cols])
    r, c = r[usable], c[usable]
    other_rows, other_cols = other_rows[usable], other_cols[usable]
    suppressed[r, other_cols] = True
    suppressed[other_rows, other_cols] = True
    suppressed[other_rows, c] = True
    return int(r.size)


def exposed_one_way(suppressed: np.ndarray) -> np.ndarray:
    """The suppressed entries of a 1-way table (cells, then the total) that its total
    determines: the only one, when exactly one is suppressed."""
    return suppressed if int(suppressed.sum()) == 1 else np.zeros_like(suppressed)


def protect_one_way(primary: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Primary plus secondary suppression of a 1-way table and its total (last entry):
    a lone suppressed entry gets the cheapest other one beside it."""
    suppressed = primary.copy()
    if int(suppressed.sum()) == 1 and suppressed.size > 1:
        weights = np.where(suppressed, np.inf, cost)
        suppressed[int(np.argmin(weights))] = True
    return suppressed
