"""Which outputs' evidence tre's engine computed: decided from the approved spec alone."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml

from jobs.outputs import FileOutput, TableOutput
from jobs.spec import parse_spec
from tre.service.checking import _engine_made

EXAMPLES = Path(__file__).resolve().parents[3] / "jobs" / "examples"


def _spec():
    data = yaml.safe_load((EXAMPLES / "health_by_area.yaml").read_text())
    data["steps"].append({"kind": "python", "name": "mine", "function": "x.py:f"})
    return parse_spec(data, as_written=False)


def _table(name: str, step: str) -> TableOutput:
    return TableOutput(
        name=name,
        step=step,
        description="",
        datasets=["residents"],
        rows=["local_authority"],
        columns=[],
        value=None,
        statistic="count",
        quantile=None,
        cells=pl.DataFrame(),
    )


def test_a_declarative_steps_own_output_is_the_engines():
    outputs = [_table("residents_by_area", "residents_by_area")]
    assert _engine_made(outputs[0], _spec(), outputs)


def test_a_python_steps_table_is_not():
    outputs = [_table("anything", "mine")]
    assert not _engine_made(outputs[0], _spec(), outputs)


def test_an_output_claiming_a_declarative_step_it_is_not_is_not():
    spec = _spec()
    renamed = _table("other_name", "residents_by_area")
    assert not _engine_made(renamed, spec, [renamed])
    twice = [_table("residents_by_area", "residents_by_area")] * 2
    assert not _engine_made(twice[0], spec, twice)
    file = FileOutput(
        name="copd_by_deprivation",
        step="copd_by_deprivation",
        description="",
        filename="a",
        content=b"",
    )
    assert not _engine_made(file, spec, [file])
