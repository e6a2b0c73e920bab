"""The program a backend runs for one job: `python -m slurm.launch <job dir> --cluster C`.

It reads <job dir>/input.json, starts the job's own Dask cluster, runs the engine and
leaves <job dir>/result/ or <job dir>/error.json. Its log (stdout/stderr, kept by the
backend) carries progress and timings, never row-level data.

With `--cluster slurm-runner` every task of the allocation runs this program: task 1 is
the engine and writes the result; the others serve as the scheduler or a worker and
leave nothing behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
import traceback
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import FrameType

from distributed import Client

from jobs.code_lines import line_naming, missing_column
from jobs.engine import needs_cluster, run_job
from jobs.handover import CodePhaseFailed, read_handover
from jobs.job_input import read_input
from jobs.outputs import Planned
from jobs.progress import ProgressFile
from jobs.results import (
    DISK_FULL_REASON,
    is_disk_full,
    reserve_error_space,
    write_error,
    write_results,
)
from slurm.cluster_settings import read_settings
from slurm.clusters import jobqueue_cluster, local_cluster, runner_cluster, serve_runner_role
from tre.errors import TreError
from tre.models import Resources

log = logging.getLogger("tre.job")
CLUSTERS = ("local", "slurm-runner", "slurm-cluster")
PHASES = ("all", "code", "engine")
ENGINE_RANK = 1  # SLURMRunner: task 0 is the scheduler, task 1 the client, the rest workers


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slurm.launch")
    parser.add_argument("job_dir", type=Path)
    parser.add_argument("--cluster", choices=CLUSTERS, default="local")
    # In the sandbox the job folder is read-only: results go to --out, Dask's files to
    # --scratch (a private tmpfs). Without them both are inside the job folder.
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--scratch", type=Path, default=None)
    # A job split in two sandboxes (jobs/handover.py): "code" runs its python steps,
    # "engine" the rest, reading what the code's phase left in --handover.
    parser.add_argument("--phase", choices=PHASES, default="all")
    parser.add_argument("--handover", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    signal.signal(signal.SIGTERM, _on_term)
    job_dir: Path = args.job_dir.absolute()
    out: Path = (args.out or job_dir).absolute()
    scratch: Path = (args.scratch or job_dir / "scratch").absolute()
    if args.phase == "code":
        os.umask(0o027)  # what it hands over, the engine (its group) must read
    rank = int(os.environ.get("SLURM_PROCID", "1"))
    if args.cluster == "slurm-runner" and rank != ENGINE_RANK:
        # The engine's phase of a job of python steps alone computes nothing: it starts
        # no cluster, so its scheduler and workers would wait for it until the walltime.
        if args.phase != "engine" or needs_cluster(read_input(job_dir).spec, args.phase):
            serve_runner_role(read_settings(job_dir), job_dir, rank, out)
        return 0
    reserve_error_space(out)  # so that a full disk cannot keep the job from saying so
    ProgressFile(out).started()  # before any researcher code: the job has started
    try:
        return _run(job_dir, out, scratch, args.cluster, args.phase, args.handover)
    except CodePhaseFailed as exc:
        log.error("the python steps failed in their own sandbox (their reason is held)")
        write_error(out, exc.reason, exc.detail)
    except TreError as exc:
        log.error("job failed: %s", exc.render())
        write_error(out, exc.render(), _located(exc))
    except SystemExit as exc:
        log.error("job stopped: %s", exc)
        write_error(out, f"the job was stopped ({exc})")
    except BaseException as exc:
        reason = _safe_reason(exc)
        log.error("job failed: %s", reason)
        if is_disk_full(exc):
            write_error(out, DISK_FULL_REASON, {"disk_full": True})
        else:
            # Researcher code's own phase may read its code again, to say where it
            # named a missing column; the engine's phase never unpickles it.
            write_error(out, reason, _located(exc, job_dir if args.phase != "engine" else None))
    return 1  # write_error never raises: a failed job always ends here, with status 1


def _run(
    job_dir: Path, out: Path, scratch: Path, cluster: str, phase: str, handover: Path | None
) -> int:
    started = time.monotonic()
    job_input = read_input(job_dir)
    spec = job_input.spec
    handed = None
    if phase == "engine":
        if handover is None:
            raise SystemExit("the engine's phase needs --handover")
        scratch.mkdir(parents=True, exist_ok=True)
        received = read_handover(handover, spec, scratch)
        if received.error is not None:
            error = dict(received.error)
            raise CodePhaseFailed(error.pop("reason"), error)
        handed = received.outputs
    log.info(
        "job %s: %s (%d step(s)); %s",
        job_input.job_id,
        spec.title,
        len(spec.steps),
        spec.resources.describe(),
    )
    progress = ProgressFile(out)
    computing = needs_cluster(spec, phase)
    cluster_or_none = (
        _cluster(cluster, job_dir, scratch, spec.resources, out) if computing else nullcontext()
    )
    with cluster_or_none as client:
        if computing:
            log.info("dask cluster up in %.1fs", time.monotonic() - started)
        outputs = run_job(
            spec,
            job_input.secured_sources(),
            client,
            pickles=job_input.pickles(job_dir) if phase != "engine" else {},
            top_k=job_input.top_k,
            progress=progress,
            target_rows=job_input.target_rows,
            phase=phase,
            handed=handed,
            files=scratch / "plans",
        )
    for output in outputs:  # tre's words only: the checkers read this log
        if isinstance(output, Planned) and phase != "all":
            if output.evidence == "engine" and phase == "engine" and output.plan:
                mode = "plan mode: the engine ran its plan and computed its evidence"
            elif output.plan and phase == "code" and not output.plan_refused:
                mode = "plan mode: its plan is handed to the engine"
            elif output.evidence == "code":
                mode = f"free mode, advisory ({output.plan_refused})"
            else:
                continue
            log.info("%s %s of step %s: %s", output.kind, output.name, output.step, mode)
    elapsed = time.monotonic() - started
    meta = {"job_id": job_input.job_id, "seconds": round(elapsed, 3)}
    write_results(out, outputs, meta, shared=phase == "code")
    log.info("job %s finished in %.1fs with %d output(s)", job_input.job_id, elapsed, len(outputs))
    return 0


def _cluster(
    name: str, job_dir: Path, scratch: Path, resources: Resources, out: Path
) -> AbstractContextManager[Client]:
    if name == "local":
        return local_cluster(resources, scratch)
    settings = read_settings(job_dir)
    if name == "slurm-runner":
        return runner_cluster(settings, job_dir, out)
    return jobqueue_cluster(settings, job_dir)


#: Frames of these folders are tre's own or a library's, not the researcher's code.
_NOT_RESEARCHER = ("/tre/", "/jobs/", "/slurm/", "/disclosure/", "/policies/", "/site-packages/")


def _located(exc: BaseException, code_of: Path | None = None) -> dict[str, str]:
    """The exception's type and the last place in the researcher's own file it passed
    through: all a researcher sees of a failure in code that ran in the sandbox (the
    message could hold data, so it is held with the log). For a column polars could not
    find, also the column and, read from the submitted code of the job at `code_of`,
    the line that wrote it (tre/service/researcher_view.py shows them only bounded)."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = frame.filename
        if path == "<dynamic-code>":  # cloudpickle's name for code shipped by value
            where = f"{frame.name}:{frame.lineno}"
            continue
        if path.startswith("<") or any(part in path for part in _NOT_RESEARCHER):
            continue
        if path.startswith(sys.base_prefix) or path.startswith(sys.prefix):
            continue
        where = f"{Path(path).name}:{frame.lineno}"
    located = {"type": type(exc).__name__, "where": where}
    for field in ("dataset", "column"):  # ColumnRefused: checked before anyone sees them
        value = getattr(exc, field, None)
        if isinstance(value, str):
            located[field] = value[:200]
    column = missing_column(str(exc)) if type(exc).__name__ == "ColumnNotFoundError" else None
    if column is not None and code_of is not None:
        located["column"] = column
        try:
            line = line_naming(read_input(code_of).pickles(code_of), column)
        except Exception:
            line = None
        if line is not None:
            located["built_at"] = str(line)
    return located


def _safe_reason(exc: BaseException) -> str:
    """Exception type, message and where it was raised (the last frames of the stack).

    Researcher code raises these too, so the message stays (it is how they debug); logs
    are visible only to the project's members and the TRE staff.
    """
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames)
    message = str(exc)
    if len(message) > 500:
        message = message[:500] + "..."
    return f"{type(exc).__name__}: {message} (at {where})"


if __name__ == "__main__":
    sys.exit(main())
