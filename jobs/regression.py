"""Regressions from mergeable pieces: designs, OLS from summed cross-products, and the
result both models share (the logistic fit is `jobs/logistic.py`).

Each fragment contributes X'X, X'y and y'y (OLS) or the Hessian and gradient at the
current coefficients (logistic); only those p-by-p sums leave the workers. Rows with a
missing value in any used column are dropped (complete cases), and counted.

Disclosure control's evidence travels with the sums: the count of each level of a
categorical predictor, and of each value of a numeric predictor with at most
`MAX_FEW_VALUES` distinct values (a 0/1 indicator's coefficient, with the intercept,
is the mean outcome of the people it marks, however few they are).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from disclosure.validate import MAX_FEW_VALUES
from jobs.errors import StepFailed
from jobs.spec import RegressionStep
from jobs.stats import t_sf2

#: Counts of each value of a numeric predictor; None once it has too many values to count.
ValueCounts = dict[str, dict[str, int] | None]


@dataclass
class Design:
    """One fragment's design matrix; lives on a worker."""

    x: np.ndarray
    y: np.ndarray
    terms: list[str]
    level_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    value_counts: ValueCounts = field(default_factory=dict)
    dropped: int = 0


def levels_of(frame: pl.DataFrame, categorical: Sequence[str]) -> dict[str, set[Any]]:
    """Distinct non-null values of each categorical predictor."""
    return {c: set(frame.get_column(c).drop_nulls().unique().to_list()) for c in categorical}


def union_levels(parts: Sequence[dict[str, set[Any]]]) -> dict[str, list[Any]]:
    out: dict[str, set[Any]] = {}
    for part in parts:
        for column, values in part.items():
            out.setdefault(column, set()).update(values)
    return {c: sorted(v, key=str) for c, v in out.items()}


def terms_for(step: RegressionStep, levels: dict[str, list[Any]]) -> list[str]:
    terms = ["(intercept)"] if step.intercept else []
    for column in step.predictors:
        if column in step.categorical:
            # With an intercept the first level is the reference; without, every level stays.
            kept = levels[column][1:] if step.intercept else levels[column]
            terms += [f"{column}[{level}]" for level in kept]
        else:
            terms.append(column)
    return terms


def build_design(frame: pl.DataFrame, step: RegressionStep, levels: dict[str, list[Any]]) -> Design:
    """Turn one fragment's rows into X and y (complete cases only)."""
    used = [step.outcome, *step.predictors]
    complete = frame.select(used).drop_nulls()
    dropped = frame.height - complete.height
    for column in step.predictors:
        dtype = complete.schema[column]
        if column not in step.categorical and not (dtype.is_numeric() or dtype == pl.Boolean):
            raise StepFailed(
                f"step {step.name!r}: predictor {column!r} is {dtype}, not a number",
                fix=f"list {column!r} under 'categorical' to use one indicator per level",
            )
    y = _outcome(complete, step)
    columns: list[np.ndarray] = []
    if step.intercept:
        columns.append(np.ones(complete.height))
    counts: dict[str, dict[str, int]] = {}
    values: ValueCounts = {}
    for column in step.predictors:
        series = complete.get_column(column)
        if column in step.categorical:
            kept = levels[column][1:] if step.intercept else levels[column]
            for level in kept:
                columns.append((series == level).cast(pl.Float64).to_numpy())
            counts[column] = _tally(series)
        else:
            columns.append(series.cast(pl.Float64).to_numpy())
            values[column] = _tally(series) if series.n_unique() <= MAX_FEW_VALUES else None
    x = np.column_stack(columns) if columns else np.empty((complete.height, 0))
    return Design(
        x=x,
        y=y,
        terms=terms_for(step, levels),
        level_counts=counts,
        value_counts=values,
        dropped=dropped,
    )


def _tally(series: pl.Series) -> dict[str, int]:
    return {str(value): int(count) for value, count in series.value_counts().iter_rows()}


def _outcome(frame: pl.DataFrame, step: RegressionStep) -> np.ndarray:
    series = frame.get_column(step.outcome)
    if not (series.dtype.is_numeric() or series.dtype == pl.Boolean):
        raise StepFailed(f"step {step.name!r}: outcome {step.outcome!r} must be numeric")
    y = series.cast(pl.Float64).to_numpy()
    if step.model == "logistic" and not np.isin(y, (0.0, 1.0)).all():
        # Say what is wrong without echoing any of the values.
        raise StepFailed(
            f"step {step.name!r}: the outcome of a logistic regression must be 0/1 or "
            f"true/false, and {step.outcome!r} has other values",
            fix="recode the outcome, or use model: ols",
        )
    return y


