"""The engine's side of plan mode: run a python step's checked plan again on tre's own
copy of the data, and compute the table's cells and evidence, or fit the regression,
here (jobs/plans.py).

Runs in the engine's phase, a sandbox researcher code never ran in, on what the code's
phase handed over (jobs/handover.py). A plan that cannot be run leaves the table as the
code computed it, advisory, with tre's reason for the checkers.

Contributors are counted by `plans.UNIT`, which the engine adds to its own copy of each
dataset: the dataset's declared unit (`unit:` in its descriptor, say resident_id) when
the job was granted that column, so several rows of one person count once; otherwise
the row's own place in the dataset, so a row counts once however often the plan repeats
it. Whatever the code passed as `unit=` is not used: the engine decides.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from disclosure import aggregate
from disclosure.errors import DisclosureInputError
from jobs import plans
from jobs.errors import StepFailed
from jobs.frames import read_frame
from jobs.outputs import RegressionOutput, TableOutput
from jobs.regression_step import fit_in_memory
from jobs.spec import RegressionStep
from jobs.table_step import table_grid
from tre.secured.reader import SecuredSource

log = logging.getLogger("tre.job")


def recompute(
    output: TableOutput,
    sources: dict[str, SecuredSource],
    declared: dict[str, list[str]],
    folder: Path,
    top_k: int,
) -> TableOutput:
    """`output` with cells and evidence computed by the engine from its plan; as it
    was, with `plan_refused` saying why, when its plan cannot be run."""
    if output.plan is None:
        return output
    try:
        files = plans.check(output.plan, declared, output.plan_files)
        units = {dataset: unit_of(sources[dataset]) for dataset, _ in files.values()}
        if len(set(units.values())) > 1:
            raise plans.PlanRefused(
                "its plan puts together rows of datasets that count contributors "
                f"differently ({_listed(units)})"
            )
        ordinal = {name: i for i, name in enumerate(sorted(sources))}
        paths = {
            name: _copy(folder, sources[dataset], columns, ordinal[dataset])
            for name, (dataset, columns) in files.items()
        }
        frame = plans.run(output.plan, paths)
        keys = [*output.rows, *output.columns]
        unit = plans.UNIT
        partial = aggregate.partial(
            frame, keys, output.value, output.statistic, top_k=top_k, unit=unit
        )
        cells = aggregate.with_margins(
            partial,
            keys,
            output.statistic,
            output.quantile,
            grid=table_grid(list(output.rows), list(output.columns)),
            unit=unit,
            top_k=top_k,
        )
    except plans.PlanRefused as exc:
        return replace(output, plan_refused=str(exc))
    except (pl.exceptions.PolarsError, DisclosureInputError) as exc:
        log.info("the plan of table %s could not be run (%s)", output.name, type(exc).__name__)
        return replace(output, plan_refused=f"its plan could not be run ({type(exc).__name__})")
    counted_by = next(iter(units.values()))
    return replace(output, cells=cells, evidence="engine", unit=counted_by or None)


def refit(
    output: RegressionOutput,
    sources: dict[str, SecuredSource],
    declared: dict[str, list[str]],
    folder: Path,
) -> RegressionOutput:
    """`output` fitted by the engine from its plan, with its own sizes and level counts;
    as it was, with `plan_refused` saying why, when its plan cannot be run. Its model
    (outcome, predictors, categorical, intercept) is checked as a regression step's."""
    if output.plan is None:
        return output
    try:
        files = plans.check(output.plan, declared, output.plan_files, concatenation=False)
        ordinal = {name: i for i, name in enumerate(sorted(sources))}
        paths = {
            name: _copy(folder, sources[dataset], columns, ordinal[dataset])
            for name, (dataset, columns) in files.items()
        }
        frame = plans.run(output.plan, paths).drop(plans.UNIT)
        request = output.request
        step = RegressionStep(
            kind="regression",
            name=output.name,
            dataset=output.datasets[0],
            model=output.model,
            outcome=output.outcome,
            predictors=request.get("predictors", []),
            categorical=request.get("categorical", []),
            intercept=request.get("intercept", True),
        )
        fitted = fit_in_memory(step, frame)
    except plans.PlanRefused as exc:
        return replace(output, plan_refused=str(exc))
    except (pl.exceptions.PolarsError, ValidationError, StepFailed) as exc:
        log.info("the plan of regression %s could not be run (%s)", output.name, type(exc).__name__)
        return replace(output, plan_refused=f"its plan could not be run ({type(exc).__name__})")
    return replace(
        output,
        n_obs=fitted.n_obs,
        df_resid=fitted.df_resid,
        coefficients=fitted.coefficients,
        level_counts=fitted.level_counts,
        value_counts=fitted.value_counts,
        fit=fitted.fit,
        evidence="engine",
    )


def unit_of(source: SecuredSource) -> str:
    """The column the engine counts `source`'s contributors by: its declared unit, if the
    job was granted it (researcher code could read it anyway), else "" (its rows)."""
    return source.unit if source.unit and source.unit in source.granted else ""


def _listed(units: dict[str, str]) -> str:
    return ", ".join(f"{d} by {u or 'row'}" for d, u in sorted(units.items()))


def _copy(folder: Path, source: SecuredSource, columns: list[str], ordinal: int) -> Path:
    """The engine's own copy of `columns` of `source`, with `plans.UNIT`, made once per
    job. Without a unit, a row's place in the dataset stands for it, offset by the
    dataset's `ordinal` so that rows of two datasets never share one."""
    path = plans.scan_file(folder, source.dataset, columns)
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    unit = unit_of(source)
    frame = read_frame(source, sorted({*columns, *([unit] if unit else [])}))
    if unit:
        frame = frame.with_columns(pl.col(unit).alias(plans.UNIT))
        if unit not in columns:
            frame = frame.drop(unit)
    else:
        frame = frame.with_row_index(plans.UNIT).with_columns(
            (pl.col(plans.UNIT).cast(pl.Int64) + (ordinal << 40)).alias(plans.UNIT)
        )
    frame.select([*columns, plans.UNIT]).write_ipc(path)
    return path
