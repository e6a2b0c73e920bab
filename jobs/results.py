"""A job's raw results on disk: what the job process hands to the service.

    <job dir>/result/
      result.json                  every output's metadata, and the job's timings
      tables/<name>.parquet        finalized cells with their evidence
      regressions/<name>.parquet   coefficients
      files/<name>/<filename>      python-step files, as written
    <job dir>/error.json           instead, when the job failed: a reason safe to show
    <job dir>/error.json.reserve   space taken at the start, so a full disk cannot stop
                                   the job from saying why it failed

The folder is written under a temporary name and renamed, so the service sees all of
it or none of it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from jobs.outputs import FileOutput, Output, RegressionOutput, TableOutput

RESULT = "result"
ERROR = "error.json"
RESERVE = ERROR + ".reserve"
RESERVE_BYTES = 4096
FORMAT = 1
#: OSError numbers that mean the disk (or the user's quota on it) is full.
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
#: What error.json says when a full disk stopped the job (fixed: it must fit the reserve).
DISK_FULL_REASON = "the TRE home's disk is full (ENOSPC), so the job could not write its results"
UNRECORDED_REASON = (
    "the job failed and could not record why, because the TRE home's disk is full (ENOSPC)"
)


def write_results(
    job_dir: Path, outputs: list[Output], meta: dict[str, Any], *, shared: bool = False
) -> Path:
    """Write every output under job_dir/result, atomically. `shared`: readable by the
    writer's group too (the python steps' phase, handing over to the engine's)."""
    final = job_dir / RESULT
    tmp = job_dir / (RESULT + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(mode=0o750 if shared else 0o700)
    try:
        _write_outputs(tmp, outputs, meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # give back what a full disk let us write
        raise
    os.replace(tmp, final)
    with contextlib.suppress(OSError):
        (job_dir / RESERVE).unlink(missing_ok=True)  # no error to record
    return final


def _write_outputs(tmp: Path, outputs: list[Output], meta: dict[str, Any]) -> None:
    entries = []
    for output in outputs:
        entry: dict[str, Any] = {
            "name": output.name,
            "kind": output.kind,
            "step": output.step,
            "description": output.description,
        }
        match output:
            case TableOutput():
                (tmp / "tables").mkdir(exist_ok=True)
                output.cells.write_parquet(tmp / "tables" / f"{output.name}.parquet")
                entry |= {
                    "datasets": output.datasets,
                    "rows": output.rows,
                    "columns": output.columns,
                    "value": output.value,
                    "statistic": output.statistic,
                    "quantile": output.quantile,
                    "unit": output.unit,
                    "data": f"tables/{output.name}.parquet",
                }
                entry |= _plan_entry(tmp, "tables", output)
            case RegressionOutput():
                (tmp / "regressions").mkdir(exist_ok=True)
                output.coefficients.write_parquet(tmp / "regressions" / f"{output.name}.parquet")
                entry |= {
                    "datasets": output.datasets,
                    "model": output.model,
                    "outcome": output.outcome,
                    "n_obs": output.n_obs,
                    "df_resid": output.df_resid,
                    "level_counts": output.level_counts,
                    "value_counts": output.value_counts,
                    "fit": output.fit,
                    "data": f"regressions/{output.name}.parquet",
                    "request": output.request,
                }
                entry |= _plan_entry(tmp, "regressions", output)
            case FileOutput():
                folder = tmp / "files" / output.name
                folder.mkdir(parents=True)
                (folder / output.filename).write_bytes(output.content)
                entry |= {
                    "filename": output.filename,
                    "data": f"files/{output.name}/{output.filename}",
                }
        entries.append(entry)
    document = {"format": FORMAT, "outputs": entries, **meta}
    (tmp / "result.json").write_text(json.dumps(document, indent=2, default=str))
    _fsync_tree(tmp)


def _plan_entry(tmp: Path, folder: str, output: TableOutput | RegressionOutput) -> dict[str, Any]:
    """Who computed `output`'s evidence, and its plan (written beside its data)."""
    entry: dict[str, Any] = {
        "evidence": output.evidence,
        "plan_files": output.plan_files,
        "plan_refused": output.plan_refused,
    }
    if output.plan is not None:
        (tmp / folder / f"{output.name}.plan.json").write_text(output.plan)
        entry["plan"] = f"{folder}/{output.name}.plan.json"
    return entry


def _planned(folder: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """The fields `_plan_entry` wrote, read back."""
    return {
        "evidence": str(entry.get("evidence", "engine")),
        "plan": (folder / entry["plan"]).read_text() if entry.get("plan") else None,
        "plan_files": dict(entry.get("plan_files") or {}),
        "plan_refused": str(entry.get("plan_refused", "")),
    }


def read_results(job_dir: Path) -> tuple[list[Output], dict[str, Any]]:
    """The outputs written by `write_results`, and the rest of result.json."""
    folder = job_dir / RESULT
    document = json.loads((folder / "result.json").read_text())
    outputs: list[Output] = []
    for entry in document.pop("outputs"):
        common = {"name": entry["name"], "step": entry["step"], "description": entry["description"]}
        data = folder / entry["data"]
        match entry["kind"]:
            case "table":
                outputs.append(
                    TableOutput(
                        **common,
                        datasets=entry["datasets"],
                        rows=entry["rows"],
                        columns=entry["columns"],
                        value=entry["value"],
                        statistic=entry["statistic"],
                        quantile=entry["quantile"],
                        cells=pl.read_parquet(data),
                        unit=entry.get("unit"),
                        **_planned(folder, entry),
                    )
                )
            case "regression":
                outputs.append(
                    RegressionOutput(
                        **common,
                        datasets=entry["datasets"],
                        model=entry["model"],
                        outcome=entry["outcome"],
                        n_obs=entry["n_obs"],
                        df_resid=entry["df_resid"],
                        coefficients=pl.read_parquet(data),
                        level_counts=entry["level_counts"],
                        # Results written before value counts were kept have none.
                        value_counts=dict(entry.get("value_counts") or {}),
                        fit=entry["fit"],
                        request=dict(entry.get("request") or {}),
                        **_planned(folder, entry),
                    )
                )
            case "file":
                outputs.append(
                    FileOutput(**common, filename=entry["filename"], content=data.read_bytes())
                )
            case other:
                raise ValueError(f"unknown output kind {other!r} in result.json")
    return outputs, document


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or the quota on it) is full."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL


def reserve_error_space(job_dir: Path) -> None:
    """Take the space `write_error` falls back to (call when the job starts). A disk
    already full is not an error here: the job will fail and say so if it can."""
    with contextlib.suppress(OSError), (job_dir / RESERVE).open("wb") as handle:
        handle.write(b" " * RESERVE_BYTES)
        handle.flush()
        os.fsync(handle.fileno())


def write_error(job_dir: Path, reason: str, detail: dict[str, Any] | None = None) -> bool:
    """Record why the job failed (a message safe to show its project's members); True if
    recorded. Never raises: this runs in the job's last error handler. If the disk is
    full, a short fixed message goes into the space `reserve_error_space` took."""
    tmp = job_dir / (ERROR + ".tmp")
    try:
        tmp.write_text(json.dumps({"reason": reason, **(detail or {})}, indent=2))
        os.replace(tmp, job_dir / ERROR)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # give back what the half-written file took
        if (detail or {}).get("disk_full"):
            fallback = reason if len(reason) < RESERVE_BYTES // 2 else DISK_FULL_REASON
        else:
            fallback = UNRECORDED_REASON if is_disk_full(exc) else ""
        return bool(fallback) and _write_into_reserve(job_dir, fallback)
    with contextlib.suppress(OSError):
        (job_dir / RESERVE).unlink(missing_ok=True)
    return True


def _write_into_reserve(job_dir: Path, reason: str) -> bool:
    # Overwriting bytes the reserve already holds needs no new blocks, and a rename
    # within a folder needs none either (on the file systems tre runs on).
    data = json.dumps({"reason": reason, "disk_full": True}).encode()
    reserve = job_dir / RESERVE
    try:
        with reserve.open("r+b") as handle:
            handle.write(data)
            handle.truncate(len(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(reserve, job_dir / ERROR)
    except OSError:
        return False
    return True


def read_error(job_dir: Path) -> dict[str, Any] | None:
    path = job_dir / ERROR
    return json.loads(path.read_text()) if path.exists() else None


def _fsync_tree(folder: Path) -> None:
    """Flush every file so a crash after the rename cannot leave empty files behind."""
    for path in folder.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
