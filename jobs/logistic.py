"""Logistic regression by Newton-Raphson from mergeable pieces, and the separation that
stops it.

Each fragment contributes, at the current coefficients, the Hessian, the gradient and
the log-likelihood, plus counts that tell separation apart from slow convergence. For
each probe direction d (the coefficients, and the last Newton step), `along` counts the
rows that moving further along d fits better (y = 1 and x.d > 0, or y = 0 and x.d < 0)
and `against` the rows it fits worse, ignoring rows within rounding of x.d = 0.

No row against and some along is a certificate that no finite coefficients maximise the
likelihood (Albert and Anderson 1984): moving along d improves the fit for ever. Every
row along is complete separation (the outcome is perfectly predicted); some rows on the
boundary is quasi-complete separation (it is perfectly predicted for some rows). Data
whose outcomes overlap have no such direction, so the certificate cannot be found by
accident. Separation is refused, never fitted: its coefficients are infinite, and that
the predictors give some people's outcome exactly can itself disclose.

Probabilities are computed as exp(-log(1 + e^-eta)), which neither overflows nor loses
the small tail, so no numpy warning is raised however far the coefficients travel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from jobs.errors import StepFailed
from jobs.regression import Design, as_result, check_rank
from jobs.spec import RegressionStep
from jobs.stats import normal_sf2

MAX_ITERATIONS = 50
TOLERANCE = 1e-8
#: A row whose linear predictor exceeds this has a fitted probability within e^-30
#: (about 1e-13) of 0 or 1: numerically certain.
EXTREME_ETA = 30.0
#: Probe directions are scaled so the largest term moves a typical row by 1; a row that
#: moves less than this is on the boundary, not against it (the coefficients that do
#: converge leave traces of this size in a Newton step).
BOUNDARY = 1e-6
#: A predictor is named in a separation failure when it moves rows by at least this
#: share of the predictor that moves them most.
NAMED_SHARE = 0.1

#: evaluate(beta, directions) -> the combined pieces of every fragment.
Evaluate = Callable[[np.ndarray, np.ndarray], dict[str, Any]]


def logistic_partial(
    design: Design, beta: np.ndarray, directions: np.ndarray | None = None
) -> dict[str, Any]:
    """Hessian, gradient, log-likelihood and separation counts of one fragment at `beta`;
    `directions` (one per row, scaled by `probe`) are the directions to count rows along."""
    x, y = design.x, design.y
    eta = x @ beta
    prob = np.exp(-np.logaddexp(0.0, -eta))  # 1 / (1 + e^-eta), without overflow
    rest = np.exp(-np.logaddexp(0.0, eta))  # 1 - prob, without losing its small tail
    if directions is None:
        directions = np.empty((0, x.shape[1]))
    side = (2.0 * y - 1.0)[:, None] * (x @ directions.T)
    return {
        "hessian": x.T @ (x * (prob * rest)[:, None]),
        "gradient": x.T @ (y * rest - (1.0 - y) * prob),
        "loglik": float(y @ eta - np.logaddexp(0.0, eta).sum()),
        "n": len(y),
        "ysum": float(y.sum()),
        "along": (side > BOUNDARY).sum(axis=0),
        "against": (side < -BOUNDARY).sum(axis=0),
        "extreme": int((np.abs(eta) > EXTREME_ETA).sum()),
        "level_counts": design.level_counts,
        "value_counts": design.value_counts,
        "dropped": design.dropped,
    }


def fit_logistic(evaluate: Evaluate, terms: list[str], step: RegressionStep) -> dict[str, Any]:
    """Newton-Raphson from zero; refuses a single outcome value before fitting, and
    separation (complete or quasi-complete) as soon as it is certain."""
    p = len(terms)
    beta = np.zeros(p)
    total = evaluate(beta, np.empty((0, p)))
    n, events = int(total["n"]), round(total["ysum"])
    if n == 0:
        raise StepFailed(f"step {step.name!r}: no complete rows to fit (check filters)")
    _refuse_one_outcome(n, events, step)
    check_rank(total["hessian"], terms, step)
    # Each term's typical size in a row (the Hessian at zero is X'X / 4), to scale probes.
    scale = np.sqrt(np.diag(total["hessian"]) * 4.0 / n)
    for iterations in range(1, MAX_ITERATIONS + 1):  # noqa: B007 - reported after the loop
        move = _newton_step(total)
        if move is None:
            # X'WX was full rank at the start: only vanishing weights (fitted
            # probabilities of 0 or 1) make it singular, and only separation does that.
            raise separation_failure("quasi", terms, None, scale, step)
        beta = beta + move
        probes = probe(np.vstack([beta, move]), scale)
        total = evaluate(beta, probes)
        if np.max(np.abs(move)) < TOLERANCE:
            break
        found = _certificate(total, n)
        if found is not None:
            kind, which = found
            raise separation_failure(kind, terms, probes[which], scale, step)
    else:
        if total["extreme"]:
            # Fitted probabilities tending to 0 or 1 while the coefficients keep moving.
            raise separation_failure("quasi", terms, probes[1], scale, step)
        raise StepFailed(
            f"step {step.name!r}: the logistic regression did not converge in "
            f"{MAX_ITERATIONS} iterations",
            fix="rescale predictors with very large or very small values, or remove some",
        )
    se = _standard_errors(total["hessian"])
    if se is None:
        raise separation_failure("quasi", terms, None, scale, step)
    stat = beta / se
    fit = {
        "converged": True,
        "iterations": iterations,
        "deviance": -2 * total["loglik"],
        "dropped_rows": total["dropped"],
        "outcome_counts": {"0": n - events, "1": events},
    }
    return as_result(
        terms,
        beta,
        se,
        stat,
        [normal_sf2(z) for z in stat],
        n,
        n - p,
        fit,
        total["level_counts"],
        total["value_counts"],
    )


def probe(directions: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Each direction scaled so its largest term moves a typical row by 1 (a zero
    direction stays zero), so `BOUNDARY` means the same for every model."""
    size = np.max(np.abs(directions) * scale, axis=1, keepdims=True)
    return np.divide(directions, size, out=np.zeros_like(directions), where=size > 0)