def ols_partial(design: Design) -> dict[str, Any]:
    x, y = design.x, design.y
    return {
        "xtx": x.T @ x,
        "xty": x.T @ y,
        "yty": float(y @ y),
        "n": len(y),
        "ysum": float(y.sum()),
        "level_counts": design.level_counts,
        "value_counts": design.value_counts,
        "dropped": design.dropped,
    }


def combine(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Sum mergeable pieces: arrays and numbers add, level and value counts add per level
    (a predictor's value counts stop, as None, once it has too many values)."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key == "level_counts":
                merged = out.setdefault(key, {})
                for column, tally in value.items():
                    _add(merged.setdefault(column, {}), tally)
            elif key == "value_counts":
                merged = out.setdefault(key, {})
                for column, tally in value.items():
                    had = merged.get(column, {})
                    kept = None if had is None or tally is None else _add(had, tally)
                    merged[column] = (
                        kept if kept is not None and len(kept) <= MAX_FEW_VALUES else None
                    )
            elif key in out:
                out[key] = out[key] + value
            else:
                out[key] = value.copy() if isinstance(value, np.ndarray) else value
    return out


def _add(target: dict[str, int], tally: dict[str, int]) -> dict[str, int]:
    for level, count in tally.items():
        target[level] = target.get(level, 0) + count
    return target


def check_rank(xtx: np.ndarray, terms: list[str], step: RegressionStep) -> None:
    """Refuse a model whose coefficients are not identifiable (X'X, or the Hessian at
    zero, below full rank)."""
    if np.linalg.matrix_rank(xtx) < len(terms):
        raise StepFailed(
            f"step {step.name!r}: the predictors are collinear (or a level never occurs), "
            "so the coefficients are not identifiable",
            fix="remove a predictor that is a combination of others, or a constant one",
        )


def solve_ols(total: dict[str, Any], terms: list[str], step: RegressionStep) -> dict[str, Any]:
    """Coefficients, standard errors, t statistics and p-values from the summed pieces."""
    n, p = int(total["n"]), len(terms)
    if n == 0:
        raise StepFailed(f"step {step.name!r}: no complete rows to fit (check filters)")
    xtx, xty, yty = total["xtx"], total["xty"], total["yty"]
    check_rank(xtx, terms, step)
    beta = np.linalg.solve(xtx, xty)
    rss = max(float(yty - 2 * beta @ xty + beta @ xtx @ beta), 0.0)
    df_resid = n - p
    sigma2 = rss / df_resid if df_resid > 0 else float("nan")
    se = np.sqrt(np.diag(np.linalg.inv(xtx)) * sigma2)
    stat = beta / se
    tss = yty - total["ysum"] ** 2 / n
    fit = {
        "r_squared": 1 - rss / tss if tss > 0 else float("nan"),
        "dropped_rows": total["dropped"],
    }
    return as_result(
        terms,
        beta,
        se,
        stat,
        [t_sf2(t, df_resid) for t in stat],
        n,
        df_resid,
        fit,
        total["level_counts"],
        total["value_counts"],
    )


def as_result(
    terms: list[str],
    beta: np.ndarray,
    se: np.ndarray,
    stat: np.ndarray,
    p_values: list[float],
    n: int,
    df_resid: int,
    fit: dict[str, Any],
    level_counts: dict[str, dict[str, int]],
    value_counts: ValueCounts,
) -> dict[str, Any]:
    """What both models return: the coefficients, the sizes and the evidence (only the
    value counts of predictors with few enough values to have been counted)."""
    coefficients = pl.DataFrame(
        {
            "term": terms,
            "estimate": beta.tolist(),
            "std_error": se.tolist(),
            "statistic": stat.tolist(),
            "p_value": p_values,
        }
    )
    return {
        "coefficients": coefficients,
        "n_obs": n,
        "df_resid": df_resid,
        "fit": fit,
        "level_counts": level_counts,
        "value_counts": {c: tally for c, tally in value_counts.items() if tally is not None},
    }
