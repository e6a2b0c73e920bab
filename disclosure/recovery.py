"""Which suppressed values a set of published totals determines exactly (linear algebra).

The unknowns are the suppressed cells of the finest table; each published cell of any
table (a cell, a total, a cell of a coarser table) is an equation: the sum of the
finest cells it covers. A suppressed cell, or any sum of finest cells (a suppressed
total, a suppressed cell of a coarser table), is determined exactly when its indicator
vector lies in the row space of those equations. One SVD of the (equations x
suppressed cells) matrix answers it for every target at once.

Used by `disclosure.differencing` to find two outputs that together reveal a cell that
neither reveals alone; `disclosure.secondary` uses the faster graph form for one table.
"""

from __future__ import annotations

import numpy as np

__all__ = ["determined"]

_TOLERANCE = 1e-8


def determined(equations: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target row (a 0/1 vector over the unknowns), whether the equations (rows
    over the same unknowns) fix its value. A target with no unknowns is fixed already."""
    targets = np.atleast_2d(np.asarray(targets, dtype=float))
    empty = ~targets.any(axis=1)
    if equations.size == 0 or not equations.any():
        return np.asarray(empty)
    _, singular, vt = np.linalg.svd(np.asarray(equations, dtype=float), full_matrices=False)
    rank = int((singular > _TOLERANCE * max(1.0, float(singular.max()))).sum())
    basis = vt[:rank]
    projected = (targets @ basis.T) @ basis
    residual = np.linalg.norm(targets - projected, axis=1)
    scale = np.maximum(np.linalg.norm(targets, axis=1), 1.0)
    fixed: np.ndarray = empty | (residual <= 1e-6 * scale)
    return fixed