def _refuse_one_outcome(n: int, events: int, step: RegressionStep) -> None:
    if events in (0, n):
        # Which value it is stays unsaid: that everyone shares it is the disclosure.
        raise StepFailed(
            f"step {step.name!r}: the outcome {step.outcome!r} has the same value in every "
            "row fitted (all 0 or all 1), so a logistic regression has nothing to estimate; "
            "that everyone in a group shares an outcome can itself disclose",
            fix="check the filters (they may select one outcome only), or widen the group",
        )


def _newton_step(total: dict[str, Any]) -> np.ndarray | None:
    """The Newton step, or None when the Hessian is singular (or the step not finite)."""
    try:
        move = np.linalg.solve(total["hessian"], total["gradient"])
    except np.linalg.LinAlgError:
        return None
    return move if np.all(np.isfinite(move)) else None


def _certificate(total: dict[str, Any], n: int) -> tuple[str, int] | None:
    """("complete" or "quasi", which probe) when a probe direction separates the rows."""
    for which, (along, against) in enumerate(zip(total["along"], total["against"], strict=True)):
        if against == 0 and along > 0:
            return ("complete" if along == n else "quasi"), which
    return None


def _standard_errors(hessian: np.ndarray) -> np.ndarray | None:
    try:
        variance = np.diag(np.linalg.inv(hessian))
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(variance)) or np.any(variance <= 0):
        return None
    return np.sqrt(variance)


def separation_failure(
    kind: str,
    terms: list[str],
    direction: np.ndarray | None,
    scale: np.ndarray,
    step: RegressionStep,
) -> StepFailed:
    """The researcher's failure for separation: tre's own words and the spec's predictor
    names only (never a level, a value or a count, which are the data's)."""
    named = separating_predictors(terms, direction, scale, step)
    by = f"by {_listed(named)}" if named else "by its predictors"
    how = (
        "perfectly predicted"
        if kind == "complete"
        else "perfectly predicted for some of its rows (almost perfectly predicted)"
    )
    return StepFailed(
        f"step {step.name!r}: the outcome {step.outcome!r} is {how} {by}, so the logistic "
        "regression has no finite coefficients (separation); that some people's outcome "
        "can be read from their predictors can itself disclose",
        fix="merge small categories of the predictor, drop the predictor, or use a "
        "different model (for example a table of the outcome by that predictor)",
    )


def separating_predictors(
    terms: list[str], direction: np.ndarray | None, scale: np.ndarray, step: RegressionStep
) -> list[str]:
    """The predictors (as the spec names them) whose terms move rows along `direction` by
    at least `NAMED_SHARE` of the most; none when there is no direction to read."""
    if direction is None:
        return []
    moves = np.abs(direction) * scale
    largest = float(moves.max()) if moves.size else 0.0
    if largest <= 0:
        return []
    strong = {
        term for term, move in zip(terms, moves, strict=True) if move >= NAMED_SHARE * largest
    }
    return [
        column
        for column in step.predictors
        if column in strong
        or (column in step.categorical and any(t.startswith(f"{column}[") for t in strong))
    ]


def _listed(names: list[str]) -> str:
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
