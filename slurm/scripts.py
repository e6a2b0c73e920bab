"""Job scripts, rendered by pure functions: the same inputs give the same text, and the
text is tested without a cluster (tests/slurm/test_scripts.py)."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

from slurm.profiles import SiteProfile
from tre.models import Resources, SlurmPlacement
from tre.units import format_duration

#: Tasks in a slurm-runner allocation besides the workers: the scheduler and the engine.
RUNNER_OVERHEAD_TASKS = 2
#: Memory for each of those: they hold task metadata and aggregates, never row-level data.
OVERHEAD_TASK_MEMORY = 1024**3
SCRATCH_WIPED = "scratch-wiped"
#: The job user's own folder in the job folder, for Slurm's log and the scratch marker,
#: when it submits its job itself (SiteProfile.submit_via_sudo).
LOG_FOLDER = "slurm"


def worker_job_name(name: str) -> str:
    """slurm-cluster: the name of every worker job of the tre job called `name`."""
    return f"{name}-w"


def sbatch_header(
    *,
    name: str,
    output: Path,
    resources: Resources,
    profile: SiteProfile,
    placement: SlurmPlacement,
    ntasks: int,
    total_memory: int | None = None,
) -> list[str]:
    """The #SBATCH lines every tre allocation has. Memory is asked per CPU, so that
    `total_memory` (default: each task's share of `resources.memory`) is spread over the
    allocation's tasks."""
    total = total_memory if total_memory is not None else resources.memory * ntasks
    mem_per_cpu = math.ceil(total / (ntasks * resources.cores) / 1024**2)
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --output={output}",
        f"#SBATCH --ntasks={ntasks}",
        f"#SBATCH --cpus-per-task={resources.cores}",
        f"#SBATCH --mem-per-cpu={mem_per_cpu}M",
        f"#SBATCH --time={format_duration(resources.walltime)}",
    ]
    if placement.partition:
        lines.append(f"#SBATCH --partition={placement.partition}")
    if placement.account:
        lines.append(f"#SBATCH --account={placement.account}")
    if placement.qos:
        lines.append(f"#SBATCH --qos={placement.qos}")
    if profile.exclusive:
        lines.append("#SBATCH --exclusive")
    # tre decides about retries (the job folder must never have two runs writing to it).
    lines.append("#SBATCH --no-requeue")
    lines += [f"#SBATCH {option}" for option in profile.sbatch_extra]
    return lines


def thread_variables(cores: int) -> dict[str, str]:
    """`thread_environment` as variables (for a process's environment, not a script)."""
    return dict(line.removeprefix("export ").split("=", 1) for line in thread_environment(cores))


def thread_environment(cores: int) -> list[str]:
    """Thread pools sized to the worker's cores (polars otherwise takes the whole node)."""
    return [
        f"export {var}={cores}"
        for var in (
            "POLARS_MAX_THREADS",
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
        )
    ]


def render_runner_script(
    *,
    name: str,
    job_dir: Path,
    resources: Resources,
    profile: SiteProfile,
    placement: SlurmPlacement,
    python: str,
    sandboxed: list[str] | None = None,
    code_first: list[str] | None = None,
    log_dir: Path | None = None,
) -> str:
    """The sbatch script of a slurm-runner job: one allocation with the job's scheduler
    (task 0), its engine (task 1) and its workers (tasks 2..), started by one srun.
    `sandboxed`: the command each task runs instead, in its sandbox (slurm.sandbox).
    `code_first`: the job's python steps, each task in a sandbox of their own, run
    first by the same tasks (a Dask cluster of their own), whatever their exit status:
    the engine reads what they handed over and says what became of them
    (jobs/handover.py). `log_dir`: where Slurm writes its log and the scratch marker
    (default the job folder; a folder of the job user's own when it submits)."""
    q = shlex.quote
    log_dir = log_dir or job_dir
    scratch = f"{profile.local_directory}/{name}-$SLURM_JOB_ID"
    lines = sbatch_header(
        name=name,
        output=log_dir / "slurm-%j.out",
        resources=resources,
        profile=profile,
        placement=placement,
        ntasks=resources.workers + RUNNER_OVERHEAD_TASKS,
        # The workers' memory plus a little for the scheduler and the engine.
        total_memory=resources.workers * resources.memory
        + RUNNER_OVERHEAD_TASKS * OVERHEAD_TASK_MEMORY,
    )
    lines += [
        "",
        "# Written by tre (slurm/scripts.py) for one job; the job folder holds its input.",
        "set -uo pipefail",
        *profile.prologue,
        *thread_environment(resources.cores),
        "export PYTHONUNBUFFERED=1",
        "export DASK_DISTRIBUTED__LOGGING__DISTRIBUTED=warning",
        f'export TRE_JOB_SCRATCH="{scratch}"',
        "wipe_scratch() {",
        '    rm -rf "$TRE_JOB_SCRATCH"',
        f"    touch {q(str(log_dir / SCRATCH_WIPED))}",
        "}",
        "trap wipe_scratch EXIT",
        *([] if code_first is None else [f"srun --kill-on-bad-exit=0 {shlex.join(code_first)}"]),
        f"srun --kill-on-bad-exit=0 {q(python)} -m slurm.launch {q(str(job_dir))} "
        "--cluster slurm-runner"
        if sandboxed is None
        else f"srun --kill-on-bad-exit=0 {shlex.join(sandboxed)}",
        "",
    ]
    return "\n".join(lines)
