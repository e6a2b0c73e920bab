"""The `regression` step on the cluster: designs built and kept on the workers, only
cross-product sums come back."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from distributed import Client

from jobs import logistic, regression
from jobs.dasktools import ProgressFn, track, tree_reduce
from jobs.frames import (
    apply_filters,
    apply_link,
    main_columns,
    read_fragment_frame,
    split_filters,
    submit_link,
)
from jobs.outputs import RegressionOutput
from jobs.spec import RegressionStep
from tre.secured.reader import Fragment, SecuredSource, fragments


def step_frame(
    source: SecuredSource, fragment: Fragment, step: RegressionStep, right: pl.DataFrame | None
) -> pl.DataFrame:
    columns = main_columns(step.named_columns(), step.link)
    where, late = split_filters(step.filter, step.link)
    frame = read_fragment_frame(source, fragment, sorted(columns), where=where)
    return apply_filters(apply_link(frame, step.link, right), late)


def fragment_levels(
    source: SecuredSource, fragment: Fragment, step: RegressionStep, right: pl.DataFrame | None
) -> dict[str, set[Any]]:
    return regression.levels_of(step_frame(source, fragment, step, right), step.categorical)


def fragment_design(
    source: SecuredSource,
    fragment: Fragment,
    step: RegressionStep,
    right: pl.DataFrame | None,
    levels: dict[str, list[Any]],
) -> regression.Design:
    return regression.build_design(step_frame(source, fragment, step, right), step, levels)


def run_regression(
    step: RegressionStep,
    sources: dict[str, SecuredSource],
    client: Client,
    *,
    progress: ProgressFn | None = None,
    target_rows: int = 1_000_000,
) -> RegressionOutput:
    source = sources[step.dataset]
    right = submit_link(client, step.link, sources)
    pieces = fragments(source, target_rows)
    levels: dict[str, list[Any]] = {}
    if step.categorical:
        # Levels are a handful of values per column: small enough to gather here.
        found = [client.submit(fragment_levels, source, f, step, right, pure=False) for f in pieces]
        levels = regression.union_levels(client.gather(found))
    designs = [
        client.submit(fragment_design, source, f, step, right, levels, pure=False) for f in pieces
    ]
    track(designs, step.name, progress)
    terms = regression.terms_for(step, levels)

    def evaluate_ols() -> dict[str, Any]:
        parts = [client.submit(regression.ols_partial, d, pure=False) for d in designs]
        return tree_reduce(client, parts, regression.combine).result()

    def evaluate_logistic(beta: np.ndarray, directions: np.ndarray) -> dict[str, Any]:
        parts = [
            client.submit(logistic.logistic_partial, d, beta, directions, pure=False)
            for d in designs
        ]
        return tree_reduce(client, parts, regression.combine).result()

    if step.model == "ols":
        result = regression.solve_ols(evaluate_ols(), terms, step)
    else:
        result = logistic.fit_logistic(evaluate_logistic, terms, step)
    return to_output(step, result, [step.dataset] + ([step.link.dataset] if step.link else []))


def to_output(
    step: RegressionStep, result: dict[str, Any], datasets: list[str]
) -> RegressionOutput:
    return RegressionOutput(
        name=step.name,
        step=step.name,
        description=step.description,
        datasets=datasets,
        model=step.model,
        outcome=step.outcome,
        n_obs=result["n_obs"],
        df_resid=result["df_resid"],
        coefficients=result["coefficients"],
        level_counts=result["level_counts"],
        value_counts=result["value_counts"],
        fit=result["fit"],
    )


def fit_in_memory(step: RegressionStep, frame: pl.DataFrame) -> RegressionOutput:
    """The same regression on one in-memory frame (python steps use this)."""
    levels = regression.union_levels([regression.levels_of(frame, step.categorical)])
    design = regression.build_design(frame, step, levels)
    if step.model == "ols":
        result = regression.solve_ols(regression.ols_partial(design), design.terms, step)
    else:
        result = logistic.fit_logistic(
            lambda beta, directions: logistic.logistic_partial(design, beta, directions),
            design.terms,
            step,
        )
    return to_output(step, result, [])
