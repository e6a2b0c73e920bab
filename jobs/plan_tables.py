"""The engine's side of plan mode: run a python step's checked plan again on tre's own
copy of the data, and compute the table's cells and evidence here (jobs/plans.py).

Runs in the engine's phase, a sandbox researcher code never ran in, on what the code's
phase handed over (jobs/handover.py). A plan that cannot be run leaves the table as the
code computed it, advisory, with tre's reason for the checkers.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import polars as pl

from disclosure import aggregate
from disclosure.errors import DisclosureInputError
from jobs import plans
from jobs.frames import read_frame
from jobs.outputs import TableOutput
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
        paths = {name: _copy(folder, sources, *files[name]) for name in files}
        frame = plans.run(output.plan, paths)
        keys = [*output.rows, *output.columns]
        partial = aggregate.partial(frame, keys, output.value, output.statistic, top_k=top_k)
        cells = aggregate.with_margins(
            partial,
            keys,
            output.statistic,
            output.quantile,
            grid=table_grid(list(output.rows), list(output.columns)),
            top_k=top_k,
        )
    except plans.PlanRefused as exc:
        return replace(output, plan_refused=str(exc))
    except (pl.exceptions.PolarsError, DisclosureInputError) as exc:
        log.info("the plan of table %s could not be run (%s)", output.name, type(exc).__name__)
        return replace(output, plan_refused=f"its plan could not be run ({type(exc).__name__})")
    return replace(output, cells=cells, evidence="engine", unit=None)


def _copy(
    folder: Path, sources: dict[str, SecuredSource], dataset: str, columns: list[str]
) -> Path:
    """The engine's own copy of `columns` of `dataset`, made once per job."""
    path = plans.scan_file(folder, dataset, columns)
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        read_frame(sources[dataset], columns).write_ipc(path)
    return path
