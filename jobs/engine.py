"""Turn a validated job spec into Dask work and collect its outputs.

The engine runs in the job's own process next to its own Dask cluster (started by a
backend in `slurm/`). Data is read and decrypted on the workers; what comes back here
is aggregates with their disclosure evidence, and files from python steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from distributed import Client

from jobs.dasktools import ProgressFn
from jobs.errors import StepFailed
from jobs.outputs import Output, RegressionOutput, TableOutput
from jobs.plan_outputs import recompute, refit
from jobs.python_step import run_python_step
from jobs.regression_step import run_regression
from jobs.spec import JobSpec, PythonStep, RegressionStep, Step, TableStep
from jobs.table_step import read_together, run_tables
from tre.secured.reader import SecuredSource


def run_job(
    spec: JobSpec,
    sources: dict[str, SecuredSource],
    client: Client | None,
    *,
    pickles: dict[str, bytes],
    top_k: int,
    progress: ProgressFn | None = None,
    target_rows: int = 1_000_000,
    phase: str = "all",
    handed: dict[str, list[Output]] | None = None,
    files: Path | None = None,
) -> list[Output]:
    """Run every step in order; return all outputs (names unique across the job).

    `phase` "code" runs the python steps alone (researcher code, in its own sandbox);
    "engine" runs the rest and takes the python steps' outputs from `handed` (what the
    code phase handed over: jobs/handover.py); "all" runs everything here. `client` may
    be None only when nothing left to run needs a cluster (`needs_cluster`)."""
    outputs: list[Output] = []
    for group in _groups(spec.steps):
        step = group[0]
        if phase == "code" and not isinstance(step, PythonStep):
            continue
        if isinstance(step, PythonStep) and phase == "engine":
            names = spec.step_datasets(step)
            declared = {n: spec.datasets[n] for n in names}
            for output in (handed or {}).get(step.name, []):
                if isinstance(output, TableOutput) and files is not None:
                    output = recompute(output, sources, declared, files, top_k)
                elif isinstance(output, RegressionOutput) and files is not None:
                    output = refit(output, sources, declared, files)
                outputs.append(output)
            if progress:
                progress(step.name, 1, 1)
            continue
        assert client is not None, "a step that computes needs the job's cluster"
        match step:
            case TableStep():
                tables = [s for s in group if isinstance(s, TableStep)]
                outputs += run_tables(
                    tables, sources, client, top_k=top_k, progress=progress, target_rows=target_rows
                )
            case RegressionStep():
                outputs.append(
                    run_regression(
                        step, sources, client, progress=progress, target_rows=target_rows
                    )
                )
            case PythonStep():
                outputs += _run_python(step, spec, sources, client, pickles, top_k, progress)
            case _:
                raise AssertionError(f"unexpected step {step!r}")
    names = [o.name for o in outputs]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise StepFailed(
            f"outputs must have unique names across the job; repeated: {', '.join(clashes)}",
            fix="rename the outputs of the python step(s)",
        )
    return outputs


def needs_cluster(spec: JobSpec, phase: str) -> bool:
    """Whether `phase` of the job computes anything (the engine's phase of a job of
    python steps alone only gathers what they handed over)."""
    if phase == "code":
        return any(isinstance(s, PythonStep) for s in spec.steps)
    if phase == "engine":
        return any(not isinstance(s, PythonStep) for s in spec.steps)
    return True


def _groups(steps: Sequence[Step]) -> list[list[Step]]:
    """The steps in order, consecutive table steps that can share their reads together
    (`jobs.table_step.read_together`); every other step alone."""
    groups: list[list[Step]] = []
    for step in steps:
        last = groups[-1][-1] if groups else None
        if (
            isinstance(step, TableStep)
            and isinstance(last, TableStep)
            and read_together(last, step)
        ):
            groups[-1].append(step)
        else:
            groups.append([step])
    return groups


def _run_python(
    step: PythonStep,
    spec: JobSpec,
    sources: dict[str, SecuredSource],
    client: Client,
    pickles: dict[str, bytes],
    top_k: int,
    progress: ProgressFn | None,
) -> list[Output]:
    names = spec.step_datasets(step)
    mine = {n: sources[n] for n in names}
    declared = {n: spec.datasets[n] for n in names}
    if progress:
        progress(step.name, 0, 1)
    future = client.submit(
        run_python_step, pickles[step.name], step.name, mine, declared, top_k, pure=False
    )
    result: list[Output] = future.result()
    if progress:
        progress(step.name, 1, 1)
    return result
