"""How checking labels a python step's table (tre/service/checking.py `label`): who
computed its evidence, whether tre could establish its contributors, and the refusal of
a table keyed by an identifier, however the code handed it over."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from disclosure.advisory import ADVISORY
from disclosure.check import TableResult
from jobs.contributors import UNCOUNTED
from jobs.outputs import Output, TableOutput
from jobs.python_step import StepContext
from jobs.spec import JobSpec, parse_spec
from policies.sdc import layered_policy
from tests.jobs import people
from tre.service.checking import _check, label

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
