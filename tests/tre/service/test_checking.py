"""How checking labels a python step's table (tre/service/checking.py `label`): who
computed its evidence, whether tre could establish its contributors, and the refusal of
a table keyed by an identifier, however the code handed it over; and that it reads no
evidence before its claims are checked (jobs/claims.py)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from disclosure.advisory import ADVISORY
from disclosure.check import TableResult
from jobs.contributors import UNCOUNTED
from jobs.outputs import Output, TableOutput
from jobs.python_step import StepContext
from jobs.results import write_results
from jobs.spec import JobSpec, parse_spec
from policies.sdc import layered_policy
from tests.jobs import people
from tre.errors import InputError
from tre.models import Job, JobState
from tre.service.checking import _check, check_job, label

#: The catalog's identifier columns of the job's datasets, as `identifiers` reads them.
FOUND = {"residents": ["resident_id"]}


@pytest.fixture
def spec() -> JobSpec:
    return parse_spec(
        {
            "project": "p",
            "title": "t",
            "datasets": {"residents": people.COLUMNS},
            "steps": [{"kind": "python", "name": "mine", "function": "x.py:f"}],
        },
        as_written=False,
    )


def _made(frame: pl.DataFrame, granted: list[str] = people.COLUMNS, **table) -> TableOutput:
    """A table made by `ctx.table` in free mode, as the code's phase hands it over."""
    ctx = StepContext("mine", {"residents": people.source(granted)}, {"residents": granted})
    ctx.table("t", frame, **table)
    (output,) = ctx.outputs
    assert isinstance(output, TableOutput)
    return output


def _labelled(output: TableOutput, spec: JobSpec, tmp_path: Path) -> TableResult:
    result = _check(output, layered_policy(tmp_path), None)
    assert isinstance(result, TableResult)
    outputs: list[Output] = [output]
    label(output, result, spec, outputs, split=True, found=FOUND)
    return result


def test_a_frame_without_an_identifier_is_marked_for_review_with_the_reason(spec, tmp_path):
    frame = pl.concat([people.people(120).select("age_band", "sex")] * 10)
    output = _made(frame, ["age_band", "sex"], rows=["age_band"], columns=["sex"])
    result = _labelled(output, spec, tmp_path)
    assert result.check_status == "review" and result.status == "review"
    assert result.advisory.startswith(ADVISORY)
    assert result.advisory.endswith(f"; {UNCOUNTED}")
    assert UNCOUNTED in result.summary


def test_a_frame_counted_by_its_identifier_is_advisory_without_that_reason(spec, tmp_path):
    output = _made(people.people(120), rows=["age_band"], columns=["sex"])
    result = _labelled(output, spec, tmp_path)
    assert result.status == "review" and UNCOUNTED not in result.advisory


@pytest.mark.parametrize("evidence", ["code", "engine"])
def test_a_table_keyed_by_an_identifier_handed_over_past_ctx_table_is_refused(
    spec, tmp_path, evidence
):
    # Code can hand over a table ctx.table would refuse: here, one made with the
    # identifier under another name, then given its own name back.
    frame = pl.concat([people.people(40)] * 10).rename({"resident_id": "who"})
    output = _made(frame, rows=["who", "age_band", "sex", "ltc_count"])
    output.rows = ["resident_id", "age_band", "sex", "ltc_count"]
    output.cells = output.cells.rename({"who": "resident_id"})
    output.evidence = evidence
    result = _labelled(output, spec, tmp_path)
    assert result.status == "fail" and result.check_status == "fail"
    assert result.summary.startswith(
        "Refused, resident_id (an identifier column of residents) is one of its keys, and a "
        "table keyed by an identifier publishes one row per person."
    )


def test_a_plan_mode_table_counted_by_the_rows_of_the_data_is_the_engines(spec, tmp_path):
    output = _made(people.people(120).select("age_band", "sex"), ["age_band", "sex"], rows=["sex"])
    output.evidence = "engine"  # as the engine's recomputation leaves it (no unit: rows)
    result = _labelled(output, spec, tmp_path)
    assert result.status == "pass" and not result.advisory
    assert "each row of the data counted once" in result.provenance


def test_a_table_steps_table_keyed_by_an_identifier_is_refused_too(tmp_path):
    # Counted by records (as fire_incidents is, by incident), one person's cell can pass.
    spec = parse_spec(
        {
            "project": "p",
            "title": "t",
            "datasets": {"residents": people.COLUMNS},
            "steps": [
                {"kind": "table", "name": "by_person", "dataset": "residents", "rows": ["sex"]}
            ],
        },
        as_written=False,
    )
    frame = pl.concat([people.people(40)] * 10).rename({"resident_id": "who"})
    output = _made(frame, rows=["who"])
    output.name = output.step = "by_person"
    output.rows, output.cells = ["resident_id"], output.cells.rename({"who": "resident_id"})
    result = _labelled(output, spec, tmp_path)
    assert not result.advisory  # the engine's own evidence...
    assert result.status == "fail"  # ...of a table that is one row per person
    assert result.summary.startswith("Refused, resident_id (an identifier column of residents)")


def test_checking_refuses_counts_the_code_wrote_in_tres_words(session_as, tmp_path):
    # Where python steps ran beside the engine (no door between them), their code could
    # write any entry: checking reads none of it before its claims are checked.
    session = session_as("ada")
    job = Job(
        id=4242, project="p", submitter="rita", title="t", state=JobState.RUNNING, spec={},
        spec_hash="h",
    )  # fmt: skip
    frame = pl.concat([people.people(60)] * 2)
    ctx = StepContext("mine", {"residents": people.source()}, {"residents": people.COLUMNS})
    ctx.regression("r", frame, outcome="ltc_count", predictors=["sex"], categorical=["sex"])
    folder = session.home.job_dir(job.id)
    folder.mkdir(parents=True)
    path = write_results(folder, ctx.outputs, {}) / "result.json"
    document = path.read_text().replace('"level_counts": {', '"level_counts": {"x": {"a": NaN},')
    path.write_text(document)
    with pytest.raises(InputError) as refused:
        check_job(session, job)
    assert refused.value.message == (
        "job 4242's outputs cannot be checked: regression r's level_counts holds something "
        "other than a whole number of observations (at least 0)"
    )
