"""Disclosure control of a finished job: check and protect every output, look for
differencing within the request and against what the project has already released,
write the report, and prepare the files that could be released (they leave only after
two approvals).

Each output is checked under the policy for its project and the datasets it reads
(`policies.sdc`: layered files). What would be released is the protected table only
(suppressed cells blank, counts rounded if the policy says so), with a summary for the
researcher that quotes no evidence; the checkers' report keeps the evidence.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from disclosure import (
    Budget,
    build_report,
    check_aggregated,
    check_file,
    check_regression,
    check_request,
    released_table,
    researcher_summary,
)
from disclosure import write_report as write_disclosure_report
from disclosure.advisory import ADVISORY, mark_advisory
from disclosure.check import FileResult, RegressionResult, TableResult
from disclosure.errors import DisclosureError
from disclosure.refusal import mark_refused
from jobs import contributors
from jobs.claims import check_result_claims
from jobs.contributors import Identifiers
from jobs.outputs import FileOutput, Output, Planned, RegressionOutput, TableOutput
from jobs.results import read_results
from jobs.spec import JobSpec, PythonStep, RegressionStep, TableStep, parse_spec
from jobs.untrusted import UntrustedOutput
from policies.limits import load_limits
from policies.sdc import SdcPolicy, layered_policy
from tre.errors import InputError
from tre.models import Job, OutputRecord, OutputRequest, SdcStatus, Sensitivity
from tre.service.ledger import released_tables
from tre.service.populations import population_of
from tre.service.session import Session
from tre.store import repo

__all__ = ["CANDIDATES", "check_job", "evidence_top_k", "sdc_policy"]

CANDIDATES = "outputs"  # in the job folder: files that would be released
PLAN_PROVENANCE = "computed by tre's engine from the python step's plan (plan mode)"


def sdc_policy(
    session: Session, project: str | None = None, datasets: list[str] | tuple[str, ...] = ()
) -> SdcPolicy:
    """The disclosure policy for `project` and `datasets` (without them: the TRE's own,
    else the packaged default). See `policies.sdc` for the layers."""
    return layered_policy(session.home.root, project=project, datasets=datasets)


def evidence_top_k(session: Session, job: Job) -> int:
    """How many of each cell's largest contributions the job must keep as evidence: enough
    for the strictest dominance rule among its project's and datasets' policies."""
    policy = sdc_policy(session, job.project, list(job.dataset_versions))
    return policy.rules().top_k


def check_job(session: Session, job: Job) -> OutputRequest:
    """Check every output of `job`; write the report and the release candidates.

    Safe to repeat (after a crash): everything is rewritten from the job's raw results.
    """
    folder = session.home.job_dir(job.id)
    limits = load_limits(session.home.root)
    try:
        check_result_claims(folder)
    except UntrustedOutput as exc:
        raise InputError(
            f"job {job.id}'s outputs cannot be checked: {exc.message}",
            fix="make outputs with ctx.table, ctx.regression and ctx.file only, and leave "
            "what they write as it is",
        ) from None
    outputs, _meta = read_results(folder)
    if len(outputs) > limits.outputs_per_job:
        raise InputError(
            f"job {job.id} made {len(outputs):,} outputs; this TRE checks at most "
            f"{limits.outputs_per_job:,} outputs of one job (its limits)",
            fix="make fewer outputs in one job, or split the job",
        )
    spec = parse_spec(job.spec, source=f"job {job.id}'s spec", as_written=False)
    base = sdc_policy(session, job.project)
    policies = [sdc_policy(session, job.project, _datasets_of(o)) for o in outputs]
    try:
        results = [
            _check(output, policy, population_of(session.conn, output, spec, job))
            for output, policy in zip(outputs, policies, strict=True)
        ]
        split = bool(job.handle.get("split"))
        found = identifiers(session, job)
        for output, result in zip(outputs, results, strict=True):
            label(output, result, spec, outputs, split=split, found=found)
        budget = Budget(limits.differencing_pairs, limits.differencing_seconds)
        findings = check_request(results, released_tables(session.conn, job.project), budget)
        report = build_report(
            results,
            rules=base.rules(),
            protection=base.protection(),
            policy=_policy_record([base, *policies]),
            context=job.provenance(),
            findings=findings,
        )
    except DisclosureError as exc:
        raise InputError(
            f"job {job.id}'s outputs cannot be checked: {exc.message}",
            reasons=exc.reasons,
            fix=exc.fix,
        ) from exc
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


def label(
    output: Output,
    result: TableResult | RegressionResult | FileResult,
    spec: JobSpec,
    outputs: list[Output],
    *,
    split: bool,
    found: Identifiers,
) -> None:
    """Say on `result` who computed its evidence, and refuse what its form discloses:
    advisory when researcher code computed it (with why tre cannot establish a table's
    contributors, if it cannot), the engine's provenance for a plan-mode output, and
    "fail" for a table keyed by an identifier column of `found` (jobs/contributors.py),
    whoever computed it."""
    if isinstance(result, FileResult):
        return
    table = output if isinstance(output, TableOutput) else None
    if not _engine_made(output, spec, outputs, split):
        refused = getattr(output, "plan_refused", "")
        why = ADVISORY + (f" (plan mode: {refused})" if refused else "")
        uncounted = contributors.uncounted(table, found) if table is not None else ""
        mark_advisory(result, why + (f"; {uncounted}" if uncounted else ""))
    elif _step_kind(spec, output) == "python":
        unit = table.unit if table is not None else None
        result.provenance = plan_provenance(unit) if table is not None else PLAN_PROVENANCE
        result.summary = f"Evidence {result.provenance}. {result.summary}"
    refusal = contributors.refusal(table, found) if table is not None else ""
    if refusal:
        mark_refused(result, refusal)


def identifiers(session: Session, job: Job) -> dict[str, list[str]]:
    """The identifier columns of each dataset version `job` read, from tre's catalog
    (never from the job): the columns no table may be keyed by."""
    found = {}
    for name, version in sorted(job.dataset_versions.items()):
        dataset = repo.find_dataset(session.conn, name, version)
        if dataset is not None:
            found[name] = [
                c.name for c in dataset.columns if c.sensitivity is Sensitivity.IDENTIFIER
            ]
    return found


def plan_provenance(unit: str | None) -> str:
    """How the engine made a plan-mode table's evidence, and what it counted."""
    counted = (
        f"each {unit} counted once"
        if unit
        else "each row of the data counted once, however "
        "often the plan repeats it (the dataset declares no unit the job may read)"
    )
    return f"{PLAN_PROVENANCE}, {counted}"


