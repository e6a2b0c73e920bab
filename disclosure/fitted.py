"""Check a regression fitted elsewhere: a statsmodels result or a lifelines Cox model.

`check_fitted` reads what `check_regression` needs from the fitted object itself (the
observations, the residual degrees of freedom, the coefficients, and how many
observations sit at each value of every predictor with few values), so a user of
`disclosure` on its own need not work these out. The objects are read by their
attributes (duck typing): disclosure imports neither statsmodels nor lifelines, and
stays polars and numpy only.

    statsmodels (OLS, WLS, GLM, Logit, Probit, Poisson, ...): `nobs`, `df_resid`,
        `params`, `bse`, `model.exog_names`, `model.exog` (the design matrix the model
        was fitted on, after rows with a missing value were dropped); `tvalues` and
        `pvalues` when present.
    lifelines CoxPHFitter: `summary` (coef, se(coef), z, p per covariate),
        `event_observed`, `_n_examples`; its covariates are not kept by the fitter, so
        the frame it was fitted on is passed as `data`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np
import polars as pl

from disclosure.errors import DisclosureInputError
from disclosure.other_outputs import COEFFICIENT_COLUMNS, RegressionResult, check_regression
from disclosure.rules import Rules
from disclosure.validate import MAX_FEW_VALUES

__all__ = ["COX_ATTRIBUTES", "REFERENCE_LEVEL", "STATSMODELS_ATTRIBUTES", "check_fitted"]

#: What a statsmodels results object must have (dotted: an attribute of an attribute).
STATSMODELS_ATTRIBUTES = ("nobs", "df_resid", "params", "bse", "model.exog_names", "model.exog")

#: What a lifelines CoxPHFitter must have, once fitted.
COX_ATTRIBUTES = ("summary", "event_observed", "_n_examples")

#: The name given to the baseline level of a categorical predictor whose other levels are
#: treatment-coded columns (`C(sex)[T.m]`): the column names do not say which it is.
REFERENCE_LEVEL = "(reference level)"

#: A treatment-coded indicator of a formula's categorical predictor (patsy and formulaic
#: both write `C(sex)[T.m]` or `sex[T.m]`). An interaction (a ":" in the name) is left
#: to the few-values check, which sees it as the 0/1 column it is.
_TREATMENT = re.compile(r"^(?P<factor>[^:]+)\[T\.(?P<level>.+)\]$")

_COX_COLUMNS = {"estimate": "coef", "std_error": "se(coef)", "statistic": "z", "p_value": "p"}

_DEFAULT_RULES = Rules()


def check_fitted(
    name: str,
    fitted: object,
    *,
    rules: Rules = _DEFAULT_RULES,
    data: Any = None,
) -> RegressionResult:
    """Check a fitted regression as `check_regression` does, reading its evidence from
    the fitted object: a statsmodels results object (``smf.ols(...).fit()``, a Logit, a
    GLM) or a lifelines CoxPHFitter, with `data` the frame the Cox model was fitted on.

    It fails with fewer than `rules.min_dof` residual degrees of freedom, when a level
    of a categorical predictor (treatment-coded by a formula) has fewer than
    `rules.threshold` observations, and when a predictor with at most `rules.few_values`
    distinct values (a 0/1 indicator) has a value held by fewer than `rules.threshold`.
    For a Cox model the residual degrees of freedom are its events less its
    coefficients: the partial likelihood learns from the events, not the rows.
    """
    if _has(fitted, "event_observed"):
        arguments = _cox(name, fitted, data)
    else:
        arguments = _statsmodels(name, fitted)
    return check_regression(name=name, rules=rules, **arguments)


# --- statsmodels --------------------------------------------------------------------------


def _statsmodels(name: str, fitted: Any) -> dict[str, Any]:
    missing = [attribute for attribute in STATSMODELS_ATTRIBUTES if not _has(fitted, attribute)]
    if missing:
        _refuse(name, fitted)
    terms = [str(term) for term in fitted.model.exog_names]
    exog = np.asarray(fitted.model.exog, dtype=float)
    estimate = _vector(name, "params", fitted.params, len(terms))
    std_error = _vector(name, "bse", fitted.bse, len(terms))
    if exog.ndim != 2 or exog.shape[1] != len(terms):
        raise DisclosureInputError(
            f"regression {name!r}: model.exog has shape {exog.shape}, not one column for "
            f"each of its {len(terms)} terms",
            fix="pass the results object the model's fit() returned, unchanged",
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        computed = estimate / std_error
    tvalues = getattr(fitted, "tvalues", None) if _has(fitted, "tvalues") else None
    statistic = _vector(name, "tvalues", computed if tvalues is None else tvalues, len(terms))
    p_value = getattr(fitted, "pvalues", None) if _has(fitted, "pvalues") else None
    coefficients = pl.DataFrame(
        {
            "term": terms,
            "estimate": estimate,
            "std_error": std_error,
            "statistic": statistic,
            "p_value": (
                np.full(len(terms), np.nan)
                if p_value is None
                else _vector(name, "pvalues", p_value, len(terms))
            ),
        }
    ).fill_nan(None)
    level_counts, value_counts = _design_counts(terms, exog)
    return {
        "model": _model_name(fitted),
        "n_obs": _whole(name, "nobs", fitted.nobs),
        "df_resid": _whole(name, "df_resid", fitted.df_resid),
        "coefficients": coefficients,
        "level_counts": level_counts,
        "value_counts": value_counts,
    }


def _model_name(fitted: Any) -> str:
    """The model's class name, with a GLM's family: "OLS", "Logit", "GLM (Binomial)"."""
    model = type(fitted.model).__name__
    family = getattr(fitted.model, "family", None)
    # Every discrete model has a family too (a Logit's is Binomial); a GLM's is its choice.
    return f"{model} ({type(family).__name__})" if model == "GLM" and family else model


def _design_counts(
    terms: Sequence[str], exog: np.ndarray
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """Observations at each level of the formula's categorical predictors, and at each
    value of every other column with few values (the intercept's one value is no group)."""
    factors: dict[str, list[tuple[str, np.ndarray]]] = {}
    values: dict[str, dict[str, int]] = {}
    for index, term in enumerate(terms):
        column = exog[:, index]
        coded = _TREATMENT.match(term)
        if coded and np.isin(column, (0.0, 1.0)).all():
            factors.setdefault(coded["factor"], []).append((coded["level"], column == 1.0))
            continue
        tally = _tally(column)
        if 2 <= len(tally) <= MAX_FEW_VALUES:
            values[term] = tally
    levels = {}
    for factor, indicators in factors.items():
        counts = {level: int(marked.sum()) for level, marked in indicators}
        # The baseline's rows are those no indicator marks; its mean is the intercept.
        baseline = ~np.logical_or.reduce([marked for _, marked in indicators])
        levels[factor] = {REFERENCE_LEVEL: int(baseline.sum()), **counts}
    return levels, values


def _tally(column: np.ndarray) -> dict[str, int]:
    """Observations at each value; whole numbers written as such ("1", not "1.0"), as the
    job engine's counts of an integer column read. {} for more than MAX_FEW_VALUES values."""
    found, counts = np.unique(column, return_counts=True)
    if len(found) > MAX_FEW_VALUES:
        return {}
    return {_value_text(value): int(count) for value, count in zip(found, counts, strict=True)}


def _value_text(value: float) -> str:
    # repr, not a rounded format: two close values must not share a key.
    return str(int(value)) if math.isfinite(value) and value == int(value) else repr(float(value))


# --- lifelines ----------------------------------------------------------------------------


def _cox(name: str, fitted: Any, data: Any) -> dict[str, Any]:
    missing = [attribute for attribute in COX_ATTRIBUTES if not _has(fitted, attribute)]
    if missing:
        _refuse(name, fitted)
    summary = fitted.summary
    found = set(getattr(summary, "columns", ()))
    absent = [column for column in _COX_COLUMNS.values() if column not in found]
    if absent:
        raise DisclosureInputError(
            f"regression {name!r}: the Cox model's summary has no column(s) {', '.join(absent)}",
            fix="pass a fitted lifelines CoxPHFitter (its summary has coef, se(coef), z and p)",
        )
    terms = [str(term) for term in summary.index]
    coefficients = pl.DataFrame(
        {"term": terms}
        | {
            ours: _vector(name, theirs, summary[theirs], len(terms))
            for ours, theirs in _COX_COLUMNS.items()
        }
    ).fill_nan(None)
    n_obs = _whole(name, "_n_examples", fitted._n_examples)
    events = int(np.count_nonzero(np.asarray(fitted.event_observed)))
    return {
        "model": "CoxPH",
        "n_obs": n_obs,
        "df_resid": min(max(events - len(terms), 0), n_obs),
        "coefficients": coefficients.select(COEFFICIENT_COLUMNS),
        "value_counts": _covariate_counts(name, terms, data, n_obs),
    }


def _covariate_counts(name: str, terms: Sequence[str], data: Any, rows: int) -> dict[str, Any]:
    """The few-values evidence of a Cox model's covariates, read from the frame it was
    fitted on (pandas or polars: anything whose columns `data[name]` gives)."""
    if data is None:
        raise DisclosureInputError(
            f"regression {name!r} is a Cox model, whose fitter does not keep its covariates, "
            "so the observations at each value of a predictor cannot be counted",
            fix=f"pass the frame it was fitted on: check_fitted({name!r}, cph, data=frame)",
        )
    columns = set(map(str, getattr(data, "columns", ())))
    absent = [term for term in terms if term not in columns]
    if absent:
        raise DisclosureInputError(
            f"regression {name!r}: the Cox model's covariate(s) {', '.join(absent)} are not "
            "columns of `data`",
            fix="pass the frame the model was fitted on (a model fitted with a formula is "
            "not supported: add its derived columns to the frame and fit on them)",
        )
    values = {}
    for term in terms:
        column = _vector(
            name,
            f"covariate {term!r} of `data`",
            data[term],
            fix="pass the frame the model was fitted on, whose covariates are numbers",
        )
        if column.shape != (rows,):
            raise DisclosureInputError(
                f"regression {name!r}: `data` has {column.shape[0]} rows, the model {rows}",
                fix="pass the frame the model was fitted on, with the same rows",
            )
        tally = _tally(column)
        if len(tally) >= 2:
            values[term] = tally
    return values


# --- reading attributes -------------------------------------------------------------------


def _has(fitted: object, dotted: str) -> bool:
    """Whether `fitted` has the attribute (dotted: of an attribute), without failing."""
    found: object = fitted
    for part in dotted.split("."):
        try:
            found = getattr(found, part)
        except Exception:  # an attribute can be a property that raises (statsmodels' do)
            return False
    return True


def _refuse(name: str, fitted: object) -> NoReturn:
    cox = [attribute for attribute in COX_ATTRIBUTES if not _has(fitted, attribute)]
    statsmodels = [a for a in STATSMODELS_ATTRIBUTES if not _has(fitted, a)]
    raise DisclosureInputError(
        f"regression {name!r}: a {type(fitted).__name__} is not a fitted model "
        "check_fitted can read",
        reasons=[
            f"as a statsmodels result it lacks {', '.join(statsmodels)}",
            f"as a lifelines CoxPHFitter it lacks {', '.join(cox)}",
        ],
        fix="pass the object a statsmodels model's fit() returns (e.g. smf.ols(...).fit()) "
        "or a fitted lifelines CoxPHFitter; for any other model, pass its figures to "
        "check_regression",
    )


def _vector(
    name: str,
    what: str,
    found: Any,
    length: int | None = None,
    *,
    fix: str = "pass the results object the model's fit() returned, unchanged",
) -> np.ndarray:
    try:
        vector = np.asarray(found, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DisclosureInputError(
            f"regression {name!r}: {what} is not a list of numbers", fix=fix
        ) from exc
    if vector.ndim != 1 or (length is not None and vector.shape[0] != length):
        raise DisclosureInputError(
            f"regression {name!r}: {what} has shape {vector.shape}, not one number for each "
            f"of its {length or 'terms'} terms",
            fix="check_fitted reads models with one coefficient per term; for another "
            "(a multinomial logit, say), pass its figures to check_regression",
        )
    return vector


def _whole(name: str, what: str, number: Any) -> int:
    """A count statsmodels gives as a float (60.0): whole, rounded down if not."""
    try:
        value = float(number)
    except (TypeError, ValueError) as exc:
        raise DisclosureInputError(
            f"regression {name!r}: {what} is {number!r}, not a number",
            fix="pass the results object the model's fit() returned, unchanged",
        ) from exc
    if not math.isfinite(value) or value < 0:
        raise DisclosureInputError(
            f"regression {name!r}: {what} is {value}, not a count",
            fix="pass the results object the model's fit() returned, unchanged",
        )
    # Rounded down (a little tolerance for 54.99999...): fewer degrees of freedom can only
    # make the check stricter.
    return math.floor(value + 1e-9)
