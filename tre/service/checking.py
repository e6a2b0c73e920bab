"""Disclosure control of a finished job: check every output, write the report, and
prepare the files that could be released (they leave only after two approvals)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from disclosure import Rules, build_report, check_aggregated, check_file, check_regression
from disclosure import write_report as write_disclosure_report
from disclosure.check import FileResult, RegressionResult, TableResult
from jobs.outputs import FileOutput, Output, RegressionOutput, TableOutput
from jobs.results import read_results
from policies.sdc import SdcPolicy, load_sdc_policy
from tre.models import Job, OutputRecord, OutputRequest, SdcStatus
from tre.service.session import Session

CANDIDATES = "outputs"  # in the job folder: files that would be released


def sdc_policy(session: Session) -> SdcPolicy:
    """The home's own policy file if it has one, else the packaged default."""
    override = session.home.root / "policies" / "sdc.yaml"
    return load_sdc_policy(override if override.exists() else None)


def check_job(session: Session, job: Job) -> OutputRequest:
    """Check every output of `job`; write the report and the release candidates.

    Safe to repeat (after a crash): everything is rewritten from the job's raw results.
    """
    folder = session.home.job_dir(job.id)
    outputs, _meta = read_results(folder)
    policy = sdc_policy(session)
    rules = Rules.from_mapping(policy.parameters)
    results = [_check(output, rules) for output in outputs]
    report = build_report(
        results,
        rules=rules,
        policy={"path": policy.path, "sha256": policy.sha256},
        context={
            "job_id": job.id,
            "project": job.project,
            "author": job.submitter,
            "title": job.title,
            "spec_hash": job.spec_hash,
            "code_hash": job.code_hash,
            "datasets": job.dataset_versions,
        },
    )
    paths = write_disclosure_report(report, folder / "report")
    records = _write_candidates(folder, outputs, results)
    return OutputRequest(
        job_id=job.id,
        project=job.project,
        author=job.submitter,
        outputs=records,
        report_json=str(paths["json"].relative_to(folder)),
        report_html=str(paths["html"].relative_to(folder)),
        report_markdown=str(paths["markdown"].relative_to(folder)),
    )


def _check(output: Output, rules: Rules) -> TableResult | RegressionResult | FileResult:
    match output:
        case TableOutput():
            return check_aggregated(
                output.cells,
                name=output.name,
                rows=output.rows,
                columns=output.columns,
                value=output.value,
                statistic=output.statistic,
                quantile=output.quantile,
                rules=rules,
            )
        case RegressionOutput():
            return check_regression(
                name=output.name,
                model=output.model,
                n_obs=output.n_obs,
                df_resid=output.df_resid,
                coefficients=output.coefficients,
                rules=rules,
            )
        case FileOutput():
            return check_file(
                name=output.name,
                filename=output.filename,
                size=len(output.content),
                sha256=hashlib.sha256(output.content).hexdigest(),
                description=output.description,
            )
    raise AssertionError(f"unexpected output {output!r}")


def _write_candidates(
    folder: Path, outputs: list[Output], results: list[Any]
) -> list[OutputRecord]:
    """Write what each output would release: the table without its evidence, the
    coefficients, or the file as written. Evidence never goes into these files."""
    final, tmp = folder / CANDIDATES, folder / (CANDIDATES + ".tmp")
    for path in (tmp, final):
        if path.exists():
            shutil.rmtree(path)
    tmp.mkdir(mode=0o700)
    records = []
    for output, result in zip(outputs, results, strict=True):
        target = tmp / output.name
        target.mkdir()
        match output:
            case TableOutput():
                keep = [*output.rows, *output.columns, "value"]
                if output.statistic != "count":
                    keep.append("n")
                table = output.cells.select(keep).rename(
                    {"value": output.statistic if output.statistic != "count" else "count"}
                )
                table.write_csv(target / f"{output.name}.csv")
            case RegressionOutput():
                output.coefficients.write_csv(target / f"{output.name}.csv")
                summary = pl.DataFrame(
                    {
                        "model": [output.model],
                        "outcome": [output.outcome],
                        "n_obs": [output.n_obs],
                        "df_resid": [output.df_resid],
                    }
                )
                summary.write_csv(target / f"{output.name}-summary.csv")
            case FileOutput():
                (target / output.filename).write_bytes(output.content)
        files = sorted(
            str(p.relative_to(tmp.parent)).replace(CANDIDATES + ".tmp", CANDIDATES, 1)
            for p in target.iterdir()
        )
        records.append(
            OutputRecord(
                name=output.name,
                kind=output.kind,
                step=output.step,
                sdc_status=SdcStatus(result.status),
                summary=result.summary,
                files=files,
            )
        )
    os.replace(tmp, final)
    return records