def read_report(session: Session, request: OutputRequest) -> dict[str, Any]:
    """The stored report of an output request, as the checkers saw it."""
    path = session.home.job_dir(request.job_id) / request.report_json
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return report


def _step_kind(spec: JobSpec, output: Output) -> str:
    step = next((s for s in spec.steps if s.name == output.step), None)
    return step.kind if step is not None else ""


def _engine_made(output: Output, spec: JobSpec, outputs: list[Output], split: bool = False) -> bool:
    """Whether tre's engine computed `output`'s evidence: the one output of a declarative
    table or regression step, by the spec's own name and kind; or a python step's table
    whose plan the engine ran again (plan mode), only when the job ran its python steps
    in a sandbox of their own (`split`), so the engine's phase ran no researcher code.
    Everything else (free mode, or an output claiming a step it is not) was computed by
    researcher code, which could edit it, so its checks are advisory. Decided here, from
    the approved spec and how the job ran, never from what the code says of itself."""
    step = next((s for s in spec.steps if s.name == output.step), None)
    if isinstance(step, PythonStep):
        return split and isinstance(output, Planned) and output.evidence == "engine"
    if isinstance(step, TableStep):
        kind = "table"
    elif isinstance(step, RegressionStep):
        kind = "regression"
    else:
        return False
    if output.kind != kind or output.name != output.step:
        return False
    return sum(o.step == output.step for o in outputs) == 1


def _datasets_of(output: Output) -> list[str]:
    return list(getattr(output, "datasets", []))


def _policy_record(policies: list[SdcPolicy]) -> dict[str, Any]:
    """Every policy file used by any output (once each), and every note."""
    files: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    for policy in policies:
        record = policy.record()
        for entry in record["files"]:
            files.setdefault(entry["path"], entry)
        notes += [n for n in record["notes"] if n not in notes]
    return {"files": list(files.values()), "notes": notes}


def _check(
    output: Output, policy: SdcPolicy, population: dict[str, Any] | None
) -> TableResult | RegressionResult | FileResult:
    rules = policy.rules()
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
                protection=policy.protection(),
                unit=output.unit,
                population=population,
            )
        case RegressionOutput():
            return check_regression(
                name=output.name,
                model=output.model,
                n_obs=output.n_obs,
                df_resid=output.df_resid,
                coefficients=output.coefficients,
                rules=rules,
                level_counts=output.level_counts,
                value_counts=output.value_counts,
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
    """Write what each output would release: the protected table and the researcher's
    summary, the coefficients, or the file as written. Evidence never goes into these."""
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
                released_table(result).write_csv(target / f"{output.name}.csv")
                (target / f"{output.name}-disclosure.md").write_text(
                    researcher_summary(result), encoding="utf-8"
                )
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
                advisory=bool(getattr(result, "advisory", "")),
                files=files,
            )
        )
    os.replace(tmp, final)
    return records
