"""The one door between a job's two sandboxes (jobs/handover.py): what the python
steps' phase left is read as untrusted, and only what a python step may hand over
gets through."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
import yaml

from jobs.errors import StepFailed
from jobs.handover import read_handover
from jobs.outputs import FileOutput, TableOutput
from jobs.results import write_error, write_results
from jobs.spec import parse_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "jobs" / "examples"


@pytest.fixture
def spec():
    data = yaml.safe_load((EXAMPLES / "health_by_area.yaml").read_text())
    data["steps"].append({"kind": "python", "name": "mine", "function": "x.py:f"})
    return parse_spec(data, as_written=False)


def _outputs(step: str = "mine"):
    table = TableOutput(
        name="by_sex",
        step=step,
        description="",
        datasets=["residents"],
        rows=["sex"],
        columns=[],
        value=None,
        statistic="count",
        quantile=None,
        cells=pl.DataFrame({"sex": ["F", "M"], "n": [12, 14]}),
    )
    note = FileOutput(name="note", step=step, description="", filename="n.md", content=b"hi")
    return [table, note]


def _scratch(tmp_path: Path) -> Path:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return scratch


def test_what_a_python_step_made_gets_through(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_results(handover, _outputs(), {"job_id": 1})
    received = read_handover(handover, spec, _scratch(tmp_path))
    assert received.error is None
    table, note = received.outputs["mine"]
    assert table.cells.to_dict(as_series=False) == {"sex": ["F", "M"], "n": [12, 14]}
    assert note.content == b"hi"


def _tamper(handover: Path, change) -> None:
    path = handover / "result" / "result.json"
    document = json.loads(path.read_text())
    change(document["outputs"])
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda o: o[1].update(data="../../input.json"), "not where an output's data goes"),
        (lambda o: o[0].update(step="residents_by_area"), "not a python step"),
        (lambda o: o[0].update(name="../x"), "name is not allowed"),
        (lambda o: o[1].update(filename="../../etc"), "file name that is not allowed"),
        (lambda o: o[0].update(kind="secret"), "unknown kind"),
    ],
)
def test_an_entry_the_code_shaped_is_refused(tmp_path, spec, change, said):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_results(handover, _outputs(), {})
    _tamper(handover, change)
    with pytest.raises(StepFailed, match=said):
        read_handover(handover, spec, _scratch(tmp_path))


def test_a_link_is_refused_never_followed(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_results(handover, _outputs(), {})
    target = handover / "result" / "files" / "note" / "n.md"
    target.unlink()
    secret = tmp_path / "secret.txt"
    secret.write_text("the engine's own file")
    os.symlink(secret, target)
    with pytest.raises(StepFailed, match="link"):
        read_handover(handover, spec, _scratch(tmp_path))


def test_the_codes_failure_is_passed_on_bounded(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    write_error(handover, "x" * 10_000, {"type": "ValueError" * 100, "where": "a.py:3"})
    received = read_handover(handover, spec, _scratch(tmp_path))
    assert received.error is not None
    assert len(received.error["reason"]) == 4000
    assert len(received.error["type"]) == 200 and received.error["where"] == "a.py:3"


def test_nothing_handed_over_is_said_in_tres_words(tmp_path, spec):
    handover = tmp_path / "handover"
    handover.mkdir()
    with pytest.raises(StepFailed, match="ended without handing over"):
        read_handover(handover, spec, _scratch(tmp_path))
